/**
 * The packages users get, linted as they get them: `node build/fast.mjs --config FILE --out DIR` (what `npm run
 * build` runs), with no SOURCE_DATE_EPOCH, a config file written just now, and the version the build gives
 * (src/version.ts) in the file names, for every variant the tests build: the default (examples/gateway.yaml), the
 * Java router with the real I2P keyring, Tor off with every router port exposed, published services (the golden
 * `publish` scenario) and client qubes (the formula's `clients` scenario). Each `.deb` under Debian 13's lintian
 * (no error, no warning: file-name length counts, so the name must be the built one), each `.rpm` under rpmlint
 * (only the findings explained in test/rpm/query.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lintian } from '../lintian.ts';
import { ensureOracles } from '../util/chroot.ts';
import { commitTime } from '../../src/epoch.ts';
import { REAL_KEYRING } from '../render/helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'qig-as-built-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Built {
  readonly version: string;
  readonly deb: string;
  readonly rpm: string;
}

/** `node build/fast.mjs` as a user runs it: the environment without SOURCE_DATE_EPOCH, the config's own mtime. */
function buildAsUser(name: string, yaml: string, args: readonly string[] = [], mtime?: number): Built {
  const cfg = join(tmp, `${name}.yaml`);
  writeFileSync(cfg, yaml);
  if (mtime !== undefined) utimesSync(cfg, mtime, mtime);
  const out = join(tmp, name);
  const env = { ...process.env };
  delete env['SOURCE_DATE_EPOCH'];
  const r = spawnSync(process.execPath, [join(ROOT, 'build/fast.mjs'), '--config', cfg, '--out', out, ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`build ${name} exited ${String(r.status)}: ${r.stderr}`);
  const version = /, version (\S+) \(/.exec(r.stdout)?.[1];
  if (version === undefined) throw new Error(`no version in: ${r.stdout}`);
  const names = readdirSync(out);
  const one = (ext: string): string => {
    const found = names.filter((n) => n.endsWith(ext));
    if (found.length !== 1) throw new Error(`${out}: expected one ${ext}, found ${found.join(', ')}`);
    return join(out, found[0]!);
  };
  return { version, deb: one('.deb'), rpm: one('.rpm') };
}

const VARIANTS: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  ['default', readFileSync(join(ROOT, 'examples/gateway.yaml'), 'utf8'), []],
  ['java-router', 'i2p:\n  router: i2p\n', ['--keyring', REAL_KEYRING]],
  ['tor-off', 'tor:\n  enabled: false\nqubes:\n  clients: [torrents]\ni2p:\n  apps: { irc: [torrents], sam: [torrents], i2cp: [torrents] }\n', []],
  ['publish', 'publish:\n  - { name: wiki, qube: webapp, port: 8080, onion: true }\n  - { name: blog, qube: blogvm, port: 80 }\n', []],
  ['clients', 'qubes:\n  clients: [work, untrusted, personal]\n', []],
];

describe.each(VARIANTS)('npm run build, %s config', (name, yaml, args) => {
  const b = buildAsUser(name, yaml, args);

  it('writes a .deb Debian 13\'s lintian passes with no error and no warning, under the name the build gives it', async () => {
    expect(b.deb.endsWith(`/qubes-i2p-gateway_${b.version}_all.deb`)).toBe(true);
    const r = await lintian(['--fail-on', 'error,warning', '--tag-display-limit', '0', b.deb]);
    const problems = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
    expect(problems, r.stdout).toEqual([]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('writes a .rpm whose rpmlint findings are only the explained ones (unsigned; Debian\'s rpmlint knows no licenses; the changelog names releases)', () => {
    const r = spawnSync('rpmlint', [b.rpm], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    const findings = r.stdout.split('\n').filter((l) => /: [EW]: /.test(l));
    expect(r.stdout).toMatch(/1 packages and 0 specfiles checked/);
    expect(findings).toEqual([
      'qubes-mgmt-salt-i2p-gateway.noarch: E: no-signature',
      'qubes-mgmt-salt-i2p-gateway.noarch: W: invalid-license GPL-3.0-or-later',
      `qubes-mgmt-salt-i2p-gateway.noarch: W: incoherent-version-in-changelog 0.1.0-1 ${b.version}-1`,
    ]);
  });
});

describe('the longest name this version scheme gives', () => {
  it('fits lintian\'s limit, read from Debian 13\'s check: a config edited 31 years after the commit (a 10-digit delay)', async () => {
    const check = readFileSync(join(await ensureOracles(), 'usr/share/lintian/lib/Lintian/Check/Archive/File/Name/Length.pm'), 'utf8');
    const limit = Number(/\$FILENAME_LENGTH_LIMIT\s*=>\s*(\d+);/.exec(check)?.[1]);
    const longestArch = /\$LONGEST_ARCHITECTURE\s*=>\s*length\s+'([^']+)';/.exec(check)?.[1];
    expect([limit, longestArch]).toEqual([80, 'kfreebsd-amd64']);
    const commit = commitTime(ROOT).epoch; // HEAD's, or the build's fallback outside git (the suite run alone)
    const b = buildAsUser('late', 'qubes:\n  clients: [work]\n', [], commit + 1_000_000_000);
    expect(b.version).toMatch(/^0\.1\.0\+\d{14}\.1000000000\.[0-9a-f]{8}$/);
    const base = b.deb.slice(b.deb.lastIndexOf('/') + 1);
    // lintian: length(basename) - length(architecture) + length(the longest architecture) > limit warns.
    expect(base.length - 'all'.length + longestArch!.length).toBeLessThanOrEqual(limit);
  });
});
