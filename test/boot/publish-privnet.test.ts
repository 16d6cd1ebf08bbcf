/**
 * `npm run test:boot` (issue 21, item 3): a web application published by a service qube through the config's
 * `publish` loads in client qubes, over the lab's real private I2P and Tor networks (test/net/lib/i2pnet.ts,
 * torenet.ts, in up), with gateways booted under the real systemd from a template that install.sls made.
 *
 *   service qube (svc: loopback only, no netvm): the "web application" (netlab.py http-proxy, which logs every
 *     request head and its peer) on 127.0.0.1:8080, and tools/qrexec-dom0.py, the stand-in for the gateway's qrexec
 *     agent socket (a host folder bound at the gateway qube's /run/qubes), dom0's policy (the rendered
 *     70-i2p-gateway-publish.policy, then 90-default's deny) and the qube's qubes.ConnectTCP;
 *   the template: the package through install.sls, which installs its Depends, qubes-core-qrexec among them: a
 *     dummy of it (test/boot/lib/qubes.ts) carries tools/qrexec-client-vm, the stand-in that talks to the socket
 *     above, at /usr/bin like the real program; plus the group `qubes`, which qubes-core-agent gives every
 *     template (the connection unit's SupplementaryGroups=);
 *   gateway 1 (sys-i2p, the config's gateway): the packaged socket unit, its per-connection unit (DynamicUser, the
 *     packaged sandbox), i2pd's packaged server tunnel and Tor's packaged onion service; plus the one file per
 *     daemon that joins the private networks (test/boot/lib/privnet.ts, as in privnet.test.ts).
 *
 * Proved, in order:
 *   - `qubes-i2p-gateway status` (as root in the gateway) reports the site's b32 (the one i2pd's keys file gives)
 *     and onion address, and the application answering through qrexec;
 *   - gateway 1's client loads the site by its b32 (dnsmasq → virtual IP → tinyproxy → i2pd's HTTP proxy → the
 *     private I2P network → gateway 1's own server tunnel → the socket unit → qrexec stand-in → the service qube);
 *   - the same client loads it as an onion service through TransPort (DNS → Tor's automap address → TransPort → the
 *     private Tor network → gateway 1's own onion service → the socket unit → …). Before the client asks, the
 *     network's own Tor client loads it through SocksPort, which proves the descriptor is on the HSDirs (a Tor
 *     client that asks too early does not ask the same HSDirs again soon);
 *   - a second gateway (sys-i2p-2) booted from the same template into its own namespace on the same up
 *     (Lab.addGateway), with its own client: its i2pd has a router identity of its own (not gateway 1's), both
 *     gateways' router infos reach the network's floodfills, and its client loads gateway 1's site by the b32;
 *   - the service qube has loopback only (no link, no route) before and after, and every request the application
 *     saw came from 127.0.0.1 through a qrexec call dom0's policy allowed, made by the gateway's connection unit
 *     as a dynamic user;
 *   - nothing leaks upstream from either gateway: up records every frame on its eth0 (gateway 1) and eth1 (gateway
 *     2), each with its interface; not one client packet of either since gateway 1's boot began, and every packet
 *     the lab's tag table marks as Tor's or the router's (both gateways' namespaces have it) goes to a node of the
 *     private networks (an I2P router, a Tor node, or the other gateway's router), except i2pd's reseed lookups
 *     (DNS to the netvm's resolvers: it knows fewer routers than its reseed.threshold, so it reseeds; attributed
 *     by its journal, which names the reseed hosts it could not find). A control proves the check sees
 *     gateway 2's side: a client's frame put on gateway 2's eth0 below its firewall, and a datagram of gateway 2's
 *     Tor user to a host that is no node (which the package's firewall lets through: Tor may reach any relay), are
 *     both caught on eth1.
 *
 * Measured (2 shared cores, loaded; the `[boot] figures:` line this file prints, in seconds), with per-client
 * destinations (each gateway's client through its own i2pd proxy; i2pd-client-proxies restarts i2pd once the client
 * appears at boot): status had both addresses 5.3 s after gateway 1 settled; the first b32 page 13.3 s after it (i2pd
 * builds tunnels at 15 s pace, so the fetch polls, bounded at 300 s); the onion page at once after that (the
 * network's own client 0.4 s, the gateway's client 0.5 s); gateway 2's first page of the site 19.6 s after it
 * settled. The whole file takes about 145 s (template install and both networks about 90 s of it, two boots, the
 * fetches).
 * Run it alone: npx vitest run --config vitest.boot.config.ts test/boot/publish-privnet.test.ts
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishedServices } from '../../src/config/publish.ts';
import { i2pdKeysPath, onionDir } from '../../src/render/gateway/publish.ts';
import { b32Address, identityHash, netDbPath, type I2pNet } from '../net/lib/i2pnet.ts';
import { A, hitsNotThroughTor, kernelAnswer, Lab, onIface, PYTHON, SANCTIONED_DSCP, unsanctioned, describe as describeFrames, type Frame, type LabGateway, type UpEvent } from '../net/lib/lab.ts';
import { startServiceQube, type ServiceQube } from '../net/lib/service-qube.ts';
import { must, run } from '../net/lib/sh.ts';
import type { TorNet } from '../net/lib/torenet.ts';
import type { Overlay } from '../util/chroot.ts';
import { DYNAMIC_UIDS } from './lib/running.ts';
import { bootGateway, gatewayServices, shutdown, uidIn, type GatewayQube } from './lib/gateway.ts';
import type { Machine } from './lib/machine.ts';
import { installedTemplate, privateNetEdits, startPrivateNets, stopPrivateNets, until, type PrivateNets } from './lib/privnet.ts';
import { buildRelease } from './lib/template.ts';

const log = (msg: string): void => console.log(`[boot] ${msg}`);
const PORT = 8080;
// The default i2p.clientDestinations, per-client: each gateway's client through its own i2pd proxy. (Pinned to shared
// until i2pd-client-proxies stopped reloading i2pd on a gateway with an I2P site: the reload left the site taking no
// stream, test/net/publish-client-destinations.test.ts.)
const RELEASE = buildRelease({ publish: [{ name: 'wiki', qube: 'webapp', port: PORT, i2p: true, onion: true }] });
const SERVICE = publishedServices(RELEASE.config)[0];
if (SERVICE === undefined) throw new Error('the test config publishes nothing');
const GATEWAY = RELEASE.config.qubes.gateway;
/** What the application answers: a client that sees it got the service qube's page. */
const BANNER = 'QIG-PUBLISHED-WEBAPP';

const started = Date.now();
const figures: Record<string, number> = {};
let pristine = '';
let template: Overlay | undefined;
let lab: Lab | undefined;
let nets: PrivateNets | undefined;
let svc: ServiceQube | undefined;
let gw: GatewayQube | undefined;
let gw2: GatewayQube | undefined;
let seat2: LabGateway | undefined;
let mark = 0;
let bootedAt = 0;
/** The site's addresses, as status reported them. */
let b32 = '';
let onion = '';
/** The visitor destination i2pd's server tunnel named for gateway 1's client (X-I2P-DestB32). */
let visitor1 = '';

const L = (): Lab => need(lab, 'lab');
const G = (): Machine => need(gw, 'gateway 1').machine;
function need<T>(x: T | undefined, what: string): T {
  if (x === undefined) throw new Error(`${what} is not up: an earlier step failed`);
  return x;
}

beforeAll(async () => {
  const installed = await installedTemplate(RELEASE, {
    name: 'qig-template-publish',
    log,
    // What qubes-core-agent gives every template: the group qubes (the connection unit's SupplementaryGroups=).
    inside: async (tm) => {
      await tm.must(['groupadd', '--system', 'qubes']);
    },
  });
  pristine = installed.pristine;
  template = installed.template;
  const t = installed.template;
  lab = await Lab.create({ sanctionedUsers: [], sanctionedUids: [uidIn(t.upper, 'debian-tor'), uidIn(t.upper, 'i2pd')], gateway: 'booted', serviceQube: true });
  nets = await startPrivateNets(lab, log);
  figures['networksUpS'] = (Date.now() - started) / 1000;
  const agentDir = join(lab.scratch, 'gw1-run-qubes');
  mkdirSync(agentDir, { recursive: true, mode: 0o755 });
  svc = await startServiceQube(lab, { config: RELEASE.config, qube: SERVICE.qube, port: PORT, banner: BANNER, socket: join(agentDir, 'qrexec-agent') });
  mark = lab.upMark();
  gw = await bootGateway(lab, {
    name: GATEWAY,
    lowers: [t.upper, pristine],
    rw: join(t.base, `rw-${GATEWAY}`),
    services: gatewayServices(RELEASE.config.qubes.service),
    edits: privateNetEdits(nets),
    binds: [[agentDir, '/run/qubes']],
    log,
  });
  bootedAt = Date.now();
}, 900_000);

afterAll(async () => {
  log(`figures: ${JSON.stringify({ ...figures, suiteS: (Date.now() - started) / 1000 })}`);
  await shutdown(gw2);
  await shutdown(gw);
  await stopPrivateNets(nets);
  await lab?.destroy();
  await template?.dispose();
}, 300_000);

/** The service qube's links and routes: it must have loopback and nothing else. */
async function svcNetwork(): Promise<{ links: string[]; routes: string }> {
  const links = (await L().nsRun('svc', ['ip', '-o', 'link', 'show'])).stdout.trim().split('\n').map((l) => l.split(':')[1]?.trim() ?? '');
  const routes = [(await L().nsRun('svc', ['ip', 'route', 'show'])).stdout.trim(), (await L().nsRun('svc', ['ip', '-6', 'route', 'show'])).stdout.trim()].join('');
  return { links, routes };
}

function header(hit: UpEvent, name: string): string | undefined {
  return (hit['headers'] as string[][]).find(([k]) => k?.toLowerCase() === name.toLowerCase())?.[1];
}

/** A file of a booted qube, read as root inside it (binary-safe). */
async function readInside(m: Machine, path: string): Promise<Buffer> {
  return Buffer.from((await m.must(['base64', '-w0', path])).stdout.trim(), 'base64');
}

describe('a site published by a service qube, over the private I2P and Tor networks', () => {
  it('the service qube has loopback and nothing else: no link, no route', async () => {
    expect(await svcNetwork()).toEqual({ links: ['lo'], routes: '' });
  });

  it("status reports the site's b32 (the one i2pd's keys give) and onion address, and the application answering through qrexec", async () => {
    type Check = { id: string; status: string; summary: string };
    const others: string[] = [];
    const read = async (): Promise<Check | undefined> => {
      const r = await G().exec(['qubes-i2p-gateway', 'status', '--json'], { timeoutMs: 90_000 });
      try {
        const checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
        others.push(checks.filter((c) => c.status !== 'ok' && !c.id.startsWith('publish.')).map((c) => `${c.id} ${c.status}: ${c.summary}`).join('; '));
        return checks.find((c) => c.id === `publish.${SERVICE.name}`);
      } catch {
        return undefined;
      }
    };
    // i2pd makes the site's keys when it starts its tunnels, after the boot settled: until then status says "no keys
    // yet", and a site without its I2P address is not published yet: WAIT, never OK.
    const seen: Array<Check | undefined> = [];
    const { last } = await until(
      async () => {
        const c = await read();
        seen.push(c);
        return c;
      },
      (c) => c?.status === 'ok' && /\.b32\.i2p\b/.test(c.summary) && /\.onion\b/.test(c.summary),
      180_000,
    );
    expect(last?.status, JSON.stringify(last)).toBe('ok');
    const early = seen.filter((c) => c !== undefined && !/\.b32\.i2p\b/.test(c.summary));
    log(`status before the b32: ${early.length} of ${seen.length} reads (${JSON.stringify(early.map((c) => [c?.status, c?.summary]))}); the other lines not OK then: ${JSON.stringify(others.slice(0, early.length))}`);
    expect(early.filter((c) => c?.status === 'ok'), 'OK for a site without its I2P address').toEqual([]);
    // The state of the report: the application answers, only the I2P address is missing (not made yet): WAIT.
    for (const c of early.filter((c) => /no keys yet/.test(c?.summary ?? '') && /the application answers/.test(c?.summary ?? ''))) expect(c?.status, JSON.stringify(c)).toBe('wait');
    const summary = last?.summary ?? '';
    b32 = /\b[a-z2-7]{52}\.b32\.i2p\b/.exec(summary)?.[0] ?? '';
    figures['statusAddressesS'] = (Date.now() - bootedAt) / 1000;
    onion = /\b[a-z2-7]{56}\.onion\b/.exec(summary)?.[0] ?? '';
    log(`status: ${summary}`);
    expect(b32).toBe(b32Address(await readInside(G(), i2pdKeysPath(SERVICE.name))));
    expect(onion).toBe((await readInside(G(), `${onionDir(SERVICE.name)}/hostname`)).toString().trim());
  }, 240_000);

  it("gateway 1's client loads the site by its b32: the private network, the gateway's own server tunnel, qrexec, the service qube", async () => {
    expect(b32, 'no b32 from status').not.toBe('');
    const s = need(svc, 'the service qube');
    const before = s.hits().length;
    const { last, took } = await until(() => L().curl(`http://${b32}/`, ['-m', '20']), (r) => r.status === '200' && r.body.includes(BANNER), 300_000);
    figures['b32FirstFetchS'] = (Date.now() - bootedAt) / 1000;
    log(`b32: first page ${Date.now() - bootedAt} ms after gateway 1 settled (${took} ms of polling)`);
    expect(last.status, `${last.stderr}\n${last.body.slice(0, 800)}`).toBe('200');
    expect(last.body).toContain(BANNER);
    const hit = s.hits().slice(before).find((h) => header(h, 'Host') === b32);
    expect(hit, JSON.stringify(s.hits().slice(before))).toBeDefined();
    visitor1 = header(hit as UpEvent, 'X-I2P-DestB32') ?? '';
    expect(visitor1, "i2pd's server tunnel names the visitor").toMatch(/^[a-z2-7]{52}\.b32\.i2p$/);
    expect(visitor1, 'the visitor is not the site itself').not.toBe(b32);
  }, 360_000);

  it('the same client loads it as an onion service through TransPort (DNS → automap address → TransPort → the onion)', async () => {
    expect(onion, 'no onion from status').not.toBe('');
    const tor = need(nets, 'the networks').tor as TorNet;
    const s = need(svc, 'the service qube');
    const t0 = Date.now();
    // The descriptor on the network's HSDirs first: the network's own client loads the site through its SocksPort.
    const gate = await until(() => tor.fetch(`http://${onion}/`, 30), (r) => r.status === '200' && r.body.includes(BANNER), 300_000);
    expect(gate.last.status, `the network's own Tor client: ${gate.last.err}\n${tor.logs()}`).toBe('200');
    figures['onionOnNetworkS'] = (Date.now() - bootedAt) / 1000;
    const before = s.hits().length;
    const dig = await run([...L().clientView(), 'dig', '+short', '+time=5', '+tries=1', `@${A.dns1}`, onion, 'A'], { timeoutMs: 10_000 });
    const addr = dig.stdout.trim().split('\n')[0] ?? '';
    expect(addr, dig.stderr).toMatch(/^10\.(19[2-9]|2[0-5][0-9])\.\d+\.\d+$/);
    const { last, took } = await until(() => L().curl(`http://${addr}/`, ['-H', `Host: ${onion}`, '--connect-timeout', '20', '-m', '30']), (r) => r.status === '200' && r.body.includes(BANNER), 180_000);
    figures['onionClientFetchS'] = (Date.now() - t0) / 1000;
    log(`onion: on the network after ${gate.took} ms, then the client's page after ${took} ms of polling`);
    expect(last.status, `${last.stderr}\n${last.body.slice(0, 800)}`).toBe('200');
    expect(last.body).toContain(BANNER);
    expect(s.hits().slice(before).map((h) => header(h, 'Host'))).toContain(onion);
  }, 560_000);

  it("a second gateway from the same template, with its own router identity, loads gateway 1's site by b32 from its own client", async () => {
    expect(b32, 'no b32 from status').not.toBe('');
    const t = need(template, 'the template');
    const s = need(svc, 'the service qube');
    seat2 = await L().addGateway();
    gw2 = await bootGateway(seat2, {
      name: `${GATEWAY}-2`,
      lowers: [t.upper, pristine],
      rw: join(t.base, `rw-${GATEWAY}-2`),
      services: gatewayServices(RELEASE.config.qubes.service),
      edits: privateNetEdits(need(nets, 'the networks')),
      log,
    });
    const booted2 = Date.now();
    const m2 = gw2.machine;
    const ri = async (m: Machine): Promise<Buffer> => {
      await until(async () => (await m.exec(['test', '-s', '/var/lib/i2pd/router.info'])).code, (c) => c === 0, 60_000);
      return readInside(m, '/var/lib/i2pd/router.info');
    };
    const id1 = identityHash(await ri(G())).toString('hex');
    const id2 = identityHash(await ri(m2)).toString('hex');
    log(`router identities: gateway 1 ${id1.slice(0, 16)}…, gateway 2 ${id2.slice(0, 16)}…`);
    expect(id2, 'both gateways run one router identity').not.toBe(id1);
    const before = s.hits().length;
    const seat = need(seat2, 'gateway 2');
    // A path of its own: gateway 1's polling above may still deliver a request it gave up on (curl's -m 20; i2pd keeps
    // the stream) after this test began (a whole run saw gateway 1's visitor among these hits); only gateway 2's count.
    const { last, took } = await until(() => seat.curl(`http://${b32}/from-gateway-2`, ['-m', '20']), (r) => r.status === '200' && r.body.includes(BANNER), 300_000);
    figures['secondGatewayFetchS'] = (Date.now() - booted2) / 1000;
    log(`gateway 2: first page of gateway 1's site ${Date.now() - booted2} ms after gateway 2 settled (${took} ms of polling)`);
    expect(last.status, `${last.stderr}\n${last.body.slice(0, 800)}`).toBe('200');
    expect(last.body).toContain(BANNER);
    const visitors = s.hits().slice(before).filter((h) => header(h, 'Host') === b32 && /^GET \/from-gateway-2 /.test(String(h['request']))).map((h) => header(h, 'X-I2P-DestB32'));
    log(`gateway 2's visitors: ${JSON.stringify(visitors)} (gateway 1's: ${visitor1})`);
    expect(visitors.length).toBeGreaterThan(0);
    expect(visitors, "gateway 2's client arrived as gateway 2's router's visitor, not gateway 1's").not.toContain(visitor1);
  }, 700_000);

  it("both gateways' routers are in the private network: their router infos reach the network's floodfills", async () => {
    const i2p = need(nets, 'the networks').i2p as I2pNet;
    const infos = await Promise.all([G(), need(gw2, 'gateway 2').machine].map((m) => readInside(m, '/var/lib/i2pd/router.info')));
    const paths = infos.map((ri) => netDbPath(ri));
    expect(paths[1], 'two gateways, one router').not.toBe(paths[0]);
    const floodfills = i2p.routers.filter((r) => r.floodfill);
    const stored = (): Array<[number, string]> => paths.flatMap((p, i) => floodfills.filter((f) => existsSync(join(f.dir, 'netDb', p))).map((f): [number, string] => [i + 1, f.name]));
    // Floodfills write their netDb to disk once a minute (i2pd's NetDb::SaveUpdated).
    const { last } = await until(async () => stored(), (s) => new Set(s.map(([g]) => g)).size === 2, 240_000);
    log(`router infos on the floodfills' disks: ${JSON.stringify(last)}`);
    expect([...new Set(last.map(([g]) => g))].sort()).toEqual([1, 2]);
  }, 300_000);

  it('every request the application saw came through a qrexec call the policy allowed, made by the connection unit; the service qube still has no network', async () => {
    const s = need(svc, 'the service qube');
    const hits = s.hits();
    const calls = s.calls();
    const connected = calls.filter((c) => c['result'] === 'connected');
    log(`service qube: ${hits.length} requests, ${calls.length} qrexec calls (${connected.length} connected)`);
    expect(hits.length).toBeGreaterThan(0);
    expect([...new Set(hits.map((h) => h['peer']))]).toEqual(['127.0.0.1']);
    expect(hits.length).toBeLessThanOrEqual(connected.length);
    for (const c of connected) {
      expect(c).toMatchObject({ argv: ['--use-stdin-socket', SERVICE.qube, `qubes.ConnectTCP+${PORT}`], source: GATEWAY, target: SERVICE.qube, service: 'qubes.ConnectTCP', arg: String(PORT), policy: 'allow' });
      const uid = Number(c['uid']);
      expect(uid >= DYNAMIC_UIDS[0] && uid <= DYNAMIC_UIDS[1], `a call as uid ${uid}, not a dynamic user`).toBe(true);
    }
    expect(await svcNetwork()).toEqual({ links: ['lo'], routes: '' });
  });

  it('nothing leaks upstream from either gateway: no client packet on eth0 or eth1, every sanctioned packet to a node of the private networks', async () => {
    const seat = need(seat2, 'gateway 2');
    const events = await L().upSince(mark);
    const v = upstream(events, seat);
    log(`upstream since gateway 1's boot: ${JSON.stringify(v.counts)}`);
    expect(v.client['eth0'], "gateway 1's client packets upstream").toBe('');
    expect(v.client[seat.upIface], "gateway 2's client packets upstream").toBe('');
    expect(v.client['elsewhere'], 'frames on an interface of up that faces no gateway').toBeUndefined();
    expect(v.stray, 'sanctioned packets to an address that is no node of the private networks').toBe('');
    expect(hitsNotThroughTor(events, (need(nets, 'the networks').tor as TorNet).exit.addr), "client requests served upstream that did not come through Tor's exit").toEqual([]);
    // The one exception, and whose it is: i2pd reseeds at its start when it knows fewer routers than its
    // reseed.threshold (25 by default; the private network has 8), and looks the reseed hosts up with the netvm's resolvers (Qubes' 10.139.1.1/.2, nothing listens there in
    // the lab): each gateway whose frames went there has i2pd's reseed in its journal.
    for (const [iface, m] of [['eth0', G()], [seat.upIface, need(gw2, 'gateway 2').machine]] as const) {
      if ((v.counts[iface]?.resolver ?? 0) === 0) continue;
      const journal = (await m.must(['journalctl', '-b', '-u', 'i2pd', '--no-pager', '-o', 'cat'])).stdout;
      const reseed = journal.split('\n').filter((l) => /reseed/i.test(l));
      log(`${iface}: ${v.counts[iface]?.resolver} frames to the netvm's resolvers; i2pd's journal: ${JSON.stringify(reseed.slice(0, 3))}`);
      expect(reseed.length, `${iface}: DNS to the netvm's resolvers, and no reseed in i2pd's journal:\n${journal.slice(-3000)}`).toBeGreaterThan(0);
    }
    // Not blind: both gateways' routers and Tor talked to the networks, and up saw it on each one's link.
    expect(v.counts['eth0']?.sanctioned ?? 0).toBeGreaterThan(0);
    expect(v.counts[seat.upIface]?.sanctioned ?? 0).toBeGreaterThan(0);
  });

  it("the check is not blind to gateway 2: a client frame out of its eth0 below its firewall, and its Tor user's datagram to a host that is no node, are caught on up's eth1", async () => {
    const seat = need(seat2, 'gateway 2');
    const m2 = need(gw2, 'gateway 2').machine;
    const m = L().upMark();
    // A client's TCP SYN to the clearnet web host, put on gateway 2's eth0 below its netfilter (what a leak would send).
    const upMac = (JSON.parse((await must(['ip', '-n', L().ns.up, '-j', 'link', 'show', seat.upIface])).stdout) as Array<{ address: string }>)[0]?.address ?? '';
    const probe = [{ kind: 'l2syn', iface: 'eth0', mac: upMac, src: A.client4, dst: A.web, port: 80, timeout: 0.5 }];
    await must(['ip', 'netns', 'exec', seat.ns.gw, PYTHON, join(L().scratch, 'tools/netlab.py'), 'probe', JSON.stringify(probe)]);
    // Tor's user of gateway 2, through the package's own firewall (oifgroup 1, Tor's user: accepted), to a non-node.
    await m2.must(['setpriv', '--reuid=debian-tor', '--regid=debian-tor', '--clear-groups', 'python3', '-c', `import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"qig-control", ("${A.web}", 443))`]);
    const v = upstream(await L().upSince(m), seat);
    log(`control: ${JSON.stringify(v.counts)}\nclient:\n${v.client[seat.upIface]}\nstray:\n${v.stray}`);
    expect(v.client[seat.upIface]).toContain(`"dport":80`);
    expect(v.client[seat.upIface]).toContain(`"src":"${A.client4}"`);
    expect(v.stray).toContain(`"dst":"${A.web}"`);
    expect(v.stray).toContain(`"iface":"${seat.upIface}"`);
    expect(v.client['eth0'], 'the control sent nothing from gateway 1').toBe('');
  });
});

/**
 * What up saw of the gateways' upstream (events of up's recorder), per up interface: the client packets (untagged,
 * not link housekeeping) and, over all, the sanctioned packets (tagged by the lab's table: Tor's or the router's
 * user) whose destination is no node of the private networks. A gateway's router is a node of the I2P network too:
 * the other gateway's upstream address counts as one. Sanctioned DNS to the netvm's resolvers (A.dns1, A.dns2: port
 * 53) is counted apart (`resolver`): i2pd's reseed lookups, which the test attributes with i2pd's journal. Untagged
 * frames that are a gateway's kernel answering a node (kernelAnswer: ICMP unreachable or TCP reset from the gateway's
 * own upstream address, while i2pd restarts) are counted apart too (`kernelAnswers`), not as client packets.
 */
function upstream(events: readonly UpEvent[], seat: LabGateway): { client: Record<string, string>; stray: string; counts: Record<string, { frames: number; sanctioned: number; resolver: number; kernelAnswers: number }> } {
  const n = need(nets, 'the networks');
  const nodes = new Set([...n.i2p.routers.map((r) => r.addr), ...n.tor.nodes.map((t) => t.addr)]);
  const others: Record<string, string> = { eth0: seat.gwUp4, [seat.upIface]: A.gwUp4 };
  const client: Record<string, string> = {};
  const counts: Record<string, { frames: number; sanctioned: number; resolver: number; kernelAnswers: number }> = {};
  const own: Record<string, string> = { eth0: A.gwUp4, [seat.upIface]: seat.gwUp4 };
  const resolver = (f: Frame): boolean => (f.dst === A.dns1 || f.dst === A.dns2) && f.dport === 53 && (f.proto === 17 || f.proto === 6);
  const stray: Frame[] = [];
  for (const iface of Object.keys(others)) {
    const frames = onIface(events, iface);
    const sanctioned = frames.filter((f) => f.dscp === SANCTIONED_DSCP);
    // The gateway's kernel answering a node (ICMP unreachable, TCP reset) while i2pd restarts is no one's traffic
    // (kernelAnswer): i2pd-client-proxies restarts i2pd when the client appears at boot, on a gateway with an I2P site.
    const peers = new Set([...nodes, others[iface] as string]);
    const answers = (f: Frame): boolean => kernelAnswer(f, peers, own[iface]);
    client[iface] = describeFrames(unsanctioned(frames).filter((f) => !answers(f)));
    counts[iface] = { frames: frames.length, sanctioned: sanctioned.length, resolver: sanctioned.filter(resolver).length, kernelAnswers: unsanctioned(frames).filter(answers).length };
    stray.push(...sanctioned.filter((f) => !nodes.has(f.dst ?? '') && f.dst !== others[iface] && !resolver(f)));
  }
  const known = new Set(Object.keys(others));
  const elsewhere = events.filter((e): e is Frame => e.ev === 'frame' && !known.has(String(e['iface'])));
  if (elsewhere.length > 0) client['elsewhere'] = describeFrames(elsewhere);
  return { client, stray: describeFrames(stray), counts };
}
