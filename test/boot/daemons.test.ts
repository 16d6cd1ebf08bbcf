/**
 * `npm run test:boot`, part 3: daemon settings that only a booted systemd can judge (issue 19).
 *
 * One Debian 13 machine booted with systemd-nspawn from the cached oracles root (Debian's i2pd, Tor, tinyproxy,
 * curl, python3 installed; private network, no upstream at all), with the package's rendered tree written into it
 * as dpkg would unpack it (no maintainer scripts: nothing is enabled, and the gateway's units run only once the
 * test creates the gateway's qvm-service flag in /run). Qubes stand-ins: the flag itself, the group `qubes`, and
 * `stand-ins/qrexec-client-vm` (answers for the service qube at once, without dom0).
 *
 * - A published service's socket (Accept=yes) under a flood of 250 connections in under 2 s: a trigger limit hit
 *   (systemd's default: 200 in 2 s) puts a socket in the failed state until someone restarts it. Afterwards a
 *   visitor's request is served and the socket is listening, not failed. Measured: the unit from before issue 19
 *   (default trigger limit) survived this too, and 1000 and 3000 connections, on Debian 13's systemd 257, whose
 *   default poll limit (150 in 2 s, since systemd 255) pauses accepting before the trigger limit is reached; the
 *   rendered unit no longer depends on that (render/publish.test.ts checks its settings).
 * - i2pd under the sandbox of our drop-in: systemd-analyze's exposure score, the process as the kernel sees it
 *   (no_new_privs, seccomp, no capabilities, its own read-only root), its console and HTTP proxy answering.
 *
 * Not proven here: i2pd integrating with other routers under the sandbox (no I2P network exists in the lab yet).
 */
import { chmodSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishedServices } from '../../src/config/publish.ts';
import { PATHS } from '../../src/render/gateway/common.ts';
import { CONSOLE_USER } from '../../src/render/gateway/i2pd.ts';
import { i2pdKeysPath, publishSocketUnit } from '../../src/render/gateway/publish.ts';
import { sleep } from '../net/lib/sh.ts';
import { ensureOracles, makeOverlay, type Overlay } from '../util/chroot.ts';
import { writeTree } from '../render/helpers.ts';
import { Machine } from './lib/machine.ts';
import { applied, sandboxDifferences, serviceSettings } from './lib/running.ts';
import { buildRelease } from './lib/template.ts';

const log = (msg: string): void => console.log(`[boot] ${msg}`);
const RELEASE = buildRelease({ publish: [{ name: 'wiki', qube: 'webapp', port: 8080, i2p: true, onion: true }], i2p: { clientDestinations: 'shared' } });
const SERVICE = publishedServices(RELEASE.config)[0];
if (SERVICE === undefined) throw new Error('the test config publishes nothing');

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
  copyFileSync(join(import.meta.dirname, 'stand-ins', 'qrexec-client-vm'), join(overlay.root, 'usr/bin/qrexec-client-vm'));
  chmodSync(join(overlay.root, 'usr/bin/qrexec-client-vm'), 0o755);
  machine = await Machine.boot(overlay, { name: 'qig-daemons', network: { kind: 'private' }, log });
  // What the Qubes agent gives the gateway qube: the group qubes (qubes-core-agent) and the qvm-service flag.
  await M().must(['groupadd', '--system', 'qubes']);
  await M().must(['sh', '-c', `mkdir -p /run/qubes-service && touch /run/qubes-service/${RELEASE.config.qubes.service}`]);
  await M().must(['systemctl', 'daemon-reload']);
});

afterAll(async () => {
  await machine?.kill();
  await overlay?.dispose();
});

describe('a published service under a flood of connections', () => {
  const socket = publishSocketUnit(SERVICE.name);
  const url = `http://127.0.0.1:${SERVICE.listen}/`;
  const visit = async (): Promise<string> => (await M().exec(['curl', '-s', '-m', '10', url])).stdout;

  it('250 connections in under 2 s: the socket stays listening (not failed), and then a visitor is served', async () => {
    await M().must(['systemctl', 'start', socket]);
    expect(await visit(), 'before the flood').toContain(`SERVICE-QUBE webapp qubes.ConnectTCP+${SERVICE.port}`);
    // 250 connections, each closed once all are open: what an I2P or Tor visitor (all arrive from 127.0.0.1) can
    // do to the gateway's listener.
    const flood = [
      'import json, socket, time',
      't = time.monotonic(); socks = []; refused = 0',
      'for i in range(250):',
      '    s = socket.socket(); s.settimeout(5)',
      '    try:',
      `        s.connect(("127.0.0.1", ${SERVICE.listen})); socks.append(s)`,
      '    except OSError:',
      '        refused += 1',
      'elapsed = time.monotonic() - t',
      'for s in socks: s.close()',
      'print(json.dumps({"connected": len(socks), "refused": refused, "seconds": elapsed}))',
    ].join('\n');
    const r = JSON.parse((await M().must(['python3', '-c', flood])).stdout) as { connected: number; refused: number; seconds: number };
    log(`flood: ${r.connected} connected, ${r.refused} refused, in ${r.seconds.toFixed(3)} s`);
    expect(r.connected + r.refused).toBe(250);
    expect(r.seconds, 'the flood took 2 s or more: it proves nothing about a 2 s limit').toBeLessThan(2);
    // systemd works through the queue (a poll limit pauses it for the rest of its window): a visitor may wait
    // that long, never longer than a few windows.
    let answer = '';
    for (let i = 0; i < 10 && !answer.includes('SERVICE-QUBE'); i++) {
      answer = await visit();
      if (!answer.includes('SERVICE-QUBE')) await sleep(1000);
    }
    const state = await M().show(socket, ['ActiveState', 'SubState', 'Result', 'NAccepted', 'NRefused']);
    log(`after the flood: ${JSON.stringify(Object.fromEntries(state))}`);
    expect([state.get('ActiveState'), state.get('SubState'), state.get('Result')], JSON.stringify(Object.fromEntries(state))).toEqual(['active', 'listening', 'success']);
    expect(answer, 'a visitor after the flood').toContain(`SERVICE-QUBE webapp qubes.ConnectTCP+${SERVICE.port}`);
  });
});

describe("i2pd under our drop-in's sandbox", () => {
  /** systemd-analyze's overall exposure of a unit (0 safest … 10), as it prints it. */
  const exposure = async (unit: string): Promise<{ score: number; report: string }> => {
    const r = await M().exec(['systemd-analyze', 'security', '--no-pager', unit]);
    const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout);
    if (m === null) throw new Error(`systemd-analyze security ${unit}: no score\n${r.stdout}\n${r.stderr}`);
    return { score: Number(m[1]), report: r.stdout };
  };
  const listening = async (): Promise<string[]> =>
    (await M().must(['ss', '-Hltn'])).stdout.split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').filter((a) => a !== '');

  it('starts and stays active, listens on its console and HTTP proxy, and both answer', async () => {
    await M().must(['systemctl', 'start', 'i2pd.service'], { timeoutMs: 60_000 });
    let ports: string[] = [];
    for (let i = 0; i < 60 && !(ports.includes('127.0.0.1:7070') && ports.includes('127.0.0.1:4444')); i++) {
      await sleep(1000);
      ports = await listening();
    }
    expect(ports).toEqual(expect.arrayContaining(['127.0.0.1:7070', '127.0.0.1:4444']));
    const state = await M().show('i2pd.service', ['ActiveState', 'SubState', 'NRestarts', 'Result']);
    expect([state.get('ActiveState'), state.get('SubState'), state.get('NRestarts')], JSON.stringify(Object.fromEntries(state))).toEqual(['active', 'running', '0']);
    const pass = (await M().must(['cat', PATHS.consolePassword])).stdout.trim();
    const console = await M().exec(['curl', '-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', '-u', `${CONSOLE_USER}:${pass}`, 'http://127.0.0.1:7070/']);
    expect(console.stdout, console.stderr).toBe('200');
    const proxy = await M().exec(['curl', '-s', '-m', '10', '-x', 'http://127.0.0.1:4444', 'http://boot-test.i2p/']);
    expect(proxy.stdout, proxy.stderr).toContain('<title>I2Pd HTTP proxy</title>');
    // Its own files are still written where they belong: the router's keys in its state directory.
    expect((await M().exec(['test', '-s', '/var/lib/i2pd/router.keys'])).code, 'i2pd wrote no router.keys').toBe(0);
    expect((await M().exec(['test', '-s', i2pdKeysPath(SERVICE.name)])).code, "i2pd wrote no keys for the published site's server tunnel").toBe(0);
  });

  it('runs sandboxed: systemd-analyze security rates it like Tor and tinyproxy, and the kernel applied it to the process', async () => {
    const i2pd = await exposure('i2pd.service');
    const tor = await exposure('qubes-i2p-gateway-tor.service');
    log(`systemd-analyze security: i2pd.service ${i2pd.score}, qubes-i2p-gateway-tor.service ${tor.score}`);
    expect(i2pd.score, i2pd.report).toBeLessThanOrEqual(3);
    const a = await applied(M(), 'i2pd.service');
    const problems = await sandboxDifferences(M(), 'i2pd.service', serviceSettings(RELEASE.deb.files, '/usr/lib/systemd/system/i2pd.service.d/50-qubes-i2p-gateway.conf'));
    if (!a.noNewPrivs) problems.push('no_new_privs not set');
    if (!a.seccomp) problems.push('no seccomp filter');
    if (a.capBnd !== 0n) problems.push(`bounding set ${a.capBnd.toString(16)}`);
    if (a.capEff !== 0n) problems.push(`effective capabilities ${a.capEff.toString(16)}`);
    if (!(a.ownMountNs && a.rootReadOnly)) problems.push('root not read-only in its own mount namespace');
    expect(problems.join('\n')).toBe('');
    // Still running, never restarted, and nothing it tried was refused by the sandbox.
    const state = await M().show('i2pd.service', ['ActiveState', 'NRestarts']);
    expect([state.get('ActiveState'), state.get('NRestarts')]).toEqual(['active', '0']);
    const refused = (await M().journal(['-u', 'i2pd.service']))
      .map((e) => String(e['MESSAGE'] ?? ''))
      .filter((msg) => /permission denied|read-only file system|operation not permitted|bad system call|EPERM|EACCES|EROFS/i.test(msg));
    expect(refused).toEqual([]);
  });
});
