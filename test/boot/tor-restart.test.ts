/**
 * The gateway's Tor under real systemd, crashing again and again (SECURITY.md "Tor crashing on an unmapped automap
 * address": a client qube's connection can make Debian 13's tor 0.4.9.15 die of SIGSEGV, then abort, while no
 * stream has waited for a circuit yet). Restart=on-failure brings it back; systemd's default start limit (5 starts
 * in 10 s) would then leave the unit failed for good once a client repeats the crash quickly. Here the crash is
 * SIGABRT sent to Tor's main process as soon as it is back (what Tor's own SIGSEGV handler ends with); when the
 * "client" stops, Tor must come back by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNITS } from '../../src/render/gateway/common.ts';
import { sleep } from '../net/lib/sh.ts';
import { ensureOracles, makeOverlay, type Overlay } from '../util/chroot.ts';
import { writeTree } from '../render/helpers.ts';
import { Machine } from './lib/machine.ts';
import { buildRelease } from './lib/template.ts';

const log = (msg: string): void => console.log(`[boot] ${msg}`);
const RELEASE = buildRelease({ i2p: { clientDestinations: 'shared' } });
const TOR = UNITS.tor;

let overlay: Overlay | undefined;
let machine: Machine | undefined;
const M = (): Machine => {
  if (machine === undefined) throw new Error('the machine is not booted: an earlier step failed');
  return machine;
};

beforeAll(async () => {
  const oracles = await ensureOracles(log);
  overlay = await makeOverlay([oracles]);
  writeTree(RELEASE.deb.files, overlay.root); // the package's tree as dpkg unpacks it (no maintainer scripts)
  machine = await Machine.boot(overlay, { name: 'qig-torrestart', network: { kind: 'private' }, log });
  await M().must(['groupadd', '--system', 'qubes']);
  await M().must(['sh', '-c', `mkdir -p /run/qubes-service && touch /run/qubes-service/${RELEASE.config.qubes.service}`]);
  await M().must(['systemctl', 'daemon-reload']);
});

afterAll(async () => {
  await machine?.kill();
  await overlay?.dispose();
});

const state = async (): Promise<{ active: string; pid: number; restarts: number; result: string }> => {
  const s = await M().show(TOR, ['ActiveState', 'MainPID', 'NRestarts', 'Result']);
  return { active: s.get('ActiveState') ?? '', pid: Number(s.get('MainPID') ?? 0), restarts: Number(s.get('NRestarts') ?? 0), result: s.get('Result') ?? '' };
};

/** Until Tor is active with a main process other than `not`, or failed; at most `ms`. */
async function backOrFailed(not: number, ms: number): Promise<Awaited<ReturnType<typeof state>>> {
  const t0 = Date.now();
  let s = await state();
  while (!(s.active === 'active' && s.pid !== 0 && s.pid !== not) && s.active !== 'failed' && Date.now() - t0 < ms) {
    await sleep(200);
    s = await state();
  }
  return s;
}

describe("the gateway's Tor crashing repeatedly", () => {
  it('8 crashes, each as soon as Tor is back: it is not left failed, and runs again once the crashes stop', async () => {
    await M().must(['systemctl', 'start', TOR], { timeoutMs: 120_000 });
    let s = await state();
    expect(s.active, JSON.stringify(s)).toBe('active');
    const seen: string[] = [];
    for (let i = 0; i < 8 && s.active === 'active'; i++) {
      await M().must(['kill', '-ABRT', String(s.pid)]);
      s = await backOrFailed(s.pid, 60_000);
      seen.push(`${s.active}/${s.result} pid ${s.pid} restarts ${s.restarts}`);
    }
    log(`after each crash: ${seen.join('; ')}`);
    // The crashes stopped: Tor must run again by itself.
    s = await backOrFailed(0, 60_000);
    const journal = (await M().exec(['journalctl', '--no-pager', '-o', 'cat', '-u', TOR])).stdout;
    expect(s.active, `${JSON.stringify(s)}\n${journal.split('\n').filter((l) => /start|limit|fail/i.test(l)).slice(-12).join('\n')}`).toBe('active');
    expect(s.restarts).toBeGreaterThanOrEqual(8);
  }, 900_000);
});
