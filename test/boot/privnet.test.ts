/**
 * `npm run test:boot`, part 3 (issue 21): the booted gateway joins the lab's private I2P and Tor networks
 * (test/net/lib/i2pnet.ts, torenet.ts, in up) with the package as install.sls puts it into the template, plus one
 * small file per daemon in the gateway qube's root, and a client qube loads an eepsite by its b32, a clearnet page
 * by name and an onion site, all under the real systemd (the drop-in's ExecStartPre= runs as the unit's user
 * inside the unit's sandbox). test/net/privnet.test.ts proves the same with the emulated gateway, plus Chromium.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATHS } from '../../src/render/gateway/common.ts';
import { EEPSITE_MARKER, gatewayI2pdDropIn, gatewaySeedFiles, I2pNet } from '../net/lib/i2pnet.ts';
import { A, Lab, serverHits, unsanctioned, describe as describeFrames } from '../net/lib/lab.ts';
import { run } from '../net/lib/sh.ts';
import { gatewayTorrc, MORE_NAMES, ONION_MARKER, TorNet, WEB_ADDR, WEB_MARKER, WEB_NAME, WEB_PORT } from '../net/lib/torenet.ts';
import { circuitsOf, clientStreams, standIn, streams, summary, WATCH } from '../net/lib/torstreams.ts';
import { aptCacheDirs, ensurePristine, makeOverlay, writeAptSources, type Overlay } from '../util/chroot.ts';
import { bootGateway, gatewayServices, shutdown, uidIn, type GatewayQube } from './lib/gateway.ts';
import { Machine } from './lib/machine.ts';
import { installCoreAgentStandIns, writeQubesDb } from './lib/qubes.ts';
import { applyState, buildRelease, downloadFor, installDummy, stageFormula } from './lib/template.ts';

const log = (msg: string): void => console.log(`[boot] ${msg}`);
const RELEASE = buildRelease({});
const INSTALL = 'i2p-gateway.install';

let pristine = '';
let template: Overlay | undefined;
let lab: Lab | undefined;
let i2p: I2pNet | undefined;
let tor: TorNet | undefined;
let gw: GatewayQube | undefined;
let mark = 0;
let bootedAt = 0;

beforeAll(async () => {
  pristine = await ensurePristine(log);
  await downloadFor(pristine, RELEASE, INSTALL, log);
  template = await makeOverlay([pristine]);
  await writeAptSources(template.root);
  installCoreAgentStandIns(template.root);
  writeQubesDb(template.root, { type: 'TemplateVM', persistence: 'full', services: [] });
  stageFormula(template.root, RELEASE);
  const tm = await Machine.boot(template, { name: 'qig-template-privnet', network: { kind: 'private' }, binds: await aptCacheDirs(), log });
  try {
    await installDummy(tm);
    await applyState(tm, RELEASE, INSTALL, log);
    await tm.poweroff();
  } finally {
    await tm.kill();
  }
  await template.unmount();

  const t = template;
  lab = await Lab.create({ sanctionedUsers: [], sanctionedUids: [uidIn(t.upper, 'debian-tor'), uidIn(t.upper, 'i2pd')], gateway: 'booted' });
  i2p = await I2pNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 60_000 });
  tor = await TorNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 150_000 });
  log(`networks up: i2p ${i2p.routers.length} routers, tor bootstrapped in ${tor.bootstrapMs} ms`);
  const edits: Array<readonly [string, string | Uint8Array]> = [
    ['/etc/systemd/system/i2pd.service.d/zz-lab-privnet.conf', gatewayI2pdDropIn(PATHS.i2pdRuntimeConf, true)],
    ...gatewaySeedFiles(i2p),
    [`${PATHS.torrcD}/lab-privnet.conf`, gatewayTorrc(tor.dirAuthorities)],
  ];
  mark = lab.upMark();
  gw = await bootGateway(lab, { name: 'sys-i2p', lowers: [t.upper, pristine], rw: join(t.base, 'rw-sys-i2p'), services: gatewayServices(RELEASE.config.qubes.service), edits, log });
  bootedAt = Date.now();
}, 600_000);

afterAll(async () => {
  await shutdown(gw);
  await tor?.stop();
  await i2p?.stop();
  await lab?.destroy();
  await template?.dispose();
});

async function until<T>(f: () => Promise<T>, ok: (t: T) => boolean, ms: number): Promise<{ last: T; took: number }> {
  const t0 = Date.now();
  let last = await f();
  while (!ok(last) && Date.now() - t0 < ms) {
    await new Promise((r) => setTimeout(r, 1000));
    last = await f();
  }
  return { last, took: Date.now() - t0 };
}

describe('the booted gateway joins the private I2P and Tor networks', () => {
  it('i2pd runs with the private network\'s options on top of the packaged config, and the seeds in its netDb', async () => {
    const g = gw as GatewayQube;
    const conf = await g.machine.must(['head', '-n', '2', PATHS.i2pdRuntimeConf]);
    expect(conf.stdout).toBe('netid = 42\nreservedrange = false\n');
    const seeds = await g.machine.must(['sh', '-c', 'ls /var/lib/i2pd/netDb/r*/ | grep -c routerInfo']);
    expect(Number(seeds.stdout.trim())).toBeGreaterThanOrEqual((i2p as I2pNet).routers.length);
  });

  it('the client loads the eepsite by its b32 through the gateway', async () => {
    const net = i2p as I2pNet;
    const { last, took } = await until(() => (lab as Lab).curl(`http://${net.b32}/`, ['-m', '20']), (r) => r.status === '200' && r.body.includes(EEPSITE_MARKER), 180_000);
    log(`eepsite: first page ${Date.now() - bootedAt} ms after the boot settled (${took} ms of polling)`);
    expect(last.status, `${last.stderr}\n${last.body.slice(0, 800)}`).toBe('200');
    expect(last.body).toContain(EEPSITE_MARKER);
  }, 240_000);

  it('the client loads the clearnet page by name; the web server sees only the exit', async () => {
    const net = tor as TorNet;
    const before = net.webRequests().length;
    const { last, took } = await until(() => (lab as Lab).curl(`http://${WEB_NAME}:${WEB_PORT}/`, ['-m', '20']), (r) => r.status === '200' && r.body.includes(WEB_MARKER), 150_000);
    log(`clearnet: first page after ${took} ms of polling`);
    expect(last.status, `${last.stderr}\n${last.body.slice(0, 800)}`).toBe('200');
    expect(last.body).toContain(WEB_MARKER);
    expect([...new Set(net.webRequests().slice(before).map((r) => r.peer))]).toEqual([net.exit.addr]);
  }, 200_000);

  it('the client loads the onion site (its DNS gives a Tor virtual address)', async () => {
    const net = tor as TorNet;
    const dig = await run([...(lab as Lab).clientView(), 'dig', '+short', '+time=5', '+tries=1', `@${A.dns1}`, net.onion, 'A'], { timeoutMs: 10_000 });
    const addr = dig.stdout.trim().split('\n')[0] ?? '';
    expect(addr, dig.stderr).toMatch(/^10\.(19[2-9]|2[0-5][0-9])\.\d+\.\d+$/);
    const { last } = await until(() => (lab as Lab).curl(`http://${addr}/`, ['-H', `Host: ${net.onion}`, '--connect-timeout', '7', '-m', '7']), (r) => r.status === '200' && r.body.includes(ONION_MARKER), 120_000);
    expect(last.status, `${last.stderr}\n${last.body.slice(0, 800)}`).toBe('200');
    expect(last.body).toContain(ONION_MARKER);
  }, 150_000);

  it('two client qubes\' lookups reach Tor from their own stand-ins (the relay under the real systemd), never on one circuit (Tor\'s control socket, as root)', async () => {
    const g = gw as GatewayQube;
    const l = lab as Lab;
    const second = await l.addClient();
    const out = '/run/qig-stream-events.txt';
    const watcher = g.machine.exec(['python3', '-c', WATCH, PATHS.torControl, PATHS.torCookie, out, '45'], { timeoutMs: 90_000 });
    const t0 = Date.now();
    const read = async (): Promise<string> => (await g.machine.exec(['cat', out])).stdout;
    while (!(await read()).startsWith('READY') && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 300));
    expect(await read(), 'the watcher did not authenticate on the control socket').toMatch(/^READY/);
    const first = MORE_NAMES.filter((n) => n.startsWith('a'));
    const other = MORE_NAMES.filter((n) => n.startsWith('b'));
    for (const [i, x] of first.entries()) {
      const y = other[i] as string;
      const [ra, rb] = await Promise.all([
        run([...l.clientView(), 'dig', '+short', '+time=8', '+tries=1', `@${A.dns1}`, x, 'A'], { timeoutMs: 15_000 }),
        second.probe([{ kind: 'dns', server: A.dns1, name: y, qtype: 'A', timeout: 8 }]),
      ]);
      expect(ra.stdout.trim(), x).toBe(WEB_ADDR);
      expect((rb[0]?.answers ?? []).map((a) => a.data), y).toEqual([WEB_ADDR]);
    }
    const w = await watcher;
    expect(w.code, w.stderr).toBe(0);
    const all = streams((await read()).split('\n'));
    const a = clientStreams(all, first, A.client4, WEB_ADDR).lookups;
    const b = clientStreams(all, other, second.addr, WEB_ADDR).lookups;
    log(`stream events: first client\n${summary(a)}\nsecond client\n${summary(b)}`);
    expect(new Set(a.map((s) => s.target))).toEqual(new Set(first.map((n) => `${n}:0`)));
    expect(new Set(b.map((s) => s.target))).toEqual(new Set(other.map((n) => `${n}:0`)));
    for (const s of a) expect(s.source.split(':')[0], summary([s])).toBe(standIn(A.client4));
    for (const s of b) expect(s.source.split(':')[0], summary([s])).toBe(standIn(second.addr));
    const cb = circuitsOf(b);
    expect(circuitsOf(a).size).toBeGreaterThan(0);
    expect([...circuitsOf(a)].filter((c) => cb.has(c)), 'a circuit with both clients\' lookups').toEqual([]);
  }, 150_000);

  it('0 client packets upstream: not while it booted, not since', async () => {
    const events = await (lab as Lab).upSince(mark);
    expect(describeFrames(unsanctioned(events)), 'client packets upstream').toBe('');
    expect(serverHits(events), 'client requests served upstream').toEqual([]);
  });
});
