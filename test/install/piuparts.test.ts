/**
 * piuparts, Debian's package installation, upgrading and removal testing suite (the host's, from test/oracles.sh),
 * on the template package of the default build and of the Java-router build, in Debian 13 (trixie):
 *
 *   - install and purge (`--install-purge-install`: install, purge, and install again from the purged tree;
 *     `--install-remove-install`: remove, install, `apt-get install --reinstall`), then purge: piuparts compares
 *     the tree with the one before the install and fails on anything left, added or removed, ours or another
 *     package's (it found the old prerm disabling tor's, i2pd's and tinyproxy's units);
 *   - upgrade, a second run (`--install-remove-install` would remove A before installing B): build A of a config
 *     installed by name with apt, then build B of the changed config (Tor's TransPort 9041, an hour later, same
 *     project code) from its file over it, then purge.
 *
 * Measured: about 20 s a run, 90 s for the four (2 cores, Debian's mirror near).
 *
 * The tree piuparts starts from is a copy of the cached pristine Debian 13 root (`-e`, test/util/chroot.ts: the
 * one debootstrap made, so nothing slow is repeated), its apt pointed at this machine's Debian mirror. A local
 * repository (bind-mounted, `--extra-repo`) holds what the mirror lacks: the stand-in for Qubes'
 * qubes-core-agent-networking (test/install/dummy.ts, the Depends every Qubes template has) and build A, which
 * is what makes piuparts run its upgrade test (the package is "known by apt"); the install run has no A and says
 * `--no-upgrade-test`. No distribution upgrade is tested (one distribution is given): the upgrade is A to B.
 *
 * The Java build Depends on tor, python3, tinyproxy, dnsmasq-base, nftables and qubes-core-agent-networking, not
 * on the router: install.sls installs `i2p` from the I2P repository after this package (which brings that
 * repository's source and key). That repository is out of reach here, so piuparts tests the package without the
 * router: the source and key install and purge as conffiles, and after the install no `apt-get update` is run
 * (piuparts runs it only when it makes the tree), so nothing contacts the I2P repository. What is not tested
 * here: the `i2p` package itself, and our drop-in on its unit with the unit present.
 *
 * One path is ignored, with its reason: /var/cache/debconf/tmp.ci/, debconf's dpkg-preconfigure work directory,
 * which the dependencies alone leave behind in this tree (`piuparts --apt tor i2pd tinyproxy dnsmasq-base nftables
 * python3` fails on it without our package).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigValue } from '../../src/config/load.ts';
import { readStaticSources } from '../../src/io/static.ts';
import { build } from '../../src/pipeline.ts';
import { CODENAME, hostDebianSources, hostMirror, must, run } from '../util/chroot.ts';
import { buildDummyDeb } from './dummy.ts';
import { getPristine, log, SOURCE_DATE_EPOCH } from './suite.ts';

const PIUPARTS = '/usr/sbin/piuparts';
const SOURCES = readStaticSources();
const KEYRING = new Uint8Array(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'i2p-archive-keyring.gpg')));
const IGNORED = ['/var/cache/debconf/tmp.ci/'];

const tmp = mkdtempSync(join(tmpdir(), 'qig-piuparts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Deb {
  readonly version: string;
  readonly fileName: string;
  readonly bytes: Uint8Array;
}

/** The .deb `npm run build` writes for `value`, the project code at SOURCE_DATE_EPOCH, the config at `epoch`. */
function debOf(value: unknown, epoch: number, keyring?: Uint8Array): Deb {
  const r = parseConfigValue(value);
  if (!r.ok) throw new Error(`test config rejected: ${JSON.stringify(r.issues)}`);
  const out = build({ config: r.config, sourceDateEpoch: epoch, sourceTime: SOURCE_DATE_EPOCH, sources: SOURCES, ...(keyring === undefined ? {} : { keyring }) });
  return { version: out.version, fileName: out.debFileName, bytes: out.outputs.find((o) => o.path === out.debFileName)!.data };
}

/** piuparts' exit code and its log (it writes the whole log to -l; stdout is the same, unbuffered). */
function piuparts(args: readonly string[], logFile: string): Promise<{ code: number; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PIUPARTS, ['-l', logFile, ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, log: readFileSync(logFile, 'utf8') }));
  });
}

const VARIANTS: ReadonlyArray<readonly [string, Record<string, unknown>, Uint8Array | undefined]> = [
  ['default (i2pd)', {}, undefined],
  ['Java router', { i2p: { router: 'i2p' } }, KEYRING],
];

interface Setup {
  readonly dir: string;
  readonly repo: string;
  readonly mirror: string;
  readonly pristine: string;
}

/** A directory for one run, with a flat repository (Packages beside the .debs, their Filename relative to it). */
async function setUp(tag: string, debs: readonly { fileName: string; bytes: Uint8Array }[]): Promise<Setup> {
  expect((await run('sh', ['-c', `command -v ${PIUPARTS}`])).code, 'piuparts is not installed: sudo sh test/oracles.sh').toBe(0);
  const dir = join(tmp, tag);
  const repo = join(dir, 'repo');
  mkdirSync(repo, { recursive: true });
  for (const d of [buildDummyDeb(SOURCE_DATE_EPOCH), ...debs]) writeFileSync(join(repo, d.fileName), d.bytes);
  const packages = await must('sh', ['-c', 'cd "$1" && dpkg-scanpackages --multiversion . /dev/null', 'sh', repo], { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  writeFileSync(join(repo, 'Packages'), packages.stdout);
  return { dir, repo, mirror: hostMirror(hostDebianSources()), pristine: await getPristine() };
}

async function runPiuparts(s: Setup, tag: string, options: readonly string[], deb: Deb): Promise<string> {
  const file = join(s.dir, deb.fileName);
  writeFileSync(file, deb.bytes);
  const started = Date.now();
  const r = await piuparts(
    ['-e', s.pristine, '-d', CODENAME, '-m', s.mirror, '--extra-repo', `deb [trusted=yes] file://${s.repo} ./`, '--bindmount', s.repo, ...IGNORED.flatMap((p) => ['-i', p]), ...options, file],
    join(s.dir, 'piuparts.log'),
  );
  log(`piuparts ${tag}: ${((Date.now() - started) / 1000).toFixed(0)} s, exit ${String(r.code)}`);
  const tail = r.log.split('\n').filter((l) => /ERROR: FAIL|PASS|^ {2}\//.test(l)).slice(-40).join('\n');
  expect(r.code, `piuparts ${tag} failed:\n${tail}`).toBe(0);
  return r.log;
}

describe.each(VARIANTS)('piuparts on the %s build, Debian 13', (name, value, keyring) => {
  const tag = name.replace(/\W+/g, '-').replace(/-$/, '');
  const A = debOf(value, SOURCE_DATE_EPOCH, keyring);
  const B = debOf({ ...value, tor: { transPort: 9041 } }, SOURCE_DATE_EPOCH + 3600, keyring);

  it('install, purge, install again; remove, install, reinstall; purge: nothing left, nothing of another package touched', async () => {
    const s = await setUp(`${tag}-install`, []);
    const out = await runPiuparts(s, `${name}, install`, ['--install-purge-install', '--install-remove-install', '--no-upgrade-test'], B);
    expect(out).toContain('PASS: Installation and purging test.');
    expect(out).toContain('Reinstalling after purge');
    expect(out).toContain('Reinstalling after remove');
  });

  it('upgrade: A installed by name with apt, the changed build B from its file over it, then purge', async () => {
    expect(B.version).not.toBe(A.version);
    const s = await setUp(`${tag}-upgrade`, [A]);
    const out = await runPiuparts(s, `${name}, upgrade`, ['--no-install-purge-test'], B);
    expect(out).toContain(`Unpacking qubes-i2p-gateway (${A.version}) ...`);
    expect(out).toContain(`Unpacking qubes-i2p-gateway (${B.version}) over (${A.version}) ...`);
    expect(out).toContain('PASS: Installation, upgrade and purging tests.');
  });
});
