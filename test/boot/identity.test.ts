/**
 * `npm run test:boot`, part 2: no router identity in a template, whichever way the package got there.
 *
 * boot.test.ts installs through install.sls, which holds the daemons off before the dependencies go in: nothing
 * starts at all. Here the other ways, in booted Debian 13 templates (no network; packages from the shared cache,
 * downloaded first in a networked chroot):
 *   - `apt-get install ./qubes-i2p-gateway.deb` by hand: one apt run unpacks our package (its drop-ins) along
 *     with the dependencies, and the drop-ins hold Debian's starts if apt configures the dependencies after
 *     that; if an apt ever configured i2pd before unpacking ours, the postinst (debian/postinst, the list in
 *     /usr/share/qubes-i2p-gateway/template-guard) stops it and removes what it wrote. Either way: nothing left;
 *   - a template where i2pd and Tor ran long before (their identity and state on disk), then install.sls;
 *   - later, a Debian update of i2pd in the template (its postinst restarts it): held by our drop-in;
 *   - the postinst in the gateway qube itself (its flag present) removes nothing: there the state is its own.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aptCacheDirs, ensurePristine, makeOverlay, writeAptSources, type Overlay } from '../util/chroot.ts';
import { sleep } from '../net/lib/sh.ts';
import { DISTRO_UNITS, ourUnits, quietReport, type Quiet } from './lib/checks.ts';
import { Machine } from './lib/machine.ts';
import { installCoreAgentStandIns, writeQubesDb } from './lib/qubes.ts';
import { applyState, buildRelease, downloadFor, installDummy, SALT_ENV, SALT_ROOT, stageFormula } from './lib/template.ts';

const log = (msg: string): void => console.log(`[boot] ${msg}`);
const RELEASE = buildRelease({ i2p: { clientDestinations: 'shared' } });
const DEB = `${SALT_ROOT}/i2p-gateway/files/${RELEASE.deb.fileName}`;
const UNITS = [...ourUnits(RELEASE.deb.files), ...DISTRO_UNITS];
const IDENTITY = ['var/lib/i2pd/router.keys', 'var/lib/i2pd/ntcp2.keys', 'var/lib/i2pd/ssu2.keys', 'var/lib/i2pd/netDb', 'var/lib/tor/state'];

let pristine = '';

/** A booted template with the Qubes stand-ins, the formula staged and the dummy networking agent installed. */
async function template(name: string): Promise<{ overlay: Overlay; m: Machine }> {
  const overlay = await makeOverlay([pristine]);
  try {
    await writeAptSources(overlay.root);
    installCoreAgentStandIns(overlay.root);
    writeQubesDb(overlay.root, { type: 'TemplateVM', persistence: 'full', services: [] });
    stageFormula(overlay.root, RELEASE);
    const m = await Machine.boot(overlay, { name, network: { kind: 'private' }, binds: await aptCacheDirs(), log });
    await installDummy(m);
    return { overlay, m };
  } catch (e) {
    await overlay.dispose();
    throw e;
  }
}

/** Quiet now (nothing active, running, listening, written, failed), whatever ran before. */
function quietNow(q: Quiet): Omit<Quiet, 'ran'> {
  const { ran: _ran, ...rest } = q;
  return rest;
}

beforeAll(async () => {
  pristine = await ensurePristine(log);
  await downloadFor(pristine, RELEASE, 'i2p-gateway.install', log);
});

describe('apt-get install of the .deb by hand in a booted template (no install.sls, no holds)', () => {
  let t: { overlay: Overlay; m: Machine } | undefined;
  beforeAll(async () => {
    t = await template('qig-template-by-hand');
  });
  afterAll(async () => {
    await t?.m.kill();
    await t?.overlay.dispose();
  });

  it('leaves nothing running, listening or written, whichever order apt configured the packages in', async () => {
    if (t === undefined) throw new Error('no template');
    const r = await t.m.must(['apt-get', '-q', '-y', 'install', DEB], { env: SALT_ENV, timeoutMs: 600_000 });
    const q = await quietReport(t.m, UNITS);
    const notes = (r.stdout + r.stderr).split('\n').filter((l) => l.startsWith('qubes-i2p-gateway:'));
    log(`by hand: ${q.ran.length === 0 ? 'no daemon started (our drop-ins were unpacked before the dependencies were configured)' : `started, then undone: ${q.ran.join('; ')}`}${notes.length > 0 ? `\n${notes.join('\n')}` : ''}`);
    expect(quietNow(q)).toEqual({ active: [], daemons: [], listening: [], state: [], failed: [] });
    // What ran, the postinst stopped: every daemon that left the inactive state is stopped again.
    for (const x of q.ran.filter((e) => e.includes(' left inactive '))) expect(notes.join('\n')).toContain(`stopping ${x.split(':')[0] ?? ''}`);
  });
});

describe('a template where i2pd and Tor ran before, then install.sls', () => {
  let t: { overlay: Overlay; m: Machine } | undefined;
  beforeAll(async () => {
    t = await template('qig-template-used');
  });
  afterAll(async () => {
    await t?.m.kill();
    await t?.overlay.dispose();
  });
  const T = (): { overlay: Overlay; m: Machine } => {
    if (t === undefined) throw new Error('no template');
    return t;
  };

  it('i2pd and Tor, installed by hand and left running, write an identity and state', async () => {
    await T().m.must(['apt-get', '-q', '-y', 'install', 'i2pd', 'tor', 'tinyproxy'], { env: SALT_ENV, timeoutMs: 600_000 });
    const deadline = Date.now() + 60_000;
    const missing = (): string[] => IDENTITY.filter((p) => !existsSync(join(T().overlay.root, p)));
    while (missing().length > 0 && Date.now() < deadline) await sleep(200);
    expect(missing()).toEqual([]);
  });

  it('install.sls: our postinst stops them and removes the identity, netDb and Tor state', async () => {
    await applyState(T().m, RELEASE, 'i2p-gateway.install', log);
    expect(IDENTITY.filter((p) => existsSync(join(T().overlay.root, p)))).toEqual([]);
    expect(quietNow(await quietReport(T().m, UNITS))).toEqual({ active: [], daemons: [], listening: [], state: [], failed: [] });
  });

  it('a Debian update of i2pd later (its postinst restarts it): held by our drop-in, nothing written', async () => {
    const before = (await T().m.show('i2pd.service', ['InactiveExitTimestampMonotonic'])).get('InactiveExitTimestampMonotonic');
    await T().m.must(['apt-get', '-q', '-y', 'install', '--reinstall', 'i2pd'], { env: SALT_ENV, timeoutMs: 300_000 });
    const after = await T().m.show('i2pd.service', ['ActiveState', 'InactiveExitTimestampMonotonic']);
    expect(after.get('ActiveState')).toBe('inactive');
    expect(after.get('InactiveExitTimestampMonotonic'), 'i2pd did not start again').toBe(before);
    expect(quietNow(await quietReport(T().m, UNITS))).toEqual({ active: [], daemons: [], listening: [], state: [], failed: [] });
  });

  it("in the gateway qube (its flag present) the postinst removes nothing: there the state is the gateway's own", async () => {
    const m = T().m;
    const postinst = ['/var/lib/dpkg/info/qubes-i2p-gateway.postinst', 'configure', RELEASE.config.package.version];
    await m.must(['sh', '-c', 'mkdir -p /run/qubes-service && touch /run/qubes-service/i2p && echo key > /var/lib/i2pd/router.keys && chown i2pd:i2pd /var/lib/i2pd/router.keys']);
    await m.must(postinst);
    expect(existsSync(join(T().overlay.root, 'var/lib/i2pd/router.keys')), 'kept where the flag exists').toBe(true);
    await m.must(['rm', '/run/qubes-service/i2p']);
    const r = await m.must(postinst);
    expect(r.stderr).toContain('qubes-i2p-gateway: removing /var/lib/i2pd/router.keys');
    expect(existsSync(join(T().overlay.root, 'var/lib/i2pd/router.keys')), 'removed where it does not').toBe(false);
    // Debian's own entries (the config links) are a package's: never removed.
    const left = (await m.must(['ls', '-A', '/var/lib/i2pd'])).stdout.split('\n').filter((l) => l !== '').sort();
    expect(left).toEqual(['certificates', 'i2pd.conf', 'subscriptions.txt', 'tunnels.conf', 'tunnels.d']);
  });
});
