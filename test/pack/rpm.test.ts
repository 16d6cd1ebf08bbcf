/**
 * The .rpm writer, checked with rpm 4.18's own tools (the writer never calls them): query, digests,
 * payload listing, a real install into a scratch root, verify and erase, rpmlint, reproducibility.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpmFileName, writeRpm, type RpmMeta } from '../../src/pack/rpm/index.ts';
import { int32, str, writeHeader } from '../../src/pack/rpm/header.ts';
import { configFile, dirEntry, symlink, textFile, type RenderedFile } from '../../src/files.ts';

const EPOCH = 1_700_000_000; // Tue Nov 14 22:13:20 2023 UTC
/** Fixed time zone and locale: rpm prints dates with strftime. */
const env = { ...process.env, TZ: 'UTC', LC_ALL: 'C' };

const META: RpmMeta = {
  name: 'demo-gw',
  version: '1.2.3',
  release: '1',
  summary: 'Demonstration package for the RPM writer',
  description: 'A small package that exercises every kind of entry the RPM writer supports.',
  license: 'GPL-3.0-or-later',
  group: 'System Environment/Base',
  url: 'https://example.org/demo',
  packager: 'Test Packager <test@example.org>',
  requires: [
    { name: 'qubes-mgmt-salt' },
    { name: 'bash', flags: '>=', version: '5.0' },
  ],
  provides: [{ name: 'demo-gateway', flags: '=', version: '1.2.3-1' }],
  scripts: {
    post: 'if [ "$1" -eq 1 ]; then echo installed; fi\n',
    preun: 'if [ "$1" -eq 0 ]; then echo removing; fi\n',
  },
  changelog: [{ time: EPOCH, author: 'Test Packager <test@example.org> - 1.2.3-1', text: '- First release' }],
};

const CONF = '# demo configuration\nkey=value\n';
const SCRIPT = '#!/bin/sh\necho demo\n';
const DOC = 'Demo gateway documentation.\n';

/** Unsorted on purpose; /etc/demo-gw, /usr/bin etc. are *not* listed and must not be owned. */
const FILES: readonly RenderedFile[] = [
  textFile('/usr/bin/demo-gw', SCRIPT, 0o755),
  configFile('/etc/demo-gw/demo.conf', CONF),
  symlink('/usr/bin/demo-gw-link', 'demo-gw'),
  textFile('/usr/share/doc/demo-gw/README', DOC),
  // 0755: rpmlint reports any other directory mode as an error (non-standard-dir-perm).
  dirEntry('/var/lib/demo-gw', 0o755),
];

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

interface Run {
  readonly stdout: string;
  readonly stderr: string;
  readonly status: number;
}

function run(cmd: string, args: readonly string[], input?: Uint8Array): Run {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? -1 };
}

function ok(cmd: string, args: readonly string[], input?: Uint8Array): string {
  const r = run(cmd, args, input);
  expect(r.status, `${cmd} ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('writeRpm', () => {
  let dir: string;
  let bytes: Uint8Array;
  let pkg: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rpm-test-'));
    bytes = writeRpm(META, FILES, { sourceDateEpoch: EPOCH });
    pkg = join(dir, rpmFileName(META));
    writeFileSync(pkg, bytes);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the file NAME-VERSION-RELEASE.noarch.rpm', () => {
    expect(rpmFileName(META)).toBe('demo-gw-1.2.3-1.noarch.rpm');
  });

  it('starts with a v3 binary lead and a header-style signature', () => {
    expect([...bytes.subarray(0, 8)]).toEqual([0xed, 0xab, 0xee, 0xdb, 3, 0, 0, 0]);
    expect(Buffer.from(bytes.subarray(10, 10 + 15)).toString()).toBe('demo-gw-1.2.3-1');
    expect([...bytes.subarray(76, 80)]).toEqual([0, 1, 0, 5]);
    expect([...bytes.subarray(96, 100)]).toEqual([0x8e, 0xad, 0xe8, 0x01]);
  });

  it('rpm -qpi shows the metadata, build date = epoch, fixed build host', () => {
    const info = ok('rpm', ['-qpi', pkg]);
    const field = (name: string): string | undefined =>
      new RegExp(`^${name} *: (.*)$`, 'm').exec(info)?.[1]?.trim();
    expect(field('Name')).toBe('demo-gw');
    expect(field('Version')).toBe('1.2.3');
    expect(field('Release')).toBe('1');
    expect(field('Architecture')).toBe('noarch');
    expect(field('License')).toBe('GPL-3.0-or-later');
    expect(field('Group')).toBe('System Environment/Base');
    expect(field('Build Date')).toBe('Tue Nov 14 22:13:20 2023');
    expect(field('Build Host')).toBe('reproducible');
    expect(field('Packager')).toBe('Test Packager <test@example.org>');
    expect(field('URL')).toBe('https://example.org/demo');
    expect(field('Summary')).toBe(META.summary);
    expect(field('Source RPM')).toBe('demo-gw-1.2.3-1.src.rpm');
    expect(field('Size')).toBe(String(CONF.length + SCRIPT.length + 'demo-gw'.length + DOC.length));
    expect(info).toContain(META.description);
    expect(ok('rpm', ['-qp', '--qf', '%{BUILDTIME} %{OS} %{PAYLOADCOMPRESSOR} %{PAYLOADFLAGS}', pkg])).toBe(
      `${EPOCH} linux gzip 9`,
    );
    expect(ok('rpm', ['-qp', '--changelog', pkg])).toBe(
      '* Tue Nov 14 2023 Test Packager <test@example.org> - 1.2.3-1\n- First release\n\n',
    );
  });

  it('rpm -qpl --dump lists exactly the given entries with sizes, mtimes, digests, modes, owners, flags', () => {
    const z = '0'.repeat(64);
    expect(ok('rpm', ['-qpl', '--dump', pkg]).trim().split('\n')).toEqual([
      // path size mtime sha256 mode owner group config doc rdev linkto
      `/etc/demo-gw/demo.conf ${CONF.length} ${EPOCH} ${sha256(CONF)} 0100644 root root 1 0 0 X`,
      `/usr/bin/demo-gw ${SCRIPT.length} ${EPOCH} ${sha256(SCRIPT)} 0100755 root root 0 0 0 X`,
      `/usr/bin/demo-gw-link 7 ${EPOCH} ${z} 0120777 root root 0 0 0 demo-gw`,
      `/usr/share/doc/demo-gw/README ${DOC.length} ${EPOCH} ${sha256(DOC)} 0100644 root root 0 1 0 X`,
      `/var/lib/demo-gw 0 ${EPOCH} ${z} 040755 root root 0 0 0 X`,
    ]);
    // %config(noreplace) = "cn"; %doc = "d"
    expect(ok('rpm', ['-qp', '--qf', '[%{FILEFLAGS:fflags} %{FILENAMES}\n]', pkg]).split('\n')[0]).toBe(
      'cn /etc/demo-gw/demo.conf',
    );
    expect(ok('rpm', ['-qp', '--qf', '%{FILEDIGESTALGO} %{PAYLOADDIGESTALGO}', pkg])).toBe('8 8');
  });

  it('rpm -K and rpmkeys --checksig find every digest OK', () => {
    expect(ok('rpm', ['-K', pkg]).trim()).toBe(`${pkg}: digests OK`);
    expect(ok('rpmkeys', ['--checksig', pkg]).trim()).toBe(`${pkg}: digests OK`);
    const verbose = ok('rpm', ['-Kv', pkg]);
    expect(verbose).toMatch(/Header SHA256 digest: OK/);
    expect(verbose).toMatch(/Payload SHA256 digest: OK/);
    expect(verbose).toMatch(/MD5 digest: OK/);
  });

  it('rpm -K notices a flipped payload byte', () => {
    const bad = new Uint8Array(bytes);
    bad[bad.length - 20] = (bad[bad.length - 20] ?? 0) ^ 0xff;
    const badPkg = join(dir, 'bad.rpm');
    writeFileSync(badPkg, bad);
    const r = run('rpm', ['-K', badPkg]);
    expect(r.status).not.toBe(0);
    expect(r.stdout.trim()).toBe(`${badPkg}: DIGESTS NOT OK`);
  });

  it('requires the rpmlib() features, /bin/sh per scriptlet, the given deps; provides itself', () => {
    expect(ok('rpm', ['-qp', '--requires', pkg]).trim().split('\n')).toEqual([
      '/bin/sh',
      '/bin/sh',
      'bash >= 5.0',
      'config(demo-gw) = 1.2.3-1',
      'qubes-mgmt-salt',
      'rpmlib(CompressedFileNames) <= 3.0.4-1',
      'rpmlib(FileDigests) <= 4.6.0-1',
      'rpmlib(PayloadFilesHavePrefix) <= 4.0-1',
    ]);
    // The two /bin/sh are Requires(post) and Requires(preun), as rpmbuild writes them.
    expect(ok('rpm', ['-qp', '--qf', '[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]', pkg])).toMatch(
      /^\/bin\/sh post,interp\n\/bin\/sh preun,interp\n/,
    );
    expect(ok('rpm', ['-qp', '--provides', pkg]).trim().split('\n')).toEqual([
      'config(demo-gw) = 1.2.3-1',
      'demo-gateway = 1.2.3-1',
      'demo-gw = 1.2.3-1',
    ]);
  });

  it('rpm -qp --scripts shows %post and %preun run by /bin/sh', () => {
    expect(ok('rpm', ['-qp', '--scripts', pkg])).toBe(
      `postinstall scriptlet (using /bin/sh):\n${META.scripts?.post ?? ''}\n` +
        `preuninstall scriptlet (using /bin/sh):\n${META.scripts?.preun ?? ''}\n`,
    );
  });

  it('rpm2cpio | cpio -t lists every file of the package, ./-prefixed and sorted', () => {
    const r = spawnSync('rpm2cpio', [pkg], { env });
    expect(r.status).toBe(0);
    expect(ok('cpio', ['-t', '--quiet'], r.stdout).trim().split('\n')).toEqual([
      './etc/demo-gw/demo.conf',
      './usr/bin/demo-gw',
      './usr/bin/demo-gw-link',
      './usr/share/doc/demo-gw/README',
      './var/lib/demo-gw',
    ]);
  });

  it('installs into a scratch root, verifies clean, and erases', () => {
    const root = join(dir, 'root');
    mkdirSync(root);
    // Debian's rpm keeps its database in ~/.rpmdb by default: pin it inside the root.
    const db = ['--root', root, '--dbpath', '/var/lib/rpm'];
    ok('rpm', [...db, '--initdb']);
    ok('rpm', [...db, '--nodeps', '--noscripts', '-i', pkg]);
    expect(ok('rpm', [...db, '-q', 'demo-gw']).trim()).toBe('demo-gw-1.2.3-1.noarch');
    for (const f of FILES) expect(existsSync(join(root, f.path)), f.path).toBe(true);
    // --nodeps: the empty root has no /bin/sh or bash; every file attribute is still verified.
    const verify = run('rpm', [...db, '-V', '--nodeps', 'demo-gw']);
    expect(verify.stdout).toBe('');
    expect(verify.status, verify.stderr).toBe(0);
    ok('rpm', [...db, '--noscripts', '-e', 'demo-gw']);
    for (const f of FILES) expect(existsSync(join(root, f.path)), f.path).toBe(false);
    expect(run('rpm', [...db, '-q', 'demo-gw']).status).not.toBe(0);
  });

  it('rpmlint finds no errors but the missing signature (signing is a separate, later step)', () => {
    const r = run('rpmlint', [pkg]);
    const findings = r.stdout.split('\n').filter((l) => /: [EW]: /.test(l));
    console.log(`rpmlint findings:\n${findings.join('\n')}`);
    const errors = findings.filter((l) => /: E: /.test(l) && !/: E: no-signature$/.test(l));
    expect(errors).toEqual([]);
    expect(r.stdout).toMatch(/1 packages and 0 specfiles checked/);
  });

  it('is reproducible: same bytes for the same input in any order; the epoch changes them', () => {
    expect(writeRpm(META, [...FILES].reverse(), { sourceDateEpoch: EPOCH })).toEqual(bytes);
    const later = writeRpm(META, FILES, { sourceDateEpoch: EPOCH + 86_400 });
    expect(later).not.toEqual(bytes);
    const laterPkg = join(dir, 'later.rpm');
    writeFileSync(laterPkg, later);
    expect(ok('rpm', ['-qp', '--qf', '%{BUILDTIME} [%{FILEMTIMES} ]', laterPkg]).trim()).toBe(
      Array(6).fill(String(EPOCH + 86_400)).join(' '),
    );
  });

  it('writes a valid package with no files and no scripts', () => {
    const { scripts: _unused, ...noScripts } = META;
    const meta: RpmMeta = { ...noScripts, name: 'empty-pkg', requires: [] };
    const emptyPkg = join(dir, rpmFileName(meta));
    writeFileSync(emptyPkg, writeRpm(meta, [], { sourceDateEpoch: EPOCH }));
    expect(ok('rpm', ['-K', emptyPkg]).trim()).toBe(`${emptyPkg}: digests OK`);
    expect(ok('rpm', ['-qpl', emptyPkg]).trim()).toBe('(contains no files)');
    expect(ok('rpm', ['-qp', '--requires', emptyPkg]).trim().split('\n')).toEqual([
      'rpmlib(CompressedFileNames) <= 3.0.4-1',
      'rpmlib(FileDigests) <= 4.6.0-1',
      'rpmlib(PayloadFilesHavePrefix) <= 4.0-1',
    ]);
  });

  it('refuses bad input with a message', () => {
    const opts = { sourceDateEpoch: EPOCH };
    expect(() => writeRpm({ ...META, version: '1.0-2' }, FILES, opts)).toThrow(/version: "1.0-2"/);
    expect(() => writeRpm(META, [textFile('etc/x', '')], opts)).toThrow(/absolute/);
    expect(() => writeRpm(META, [textFile('/x', 'a'), textFile('/x', 'b')], opts)).toThrow(/two entries/);
    expect(() => writeRpm({ ...META, requires: [{ name: 'a', version: '1' }] }, FILES, opts)).toThrow(/both/);
    expect(() => writeRpm(META, FILES, { sourceDateEpoch: 1.5 })).toThrow(/sourceDateEpoch/);
  });
});

describe('rpm header layout', () => {
  const hex = (chunks: readonly string[]): string => chunks.join('').replace(/ /g, '');

  it('puts the region tag first, sorts tags, aligns integers, ends the store with the region trailer', () => {
    const h = writeHeader(
      63,
      new Map([
        [1009, int32(7)],
        [1000, str('ab')],
      ]),
    );
    expect(Buffer.from(h).toString('hex')).toBe(
      hex([
        '8eade801 00000000', // magic, reserved
        '00000003 00000018', // il = 3 entries, dl = 24 bytes of data
        '0000003f 00000007 00000008 00000010', // region 63, BIN, at offset 8 (the trailer), 16 bytes
        '000003e8 00000006 00000000 00000001', // NAME (1000), STRING, offset 0
        '000003f1 00000004 00000004 00000001', // SIZE (1009), INT32, offset 4: aligned, not 3
        '616200 00', // "ab\0" + one zero byte of alignment padding
        '00000007', // the INT32
        '0000003f 00000007 ffffffd0 00000010', // trailer: offset -48 = -(3 entries * 16)
      ]),
    );
  });

  it('refuses empty arrays and NULs in strings', () => {
    expect(() => writeHeader(63, new Map([[1028, int32()]]))).toThrow(/no elements/);
    expect(() => writeHeader(63, new Map([[1000, str('a\0b')]]))).toThrow(/NUL/);
  });
});

describe('src/pack', () => {
  it('knows nothing of the config or the renderers (imports neither)', () => {
    const root = join(import.meta.dirname, '../../src/pack');
    const sources = ['cpio.ts', ...readdirSync(join(root, 'rpm')).map((f) => join('rpm', f))];
    for (const f of sources) {
      const text = readFileSync(join(root, f), 'utf8');
      expect(text, f).not.toMatch(/from '(\.\.\/)+(config|render)\//);
    }
  });
});
