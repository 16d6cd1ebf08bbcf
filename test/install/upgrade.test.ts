/**
 * Day two in a Debian 13 (trixie) root (`npm run test:install`, root only): a build A installed the way install.sls
 * installs it, then a build B of a changed config (Tor's TransPort moved from 9040 to 9041, the IRC tunnel exposed,
 * an hour later), then A again; the maintainer scripts on an upgrade; the Java router's key next to the I2P
 * project's own i2p-keyring package.
 *
 * "The way install.sls does": Salt's pkg.installed installs the Depends by name with apt-get, then the package file
 * with `dpkg -i --force-confold` when its version differs from the installed one (salt/modules/aptpkg.py), and the
 * pin state checks the installed version. The packages are built by the pipeline `npm run build` runs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigValue } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import { textFile, type RenderedFile } from '../../src/files.ts';
import { readStaticSources } from '../../src/io/static.ts';
import { debFileName, writeDeb, type DebMeta } from '../../src/pack/deb.ts';
import { dependencyNames, build } from '../../src/pipeline.ts';
import { renderDebPackage } from '../../src/render/deb/package.ts';
import { PATHS } from '../../src/render/gateway/common.ts';
import { describeRun, type Chroot } from '../util/chroot.ts';
import { buildDummyDeb } from './dummy.ts';
import { INBOX, prepare } from './lifecycle.ts';
import { getPristine, SOURCE_DATE_EPOCH, timed } from './suite.ts';

const SOURCES = readStaticSources();

function configOf(value: unknown): GatewayConfig {
  const r = parseConfigValue(value);
  if (!r.ok) throw new Error(`test config rejected: ${JSON.stringify(r.issues)}`);
  return r.config;
}

interface Build {
  readonly version: string;
  readonly fileName: string;
  readonly bytes: Uint8Array;
  readonly files: readonly RenderedFile[];
  readonly depends: readonly string[];
}

/**
 * A build as npm run build makes it (the .deb of the pipeline's output), with the tree it ships: the same project
 * code (source time SOURCE_DATE_EPOCH), the config edited at `epoch`, so a later edit differs in the version's
 * input delay (src/version.ts), as a user's rebuild does.
 */
function buildOf(value: unknown, epoch: number, keyring?: Uint8Array): Build {
  const config = configOf(value);
  const out = build({ config, sourceDateEpoch: epoch, sourceTime: SOURCE_DATE_EPOCH, sources: SOURCES, ...(keyring === undefined ? {} : { keyring }) });
  const deb = renderDebPackage(config, { sourceDateEpoch: epoch, statics: SOURCES.deb, version: out.version, ...(keyring === undefined ? {} : { keyring }) });
  const bytes = out.outputs.find((o) => o.path === out.debFileName)!.data;
  // The tree is the one in the package: the same writer on the same render gives the same bytes.
  expect(Buffer.from(writeDeb(deb.meta, deb.files, { sourceDateEpoch: epoch })).equals(Buffer.from(bytes))).toBe(true);
  return { version: out.version, fileName: out.debFileName, bytes, files: deb.files, depends: dependencyNames(deb.meta.depends) };
}

/** What install.sls does in the template: the Depends by name, then `dpkg -i --force-confold` of the file. */
async function applyInstallSls(c: Chroot, b: Build): Promise<string> {
  const deps = await c.exec(['apt-get', 'install', '-y', ...b.depends]);
  expect(deps.code, describeRun('apt-get install (dependencies)', deps)).toBe(0);
  const r = await c.exec(['dpkg', '-i', '--force-confold', join(INBOX, b.fileName)]);
  expect(r.code, describeRun('dpkg -i', r)).toBe(0);
  // The pin state: exactly this version is installed.
  expect((await c.must(['dpkg-query', '-W', '-f', '${Version}', 'qubes-i2p-gateway'])).stdout).toBe(b.version);
  return `${r.stdout}\n${r.stderr}`;
}

/** Every file of the build is on disk with its contents; nothing the build does not ship is left of ours. */
async function landed(c: Chroot, b: Build): Promise<string[]> {
  const problems: string[] = [];
  for (const f of b.files) {
    if (f.kind !== 'file' && f.kind !== 'config') continue;
    let data: Buffer;
    try {
      data = readFileSync(c.path(f.path));
    } catch {
      problems.push(`${f.path}: missing`);
      continue;
    }
    if (!data.equals(Buffer.from(f.data))) problems.push(`${f.path}: not the build's`);
  }
  const listed = (await c.must(['dpkg-query', '-L', 'qubes-i2p-gateway'])).stdout.split('\n').filter((l) => l.startsWith('/') && l !== '/.');
  const shipped = new Set(b.files.map((f) => f.path));
  for (const p of listed) {
    if (!shipped.has(p) && !b.files.some((f) => f.path.startsWith(`${p}/`))) problems.push(`${p}: dpkg lists it, the build does not ship it`);
  }
  const v = await c.exec(['dpkg', '--verify', 'qubes-i2p-gateway']);
  if (v.code !== 0 || v.stdout !== '') problems.push(`dpkg --verify: ${v.stdout}${v.stderr}`);
  return problems;
}

function text(c: Chroot, path: string): string {
  return readFileSync(c.path(path), 'utf8');
}

type Deb = Pick<Build, 'fileName' | 'bytes'>;

/**
 * A fresh Debian 13 chroot for one describe block, disposed after it: the dummy qubes-core-agent-networking, `debs`
 * in its inbox, the dummy and `install` installed with apt, then `setup`. Returns the block's accessor.
 */
function chrootFor(debs: readonly Deb[], install: readonly Deb[], setup: (c: Chroot) => Promise<void> = async () => {}): () => Chroot {
  let c: Chroot | undefined;
  beforeAll(async () => {
    const pristine = await getPristine();
    const dummy = buildDummyDeb(SOURCE_DATE_EPOCH);
    c = await timed('upgrade: fresh chroot + apt-get update', () => prepare(pristine, [dummy, ...debs]));
    await c.must(['apt-get', 'install', '-y', ...[dummy, ...install].map((d) => join(INBOX, d.fileName))]);
    await setup(c);
  });
  afterAll(async () => {
    await c?.dispose();
  });
  return () => {
    if (c === undefined) throw new Error('no chroot: an earlier step failed');
    return c;
  };
}

describe('a changed config over the installed gateway, in the Debian 13 root', () => {
  const A = buildOf({}, SOURCE_DATE_EPOCH);
  const B = buildOf({ tor: { transPort: 9041 }, i2p: { ircServer: 'irc.postman.i2p:6667' } }, SOURCE_DATE_EPOCH + 3600);
  const chroot = chrootFor([A, B], []);

  it('B sorts above A for dpkg (and so for Salt, which compares with dpkg)', async () => {
    expect(B.version).not.toBe(A.version);
    // The same project code, the config edited an hour later: the versions differ in the input delay (0, 3600).
    expect([A.version.split('.')[3], B.version.split('.')[3]]).toEqual(['0', '3600']);
    expect((await chroot().exec(['dpkg', '--compare-versions', A.version, 'lt', B.version])).code).toBe(0);
  });

  it('A installed the way install.sls does: its files, TransPort 9040 in torrc and in the ruleset', async () => {
    await applyInstallSls(chroot(), A);
    expect(await landed(chroot(), A)).toEqual([]);
    expect(text(chroot(), PATHS.torrc)).toMatch(/^TransPort .*:9040\b/m);
    expect(text(chroot(), PATHS.ruleset)).toMatch(/redirect to :9040\b/);
  });

  it('then B the same way: B\'s files replace A\'s, torrc and the ruleset agree on 9041, nothing of A is left', async () => {
    const out = await applyInstallSls(chroot(), B);
    expect(out).toContain(`Preparing to unpack .../${B.fileName} ...`);
    expect(out).toContain(`Unpacking qubes-i2p-gateway (${B.version}) over (${A.version}) ...`);
    expect(await landed(chroot(), B)).toEqual([]);
    expect(text(chroot(), PATHS.torrc)).toMatch(/^TransPort .*:9041\b/m);
    expect(text(chroot(), PATHS.ruleset)).toMatch(/redirect to :9041\b/);
    expect(text(chroot(), PATHS.ruleset)).not.toMatch(/:9040\b/);
  });

  it('A again over B: dpkg installs it as a downgrade, with a warning (as the README says), and A\'s files are back', async () => {
    const out = await applyInstallSls(chroot(), A);
    expect(out).toContain(`dpkg: warning: downgrading qubes-i2p-gateway (${B.version}) to (${A.version})`);
    expect(await landed(chroot(), A)).toEqual([]);
  });
});

/**
 * The maintainer scripts on an upgrade, with systemd and the firewall replaced by stand-ins that record what they
 * are asked (the chroot runs no systemd, and nft must not touch this machine): `systemctl` (answers `is-active`
 * from a list of running units), `nft`, and a policy-rc.d that allows what a running qube allows. dpkg runs in a
 * network namespace of its own, so not even a real nft could reach this machine's rules.
 */
describe('maintainer scripts on an upgrade', () => {
  const A = buildOf({}, SOURCE_DATE_EPOCH);
  const B = buildOf({ tor: { transPort: 9041 } }, SOURCE_DATE_EPOCH + 3600);
  const LOG = '/var/log/qig-standins.log';
  const SYSTEMCTL = `#!/bin/sh
# stand-in for systemctl (test/install/upgrade.test.ts): records the call; is-active answers from /run/qig-active
echo "systemctl $*" >> ${LOG}
if [ "$1" = --quiet ] && [ "$2" = is-active ]; then grep -qxF "$3" /run/qig-active 2>/dev/null; exit $?; fi
if [ "$1" = is-enabled ]; then echo static; exit 0; fi
exit 0
`;
  const NFT = `#!/bin/sh
# stand-in for nft (test/install/upgrade.test.ts): records the call, reads a ruleset from stdin, succeeds
echo "nft $*" >> ${LOG}
[ "$2" = - ] && cat > /dev/null
exit 0
`;
  const chroot = chrootFor([A, B], [], async (c) => {
    await applyInstallSls(c, A);
    await c.write('/usr/local/bin/systemctl', SYSTEMCTL, 0o755);
    await c.write('/usr/local/sbin/nft', NFT, 0o755);
    await c.write('/usr/sbin/policy-rc.d', '#!/bin/sh\n# a running qube: every action allowed\nexit 0\n', 0o755);
  });
  const log = async (): Promise<string[]> => (await chroot().exec(['cat', LOG])).stdout.split('\n').filter((l) => l !== '');
  const dpkgIsolated = async (b: Build): Promise<void> => {
    const r = await chroot().exec(['unshare', '--net', 'dpkg', '-i', '--force-confold', join(INBOX, b.fileName)]);
    expect(r.code, describeRun('dpkg -i', r)).toBe(0);
  };


  it('without systemd (an image build): no systemctl, no hook, no restart', async () => {
    await chroot().write(LOG, '');
    await dpkgIsolated(B);
    expect(await log()).toEqual([]);
    await dpkgIsolated(A);
  });

  it('in the template (systemd, no qvm-service, nothing of ours running): reload only', async () => {
    await chroot().must(['mkdir', '-p', '/run/systemd/system']);
    await chroot().write('/run/qig-active', 'cron.service\n');
    await chroot().write(LOG, '');
    await dpkgIsolated(B);
    const calls = await log();
    expect(calls.filter((l) => l.startsWith('nft'))).toEqual([]);
    expect(calls.filter((l) => /try-restart/.test(l))).toEqual([]);
    expect(calls[0]).toBe('systemctl daemon-reload');
    await dpkgIsolated(A);
  });

  it('in a running gateway: the hook loads the new ruleset first, then each running unit of ours restarts, and only those', async () => {
    await chroot().must(['mkdir', '-p', '/run/qubes-service']);
    await chroot().write('/run/qubes-service/i2p', '');
    await chroot().write('/run/qig-active', 'qubes-i2p-gateway-tor.service\nqubes-i2p-gateway-dnsmasq.service\ni2pd.service\n');
    await chroot().write(LOG, '');
    await dpkgIsolated(B);
    const calls = await log();
    const nft = calls.filter((l) => l.startsWith('nft'));
    expect(nft).toEqual([`nft -f ${PATHS.ruleset.replace('firewall.nft', 'lockdown.nft')}`, 'nft list chain ip qubes custom-input', 'nft -f -', `nft -f ${PATHS.ruleset}`]);
    const restarts = calls.filter((l) => /try-restart/.test(l));
    expect(restarts).toEqual(['systemctl try-restart qubes-i2p-gateway-tor.service', 'systemctl try-restart qubes-i2p-gateway-dnsmasq.service', 'systemctl try-restart i2pd.service']);
    expect(calls.indexOf(`nft -f ${PATHS.ruleset}`)).toBeLessThan(calls.indexOf(restarts[0]!));
    expect(text(chroot(), PATHS.torrc)).toMatch(/^TransPort .*:9041\b/m);
  });

  it('a first install in that same running gateway restarts nothing (only upgrades do)', async () => {
    await chroot().must(['dpkg', '--purge', 'qubes-i2p-gateway']);
    await chroot().write(LOG, '');
    await dpkgIsolated(A);
    const calls = await log();
    expect(calls.filter((l) => l.startsWith('nft') || /try-restart/.test(l))).toEqual([]);
  });
});

describe('the Java router\'s key next to the I2P project\'s i2p-keyring package', () => {
  const keyring = new Uint8Array(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'i2p-archive-keyring.gpg')));
  const J = buildOf({ i2p: { router: 'i2p' } }, SOURCE_DATE_EPOCH, keyring);
  /**
   * A stand-in for i2p-keyring from deb.i2p.net (not reachable here): what matters to dpkg is the path it ships,
   * /usr/share/keyrings/i2p-archive-keyring.gpg, the one the I2P instructions name; built with our writer.
   */
  const meta: DebMeta = {
    package: 'i2p-keyring',
    version: '2025.07.26+qig.standin1',
    architecture: 'all',
    maintainer: 'qubes-i2p-gateway tests <tests@invalid>',
    section: 'misc',
    priority: 'optional',
    depends: [],
    description: { summary: 'test stand-in for the I2P repository keyring package', extended: ['Ships the I2P key where i2p-keyring does. Test only.'] },
  };
  const standin = { fileName: debFileName(meta), bytes: writeDeb(meta, [{ path: '/usr/share/keyrings/i2p-archive-keyring.gpg', kind: 'file', mode: 0o644, data: keyring }, textFile('/usr/share/doc/i2p-keyring/copyright', 'test only\n')], { sourceDateEpoch: SOURCE_DATE_EPOCH }) };
  const chroot = chrootFor([J, standin], [J]);

  it('dpkg installs i2p-keyring after ours, and ours after it: no file is claimed twice', async () => {
    const r = await chroot().exec(['dpkg', '-i', join(INBOX, standin.fileName)]);
    expect(r.code, describeRun('dpkg -i i2p-keyring', r)).toBe(0);
    expect(r.stderr).not.toContain('trying to overwrite');
    await chroot().must(['dpkg', '--purge', 'qubes-i2p-gateway']);
    const again = await chroot().exec(['dpkg', '-i', join(INBOX, J.fileName)]);
    expect(again.code, describeRun('dpkg -i ours after i2p-keyring', again)).toBe(0);
    expect(again.stderr).not.toContain('trying to overwrite');
    expect((await chroot().must(['dpkg-query', '-S', PATHS.keyring])).stdout.trim()).toBe(`qubes-i2p-gateway: ${PATHS.keyring}`);
    expect((await chroot().must(['dpkg-query', '-S', '/usr/share/keyrings/i2p-archive-keyring.gpg'])).stdout.trim()).toBe('i2p-keyring: /usr/share/keyrings/i2p-archive-keyring.gpg');
  });
});
