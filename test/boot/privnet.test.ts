/**
 * `npm run test:boot`, part 3 (issue 21): the booted gateway joins the lab's private I2P and Tor networks
 * (test/net/lib/i2pnet.ts, torenet.ts, in up) with the package as install.sls puts it into the template, plus one
 * small file per daemon in the gateway qube's root, and a client qube loads an eepsite by its b32, a clearnet page
 * by name and an onion site, all under the real systemd (the drop-in's ExecStartPre= runs as the unit's user
 * inside the unit's sandbox), with curl and with Debian 13's headless Chromium (screenshots kept in
 * .cache/privnet-boot/). test/net/privnet.test.ts proves the same with the emulated gateway.
 *
 * Also against the real networks: `qubes-i2p-gateway status --json`, polled from the moment the boot settled, says
 * WAIT (never FAIL) while Tor and the router come up and all OK once they are up; and nothing leaks with the
 * networks up: the client's leak probes, in every state the lab can put the gateway in (running, Tor stopped, i2pd
 * stopped, every table deleted, booted without its service), get no client packet upstream, and every packet the
 * gateway sends upstream is Tor's or the router's (the lab's tag) and goes to a node of the private networks.
 */
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATHS, UNITS } from '../../src/render/gateway/common.ts';
import { chromiumLoadPage, ensureChromiumLayer } from '../net/lib/chromium.ts';
import { EEPSITE_MARKER, I2pNet } from '../net/lib/i2pnet.ts';
import { A, hitsNotThroughTor, kernelAnswer, Lab, SANCTIONED_DSCP, unsanctioned, describe as describeFrames, type Frame, type Probe, type UpEvent } from '../net/lib/lab.ts';
import { run, sleep } from '../net/lib/sh.ts';
import { MORE_NAMES, ONION_MARKER, TorNet, WEB_ADDR, WEB_MARKER, WEB_NAME, WEB_PORT } from '../net/lib/torenet.ts';
import { circuitsOf, clientStreams, standIn, streams, summary, WATCH } from '../net/lib/torstreams.ts';
import type { Overlay } from '../util/chroot.ts';
import { bootGateway, gatewayServices, LEAK_PROBES, shutdown, uidIn, type GatewayQube } from './lib/gateway.ts';
import { ROUTER_STOP_MS } from './lib/machine.ts';
import { installedTemplate, privateNetEdits, startPrivateNets, stopPrivateNets, until, type PrivateNets } from './lib/privnet.ts';
import { buildRelease } from './lib/template.ts';

const log = (msg: string): void => console.log(`[boot] ${msg}`);
const RELEASE = buildRelease({});

let pristine = '';
let template: Overlay | undefined;
let lab: Lab | undefined;
let nets: PrivateNets | undefined;
let i2p: I2pNet | undefined;
let tor: TorNet | undefined;
let gw: GatewayQube | undefined;
let mark = 0;
let bootedAt = 0;
let statusPoll: Promise<StatusReport[]> | undefined;

const G = (): GatewayQube => {
  if (gw === undefined) throw new Error('the gateway is not booted: an earlier step failed');
  return gw;
};
const L = (): Lab => {
  if (lab === undefined) throw new Error('no lab');
  return lab;
};

/** One `qubes-i2p-gateway status --json` run: when it started (ms after the boot settled), its exit, each check. */
interface StatusReport {
  readonly at: number;
  readonly took: number;
  readonly exit: number | null;
  readonly verdict: string;
  readonly checks: ReadonlyArray<{ id: string; status: string; summary: string }>;
}

async function statusOnce(g: GatewayQube, since = bootedAt): Promise<StatusReport> {
  const at = Date.now() - since;
  const r = await g.machine.exec(['qubes-i2p-gateway', 'status', '--json'], { timeoutMs: 120_000 });
  let doc: { verdict?: string; checks?: Array<{ id: string; status: string; summary: string }> } = {};
  try {
    doc = JSON.parse(r.stdout) as typeof doc;
  } catch {
    doc = { verdict: `unreadable: ${r.stdout.slice(0, 200)} ${r.stderr.slice(0, 400)}`, checks: [] };
  }
  return { at, took: Date.now() - since - at, exit: r.code, verdict: doc.verdict ?? '', checks: (doc.checks ?? []).map((c) => ({ id: c.id, status: c.status, summary: c.summary })) };
}

/** status as root, every 2 s from now until all OK twice in a row (or `ms`): every report. */
async function pollStatus(g: GatewayQube, ms: number): Promise<StatusReport[]> {
  const out: StatusReport[] = [];
  const t0 = Date.now();
  let oks = 0;
  while (Date.now() - t0 < ms && oks < 2) {
    const rep = await statusOnce(g);
    out.push(rep);
    oks = rep.exit === 0 ? oks + 1 : 0;
    if (oks < 2) await sleep(2000);
  }
  return out;
}

/** Each check's status over the reports: first WAIT, first OK (ms after the boot settled), every status seen. */
function timeline(reports: readonly StatusReport[]): Map<string, { seen: string[]; firstWait?: number; firstOk?: number; last: string; lastSummary: string }> {
  const out = new Map<string, { seen: string[]; firstWait?: number; firstOk?: number; last: string; lastSummary: string }>();
  for (const rep of reports) {
    for (const c of rep.checks) {
      const e = out.get(c.id) ?? { seen: [], last: '', lastSummary: '' };
      if (!e.seen.includes(c.status)) e.seen.push(c.status);
      if (c.status === 'wait' && e.firstWait === undefined) e.firstWait = rep.at;
      if (c.status === 'ok' && e.firstOk === undefined) e.firstOk = rep.at;
      e.last = c.status;
      e.lastSummary = c.summary;
      out.set(c.id, e);
    }
  }
  return out;
}

/** The private networks' nodes: the only addresses the gateway may send to upstream, with a name for each. */
function networkNodes(): Map<string, string> {
  const nodes = new Map<string, string>();
  for (const r of (i2p as I2pNet).routers) nodes.set(r.addr, `i2p ${r.name}${r.floodfill ? ' (floodfill)' : ''}`);
  for (const n of (tor as TorNet).nodes) nodes.set(n.addr, `tor ${n.nick} (${n.role})`);
  return nodes;
}

interface Upstream {
  /** Frames up received that the gateway did not tag as Tor's or the router's. */
  readonly leaked: string;
  /**
   * Tagged frames whose destination is no node of the private networks (or whose source is not the gateway), except
   * DNS to Qubes' resolver addresses: the router's own lookups of its reseed servers (see resolverLookups).
   */
  readonly strays: string;
  /** Hits on up's own servers from anything but the Tor exit (a client connection leaving through Tor is the exit's). */
  readonly hits: UpEvent[];
  /** Tagged frames per destination (a node's name). */
  readonly counts: Map<string, number>;
  readonly frames: number;
  /** Tagged DNS frames to the netvm's resolvers (10.139.1.1/.2 port 53). */
  readonly resolverLookups: number;
  /** Untagged frames that are the gateway's kernel answering a node (see kernelAnswer). */
  readonly kernelAnswers: number;
}

/** Tagged DNS to the netvm's resolver addresses: what the router's reseed asks (the firewall lets the router's user). */
const resolverLookup = (f: Frame): boolean => (f.dst === A.dns1 || f.dst === A.dns2) && f.dport === 53;

/** What up received since `since` (a mark), judged: see Upstream. */
async function upstream(since: number): Promise<Upstream> {
  const events = await L().upSince(since);
  const nodes = networkNodes();
  const exit = (tor as TorNet).exit.addr;
  const tagged = events.filter((e): e is Frame => e.ev === 'frame' && (e as Frame).dscp === SANCTIONED_DSCP);
  const fromGw = (f: Frame): boolean => f.src === A.gwUp4 || f.src === A.gwUp6;
  const strays = tagged.filter((f) => !fromGw(f) || ((f.dst === undefined || !nodes.has(f.dst)) && !resolverLookup(f)));
  const counts = new Map<string, number>();
  for (const f of tagged) {
    const k = nodes.get(f.dst ?? '') ?? (resolverLookup(f) ? `netvm resolver ${String(f.dst)}:53` : String(f.dst));
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return {
    leaked: describeFrames(unsanctioned(events).filter((f) => !kernelAnswer(f, nodes))),
    strays: describeFrames(strays),
    hits: hitsNotThroughTor(events, exit),
    counts,
    frames: tagged.length,
    resolverLookups: tagged.filter(resolverLookup).length,
    kernelAnswers: unsanctioned(events).filter((f) => kernelAnswer(f, nodes)).length,
  };
}

function expectClean(u: Upstream, what: string): void {
  expect(u.leaked, `${what}: client packets upstream`).toBe('');
  expect(u.strays, `${what}: the gateway's own packets to something that is no node of the private networks`).toBe('');
  expect(u.hits, `${what}: requests served upstream that did not come through Tor's exit`).toEqual([]);
}

/**
 * A lab-only table in the gateway that tells whose the DNS packets to the netvm's resolvers are (the tag table marks
 * Tor's and the router's alike): one counter for the router's user, one for everyone. It only counts.
 */
const COUNT_TABLE = 'inet qig-lab-count';
async function addCountTable(): Promise<void> {
  const uid = uidIn((template as Overlay).upper, 'i2pd');
  const to = `ip daddr { ${A.dns1}, ${A.dns2} } meta l4proto { udp, tcp } th dport 53`;
  const table = `table ${COUNT_TABLE} {\n\tchain output {\n\t\ttype filter hook output priority 399; policy accept;\n` +
    `\t\t${to} meta skuid ${uid} counter comment "router"\n\t\t${to} counter comment "all"\n\t}\n}\n`;
  await G().machine.must(['nft', '-f', '-'], { input: table });
}
async function resolverCounts(): Promise<{ router: number; all: number }> {
  const text = (await G().machine.must(['nft', 'list', 'table', ...COUNT_TABLE.split(' ')])).stdout;
  const n = (c: string): number => Number(new RegExp(`counter packets (\\d+) bytes \\d+ comment "${c}"`).exec(text)?.[1] ?? 'NaN');
  return { router: n('router'), all: n('all') };
}

function countsText(c: ReadonlyMap<string, number>, kernelAnswers = 0): string {
  const text = [...c].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  return kernelAnswers > 0 ? `${text}; untagged: ${kernelAnswers} of the kernel's answers to a node (ICMP unreachable, TCP reset)` : text;
}

beforeAll(async () => {
  const installed = await installedTemplate(RELEASE, { name: 'qig-template-privnet', log });
  template = installed.template;
  pristine = installed.pristine;
  const t = installed.template;
  lab = await Lab.create({ sanctionedUsers: [], sanctionedUids: [uidIn(t.upper, 'debian-tor'), uidIn(t.upper, 'i2pd')], gateway: 'booted' });
  nets = await startPrivateNets(lab, log);
  ({ i2p, tor } = nets);
  mark = lab.upMark();
  gw = await bootGateway(lab, { name: 'sys-i2p', lowers: [t.upper, pristine], rw: join(t.base, 'rw-sys-i2p'), services: gatewayServices(RELEASE.config.qubes.service), edits: privateNetEdits(nets), log });
  bootedAt = Date.now();
  await addCountTable();
  // From the moment the boot settled: status, again and again, until every check is OK (read by the first test).
  statusPoll = pollStatus(gw, 600_000);
}, 900_000); // the private Tor network may need a second start (startPrivateNets)

afterAll(async () => {
  await shutdown(gw);
  await stopPrivateNets(nets);
  await lab?.destroy();
  await template?.dispose();
});

/** The checks that depend on the networks: WAIT while Tor and the router come up, OK once they are up. */
const NETWORK_CHECKS = ['tor.bootstrap', 'router.network', 'dns.clearnet'] as const;

describe('`qubes-i2p-gateway status` against the real networks, from the moment the boot settled', () => {
  it('WAIT (never FAIL) for Tor and the I2P network while they come up, then every check OK: Tor bootstrapped 100 %, the router integrated with tunnels through peers, .i2p over HTTP answered by the router', async () => {
    const reports = await (statusPoll as Promise<StatusReport[]>);
    const tl = timeline(reports);
    log(`status: ${reports.length} reports in ${reports.at(-1)?.at ?? 0} ms after the boot settled (one run ${Math.round(reports.reduce((t, r) => t + r.took, 0) / Math.max(1, reports.length))} ms on average)`);
    for (const rep of reports) log(`status +${rep.at} ms: exit ${String(rep.exit)} ${rep.verdict}: ${rep.checks.filter((c) => c.status !== 'ok').map((c) => `${c.id} ${c.status} (${c.summary})`).join('; ') || 'all OK'}`);
    for (const [id, e] of tl) log(`status ${id}: ${e.seen.join(' → ')}${e.firstWait !== undefined ? `, first WAIT +${e.firstWait} ms` : ''}${e.firstOk !== undefined ? `, first OK +${e.firstOk} ms` : ''}`);
    const last = reports.at(-1);
    expect(last?.exit, JSON.stringify(last, null, 1)).toBe(0);
    expect(last?.verdict).toBe('ok');
    for (const c of last?.checks ?? []) expect(c.status, `${c.id}: ${c.summary}`).toBe('ok');
    // No check ever failed on the way (a FAIL while a network comes up would send a user to fix what is not broken).
    for (const [id, e] of tl) expect(e.seen, id).not.toContain('fail');
    for (const rep of reports) expect([0, 1], `exit of the report at +${rep.at} ms`).toContain(rep.exit);
    // The router came up while status watched: first WAIT, then OK (i2pd reseeds before it opens its ports, then
    // needs tunnels through peers).
    const router = tl.get('router.network');
    expect(router?.seen, 'router.network').toEqual(['wait', 'ok']);
    for (const id of ['daemon.router', 'http.i2p']) expect([['wait', 'ok'], ['ok']], `${id}: ${JSON.stringify(tl.get(id))}`).toContainEqual(tl.get(id)?.seen);
    // Tor: WAIT first if the first report came before its bootstrap, else OK from the first report on.
    const torB = tl.get('tor.bootstrap');
    expect([['wait', 'ok'], ['ok']], `tor.bootstrap: ${JSON.stringify(torB)}`).toContainEqual(torB?.seen);
    for (const id of NETWORK_CHECKS) expect(tl.get(id)?.last, id).toBe('ok');
    const ok = new Map(last?.checks.map((c) => [c.id, c.summary]));
    expect(ok.get('tor.bootstrap')).toMatch(/^bootstrapped 100%/);
    const routers = /^network .*, (\d+) routers known, (\d+) tunnels through peers/.exec(ok.get('router.network') ?? '');
    expect(routers, ok.get('router.network')).not.toBeNull();
    expect(Number(routers?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(routers?.[2])).toBeGreaterThan(0);
    expect(ok.get('http.i2p')).toMatch(/HTTP \d+ from the router/);
  }, 700_000);
});

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

  it('0 client packets upstream: not while it booted, not since; every packet of the gateway went to a node of the private networks', async () => {
    const u = await upstream(mark);
    const c = await resolverCounts();
    log(`upstream since the boot: ${u.frames} frames of the gateway, all tagged Tor's or the router's: ${countsText(u.counts, u.kernelAnswers)}; DNS to the netvm's resolvers since the count table: ${c.all} packets, ${c.router} of them the router's`);
    expect(c.all, "DNS to the netvm's resolvers from anyone but the router").toBe(c.router);
    expectClean(u, 'since the boot');
  });
});

/** Where the screenshots are kept: the checkout's .cache/ (beside the suite's JSON report). */
const ARTIFACTS = resolve(import.meta.dirname, '..', '..', '.cache', 'privnet-boot');

describe("headless Chromium (Debian 13's) in the booted gateway's client loads the same pages", () => {
  let layer = '';
  beforeAll(async () => {
    layer = await ensureChromiumLayer(log);
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 900_000);

  const cases = [
    ['eepsite', () => `http://${(i2p as I2pNet).b32}/`, EEPSITE_MARKER],
    ['clearnet', () => `http://${WEB_NAME}:${WEB_PORT}/`, WEB_MARKER],
    ['onion', () => `http://${(tor as TorNet).onion}/`, ONION_MARKER],
  ] as const;
  for (const [what, url, marker] of cases) {
    it(`the ${what} page: its DOM has the marker, the screenshot is kept in .cache/privnet-boot/; nothing but Tor's and the router's packets upstream, to the networks' nodes`, async () => {
      const l = L();
      const at = l.upMark();
      const png = join(l.scratch, `boot-${what}.png`);
      const t0 = Date.now();
      // The onion page may take more than one load, as a user's reload (chromiumLoadPage says why).
      const r = await chromiumLoadPage({ ns: l.ns.client, layer, lowers: [join(l.scratch, 'client')], root: l.root, share: l.scratch, state: l.scratch, url: url(), png, timeoutS: what === 'onion' ? 90 : 120, marker, what, log });
      log(`chromium: ${what} loaded and drawn in ${Date.now() - t0} ms (two runs: screenshot, DOM)`);
      expect(r.dom, `${r.result.stderr.slice(-2000)}`).toContain(marker);
      expect(existsSync(png), r.result.stderr.slice(-2000)).toBe(true);
      expect(statSync(png).size).toBeGreaterThan(1000);
      copyFileSync(png, join(ARTIFACTS, `${what}.png`));
      const u = await upstream(at);
      log(`chromium: ${what}: upstream ${u.frames} frames of the gateway: ${countsText(u.counts, u.kernelAnswers)}`);
      expectClean(u, `chromium: ${what}`);
    }, 600_000);
  }
});

/** One TCP exchange from the client. */
const tcp = (host: string, port: number, send?: string): Probe => ({ kind: 'tcp', host, port, timeout: 1.5, readTimeout: 2, ...(send !== undefined ? { send } : {}) });

/**
 * The client's leak probes with the networks up: the boot's (LEAK_PROBES: clearnet TCP, UDP, ICMP, DNS to Qubes' and
 * to up's resolver), promises.test.ts's (UDP, ICMP and IPv6 to the clearnet, DNS over IPv6) and the networks' own
 * nodes straight from the client (an I2P router's NTCP2 and SSU2 port, a Tor relay's ORPort and DirPort): a client
 * may reach a network only through the gateway's daemons.
 */
function probesWithNetworks(): Probe[] {
  const r = (i2p as I2pNet).routers[0];
  const relay = (tor as TorNet).nodes[0];
  if (r === undefined || relay === undefined) throw new Error('no network nodes');
  return [
    ...LEAK_PROBES,
    tcp(A.web, 80, 'GET / HTTP/1.0\r\n\r\n'),
    { kind: 'udp', host: A.web, port: 123 },
    { kind: 'dns', server: A.dns2, name: 'leak-check.example', qtype: 'AAAA', tcp: true },
    tcp(A.lan, 80, 'GET / HTTP/1.0\r\n\r\n'),
    tcp(A.web6, 80, 'GET / HTTP/1.0\r\n\r\n'),
    { kind: 'udp', host: A.web6, port: 443 },
    { kind: 'icmp', host: A.web6 },
    { kind: 'dns', server: A.up6, name: 'leak-check.example', qtype: 'A' },
    tcp(r.addr, r.port),
    { kind: 'udp', host: r.addr, port: r.port },
    { kind: 'icmp', host: r.addr },
    tcp(relay.addr, 5000),
    tcp(relay.addr, 7000, 'GET /tor/status-vote/current/consensus HTTP/1.0\r\n\r\n'),
  ];
}

describe('nothing leaks with the networks up, in every state the lab can put the gateway in', () => {
  /** The probes from the client in one state: what up received meanwhile, judged; the outcomes, for the log. */
  async function probeState(state: string): Promise<Upstream> {
    const l = L();
    const at = l.upMark();
    const results = await l.probe('client', probesWithNetworks());
    const u = await upstream(at);
    log(`leak probes, ${state}: ${results.map((x) => `${x.probe.kind} ${String(x.probe['host'] ?? x.probe['server'])}${x.probe['port'] !== undefined ? `:${String(x.probe['port'])}` : ''} ${x.outcome}`).join(', ')}`);
    log(`leak probes, ${state}: upstream ${u.frames} frames of the gateway: ${countsText(u.counts, u.kernelAnswers)}`);
    expectClean(u, state);
    // Only TCP to the clearnet may be answered (through Tor, while Tor runs); never UDP, ICMP, IPv6 or a node.
    for (const x of results) {
      const p = x.probe;
      const torPath = p.kind === 'tcp' && p['host'] === A.web;
      const dnsPath = p.kind === 'dns' && (p['server'] === A.dns1 || p['server'] === A.dns2 || p['server'] === A.upDns);
      if (!torPath && !dnsPath) expect(['connected', 'reply', 'answer'], `${state}: ${JSON.stringify(x)}`).not.toContain(x.outcome);
      if (dnsPath) expect(JSON.stringify(x.answers ?? []), `${state}: DNS never answered by up's resolver`).not.toContain(A.leakA);
    }
    return u;
  }

  it('running, both networks up', async () => {
    await probeState('running');
  }, 120_000);

  it('Tor stopped', async () => {
    const m = G().machine;
    await m.must(['systemctl', 'stop', UNITS.tor]);
    try {
      await probeState('Tor stopped');
    } finally {
      await m.must(['systemctl', 'start', UNITS.tor]);
    }
  }, 120_000);

  it('i2pd stopped; then started again with a netvm whose DNS does not answer: status says WAIT while it reseeds (never FAIL), its reseed lookups are the router\'s own, nothing else leaves but to the nodes', async () => {
    const m = G().machine;
    const before = await resolverCounts();
    await m.must(['systemctl', 'stop', 'i2pd.service'], { timeoutMs: ROUTER_STOP_MS });
    let at = 0;
    try {
      const u = await probeState('i2pd stopped');
      expect(u.resolverLookups, 'no DNS to the netvm with the router stopped').toBe(0);
    } finally {
      at = L().upMark();
    }
    // i2pd knows fewer routers than its reseed threshold, so it reseeds before it opens any port. With the netvm's
    // resolver addresses gone from up (a netvm whose DNS does not answer), each lookup waits for the resolver's
    // timeout: the router stays without ports for a while, as on a slow network. Status must say WAIT, not FAIL.
    const resolvers = [A.dns1, A.dns2];
    for (const a of resolvers) await run(['ip', '-n', L().ns.up, 'addr', 'del', `${a}/32`, 'dev', 'eth0'], { timeoutMs: 5000 });
    const started = Date.now();
    const reports: StatusReport[] = [];
    try {
      await m.must(['systemctl', 'start', 'i2pd.service']);
      while (Date.now() - started < 120_000 && reports.filter((r) => r.checks.some((c) => c.id === 'daemon.router' && c.status !== 'ok')).length < 3) {
        reports.push(await statusOnce(G(), started));
        await sleep(500);
      }
    } finally {
      for (const a of resolvers) await run(['ip', '-n', L().ns.up, 'addr', 'add', `${a}/32`, 'dev', 'eth0', 'nodad'], { timeoutMs: 5000 });
    }
    // The resolvers back (refusing at once): the reseed ends, the ports open, the router integrates.
    while (Date.now() - started < 400_000) {
      const rep = await statusOnce(G(), started);
      reports.push(rep);
      if (rep.exit === 0) break;
      await sleep(1000);
    }
    for (const rep of reports) log(`status after i2pd's start +${rep.at} ms: exit ${String(rep.exit)}: ${rep.checks.filter((c) => c.status !== 'ok').map((c) => `${c.id} ${c.status} (${c.summary})`).join('; ') || 'all OK'}`);
    const tl = timeline(reports);
    for (const [id, e] of tl) log(`status after i2pd's start, ${id}: ${e.seen.join(' → ')}${e.firstWait !== undefined ? `, first WAIT +${e.firstWait} ms` : ''}${e.firstOk !== undefined ? `, first OK +${e.firstOk} ms` : ''}`);
    for (const [id, e] of tl) expect(e.seen, `${id} after i2pd's start: ${e.lastSummary}`).not.toContain('fail');
    for (const id of ['daemon.router', 'router.network', 'http.i2p']) expect(tl.get(id)?.seen, `${id} while i2pd reseeds, then up`).toEqual(['wait', 'ok']);
    expect(reports.at(-1)?.exit, 'all OK again').toBe(0);
    const after = await resolverCounts();
    const u = await upstream(at);
    log(`i2pd restarted: upstream ${u.frames} frames of the gateway: ${countsText(u.counts, u.kernelAnswers)}; DNS packets to the netvm's resolvers ${after.all - before.all}, the router's ${after.router - before.router}`);
    expect(after.router - before.router, "the router's reseed lookups were counted").toBeGreaterThan(0);
    expect(after.all - before.all, "DNS to the netvm's resolvers from anyone but the router").toBe(after.router - before.router);
    expectClean(u, 'i2pd restarted');
  }, 600_000);

  it('every table of the gateway deleted (Tor and i2pd still running, unfiltered)', async () => {
    const m = G().machine;
    const tables = (await m.must(['nft', 'list', 'tables'])).stdout.split('\n').filter((t) => t.startsWith('table ')).map((t) => t.slice(6));
    const gone = tables.filter((t) => t !== 'inet qig-lab-tag' && t !== COUNT_TABLE);
    expect(gone).toEqual(expect.arrayContaining(['inet qubes-i2p-gateway', 'ip qubes']));
    await m.must(['nft', '-f', '-'], { input: gone.map((t) => `delete table ${t}\n`).join('') });
    try {
      await probeState('every table deleted');
    } finally {
      await m.must(['systemctl', 'restart', 'qubes-iptables.service']);
      await m.must(['systemctl', 'restart', 'qubes-firewall.service']);
    }
    expect((await m.must(['nft', 'list', 'tables'])).stdout).toContain('table inet qubes-i2p-gateway');
  }, 120_000);

  it('booted again without its qvm-service (it forwards nothing, runs neither daemon)', async () => {
    const t = template as Overlay;
    await shutdown(gw);
    gw = undefined;
    const at = L().upMark();
    gw = await bootGateway(L(), { name: 'sys-net-like', lowers: [t.upper, pristine], rw: join(t.base, 'rw-sys-off'), services: ['qubes-firewall', 'qubes-network'], log });
    expect((await G().machine.must(['nft', 'list', 'tables'])).stdout).toContain('table inet qubes-i2p-gateway-off');
    await probeState('without the service');
    const u = await upstream(at);
    log(`without the service, boot included: upstream ${u.frames} frames of the gateway: ${countsText(u.counts, u.kernelAnswers)}`);
    expectClean(u, 'without the service, boot included');
  }, 300_000);
});
