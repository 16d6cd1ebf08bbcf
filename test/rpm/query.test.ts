/**
 * The default config's dom0 package, as the build writes it, read back with rpm 4.18's own tools: what
 * `rpm -qpi`, `rpm -qpl --dump`, `rpm -K`, `rpm2cpio | cpio`, `--requires`, `--provides` and `--scripts` show,
 * and what rpmlint finds. The expected file list comes from the build's formula/ and minion.d/ output, not from
 * the code that assembles the package.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStaticSources } from '../../src/io/static.ts';
import { parseSpec, type SpecFacts } from '../../src/render/rpm/spec.ts';
import {
  buildDom0,
  VERSION_AT_EPOCH,
  DOC_DIR,
  dump,
  ENV,
  EPOCH,
  EPOCH_DATE,
  FORMULA_ROOT,
  lines,
  MINION_CONF,
  NAME,
  ok,
  packagedFiles,
  run,
  sha256,
  tempDir,
  topNames,
  type Dom0Build,
  type PackagedFile,
} from './dom0.ts';

describe('dom0 package of the default config', () => {
  let tmp: ReturnType<typeof tempDir>;
  let b: Dom0Build;
  let pkg: string;
  let expected: PackagedFile[];
  let spec: SpecFacts;

  beforeAll(() => {
    tmp = tempDir('query');
    b = buildDom0();
    pkg = join(tmp.dir, b.rpmName);
    writeFileSync(pkg, b.rpm);
    expected = packagedFiles(b.outputs);
    spec = parseSpec(readStaticSources().rpmSpec);
  });
  afterAll(() => tmp.cleanup());

  it('is named NAME-VERSION-1.noarch.rpm and carries the formula, the template .deb, minion.d and the README', () => {
    expect(b.version).toMatch(VERSION_AT_EPOCH);
    expect(b.rpmName).toBe(`${NAME}-${b.version}-1.noarch.rpm`);
    const paths = expected.map((f) => f.path);
    for (const p of [
      `${FORMULA_ROOT}/i2p-gateway/clone.sls`,
      `${FORMULA_ROOT}/i2p-gateway/install.sls`,
      `${FORMULA_ROOT}/i2p-gateway/create.sls`,
      `${FORMULA_ROOT}/i2p-gateway/clients.sls`,
      `${FORMULA_ROOT}/i2p-gateway/remove.sls`,
      `${FORMULA_ROOT}/i2p-gateway/init.top`,
      `${FORMULA_ROOT}/i2p-gateway/files/${b.debName}`,
      `${FORMULA_ROOT}/i2p-gateway/files/client-netvm`,
      MINION_CONF,
      `${DOC_DIR}/README.md`,
    ]) {
      expect(paths).toContain(p);
    }
  });

  it('rpm -qpi: name, version, release 1, license, noarch, build date = SOURCE_DATE_EPOCH, fixed build host', () => {
    const info = ok('rpm', ['-qpi', pkg]);
    const field = (name: string): string | undefined => new RegExp(`^${name} *: (.*)$`, 'm').exec(info)?.[1]?.trim();
    expect(field('Name')).toBe(NAME);
    expect(field('Version')).toBe(b.version);
    expect(field('Release')).toBe('1');
    expect(field('Architecture')).toBe('noarch');
    expect(field('License')).toBe('GPL-3.0-or-later');
    expect(field('License')).toBe(spec.license);
    expect(field('Group')).toBe(spec.group);
    expect(field('URL')).toBe(spec.url);
    expect(field('Summary')).toBe(spec.summary);
    expect(field('Build Date')).toBe(EPOCH_DATE);
    expect(field('Build Host')).toBe('reproducible');
    expect(field('Signature')).toBe('(none)');
    expect(field('Source RPM')).toBe(`${NAME}-${b.version}-1.src.rpm`);
    expect(field('Packager')).toBe(b.config.package.maintainer);
    const size = expected.reduce((n, f) => n + f.data.length, 0);
    expect(field('Size')).toBe(String(size));
    expect(info.slice(info.indexOf('Description :\n') + 'Description :\n'.length).trimEnd()).toBe(spec.description);
    expect(ok('rpm', ['-qp', '--qf', '%{BUILDTIME} %{OS} %{ARCH} %{PAYLOADCOMPRESSOR}', pkg])).toBe(`${EPOCH} linux noarch gzip`);
    // The spec's %changelog, day at 12:00 UTC as rpmbuild stores it.
    expect(ok('rpm', ['-qp', '--changelog', pkg])).toMatch(/^\* \w{3} \w{3} \d\d \d{4} .+ - 0\.1\.0-1\n- .+\n\n$/);
  });

  it('rpm -qpl --dump: every file of the build, modes 0644 (the script 0755) / dirs 0755, root:root, mtime = epoch, sha256 of the bytes, config and doc flags', () => {
    const got = dump(pkg);
    expect(got.map((r) => r.path)).toEqual(expected.map((f) => f.path));
    got.forEach((r, i) => {
      const f = expected[i]!;
      const why = `${r.path}: ${JSON.stringify(r)}`;
      expect(r.owner, why).toBe('root');
      expect(r.group, why).toBe('root');
      expect(r.mtime, why).toBe(EPOCH);
      expect(r.linkto, why).toBe('X');
      if (f.kind === 'dir') {
        expect(r.mode, why).toBe('040755');
        expect(r.size, why).toBe(0);
        expect(r.digest, why).toBe('0'.repeat(64));
        expect(r.isConfig, why).toBe(false);
        // The doc flag of the doc folder is not checked here: rpmbuild.test.ts compares it with rpmbuild's.
      } else {
        expect(r.mode, why).toBe(`0100${f.mode.toString(8)}`);
        expect(r.size, why).toBe(f.data.length);
        expect(r.digest, why).toBe(sha256(f.data));
        expect(r.isConfig, why).toBe(f.flag === 'config');
        expect(r.isDoc, why).toBe(f.flag === 'doc');
      }
    });
    // Spelled out for the two flagged files: %config(noreplace) ("cn") and %doc ("d"); the rest none.
    const flags = new Map(lines(ok('rpm', ['-qp', '--qf', '[%{FILEFLAGS:fflags} %{FILENAMES}\n]', pkg])).map((l) => {
      const [fl, path] = l.split(' ');
      return [path!, fl!];
    }));
    expect(flags.get(MINION_CONF)).toBe('cn');
    expect(flags.get(`${DOC_DIR}/README.md`)).toBe('d');
    expect(flags.get(`${FORMULA_ROOT}/i2p-gateway/files/${b.debName}`)).toBe('');
    expect(ok('rpm', ['-qp', '--qf', '%{FILEDIGESTALGO}', pkg])).toBe('8');
    // The template package inside is the build's .deb, byte for byte.
    const deb = b.outputs.find((o) => o.path === b.debName);
    expect(deb).toBeDefined();
    expect(got.find((r) => r.path.endsWith(`/files/${b.debName}`))?.digest).toBe(sha256(deb!.data));
  });

  it('rpm -K: header and payload digests OK', () => {
    expect(ok('rpm', ['-K', pkg]).trim()).toBe(`${pkg}: digests OK`);
    const v = ok('rpm', ['-Kv', pkg]);
    expect(v).toMatch(/Header SHA256 digest: OK/);
    expect(v).toMatch(/Payload SHA256 digest: OK/);
    expect(v).toMatch(/MD5 digest: OK/);
  });

  it('rpm2cpio | cpio -t lists every file and folder of the package, and cpio -i gives back the same bytes', () => {
    const raw = spawnBytes('rpm2cpio', [pkg]);
    expect(lines(ok('cpio', ['-t', '--quiet'], { input: raw }))).toEqual(expected.map((f) => `.${f.path}`));
    const out = join(tmp.dir, 'cpio');
    ok('mkdir', [out]);
    ok('cpio', ['-id', '--quiet', '--no-absolute-filenames'], { input: raw, cwd: out });
    for (const f of expected.filter((e) => e.kind === 'file')) {
      expect(sha256(readBytes(join(out, f.path))), f.path).toBe(sha256(f.data));
    }
  });

  it('rpm -qp --requires: the three Qubes Salt packages, /bin/sh for each scriptlet, config(), the rpmlib() features', () => {
    expect(lines(ok('rpm', ['-qp', '--requires', pkg]))).toEqual([
      '/bin/sh',
      '/bin/sh',
      `config(${NAME}) = ${b.version}-1`,
      'qubes-mgmt-salt',
      'qubes-mgmt-salt-dom0',
      'qubes-mgmt-salt-dom0-qvm',
      'rpmlib(CompressedFileNames) <= 3.0.4-1',
      'rpmlib(FileDigests) <= 4.6.0-1',
      'rpmlib(PayloadFilesHavePrefix) <= 4.0-1',
    ]);
    expect(ok('rpm', ['-qp', '--qf', '[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]', pkg])).toMatch(
      /^\/bin\/sh post,interp\n\/bin\/sh preun,interp\n/,
    );
    expect(lines(ok('rpm', ['-qp', '--provides', pkg]))).toEqual([`config(${NAME}) = ${b.version}-1`, `${NAME} = ${b.version}-1`]);
  });

  it('rpm -qp --scripts: %post acts on first install only and only prints; %preun acts on erase only and disables every top', () => {
    const scripts = ok('rpm', ['-qp', '--scripts', pkg]);
    expect(scripts).toBe(
      `postinstall scriptlet (using /bin/sh):\n${spec.scripts.post}\npreuninstall scriptlet (using /bin/sh):\n${spec.scripts.preun}\n`,
    );
    const post = spec.scripts.post ?? '';
    const preun = spec.scripts.preun ?? '';
    // %post: guarded by $1 = 1 (first install), runs no qubesctl, no qvm-*, writes no file.
    expect(post).toMatch(/^if \[ "\$1" -eq 1 \]; then\n/);
    expect(post).not.toMatch(/^\s*(sudo\s+)?(qubesctl|qvm-)/m);
    expect(post).not.toMatch(/>\s*\//);
    // %preun: guarded by $1 = 0 (erase, not upgrade), disables each top the formula ships, and nothing else.
    expect(preun).toMatch(/^if \[ "\$1" -eq 0 \]; then\n/);
    const loop = /for top in ([^;]+); do\n\s+qubesctl top\.disable "\$top"/.exec(preun);
    expect(loop, preun).not.toBeNull();
    expect(loop![1]!.split(/\s+/).sort()).toEqual(topNames(expected).sort());
    expect(preun.match(/qubesctl/g)).toHaveLength(1);
    expect(spec.scripts.pre).toBeUndefined();
    expect(spec.scripts.postun).toBeUndefined();
  });

  it('rpmlint: no error but no-signature (signing is a separate step); warnings printed and explained', () => {
    const r = run('rpmlint', [pkg]);
    const findings = lines(r.stdout).filter((l) => /: [EW]: /.test(l));
    console.log(`rpmlint ${b.rpmName}:\n${findings.join('\n') || '(nothing)'}`);
    expect(r.stdout).toMatch(/1 packages and 0 specfiles checked/);
    const errors = findings.filter((l) => / E: /.test(l));
    expect(errors).toEqual([`${NAME}.noarch: E: no-signature`]);
    // The warnings, explained. The first: Debian's rpmlint 2.4 ships an empty list of valid licenses
    // (`rpmlint -e invalid-license`: "Known values are: ''."), so it flags every License value.
    // GPL-3.0-or-later is the SPDX identifier Fedora requires.
    // The second: the spec's %changelog lists the project's releases (0.1.0-1); a build's version adds its source
    // time, input delay and digest (src/version.ts), so it is never the one the changelog names.
    const warnings = findings.filter((l) => / W: /.test(l));
    expect(warnings).toEqual([
      `${NAME}.noarch: W: invalid-license GPL-3.0-or-later`,
      `${NAME}.noarch: W: incoherent-version-in-changelog 0.1.0-1 ${b.version}-1`,
    ]);
    expect(ok('rpmlint', ['-e', 'invalid-license'])).toMatch(/Known values are:\s*''/);
  });

  it('is reproducible: a second build gives the same bytes', () => {
    const again = buildDom0();
    expect(Buffer.from(again.rpm).equals(Buffer.from(b.rpm))).toBe(true);
  });
});

function spawnBytes(cmd: string, args: readonly string[]): Uint8Array {
  const r = spawnSync(cmd, args, { env: ENV, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout);
}

function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}
