/**
 * P6 and P10 of the benchmark: what each client qube's own I2P destination costs (issue 22, "Cost"), in a gateway
 * qube that boots (the booted suite's machinery, test/boot/lib/: the template of bench/boot.ts, systemd-nspawn in the
 * lab's gateway namespace) joined to the lab's private I2P network (test/net/lib/i2pnet.ts, real Debian 13 i2pd
 * routers and an eepsite) as bench/firstpage.ts joins it, with the default config (router i2pd, a destination per
 * client).
 *
 * Clients are attached the way Qubes attaches them (Lab.addClient: a vif of its own in group 2, a route, its
 * address in Qubes' set `ip qubes allowed` and `downstream`, as vif-route-qubes does; a network namespace with no
 * process in it): the gateway's i2pd-client-proxies sees the address and writes that client's HTTP proxy tunnel
 * (its own keys, made by i2pd in its state directory), and i2pd builds that destination's tunnels through the
 * network's routers. The gateway boots with no client at all: its root's copy of Qubes' base tables (the booted
 * stand-in's qubes-base.nft) has the lab's first client taken out of `allowed` and `downstream`, so the first
 * point is a gateway with no client's destination.
 *
 *   P6 subject:   the resident memory of the gateway's daemons together (every process of their units' cgroups, and
 *                 of every client's HTTP front, an instance each:
 *                 Tor, the DNS relay, dnsmasq, tinyproxy, the waiting page's relay, the client proxies' program,
 *                 i2pd), VmRSS and PSS summed, and i2pd's alone, with 1, 10 and 50 client qubes, each with its own
 *                 destination whose tunnels are built (read from i2pd's console: every local destination has an
 *                 established inbound and outbound tunnel) and which fetched one page of the eepsite through its
 *                 own proxy; at 10 and 50 also before the page (the step's new clients' tunnels built, no page
 *                 yet); each SETTLE_S after the state is reached
 *      reference: the same gateway in the same boot with no client (its router's exploratory tunnels built),
 *                 SETTLE_S after it is reached. Figure: total PSS with 50 clients / with none; every point's ratios
 *                 (RSS, PSS, i2pd's) and the cost of one client (MiB) in the detail
 *   P10 subject:  a client qube's first eepsite page from its start (the moment its address is in Qubes' set) when
 *                 its destination is new (no keys yet: the proxies' program writes its tunnel, i2pd makes its
 *                 keys and builds its tunnels)
 *      reference: the same client after it went away (its address out of the set, its vif down: the program
 *                 removes its tunnel and i2pd stops that destination; the keys stay) and came back: its
 *                 destination exists (the same keys), from its return to its first page
 *                 Both polled as bench/firstpage.ts polls (a new curl every 500 ms); the client's curl runs in its
 *                 namespace with the b32 pinned to the virtual IP (--resolve: what the gateway's DNS answers it;
 *                 the lookup is not in the figure). The pair is measured once a run, on the first client, with no
 *                 other client attached.
 *
 * Runs: P6_RUNS boots, each a new gateway (new /rw) and new clients; every figure the median over the runs. The
 * Java router's variant is not measured (not in Debian; its repository is unreachable here).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PATHS, UNITS } from '../src/render/gateway/common.ts';
import { ROUTERS } from '../src/config/routers.ts';
import { CONSOLE_USER } from '../src/render/gateway/i2pd.ts';
import { EEPSITE_MARKER, gatewayI2pdDropIn, gatewaySeedFiles, I2pNet } from '../test/net/lib/i2pnet.ts';
import { A, Lab, QUBES_BASE_NFT, type LabClient } from '../test/net/lib/lab.ts';
import { must, run, sleep } from '../test/net/lib/sh.ts';
import { bootGateway, gatewayServices, shutdown, uidIn, type GatewayQube } from '../test/boot/lib/gateway.ts';
import { monotonicUs, type Machine } from '../test/boot/lib/machine.ts';
import { SCRIPT_DIR } from '../test/boot/lib/qubes.ts';
import { unitMemory, type BootTemplate } from './boot.ts';
import { pollFirstPage } from './firstpage.ts';
import { median } from './measure.ts';

export const P6_RUNS = 2;
/** The numbers of clients measured (the reference: none). */
export const STEPS = [1, 10, 50] as const;
const SETTLE_S = 10;
const READY_TIMEOUT_MS = 240_000;
const PAGE_TIMEOUT_MS = 180_000;
/** Every unit of ours that runs daemons in the default config, and the router. */
const UNIT_LIST = [UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, UNITS.waitPage, UNITS.clientProxies, 'i2pd.service'] as const;

export interface UnitMem {
  readonly rssKiB: number;
  readonly pssKiB: number;
  readonly processes: number;
}

export interface ConsoleView {
  /** Local destinations i2pd lists, and how many of them have an established inbound and outbound tunnel. */
  readonly destinations: number;
  readonly ready: number;
  readonly inbound: number;
  readonly outbound: number;
}

export interface Point {
  readonly clients: number;
  /** Whether every client had fetched a page through its proxy when measured. */
  readonly page: boolean;
  readonly rssKiB: number;
  readonly pssKiB: number;
  readonly byUnit: Readonly<Record<string, UnitMem>>;
  readonly console: ConsoleView;
}

export interface ClientsRun {
  readonly points: readonly Point[];
  readonly firstNewMs: number;
  readonly firstExistingMs: number;
  /** Whether i2pd had stopped the client's destination (no longer listed) before it came back. */
  readonly destinationStopped: boolean;
  /** ms from a step's last client attached to every destination's tunnels built, and to every new client's page. */
  readonly readyMs: Readonly<Record<string, number>>;
  readonly pagesMs: Readonly<Record<string, number>>;
}

export interface ClientsResult {
  readonly runs: readonly ClientsRun[];
  readonly units: readonly string[];
  readonly settleSeconds: number;
  readonly versions: string;
  readonly i2pNetworkUpMs: number;
  readonly stageMs: number;
}

export interface ClientsOptions {
  readonly template: BootTemplate;
  readonly cleanups: Array<() => Promise<void> | void>;
  readonly log: (msg: string) => void;
  readonly runs?: number;
}

/** Qubes' base tables as the stand-in loads them at boot, without the lab's first client: a gateway with none. */
function baseTablesWithoutClient(): string {
  const text = readFileSync(QUBES_BASE_NFT, 'utf8');
  const out = text.replace(/^\s*elements = \{ (\$CLIENT[46]|"vif3\.0" \. \$CLIENT[46]) \}\n/gm, '');
  if (out.split('\n').length !== text.split('\n').length - 4) throw new Error('P6: qubes-base.nft no longer has the 4 element lines of the first client');
  return out;
}

/** i2pd's console, from the gateway's namespace (root, as the status command reads it). */
async function consoleGet(lab: Lab, pass: string, query: string): Promise<string> {
  const port = ROUTERS.i2pd.exposable.console;
  const r = await run(['ip', 'netns', 'exec', lab.ns.gw, 'curl', '-sS', '-m', '10', '-u', `${CONSOLE_USER}:${pass}`, `http://127.0.0.1:${port}/${query}`], { timeoutMs: 15_000 });
  return r.code === 0 ? r.stdout : '';
}

/** Every local destination of i2pd and its established tunnels (the console's pages of i2pd 2.56). */
async function consoleView(lab: Lab, pass: string): Promise<ConsoleView> {
  const list = await consoleGet(lab, pass, '?page=local_destinations');
  const b32s = [...new Set([...list.matchAll(/page=local_destination&(?:amp;)?b32=([a-z2-7]{52})/g)].map((m) => m[1]!))];
  let ready = 0;
  let inbound = 0;
  let outbound = 0;
  for (const b of b32s) {
    const page = await consoleGet(lab, pass, `?page=local_destination&b32=${b}`);
    const at = page.indexOf('Outbound tunnels');
    const count = (s: string): number => s.split('tunnel established').length - 1;
    const i = at < 0 ? 0 : count(page.slice(0, at));
    const o = at < 0 ? 0 : count(page.slice(at));
    inbound += i;
    outbound += o;
    if (i > 0 && o > 0) ready++;
  }
  return { destinations: b32s.length, ready, inbound, outbound };
}

/** Wait until i2pd lists `want` local destinations, each with its tunnels; the view then. */
async function waitReady(lab: Lab, pass: string, want: number, what: string): Promise<ConsoleView> {
  const t0 = Date.now();
  let v: ConsoleView = { destinations: 0, ready: 0, inbound: 0, outbound: 0 };
  while (Date.now() - t0 < READY_TIMEOUT_MS) {
    v = await consoleView(lab, pass);
    if (v.destinations >= want && v.ready >= want) return v;
    await sleep(2000);
  }
  throw new Error(`P6: ${what}: after ${READY_TIMEOUT_MS} ms i2pd lists ${v.destinations} local destinations, ${v.ready} with tunnels built (want ${want})`);
}

async function memory(m: Machine, units: readonly string[], lab: Lab, pass: string, clients: number, page: boolean): Promise<Point> {
  const byUnit: Record<string, UnitMem> = {};
  for (const u of units) {
    if ((await m.show(u, ['ActiveState'])).get('ActiveState') !== 'active') throw new Error(`P6: ${u} is not active`);
    byUnit[u] = await unitMemory(m, u);
  }
  // Each client's HTTP front: an instance of the template per client (started by the client proxies' program), all
  // of them together under the template's name; one per client, or the point is not what it says.
  const listed = await m.exec(['systemctl', 'list-units', '--plain', '--no-legend', '--state=active', UNITS.httpFront.replace('@.service', '@*.service')]);
  const fronts = listed.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((u) => u.endsWith('.service'));
  if (fronts.length !== clients) throw new Error(`P6: ${fronts.length} HTTP fronts active with ${clients} clients: ${fronts.join(' ')}`);
  const sum = { rssKiB: 0, pssKiB: 0, processes: 0 };
  for (const u of fronts) {
    const f = await unitMemory(m, u);
    sum.rssKiB += f.rssKiB;
    sum.pssKiB += f.pssKiB;
    sum.processes += f.processes;
  }
  byUnit[UNITS.httpFront] = sum;
  const all = Object.values(byUnit);
  return { clients, page, rssKiB: all.reduce((n, x) => n + x.rssKiB, 0), pssKiB: all.reduce((n, x) => n + x.pssKiB, 0), byUnit, console: await consoleView(lab, pass) };
}

function curlArgv(c: LabClient, b32: string, vip: string, maxS = 8): string[] {
  return ['ip', 'netns', 'exec', c.ns, 'curl', '-sS', '-m', String(maxS), '--resolve', `${b32}:80:${vip}`, '-o', '-', '-w', '\n@@%{http_code}', `http://${b32}/`];
}

/** One page through each client's own proxy (retried until it comes), at most 10 clients at once; ms for all. */
async function pageEach(clients: readonly LabClient[], b32: string, vip: string): Promise<number> {
  const t0 = Date.now();
  const queue = [...clients];
  const one = async (c: LabClient): Promise<void> => {
    let last = '';
    while (Date.now() - t0 < PAGE_TIMEOUT_MS) {
      const r = await run(curlArgv(c, b32, vip, 15), { timeoutMs: 25_000 });
      if (r.stdout.endsWith('\n@@200') && r.stdout.includes(EEPSITE_MARKER)) return;
      last = `${r.stdout.slice(-8)} ${r.stderr.trim().slice(0, 200)}`;
      await sleep(1000);
    }
    throw new Error(`P6: client ${c.addr} got no page within ${PAGE_TIMEOUT_MS} ms: ${last}`);
  };
  await Promise.all(
    Array.from({ length: Math.min(10, queue.length) }, async () => {
      for (let c = queue.shift(); c !== undefined; c = queue.shift()) await one(c);
    }),
  );
  return Date.now() - t0;
}

/** The client qube goes away as Qubes takes it away: its address out of Qubes' sets, its vif down. */
async function detach(lab: Lab, c: LabClient): Promise<void> {
  await lab.nft(['-f', '-'], `delete element ip qubes allowed { "${c.vif}" . ${c.addr} }\ndelete element ip qubes downstream { ${c.addr} }\n`);
  await must(['ip', '-n', lab.ns.gw, 'link', 'set', c.vif, 'down']);
}

/** And comes back: its vif up, the route to it, its address in Qubes' sets (vif-route-qubes' order). */
async function reattach(lab: Lab, c: LabClient): Promise<void> {
  await must(['ip', '-n', lab.ns.gw, 'link', 'set', c.vif, 'up']);
  await must(['ip', '-n', c.ns, 'route', 'replace', A.gwDown4, 'dev', 'eth0']);
  await must(['ip', '-n', c.ns, 'route', 'replace', 'default', 'via', A.gwDown4]);
  await must(['ip', '-n', lab.ns.gw, 'route', 'replace', c.addr, 'dev', c.vif]);
  await lab.nft(['-f', '-'], `add element ip qubes allowed { "${c.vif}" . ${c.addr} }\nadd element ip qubes downstream { ${c.addr} }\n`);
}

/** The port of a client's proxy, from its tunnel file (i2pd-client-proxies writes `port = N`). */
async function proxyPort(m: Machine, c: LabClient): Promise<number> {
  const r = await m.must(['sh', '-c', 'cat /etc/i2pd/tunnels.d/*-"$1".conf', 'sh', c.addr]);
  const port = Number(/^port = (\d+)$/m.exec(r.stdout)?.[1]);
  if (!(port > 0)) throw new Error(`P10: no port in ${c.addr}'s tunnel file: ${r.stdout}`);
  return port;
}

/**
 * Until the client's tunnel file is gone from i2pd's tunnels directory and its proxy's port no longer listens; then
 * until i2pd lists no more than `want` local destinations (bounded: whether i2pd stopped the destination itself).
 */
async function waitGone(m: Machine, lab: Lab, pass: string, c: LabClient, port: number, want: number): Promise<boolean> {
  const t0 = Date.now();
  for (;;) {
    const ls = (await m.exec(['ls', '/etc/i2pd/tunnels.d/'])).stdout;
    if (!ls.includes(`-${c.addr}.conf`) && !(await lab.listening('tcp', port))) break;
    if (Date.now() - t0 > 60_000) throw new Error(`P10: client ${c.addr}'s proxy (port ${port}) is still there 60 s after it went away`);
    await sleep(500);
  }
  const t1 = Date.now();
  while (Date.now() - t1 < 20_000) {
    if ((await consoleView(lab, pass)).destinations <= want) return true;
    await sleep(1000);
  }
  return false;
}

export async function clientsFigures(opts: ClientsOptions): Promise<ClientsResult | { skipped: string }> {
  if (process.getuid?.() !== 0) return { skipped: 'needs root (systemd-nspawn, network namespaces)' };
  const t0 = Date.now();
  const { log, template: tpl } = opts;
  const t = tpl.template;
  const nruns = opts.runs ?? P6_RUNS;
  const lab = await Lab.create({ sanctionedUsers: [], sanctionedUids: [uidIn(t.upper, 'debian-tor'), uidIn(t.upper, 'i2pd')], gateway: 'booted' });
  opts.cleanups.push(() => lab.destroy());
  const tn = Date.now();
  const net = await I2pNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 90_000 });
  opts.cleanups.push(() => net.stop());
  const i2pNetworkUpMs = Date.now() - tn;
  const vip = tpl.release.config.network.virtualIp;
  const edits: Array<readonly [string, string | Uint8Array]> = [
    ['/etc/systemd/system/i2pd.service.d/zz-lab-privnet.conf', gatewayI2pdDropIn(PATHS.i2pdRuntimeConf, true)],
    ...gatewaySeedFiles(net),
    [`${SCRIPT_DIR}/qubes-base.nft`, baseTablesWithoutClient()],
  ];
  const lowers = [t.upper, tpl.pristine];
  const services = gatewayServices(tpl.release.config.qubes.service);
  let current: GatewayQube | undefined;
  opts.cleanups.push(() => shutdown(current));
  let units: string[] = [];
  const runs: ClientsRun[] = [];
  for (let i = 0; i < nruns; i++) {
    const rw = join(t.base, `rw-p6-${i}`);
    current = await bootGateway(lab, { name: `qig-bench-p6-${i}`, lowers, rw, services, edits, log: () => {} });
    const m = current.machine;
    const passFile = join(rw, 'bind-dirs', PATHS.consolePassword.slice(1));
    const tb = Date.now();
    let pass = '';
    while (Date.now() - tb < 120_000 && !(pass !== '' && (await consoleGet(lab, pass, '')).includes('Client Tunnels'))) {
      try {
        pass = readFileSync(passFile, 'utf8').trim();
      } catch {
        // not made yet
      }
      await sleep(500);
    }
    if (pass === '') throw new Error(`P6: no console password in ${passFile} 120 s after the boot`);
    if (i === 0) {
      for (const u of UNIT_LIST) if ((await m.show(u, ['ActiveState'])).get('ActiveState') === 'active') units.push(u);
      if (!units.includes('i2pd.service') || !units.includes(UNITS.clientProxies)) throw new Error(`P6: i2pd or the client proxies' program is not running (active: ${units.join(', ')})`);
    }
    const base = await waitReady(lab, pass, 1, 'the router with no client');
    const d0 = base.destinations;
    await sleep(SETTLE_S * 1000);
    const points: Point[] = [await memory(m, units, lab, pass, 0, false)];
    if (points[0]!.console.destinations !== d0) throw new Error('P6: the destinations changed with no client');

    // The first client: its first page with a new destination; it goes away and comes back: with its destination.
    const clients: LabClient[] = [];
    const c1 = await lab.addClient();
    const attachedUs = monotonicUs();
    clients.push(c1);
    const firstNewMs = (await pollFirstPage(curlArgv(c1, net.b32, vip), `P10: the new client ${c1.addr}`) - attachedUs) / 1000;
    const port1 = await proxyPort(m, c1);
    await detach(lab, c1);
    const destinationStopped = await waitGone(m, lab, pass, c1, port1, d0);
    const back = monotonicUs();
    await reattach(lab, c1);
    const firstExistingMs = (await pollFirstPage(curlArgv(c1, net.b32, vip), `P10: the returning client ${c1.addr}`) - back) / 1000;
    await waitReady(lab, pass, d0 + 1, '1 client');
    await sleep(SETTLE_S * 1000);
    points.push(await memory(m, units, lab, pass, 1, true));

    const readyMs: Record<string, number> = {};
    const pagesMs: Record<string, number> = {};
    for (const n of STEPS.slice(1)) {
      const fresh: LabClient[] = [];
      while (clients.length < n) {
        const c = await lab.addClient();
        clients.push(c);
        fresh.push(c);
      }
      const ta = Date.now();
      await waitReady(lab, pass, d0 + n, `${n} clients`);
      readyMs[String(n)] = Date.now() - ta;
      await sleep(SETTLE_S * 1000);
      points.push(await memory(m, units, lab, pass, n, false));
      pagesMs[String(n)] = await pageEach(fresh, net.b32, vip);
      await sleep(SETTLE_S * 1000);
      points.push(await memory(m, units, lab, pass, n, true));
    }
    const keys = (await m.exec(['sh', '-c', 'ls /var/lib/i2pd/ | grep -c "^qubes-i2p-gateway-client-.*\\.dat$"'])).stdout.trim();
    if (Number(keys) !== STEPS.at(-1)) throw new Error(`P6: ${keys} client key files in i2pd's state directory, want ${STEPS.at(-1)}`);
    await shutdown(current);
    current = undefined;
    // The gateway is gone (its tables with it: the next boot starts from none); its clients' vifs go down.
    for (const c of clients) await run(['ip', '-n', lab.ns.gw, 'link', 'set', c.vif, 'down']);
    runs.push({ points, firstNewMs, firstExistingMs, destinationStopped, readyMs, pagesMs });
    const mib = (k: number): string => (k / 1024).toFixed(1);
    log(
      `P6 run ${i}: ${points.map((p) => `${p.clients}${p.page ? '+page' : ''} ${mib(p.pssKiB)} MiB PSS (i2pd ${mib(p.byUnit['i2pd.service']!.pssKiB)}; ${p.console.ready}/${p.console.destinations} destinations, ${p.console.inbound}+${p.console.outbound} tunnels)`).join(', ')}; ` +
        `P10: new ${(firstNewMs / 1000).toFixed(1)} s, existing ${(firstExistingMs / 1000).toFixed(1)} s (destination stopped meanwhile: ${destinationStopped}); tunnels of 10 in ${readyMs['10']} ms, of 50 in ${readyMs['50']} ms`,
    );
  }
  const versions = tpl.versions;
  return { runs, units, settleSeconds: SETTLE_S, versions, i2pNetworkUpMs, stageMs: Date.now() - t0 };
}

/** The median over the runs of a point's value (by clients and page). */
export function pointMedian(r: ClientsResult, clients: number, page: boolean, f: (p: Point) => number): number {
  return median(r.runs.map((x) => x.points.find((p) => p.clients === clients && p.page === page)).filter((p): p is Point => p !== undefined).map(f));
}
