/**
 * Tor's isolation for client qubes' DNS (issue 22, item 2), on the lab's real private Tor network (lib/torenet.ts):
 * the emulated gateway (World: the packaged units and configs, the real Tor, dnsmasq and our DNS relay) joins it,
 * two client qubes each resolve names of the network's "clearnet" DNS through the gateway and connect to the web
 * server, and a watcher in the gateway, as root on Tor's control socket (SETEVENTS STREAM), records every stream
 * Tor opens: its source address (SOURCE_ADDR), its circuit, its target. Each client's lookups must reach Tor from
 * that client's own loopback stand-in (127.B.C.D for 10.B.C.D) and the two clients' lookups must never share a
 * circuit; their connections neither (TransPort, IsolateClientAddr); and a `.i2p` name never reaches Tor.
 * On the old path (dnsmasq forwarding every client's names from 127.0.0.1) the sources are one and the same.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATHS } from '../../src/render/gateway/common.ts';
import { A, type Lab, type LabClient } from './lib/lab.ts';
import { expectUpClean } from './lib/suite.ts';
import { gatewayTorrc, MORE_NAMES, TorNet, WEB_ADDR, WEB_MARKER, WEB_NAME, WEB_PORT } from './lib/torenet.ts';
import { run, sleep } from './lib/sh.ts';
import { circuitsOf, clientStreams, standIn, streams, summary, WATCH } from './lib/torstreams.ts';
import { World } from './lib/world.ts';

let w: World | undefined;
let lab: Lab;
let tor: TorNet | undefined;
let second: LabClient;

beforeAll(async () => {
  w = await World.create({});
  lab = w.lab;
  tor = await TorNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 150_000, onionTimeoutMs: 120_000, attempts: 2 });
  const wr = await lab.gwRun(['sh', '-c', `cat > ${PATHS.torrcD}/lab-privnet.conf`], { input: gatewayTorrc(tor.dirAuthorities) });
  expect(wr.code, wr.stderr).toBe(0);
  w.torExtraArgs = [];
  await w.use({ tor: 'real', router: 'off', dnsmasq: true, tinyproxy: false });
  second = await lab.addClient();
}, 2 * (150_000 + 120_000) + 60_000);

afterAll(async () => {
  await w?.gw.stopAll();
  await tor?.stop();
  await w?.destroy();
});

/** An A lookup from a client qube through its DNS (Qubes' resolver address, redirected to the gateway's dnsmasq). */
async function resolve(who: 'first' | LabClient, name: string, tcp = false): Promise<string[]> {
  if (who === 'first') {
    const r = await run([...lab.clientView(), 'dig', '+short', ...(tcp ? ['+tcp'] : []), '+time=8', '+tries=1', `@${A.dns1}`, name, 'A'], { timeoutMs: 15_000 });
    return r.stdout.trim().split('\n').filter((l) => l !== '');
  }
  const [r] = await who.probe([{ kind: 'dns', server: A.dns1, name, qtype: 'A', timeout: 8, ...(tcp ? { tcp: true } : {}) }]);
  return (r?.answers ?? []).filter((a) => a.type === 'A').map((a) => a.data);
}

describe('two client qubes\' DNS on the private Tor network: each from its own source, never on one circuit', () => {
  it('the gateway\'s Tor is on the network: the first client loads the clearnet page by name', async () => {
    const t0 = Date.now();
    let last = await lab.curl(`http://${WEB_NAME}:${WEB_PORT}/`, ['-m', '20']);
    while (!(last.status === '200' && last.body.includes(WEB_MARKER)) && Date.now() - t0 < 150_000) {
      await sleep(1000);
      last = await lab.curl(`http://${WEB_NAME}:${WEB_PORT}/`, ['-m', '20']);
    }
    console.log(`dns-isolation: gateway's Tor served the first page ${Date.now() - t0} ms after its start`);
    expect(last.status, `${last.stderr}\n${last.body.slice(0, 400)}`).toBe('200');
  }, 200_000);

  it('the control socket shows each client\'s lookups from its stand-in (127.137.0.10, 127.137.0.11), on circuits the other client\'s lookups and connections never use; .i2p never reaches Tor', async () => {
    const mark = lab.upMark();
    const out = join(lab.scratch, 'stream-events.txt');
    writeFileSync(out, '');
    const watcher = lab.gwRun(['python3', '-c', WATCH, PATHS.torControl, PATHS.torCookie, out, '60'], { timeoutMs: 90_000 });
    const t0 = Date.now();
    while (!readFileSync(out, 'utf8').startsWith('READY') && Date.now() - t0 < 20_000) await sleep(200);
    expect(readFileSync(out, 'utf8'), 'the watcher did not authenticate on the control socket').toMatch(/^READY/);

    const first = MORE_NAMES.filter((n) => n.startsWith('a'));
    const other = MORE_NAMES.filter((n) => n.startsWith('b'));
    // Interleaved, so both clients' lookups are in flight in the same moments; one of each over TCP.
    for (const [i, [x, y]] of first.map((n, i) => [n, other[i] as string] as const).entries()) {
      const [ra, rb] = await Promise.all([resolve('first', x, i === 3), resolve(second, y, i === 3)]);
      expect(ra, x).toEqual([WEB_ADDR]);
      expect(rb, y).toEqual([WEB_ADDR]);
    }
    // A .i2p name: answered by the gateway (the virtual IP), never asked of Tor.
    expect(await resolve('first', 'not-for-tor.i2p')).toEqual([A.vip]);
    expect(await resolve(second, 'not-for-tor-either.i2p')).toEqual([A.vip]);
    // And each connects: TransPort streams from the client's own address.
    const page = await lab.curl(`http://${first[0]}:${WEB_PORT}/`, ['-m', '20']);
    expect(page.body).toContain(WEB_MARKER);
    const [conn] = await second.probe([{ kind: 'tcp', host: WEB_ADDR, port: WEB_PORT, timeout: 20, readTimeout: 20, send: `GET / HTTP/1.0\r\nHost: ${other[0]}:${WEB_PORT}\r\n\r\n` }]);
    expect(String(conn?.data ?? ''), JSON.stringify(conn)).toContain(WEB_MARKER);
    await sleep(2000);
    await watcher;

    const lines = readFileSync(out, 'utf8').split('\n');
    const all = streams(lines);
    const { lookups: la, connections: ca } = clientStreams(all, first, A.client4, WEB_ADDR);
    const { lookups: lb, connections: cb } = clientStreams(all, other, second.addr, WEB_ADDR);
    const circuits = circuitsOf;
    console.log(`dns-isolation: first client's lookups\n${summary(la)}\nsecond client's lookups\n${summary(lb)}\nconnections\n${summary([...ca, ...cb])}`);

    // Every lookup was seen, each from its client's stand-in, as a DNS request attached to a circuit.
    expect(new Set(la.map((s) => s.target.replace(/:0$/, '')))).toEqual(new Set(first));
    expect(new Set(lb.map((s) => s.target.replace(/:0$/, '')))).toEqual(new Set(other));
    for (const s of la) expect(s.source.split(':')[0], summary([s])).toBe(standIn(A.client4));
    for (const s of lb) expect(s.source.split(':')[0], summary([s])).toBe(standIn(second.addr));
    for (const s of [...la, ...lb]) {
      expect(s.purpose, summary([s])).toBe('DNS_REQUEST');
      expect(s.circuits.size, summary([s])).toBeGreaterThan(0);
    }
    // No circuit carries both clients' lookups, nor one client's lookups and the other's connections.
    const [cla, clb] = [circuits(la), circuits(lb)];
    expect([...cla].filter((c) => clb.has(c)), 'a circuit with both clients\' lookups').toEqual([]);
    expect(ca.length).toBeGreaterThan(0);
    expect(cb.length).toBeGreaterThan(0);
    const [cca, ccb] = [circuits(ca), circuits(cb)];
    expect([...cca].filter((c) => ccb.has(c) || clb.has(c)), 'a circuit of the first client shared with the second').toEqual([]);
    expect([...ccb].filter((c) => cla.has(c)), 'a circuit of the second client shared with the first').toEqual([]);
    // .i2p: never a stream in Tor.
    expect(lines.filter((l) => /\.i2p\b/.test(l))).toEqual([]);
    await expectUpClean(lab, mark, 'two clients\' lookups and connections through Tor');
  }, 180_000);
});
