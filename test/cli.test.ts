import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { I2P_APPS } from '../src/config/schema.ts';
import { writeTreeAtomically } from '../src/io/atomic.ts';
import { versionStamp } from '../src/version.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'qig-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * The CLI through tsx. `timeout` is a hang guard, not a speed check: a build that waits on its input is killed
 * and the test sees status null. Starting tsx on this machine's 2 cores takes most of a second by itself.
 */
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return cliEnv({ SOURCE_DATE_EPOCH: '1767225600' }, ...args);
}

function cliEnv(env: Record<string, string | undefined>, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'build/build.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The default build's version at SOURCE_DATE_EPOCH 1767225600 (2026-01-01): that time, no delay, the digest. */
const DEFAULT_VERSION = /^0\.1\.0\+20260101000000\.0\.[0-9a-f]{8}$/;

/** The version a build printed ("built DIR/ from NAME, version V (...)"). */
function printedVersion(stdout: string): string {
  const m = /, version (\S+) \(/.exec(stdout);
  if (m === null) throw new Error(`no version in: ${stdout}`);
  return m[1]!;
}

function listTree(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listTree(dir, join(prefix, e.name)) : [join(prefix, e.name)])).sort();
}

describe('npm run build', () => {
  const out = join(tmp, 'dist');

  it('builds the default gateway with no config file', () => {
    const r = cli('--out', out);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const v = printedVersion(r.stdout);
    expect(v).toMatch(DEFAULT_VERSION);
    const deb = `qubes-i2p-gateway_${v}_all.deb`;
    expect(listTree(out)).toEqual([
      'formula/README.md',
      'formula/i2p-gateway/clients.sls',
      'formula/i2p-gateway/clients.top',
      'formula/i2p-gateway/clone.sls',
      'formula/i2p-gateway/clone.top',
      'formula/i2p-gateway/create.sls',
      'formula/i2p-gateway/create.top',
      'formula/i2p-gateway/files/client-netvm',
      `formula/i2p-gateway/files/${deb}`,
      'formula/i2p-gateway/init.top',
      'formula/i2p-gateway/install.sls',
      'formula/i2p-gateway/install.top',
      'formula/i2p-gateway/publish.sls',
      'formula/i2p-gateway/publish.top',
      'formula/i2p-gateway/remove.sls',
      'formula/i2p-gateway/remove.top',
      'formula/i2p-gateway/unpublish.sls',
      'minion.d/i2p-gateway-formula.conf',
      deb,
      `qubes-mgmt-salt-i2p-gateway-${v}-1.noarch.rpm`,
    ]);
    expect(readFileSync(join(out, deb))).toEqual(readFileSync(join(out, `formula/i2p-gateway/files/${deb}`)));
    expect(r.stdout).toContain('SOURCE_DATE_EPOCH=1767225600');
  });

  it('the example config builds the same bytes as no config', () => {
    const out2 = join(tmp, 'dist-example');
    expect(cli('--config', join(ROOT, 'examples/gateway.yaml'), '--out', out2).status).toBe(0);
    for (const f of listTree(out)) expect(readFileSync(join(out2, f)), f).toEqual(readFileSync(join(out, f)));
  });

  it('a bad config exits 2, names the field and the fix, and leaves the previous output untouched', () => {
    const before = new Map(listTree(out).map((f) => [f, readFileSync(join(out, f))]));
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, 'qubes:\n  gateway: "sys-i2p; rm -rf /"\n  clints: [work]\n');
    const r = cli('--config', bad, '--out', out);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${bad}:2:3 qubes.gateway: "sys-i2p; rm -rf /" is not a valid qube name`);
    expect(r.stderr).toContain('qubes.clints: is not a known setting. Did you mean "clients"?');
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    expect(listTree(out)).toEqual([...before.keys()]);
    for (const [f, data] of before) expect(readFileSync(join(out, f))).toEqual(data);
    expect(readdirSync(tmp).filter((n) => n.includes('.new-') || n.includes('.old-'))).toEqual([]);
  });

  it('a bad config writes nothing when there was no output before', () => {
    const fresh = join(tmp, 'never');
    const bad = join(tmp, 'bad2.yaml');
    writeFileSync(bad, 'tor:\n  transPort: 53\n');
    const r = cli('--config', bad, '--out', fresh);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('tor.transPort: 53 is already used by dnsmasq (DNS)');
    expect(existsSync(fresh)).toBe(false);
  });

  it('a bad qubes.clients object exits 2, names its place in the file and the fix, and writes nothing', () => {
    const fresh = join(tmp, 'never-objects');
    const bad = join(tmp, 'bad-objects.yaml');
    writeFileSync(bad, 'qubes:\n  clients:\n    - torrents\n    - name: work\n      apps: [sam, bittorrent]\ni2p:\n  apps:\n    sam: [torrents]\n');
    const r = cli('--config', bad, '--out', fresh);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${bad}:5:19 qubes.clients.1.apps.1: "bittorrent" is not an I2P application the gateway offers. Fix: use one of ${I2P_APPS.join(', ')}`);
    expect(existsSync(fresh)).toBe(false);
    // With the unknown application gone, the second SAM qube is found in the object's apps.
    writeFileSync(bad, 'qubes:\n  clients:\n    - torrents\n    - name: work\n      apps: [sam]\ni2p:\n  apps:\n    sam: [torrents]\n');
    const r2 = cli('validate', '--config', bad);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toContain(`${bad}:5:14 qubes.clients.1.apps.0: "work" is a second qube for SAM (the first, torrents, at i2p.apps.sam.0)`);
  });

  it('the Java router without a keyring is refused with the fix', () => {
    const cfg = join(tmp, 'java.yaml');
    writeFileSync(cfg, 'i2p:\n  router: i2p\n');
    const r = cli('--config', cfg, '--out', join(tmp, 'java-out'));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('i2p.keyring: router i2p');
    expect(r.stderr).toContain('Fix:');
    expect(existsSync(join(tmp, 'java-out'))).toBe(false);
  });

  it('a keyring with another fingerprint is bad input: exit 2, the field named, nothing written', () => {
    const home = join(tmp, 'gnupg');
    const gpg = (...a: string[]) => spawnSync('gpg', ['--homedir', home, '--batch', '--quiet', ...a], { encoding: 'buffer' });
    spawnSync('mkdir', ['-m', '700', home]);
    expect(gpg('--passphrase', '', '--quick-gen-key', 'Not I2P <x@example.org>', 'default', 'default', 'never').status).toBe(0);
    writeFileSync(join(tmp, 'other.gpg'), gpg('--export').stdout);
    spawnSync('gpgconf', ['--homedir', home, '--kill', 'all']);
    const cfg = join(tmp, 'java-other.yaml');
    writeFileSync(cfg, 'i2p:\n  router: i2p\n  keyring: other.gpg\n');
    const r = cli('--config', cfg, '--out', join(tmp, 'java-other-out'));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('i2p.keyring: "other.gpg": I2P keyring: found primary key');
    expect(r.stderr).toContain('expected the I2P repository key 7840 E761 0F28 B904 7535  49D7 67EC E560 5BCF 1346');
    expect(existsSync(join(tmp, 'java-other-out'))).toBe(false);
  });

  it('a missing config file is a clear error', () => {
    const r = cli('--config', join(tmp, 'nope.yaml'));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('cannot be read (ENOENT)');
  });

  it('validate, --help and unknown options', () => {
    const v = cli('validate', '--config', join(ROOT, 'examples/gateway.yaml'));
    expect(v.status).toBe(0);
    expect(v.stdout).toContain('valid');
    const h = cli('--help');
    expect(h.status).toBe(0);
    expect(h.stdout).toContain('--config FILE');
    const u = cli('--colour');
    expect(u.status).toBe(2);
    expect(u.stderr).toContain("Unknown option '--colour'");
    expect(cli('frobnicate').status).toBe(2);
  });

  it('a bookworm config builds and validates, with a warning that names the field, the end of support and the fix', () => {
    const cfg = join(tmp, 'bookworm.yaml');
    writeFileSync(cfg, 'qubes:\n  sourceTemplate: debian-12-minimal\n  template: debian-12-i2p\ndebian:\n  release: bookworm\n');
    for (const args of [['validate', '--config', cfg], ['--config', cfg, '--out', join(tmp, 'dist-bookworm')]]) {
      const r = cli(...args);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^warning: .*bookworm\.yaml:5:3 debian\.release: "bookworm" is end of life: .*June 2026.* Fix: .*qvm-template install debian-13-minimal.*debian\.release: trixie/m);
    }
    expect(readdirSync(join(tmp, 'dist-bookworm')).filter((f) => /^qubes-i2p-gateway_0\.1\.0\+[0-9.a-f]+_all\.deb$/.test(f))).toHaveLength(1);
  });

  it('a release that disagrees with the source template\'s name is warned about', () => {
    const cfg = join(tmp, 'mismatch.yaml');
    writeFileSync(cfg, 'debian:\n  release: bookworm\n');
    const r = cli('validate', '--config', cfg);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('debian.release: "bookworm" does not match qubes.sourceTemplate debian-13-minimal (Debian 13, trixie). Fix: set debian.release: trixie');
  });
});

/** `dpkg --compare-versions` and rpm's own vercmp: both must agree that `a` sorts below `b`. */
function sortsBelow(a: string, b: string): { dpkg: boolean; rpm: number } {
  const dpkg = spawnSync('dpkg', ['--compare-versions', a, 'lt', b]).status === 0;
  const r = spawnSync('rpm', ['--eval', `%{lua: print(rpm.vercmp("${a}-1", "${b}-1"))}`], { encoding: 'utf8' });
  return { dpkg, rpm: Number(r.stdout.trim()) };
}

describe('versions follow the inputs', () => {
  const commit = Number(spawnSync('git', ['-C', ROOT, 'log', '-1', '--format=%ct'], { encoding: 'utf8' }).stdout.trim());
  const noEpoch = { SOURCE_DATE_EPOCH: undefined };

  it('a changed config file (later mtime, no SOURCE_DATE_EPOCH) gives a version dpkg and rpm take as an upgrade; unchanged, the same bytes', () => {
    const cfg = join(tmp, 'day2.yaml');
    writeFileSync(cfg, 'qubes:\n  clients: [work]\n');
    utimesSync(cfg, commit + 1000, commit + 1000);
    const a = cliEnv(noEpoch, '--config', cfg, '--out', join(tmp, 'day2-a'));
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toContain(`SOURCE_DATE_EPOCH=${commit + 1000}, from input files`);
    const again = cliEnv(noEpoch, '--config', cfg, '--out', join(tmp, 'day2-a2'));
    expect(printedVersion(again.stdout)).toBe(printedVersion(a.stdout));
    for (const f of listTree(join(tmp, 'day2-a'))) expect(readFileSync(join(tmp, 'day2-a2', f)), f).toEqual(readFileSync(join(tmp, 'day2-a', f)));

    writeFileSync(cfg, 'qubes:\n  clients: [work]\ni2p:\n  ircServer: irc.postman.i2p:6667\n');
    utimesSync(cfg, commit + 2000, commit + 2000);
    const b = cliEnv(noEpoch, '--config', cfg, '--out', join(tmp, 'day2-b'));
    expect(b.status, b.stderr).toBe(0);
    const [va, vb] = [printedVersion(a.stdout), printedVersion(b.stdout)];
    expect(vb).not.toBe(va);
    expect(va).toMatch(/^0\.1\.0\+\d{14}\.1000\.[0-9a-f]{8}$/);
    expect(vb).toMatch(/^0\.1\.0\+\d{14}\.2000\.[0-9a-f]{8}$/);
    expect(sortsBelow(va, vb)).toEqual({ dpkg: true, rpm: -1 });
    // A delay with more digits (a config edited days later) sorts higher too: numbers, not text.
    writeFileSync(cfg, 'qubes:\n  clients: [work]\n');
    utimesSync(cfg, commit + 10_000_000, commit + 10_000_000);
    const c = cliEnv(noEpoch, '--config', cfg, '--out', join(tmp, 'day2-c'));
    expect(c.status, c.stderr).toBe(0);
    expect(sortsBelow(vb, printedVersion(c.stdout))).toEqual({ dpkg: true, rpm: -1 });
  });

  it('upgrades every build of the scheme before it (<source>.<input time>.<digest>, two 14-digit stamps), made from older code', () => {
    const now = printedVersion(cliEnv(noEpoch, '--out', join(tmp, 'scheme-new')).stdout);
    // The old scheme's highest version from the commit before: its input time as late as a stamp can be.
    const old = `0.1.0+${versionStamp(commit - 1)}.99991231235959.ffffffff`;
    expect(sortsBelow(old, now)).toEqual({ dpkg: true, rpm: -1 });
  });

  it('the same config at a later SOURCE_DATE_EPOCH sorts higher too, with the same digest', () => {
    const v1 = printedVersion(cliEnv({ SOURCE_DATE_EPOCH: '1767225600' }, '--out', join(tmp, 'later-1')).stdout);
    const v2 = printedVersion(cliEnv({ SOURCE_DATE_EPOCH: '1767229200' }, '--out', join(tmp, 'later-2')).stdout);
    expect(v2).toBe(v1.replace(/20260101000000/g, '20260101010000'));
    expect(sortsBelow(v1, v2)).toEqual({ dpkg: true, rpm: -1 });
  });

  it('a config changed under a fixed SOURCE_DATE_EPOCH still gets another version (the digest), so nothing is skipped as installed', () => {
    const cfg = join(tmp, 'fixed.yaml');
    writeFileSync(cfg, 'tor:\n  transPort: 9041\n');
    const v0 = printedVersion(cli('--out', join(tmp, 'fixed-0')).stdout);
    const v1 = printedVersion(cli('--config', cfg, '--out', join(tmp, 'fixed-1')).stdout);
    expect(v1.slice(0, -8)).toBe(v0.slice(0, -8));
    expect(v1).not.toBe(v0);
  });
});

describe('inputs that are not small regular files: exit 2 at once, the field named, nothing written', () => {
  const fifo = join(tmp, 'keyring.fifo');
  const dir = join(tmp, 'keyring.d');
  const huge = join(tmp, 'keyring.huge');
  const setup = (): void => {
    if (!existsSync(fifo)) expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    mkdirSync(dir, { recursive: true });
    if (!existsSync(huge)) writeFileSync(huge, new Uint8Array(10 * 1024 * 1024));
  };
  const cases: ReadonlyArray<readonly [string, () => string, RegExp]> = [
    ['a FIFO', () => fifo, /is a FIFO \(named pipe\), not a regular file/],
    ['/dev/zero', () => '/dev/zero', /is a character device, not a regular file/],
    ['a directory', () => dir, /is a directory, not a regular file/],
    ['a 10 MB file', () => huge, /is larger than 64 KiB \(10485760 bytes\)/],
  ];

  for (const [what, path, reason] of cases) {
    it(`i2p.keyring: ${what}`, () => {
      setup();
      const cfg = join(tmp, `bad-keyring-${what.replace(/\W/g, '')}.yaml`);
      writeFileSync(cfg, `i2p:\n  router: i2p\n  keyring: ${JSON.stringify(path())}\n`);
      const outDir = join(tmp, `bad-keyring-out-${what.replace(/\W/g, '')}`);
      const r = cli('--config', cfg, '--out', outDir);
      expect(r.status, `exit (null: killed by the hang guard)\n${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`i2p.keyring: ${JSON.stringify(path())} `);
      expect(r.stderr).toMatch(reason);
      expect(r.stderr).toContain('Fix: give the path of the I2P repository keyring file');
      expect(r.stderr).toContain('Nothing was written.');
      expect(existsSync(outDir)).toBe(false);
    });
  }

  it('--keyring names itself', () => {
    setup();
    const cfg = join(tmp, 'java-flag.yaml');
    writeFileSync(cfg, 'i2p:\n  router: i2p\n');
    const r = cli('--config', cfg, '--keyring', fifo, '--out', join(tmp, 'flag-out'));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--keyring: ${JSON.stringify(fifo)} is a FIFO (named pipe), not a regular file`);
  });

  it('--config: a FIFO or /dev/zero is refused the same way', () => {
    setup();
    for (const [path, reason] of [[fifo, 'is a FIFO (named pipe), not a regular file'], ['/dev/zero', 'is a character device, not a regular file']] as const) {
      const r = cli('validate', '--config', path);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(reason);
      expect(r.stderr).toContain('Fix: give --config the path of the YAML file');
    }
  });
});

describe('writeTreeAtomically', () => {
  it('a failure mid-write leaves the previous tree and no staging directory', () => {
    const out = join(tmp, 'atomic');
    writeTreeAtomically(out, [{ path: 'a.txt', data: new TextEncoder().encode('one'), mode: 0o644 }]);
    expect(() =>
      writeTreeAtomically(out, [
        { path: 'b.txt', data: new Uint8Array(1), mode: 0o644 },
        { path: '../escape.txt', data: new Uint8Array(1), mode: 0o644 },
      ]),
    ).toThrow(/outside the output directory/);
    expect(readdirSync(out)).toEqual(['a.txt']);
    expect(readFileSync(join(out, 'a.txt'), 'utf8')).toBe('one');
    expect(existsSync(join(tmp, 'escape.txt'))).toBe(false);
    expect(readdirSync(tmp).filter((n) => n.startsWith('.atomic'))).toEqual([]);
  });

  it('modes are set explicitly, whatever the umask', () => {
    const out = join(tmp, 'modes');
    const old = process.umask(0o077);
    try {
      writeTreeAtomically(out, [{ path: 'x/y.sh', data: new Uint8Array(1), mode: 0o755 }]);
    } finally {
      process.umask(old);
    }
    expect(statSync(join(out, 'x/y.sh')).mode & 0o777).toBe(0o755);
    expect(statSync(join(out, 'x')).mode & 0o777).toBe(0o755);
    expect(statSync(out).mode & 0o777).toBe(0o755);
  });
});
