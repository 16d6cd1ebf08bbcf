import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { binaryFile, configFile, dirEntry, symlink, textFile, type RenderedFile } from '../../src/files.ts';
import { debFileName, installedSize, validateDebFiles, writeDeb, type DebMeta } from '../../src/pack/deb.ts';
import { gzip } from '../../src/pack/gzip.ts';
import { run, runRaw, tempDir } from './run-tools.ts';
import { lintian } from '../lintian.ts';

const tmp = tempDir('deb');
afterAll(() => tmp.cleanup());

const EPOCH = 1_700_000_000; // 2023-11-14 22:13:20 UTC
const enc = new TextEncoder();
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

const meta: DebMeta = {
  package: 'pack-probe',
  version: '1:0.3.1-2',
  architecture: 'all',
  maintainer: 'Jane Doe <jane@example.org>',
  section: 'net',
  priority: 'optional',
  depends: ['tor (>= 0.4.7)', 'i2pd | i2p'],
  recommends: ['nftables'],
  description: {
    summary: 'probe package for the deterministic writers',
    extended: ['First paragraph of the long description.', '', 'Second paragraph.'],
  },
  homepage: 'https://example.org/pack-probe',
  scripts: {
    postinst: '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n  echo configured\nfi\n',
    prerm: '#!/bin/sh\nset -e\necho removing\n',
  },
};

const longDir = `/usr/share/pack-probe/${'a'.repeat(60)}/${'b'.repeat(40)}`;
const longFile = `${longDir}/a-file-whose-full-path-needs-the-ustar-prefix-field.txt`;
const files: RenderedFile[] = [
  configFile('/etc/pack-probe/gateway.conf', 'listen = 10.137.0.1\n'),
  textFile('/etc/pack-probe/defaults', 'plain file under /etc: a conffile too\n'),
  textFile('/usr/bin/pack-probe', '#!/bin/sh\necho probe\n', 0o755),
  symlink('/usr/bin/pack-probe-alias', 'pack-probe'),
  textFile('/usr/lib/pack-probe/nested/deeper/data.txt', 'x'.repeat(2049)),
  binaryFile('/usr/lib/pack-probe/blob.bin', new Uint8Array([0, 1, 2, 3, 255, 254, 10, 13])),
  configFile('/usr/lib/pack-probe/tunable.conf', 'config kind outside /etc\n'),
  dirEntry('/var/lib/pack-probe', 0o750),
  textFile(longFile, 'long path\n'),
];

describe('writeDeb with the real dpkg tools', () => {
  const deb = writeDeb(meta, files, { sourceDateEpoch: EPOCH });
  const debPath = join(tmp.dir, debFileName(meta));
  writeFileSync(debPath, deb);
  const tree = join(tmp.dir, 'tree');
  mkdirSync(tree);
  run('dpkg-deb', ['-x', debPath, tree]);

  it('is named <package>_<version without epoch>_<arch>.deb', () => {
    expect(debFileName(meta)).toBe('pack-probe_0.3.1-2_all.deb');
    expect(debFileName({ package: 'p', version: '2.0', architecture: 'amd64' })).toBe('p_2.0_amd64.deb');
  });

  it('is an ar archive with debian-binary, control.tar.gz, data.tar.gz in that order', () => {
    expect(run('ar', ['t', debPath]).split('\n').filter(Boolean)).toEqual(['debian-binary', 'control.tar.gz', 'data.tar.gz']);
    expect(run('ar', ['p', debPath, 'debian-binary'])).toBe('2.0\n');
    expect(run('ar', ['tv', debPath])).toMatch(/^rw-r--r-- 0\/0 +4 Nov 14 22:13 2023 debian-binary$/m);
  });

  it('has gzip members that pass gzip -t, with no name, mtime 0 and OS 3', () => {
    for (const member of ['control.tar.gz', 'data.tar.gz']) {
      const bytes = runRaw('ar', ['p', debPath, member]).stdout;
      expect(runRaw('gzip', ['-t'], { input: bytes }).status).toBe(0);
      expect([...bytes.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    }
  });

  it('has the control fields dpkg-deb --info reports', () => {
    const info = run('dpkg-deb', ['--info', debPath]);
    expect(info).toContain(' new Debian package, version 2.0.');
    const control = run('dpkg-deb', ['--field', debPath]);
    expect(control).toBe(
      [
        'Package: pack-probe',
        'Version: 1:0.3.1-2',
        'Architecture: all',
        'Maintainer: Jane Doe <jane@example.org>',
        `Installed-Size: ${installedSize(files)}`,
        'Depends: tor (>= 0.4.7), i2pd | i2p',
        'Recommends: nftables',
        'Section: net',
        'Priority: optional',
        'Homepage: https://example.org/pack-probe',
        'Description: probe package for the deterministic writers',
        ' First paragraph of the long description.',
        ' .',
        ' Second paragraph.',
        '',
      ].join('\n'),
    );
    expect(run('dpkg-deb', ['--field', debPath, 'Package'])).toBe('pack-probe\n');
  });

  it('lists its contents sorted, parents first, symlinks last, root/root, with the epoch as mtime and the given modes', () => {
    const lines = run('dpkg-deb', ['--contents', debPath]).trim().split('\n');
    const rows = lines.map((l) => {
      const m = /^(\S+) (\S+) +(\d+) (\S+ \S+) (\S+)(?: -> (\S+))?$/.exec(l);
      if (m === null) throw new Error(`unexpected line ${l}`);
      return { perms: m[1], owner: m[2], date: m[4], name: m[5], target: m[6] };
    });
    for (const r of rows) {
      expect(r.owner).toBe('root/root');
      expect(r.date).toBe('2023-11-14 22:13');
    }
    const names = rows.map((r) => r.name ?? '');
    // every parent of every entry is listed before it
    for (const [i, n] of names.entries()) {
      if (n === './') continue;
      const parent = n.replace(/[^/]+\/?$/, '');
      const at = names.indexOf(parent);
      expect(at, `parent of ${n}`).toBeGreaterThanOrEqual(0);
      expect(at).toBeLessThan(i);
    }
    expect(names).toEqual([
      './',
      './etc/',
      './etc/pack-probe/',
      './etc/pack-probe/defaults',
      './etc/pack-probe/gateway.conf',
      './usr/',
      './usr/bin/',
      './usr/bin/pack-probe',
      './usr/lib/',
      './usr/lib/pack-probe/',
      './usr/lib/pack-probe/blob.bin',
      './usr/lib/pack-probe/nested/',
      './usr/lib/pack-probe/nested/deeper/',
      './usr/lib/pack-probe/nested/deeper/data.txt',
      './usr/lib/pack-probe/tunable.conf',
      './usr/share/',
      './usr/share/pack-probe/',
      `./usr/share/pack-probe/${'a'.repeat(60)}/`,
      `.${longDir}/`,
      `.${longFile}`,
      './var/',
      './var/lib/',
      './var/lib/pack-probe/',
      './usr/bin/pack-probe-alias', // symlinks last, as dpkg-deb --build orders them
    ]);
    const perms = (name: string): string | undefined => rows.find((r) => r.name === name)?.perms;
    expect(perms('./usr/bin/pack-probe')).toBe('-rwxr-xr-x');
    expect(perms('./etc/pack-probe/gateway.conf')).toBe('-rw-r--r--');
    expect(perms('./var/lib/pack-probe/')).toBe('drwxr-x---');
    expect(perms('./usr/')).toBe('drwxr-xr-x');
    expect(perms('./usr/bin/pack-probe-alias')).toBe('lrwxrwxrwx');
    expect(rows.find((r) => r.name === './usr/bin/pack-probe-alias')?.target).toBe('pack-probe');
  });

  it('extracts with dpkg-deb -x to byte-identical files, exact modes, mtimes and links', () => {
    for (const f of files) {
      const p = join(tree, f.path);
      const st = lstatSync(p);
      expect(st.mtimeMs, f.path).toBe(EPOCH * 1000);
      if (f.kind === 'symlink') {
        expect(st.isSymbolicLink()).toBe(true);
        expect(readlinkSync(p)).toBe(f.target);
      } else if (f.kind === 'dir') {
        expect(st.isDirectory()).toBe(true);
        expect(st.mode & 0o7777).toBe(f.mode);
      } else {
        expect(st.isFile()).toBe(true);
        expect(st.mode & 0o7777).toBe(f.mode);
        expect(same(readFileSync(p), f.data), f.path).toBe(true);
      }
    }
  });

  it('has a control.tar with ./ then sorted control files, scripts 0755', () => {
    const ctrl = runRaw('dpkg-deb', ['--ctrl-tarfile', debPath]).stdout;
    expect(run('tar', ['-t'], { input: ctrl }).trim().split('\n')).toEqual([
      './',
      './conffiles',
      './control',
      './md5sums',
      './postinst',
      './prerm',
    ]);
    const verbose = run('tar', ['-tv', '--full-time'], { input: ctrl });
    expect(verbose).toMatch(/^-rwxr-xr-x root\/root +\d+ 2023-11-14 22:13:20 \.\/postinst$/m);
    expect(verbose).toMatch(/^-rwxr-xr-x root\/root +\d+ 2023-11-14 22:13:20 \.\/prerm$/m);
    expect(verbose).toMatch(/^-rw-r--r-- root\/root +\d+ 2023-11-14 22:13:20 \.\/control$/m);
  });

  it('has conffiles: config files and every regular file under /etc', () => {
    const dir = join(tmp.dir, 'raw');
    run('dpkg-deb', ['-e', debPath, dir]);
    expect(readFileSync(join(dir, 'conffiles'), 'utf8')).toBe(
      '/etc/pack-probe/defaults\n/etc/pack-probe/gateway.conf\n/usr/lib/pack-probe/tunable.conf\n',
    );
    expect(readFileSync(join(dir, 'postinst'), 'utf8')).toBe(meta.scripts?.postinst);
  });

  it('has md5sums that md5sum -c verifies in the extracted tree, regular files only, sorted', () => {
    const dir = join(tmp.dir, 'raw-md5');
    run('dpkg-deb', ['-e', debPath, dir]);
    const md5sums = readFileSync(join(dir, 'md5sums'), 'utf8');
    const out = run('md5sum', ['-c', '--strict', '-'], { cwd: tree, input: md5sums });
    const paths = md5sums.trim().split('\n').map((l) => l.slice(34));
    expect(paths).toEqual(
      files
        .filter((f) => f.kind === 'file' || f.kind === 'config')
        .map((f) => f.path.slice(1))
        .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    expect(out.trim().split('\n')).toHaveLength(paths.length);
    expect(out).not.toMatch(/FAILED/);
    expect(md5sums).toContain(`${createHash('md5').update('listen = 10.137.0.1\n').digest('hex')}  etc/pack-probe/gateway.conf\n`);
  });

  it('has the Installed-Size that dpkg-gencontrol computes for the extracted tree', () => {
    const src = join(tmp.dir, 'src');
    mkdirSync(join(src, 'debian'), { recursive: true });
    writeFileSync(
      join(src, 'debian', 'control'),
      'Source: pack-probe\nMaintainer: Jane Doe <jane@example.org>\n\nPackage: pack-probe\nArchitecture: all\nDescription: x\n x\n',
    );
    writeFileSync(
      join(src, 'debian', 'changelog'),
      'pack-probe (1:0.3.1-2) unstable; urgency=medium\n\n  * Test.\n\n -- Jane Doe <jane@example.org>  Tue, 14 Nov 2023 22:13:20 +0000\n',
    );
    const generated = run('dpkg-gencontrol', ['-ppack-probe', `-P${tree}`, '-O'], { cwd: src });
    const size = /^Installed-Size: (\d+)$/m.exec(generated)?.[1];
    expect(Number(size)).toBe(installedSize(files));
    expect(run('dpkg-deb', ['--field', debPath, 'Installed-Size']).trim()).toBe(size);
    // 16 directories incl. ./ and the implied parents (1 each), a symlink (1), a file of 2049 bytes (3), six small files (1 each)
    expect(installedSize(files)).toBe(16 + 1 + 3 + 6);
  });

  it('matches what dpkg-deb --build makes of the same tree (control, contents, control.tar listing)', () => {
    const raw = join(tmp.dir, 'rebuild');
    run('dpkg-deb', ['-R', debPath, raw]);
    const rebuilt = join(tmp.dir, 'rebuilt.deb');
    const r = runRaw('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', raw, rebuilt], {
      env: { SOURCE_DATE_EPOCH: String(EPOCH) },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warning/i);
    expect(run('dpkg-deb', ['--field', rebuilt])).toBe(run('dpkg-deb', ['--field', debPath]));
    expect(run('dpkg-deb', ['--contents', rebuilt])).toBe(run('dpkg-deb', ['--contents', debPath]));
    const ctrlList = (p: string): string =>
      run('tar', ['-tv', '--full-time'], { input: runRaw('dpkg-deb', ['--ctrl-tarfile', p]).stdout });
    expect(ctrlList(rebuilt)).toBe(ctrlList(debPath));
    expect(run('ar', ['t', rebuilt])).toBe(run('ar', ['t', debPath]));
  });

  it('installs and removes with dpkg into a scratch root', () => {
    const root = join(tmp.dir, 'root');
    mkdirSync(join(root, 'var/lib/dpkg/updates'), { recursive: true });
    mkdirSync(join(root, 'var/lib/dpkg/info'), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), '');
    const dpkg = (args: string[]): { status: number | null; stderr: string } =>
      runRaw('dpkg', [`--root=${root}`, '--force-depends', '--force-script-chrootless', '--force-not-root', ...args]);
    const install = dpkg(['--unpack', debPath]);
    expect(install.status, install.stderr).toBe(0);
    expect(readFileSync(join(root, 'var/lib/dpkg/info/pack-probe.conffiles'), 'utf8')).toContain('/etc/pack-probe/gateway.conf');
    expect(same(readFileSync(join(root, 'usr/bin/pack-probe')), enc.encode('#!/bin/sh\necho probe\n'))).toBe(true);
    const remove = dpkg(['--remove', 'pack-probe']);
    expect(remove.status, remove.stderr).toBe(0);
  });
});

describe('writeDeb determinism', () => {
  const deb = writeDeb(meta, files, { sourceDateEpoch: EPOCH });

  it('gives identical bytes for the same input, whatever the file order', () => {
    expect(same(writeDeb(meta, files, { sourceDateEpoch: EPOCH }), deb)).toBe(true);
    expect(same(writeDeb(meta, [...files].reverse(), { sourceDateEpoch: EPOCH }), deb)).toBe(true);
  });

  it('gives different bytes for a different epoch', () => {
    expect(same(writeDeb(meta, files, { sourceDateEpoch: EPOCH + 60 }), deb)).toBe(false);
  });
});

describe('writeDeb validation', () => {
  const build = (extra: RenderedFile[]): Uint8Array => writeDeb(meta, [...files, ...extra], { sourceDateEpoch: EPOCH });

  it('refuses a non-ASCII path, naming it', () => {
    expect(() => build([textFile('/etc/pack-probe/café.conf', 'x')])).toThrow(/café\.conf.*non-ASCII would need a PAX header/);
  });

  it('refuses a path too long for ustar, naming it', () => {
    const name = `/usr/share/${'x'.repeat(120)}`;
    expect(() => build([textFile(name, 'x')])).toThrow(new RegExp(`${name}.*too long for ustar`));
    expect(() => build([textFile(`/usr/${'y/'.repeat(140)}z`, 'x')])).toThrow(/too long for ustar/);
  });

  it('refuses relative paths, .., whitespace, duplicates and bad symlinks', () => {
    expect(() => build([textFile('etc/relative', 'x')])).toThrow(/not absolute/);
    expect(() => build([textFile('/usr/../etc/x', 'x')])).toThrow(/contains '\.\.'/);
    expect(() => build([textFile('/usr/share/a b', 'x')])).toThrow(/without whitespace/);
    expect(() => build([textFile('/usr/bin/pack-probe', 'x')])).toThrow(/listed twice/);
    expect(() => build([symlink('/usr/bin/far', `/${'t'.repeat(100)}`)])).toThrow(/far: symlink target is 101 bytes/);
    expect(() => build([{ path: '/usr/bin/nolink', kind: 'symlink', mode: 0o777, data: new Uint8Array(0) }])).toThrow(/without a target/);
    expect(() => build([textFile('/usr/bin/pack-probe/sub', 'x')])).toThrow(/parent usr\/bin\/pack-probe is a file/);
    expect(() => validateDebFiles([textFile('/', 'x')])).toThrow(/root directory is implicit/);
  });

  it('refuses bad metadata', () => {
    const opts = { sourceDateEpoch: EPOCH };
    expect(() => writeDeb({ ...meta, package: 'Bad_Name' }, files, opts)).toThrow(/Package/);
    expect(() => writeDeb({ ...meta, version: '1.0_1' }, files, opts)).toThrow(/Version/);
    expect(() => writeDeb({ ...meta, maintainer: 'a\nb' }, files, opts)).toThrow(/Maintainer.*newline/);
    expect(() => writeDeb({ ...meta, depends: ['a, b'] }, files, opts)).toThrow(/Depends.*without commas/);
    expect(() => writeDeb({ ...meta, scripts: { postinst: 'echo no shebang\n' } }, files, opts)).toThrow(/postinst.*#!/);
    expect(() => writeDeb({ ...meta, description: { summary: 'x', extended: ['.'] } }, files, opts)).toThrow(/Description/);
  });
});

describe('lintian on a tiny well-formed package', () => {
  it('reports no archive-format problems, no errors and no warnings (Debian 13\'s lintian)', async () => {
    const changelog =
      'lint-probe (1.0) unstable; urgency=medium\n\n  * Initial release.\n\n -- Jane Doe <jane@example.org>  Tue, 14 Nov 2023 22:13:20 +0000\n';
    const copyright =
      'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: lint-probe\n\n' +
      'Files: *\nCopyright: 2023 Jane Doe\nLicense: GPL-3+\n On Debian systems, the full text of the GNU General Public\n' +
      ' License version 3 can be found in /usr/share/common-licenses/GPL-3.\n';
    const tiny: DebMeta = {
      package: 'lint-probe',
      version: '1.0',
      architecture: 'all',
      maintainer: 'Jane Doe <jane@example.org>',
      section: 'net',
      priority: 'optional',
      depends: [],
      description: {
        summary: 'tiny package that exercises the deterministic .deb writer',
        extended: [
          'This package exists only so that lintian can check the archive format',
          'produced by the writer: the ar container, the ustar members, gzip, the',
          'control files, md5sums and conffiles.',
        ],
      },
      scripts: { postinst: '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n  echo "lint-probe configured"\nfi\n' },
    };
    const tinyFiles = [
      configFile('/etc/lint-probe.conf', 'enabled = yes\n'),
      textFile('/usr/share/doc/lint-probe/copyright', copyright),
      binaryFile('/usr/share/doc/lint-probe/changelog.gz', gzip(enc.encode(changelog))),
    ];
    const path = join(tmp.dir, debFileName(tiny));
    writeFileSync(path, writeDeb(tiny, tinyFiles, { sourceDateEpoch: EPOCH }));
    const r = await lintian(['--display-level', '>=pedantic', '--display-info', '--tag-display-limit', '0', path]);
    const out = r.stdout;
    const tags = out
      .split('\n')
      .filter((l) => /^[EWIPXO]: /.test(l))
      .map((l) => l.split(' ')[2] ?? '');
    const formatTags = [
      'malformed-deb-archive',
      'tar-errors-from-data',
      'tar-errors-from-control',
      'unpack-message-for-deb-data',
      'unpack-message-for-deb-control',
      'control-file-has-bad-owner',
      'control-file-has-bad-permissions',
      'control-file-is-empty',
      'control-file-is-not-a-file',
      'wrong-file-owner-uid-or-gid',
      'mismatched-override',
      'malformed-md5sums-control-file',
      'md5sum-mismatch',
      'md5sums-lists-nonexistent-file',
      'file-missing-in-md5sums',
      'no-md5sums-control-file',
      'file-in-etc-not-marked-as-conffile',
      'conffile-has-bad-file-type',
      'duplicate-conffile',
      'relative-conffile',
      'package-contains-timestamped-gzip',
      'changelog-not-compressed-with-max-compression',
      'package-contains-ancient-file',
      'control-tarball-compression-format',
      'data-tarball-compression-format',
      'non-standard-dir-perm',
      'non-standard-file-perm',
    ];
    expect(tags.filter((t) => formatTags.includes(t)), out).toEqual([]);
    expect(out, out).not.toMatch(/^[EW]: /m);
    expect(r.stderr).not.toMatch(/error/i);
  });
});
