import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeTreeAtomically } from '../src/io/atomic.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'qig-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'build/build.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, SOURCE_DATE_EPOCH: '1767225600' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
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
    expect(listTree(out)).toEqual([
      'formula/README.md',
      'formula/i2p-gateway/clients.sls',
      'formula/i2p-gateway/clients.top',
      'formula/i2p-gateway/clone.sls',
      'formula/i2p-gateway/clone.top',
      'formula/i2p-gateway/create.sls',
      'formula/i2p-gateway/create.top',
      'formula/i2p-gateway/files/qubes-i2p-gateway_0.1.0_all.deb',
      'formula/i2p-gateway/init.top',
      'formula/i2p-gateway/install.sls',
      'formula/i2p-gateway/install.top',
      'minion.d/i2p-gateway-formula.conf',
      'qubes-i2p-gateway_0.1.0_all.deb',
      'qubes-mgmt-salt-i2p-gateway-0.1.0-1.noarch.rpm',
    ]);
    expect(readFileSync(join(out, 'qubes-i2p-gateway_0.1.0_all.deb'))).toEqual(readFileSync(join(out, 'formula/i2p-gateway/files/qubes-i2p-gateway_0.1.0_all.deb')));
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
    expect(existsSync(join(tmp, 'dist-bookworm', 'qubes-i2p-gateway_0.1.0_all.deb'))).toBe(true);
  });

  it('a release that disagrees with the source template\'s name is warned about', () => {
    const cfg = join(tmp, 'mismatch.yaml');
    writeFileSync(cfg, 'debian:\n  release: bookworm\n');
    const r = cli('validate', '--config', cfg);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('debian.release: "bookworm" does not match qubes.sourceTemplate debian-13-minimal (Debian 13, trixie). Fix: set debian.release: trixie');
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
