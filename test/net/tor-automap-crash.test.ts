/**
 * SECURITY.md's "Tor crashing on an unmapped automap address": in the lab without a network, Debian 13's tor
 * 0.4.9.15 dies of SIGSEGV after refusing a client's TCP connection to an address of its automap range
 * (10.192.0.0/10) that nothing maps. Here the gateway's Tor (the packaged unit and torrc) has joined the lab's
 * private Tor network (lib/torenet.ts) and bootstrapped: one such connection does not kill it (measured: the same
 * connection 0.3 s after Tor's start, before bootstrap, does; see SECURITY.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATHS } from '../../src/render/gateway/common.ts';
import { A, type Lab } from './lib/lab.ts';
import { run, sleep } from './lib/sh.ts';
import { gatewayTorrc, ONION_MARKER, TorNet, WEB_MARKER, WEB_NAME, WEB_PORT } from './lib/torenet.ts';
import { UNIT, World, SHARED_DESTINATION } from './lib/world.ts';

let w: World | undefined;
let lab: Lab;
let tor: TorNet | undefined;

beforeAll(async () => {
  w = await World.create(SHARED_DESTINATION);
  lab = w.lab;
  tor = await TorNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 150_000 });
  const wr = await lab.gwRun(['sh', '-c', `cat > ${PATHS.torrcD}/lab-privnet.conf`], { input: gatewayTorrc(tor.dirAuthorities) });
  expect(wr.code, wr.stderr).toBe(0);
  w.torExtraArgs = [];
  await w.use({ tor: 'real', router: 'recorder', dnsmasq: true, tinyproxy: true });
}, 240_000);

afterAll(async () => {
  await w?.gw.stopAll();
  await tor?.stop();
  await w?.destroy();
});

async function until<T>(f: () => Promise<T>, ok: (t: T) => boolean, ms: number): Promise<T> {
  const t0 = Date.now();
  let last = await f();
  while (!ok(last) && Date.now() - t0 < ms) {
    await sleep(1000);
    last = await f();
  }
  return last;
}

const clearnet = (): ReturnType<Lab['curl']> => lab.curl(`http://${WEB_NAME}:${WEB_PORT}/`, ['-m', '20']);

describe("the gateway's Tor, bootstrapped in the private Tor network, and a client's connection to an unmapped automap address", () => {
  it('right after "Bootstrapped 100%", before any client stream: Tor refuses it and keeps running', async () => {
    const unit = (w as World).gw.get(UNIT.tor);
    if (unit === undefined) throw new Error('Tor is not running');
    const t0 = Date.now();
    while (!unit.proc.out.includes('Bootstrapped 100%') && Date.now() - t0 < 150_000) await sleep(500);
    expect(unit.proc.out, 'Tor bootstrapped in the private network').toContain('Bootstrapped 100%');
    const pid = unit.proc.pid;
    const r = await lab.probe('client', [{ kind: 'tcp', host: '10.200.0.7', port: 80, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 3, readTimeout: 3 }]);
    expect(r[0]?.outcome, 'the probe reached Tor (TransPort accepted it)').toBe('connected');
    await sleep(3000);
    expect(unit.proc.exited, `Tor died after the probe\n${unit.proc.out.slice(-3000)}`).toBeUndefined();
    expect((w as World).gw.get(UNIT.tor)?.proc.pid).toBe(pid);
  }, 200_000);

  it('Tor refuses it and survives (same process); a clearnet page and an onion site still load afterwards', async () => {
    const net = tor as TorNet;
    const world = w as World;
    // Bootstrapped: a clearnet page loads through the gateway.
    const first = await until(clearnet, (r) => r.status === '200' && r.body.includes(WEB_MARKER), 150_000);
    expect(first.status, first.stderr).toBe('200');
    // The onion site's address, mapped by the client's own lookup (before the probe, so the map is Tor's state).
    const dig = await run([...lab.clientView(), 'dig', '+short', '+time=5', '+tries=1', `@${A.dns1}`, net.onion, 'A'], { timeoutMs: 10_000 });
    const onionAddr = dig.stdout.trim().split('\n')[0] ?? '';
    expect(onionAddr, dig.stderr).toMatch(/^10\.(19[2-9]|2[0-5][0-9])\.\d+\.\d+$/);

    const unit = world.gw.get(UNIT.tor);
    if (unit === undefined) throw new Error('Tor is not running');
    const pid = unit.proc.pid;
    const logFrom = unit.proc.out.length;
    // The probe: an address of the range nothing maps (the onion's address above is the only mapping).
    const unmapped = onionAddr === '10.200.0.7' ? '10.200.0.8' : '10.200.0.7';
    const r = await lab.probe('client', [{ kind: 'tcp', host: unmapped, port: 80, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 3, readTimeout: 3 }]);
    expect(r[0]?.outcome, 'the probe reached Tor (TransPort accepted it)').toBe('connected');
    await sleep(3000);
    const logged = unit.proc.out.slice(logFrom);
    console.log(`tor pid ${pid} before the probe; after it: exited=${JSON.stringify(unit.proc.exited)}; its log since:\n${logged}\n${unit.proc.err.slice(-2000)}`);
    expect(unit.proc.exited, `Tor died after the probe\n${logged}\n${unit.proc.err.slice(-2000)}`).toBeUndefined();
    expect(world.gw.get(UNIT.tor)?.proc.pid).toBe(pid);

    // Still answering TransPort and DNSPort: the clearnet page by name, and the onion site by its mapping.
    const again = await until(clearnet, (x) => x.status === '200' && x.body.includes(WEB_MARKER), 60_000);
    expect(again.status, again.stderr).toBe('200');
    const onion = await until(() => lab.curl(`http://${onionAddr}/`, ['-H', `Host: ${net.onion}`, '--connect-timeout', '7', '-m', '15']), (x) => x.status === '200' && x.body.includes(ONION_MARKER), 120_000);
    expect(onion.status, onion.stderr).toBe('200');
    expect(onion.body).toContain(ONION_MARKER);
    expect(unit.proc.exited).toBeUndefined();
  }, 400_000);
});
