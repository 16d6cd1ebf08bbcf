/**
 * P2 and P3 of the benchmark, in the datapath suite's namespace lab (test/net/lib/lab.ts, imported, not
 * changed): client → gw (Qubes 4.2 base tables + the package's firewall hook) with the package's tinyproxy and
 * dnsmasq started as their units say, and an I2P HTTP proxy stand-in on 127.0.0.1:4444.
 *
 *   P2 subject:   wrk in client → http://10.100.100.100/ (Host: bench.i2p) → nft redirect → tinyproxy → stand-in
 *                 (i2p.clientDestinations: shared), or, with a destination per client (router i2pd's default):
 *                 → nft DNAT (the client has a map element) → the client's HTTP front (127.0.0.4:31000, the
 *                 packaged gateway/i2p-wait-page --front as its template unit says, its own user) → the stand-in
 *                 where the client's own i2pd proxy listens (127.0.0.1:31000; the element as
 *                 gateway/i2pd-client-proxies makes it), no tinyproxy
 *      reference: wrk in client → the stand-in directly as its proxy (GET http://bench.i2p/ to 10.137.0.1:4444)
 *   P3 subject:   dns-load-clients in client → 10.139.1.1:53 (bench.i2p A) → nft redirect → the packaged dnsmasq
 *      reference: dns-load-clients in client → a plain dnsmasq (address=/x.test/1.2.3.4) on 10.137.0.1:5300
 *      Both from P3_SOURCES client addresses, each sending at most P3_BUDGET queries a run: below the gateway's
 *      per-client DNS limit (input-limits: 10 a second after a burst of 100), which one client's flood meets at
 *      once (then the figure would be the limiter's: about 60 answers/s; measured once more, for the record).
 *
 * Both sides run with the gateway's whole ruleset loaded; the references' ports are accepted in Qubes'
 * custom-input chain (the admin's chain) only for the duration of the bench. Runs alternate reference/subject.
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { A, Lab } from '../test/net/lib/lab.ts';
import { must, sleep } from '../test/net/lib/sh.ts';
import { CLIENT_LIMITS } from '../src/render/gateway/firewall.ts';
import { median } from './measure.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const STANDIN_PORT = 4444;
const PLAIN_DNS_PORT = 5300;
const HOST = 'bench.i2p';
const WRK_SECONDS = 2;
const WRK_THREADS = 2;
const WRK_CONNECTIONS = 8;
const DNS_MS = 2000;
/** P3: client addresses, queries per address and run (below the per-client burst), pause after a gateway run. */
const P3_SOURCES = 4096;
const P3_BUDGET = 40;
const P3_REFILL_MS = 4500;
/** The first client's vif in the lab (its address is A.client4). */
const CLIENT_VIF = 'vif3.0';

export interface HttpSide {
  readonly rps: number;
  readonly p50ms: number;
  readonly p99ms: number;
  readonly errors: number;
  readonly runs: ReadonlyArray<{ rps: number; p50ms: number; p99ms: number; errors: number }>;
}

export interface DnsSide {
  readonly aps: number;
  readonly lost: number;
  readonly runs: ReadonlyArray<{ aps: number; lost: number; bad: number }>;
}

export interface DatapathResult {
  readonly http?: { gateway: HttpSide; direct: HttpSide; wrk: string };
  readonly dns?: { gateway: DnsSide; plain: DnsSide; load: string; oneClient: { aps: number; answered: number; lost: number; seconds: number; limitedDrops: number } };
}

export interface DatapathOptions {
  readonly deb: string;
  readonly runs: number;
  readonly work: string;
  readonly cleanups: Array<() => Promise<void> | void>;
  readonly http: boolean;
  readonly dns: boolean;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** The first ExecStart= of a packaged unit, split into words (our units use plain command lines). */
function execStart(pkgRoot: string, unit: string): string[] {
  const text = readFileSync(join(pkgRoot, 'usr/lib/systemd/system', unit), 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('ExecStart='));
  if (line === undefined) throw new Error(`${unit}: no ExecStart`);
  return line.slice('ExecStart='.length).trim().split(/\s+/);
}

/** wrk's latency as ms: `1.23ms`, `456.00us`, `1.02s`. */
function toMs(v: string): number {
  const m = /^([0-9.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

export function parseWrk(out: string): { rps: number; p50ms: number; p99ms: number; errors: number; requests: number } {
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)?.[1] ?? NaN);
  const p50ms = toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const p99ms = toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const requests = Number(/([0-9]+) requests in/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  // Not errors: wrk's "read" count, which is every close after a complete response that did not announce
  // "Connection: close" (tinyproxy closes each client connection without saying so; wrk reconnects).
  const errors = non2xx + (sock ? Number(sock[1]) + Number(sock[3]) + Number(sock[4]) : 0);
  return { rps, p50ms, p99ms, errors, requests };
}

function summarizeHttp(runs: HttpSide['runs']): HttpSide {
  return {
    rps: median(runs.map((r) => r.rps)),
    p50ms: median(runs.map((r) => r.p50ms)),
    p99ms: median(runs.map((r) => r.p99ms)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    runs,
  };
}

function summarizeDns(runs: DnsSide['runs']): DnsSide {
  return { aps: median(runs.map((r) => r.aps)), lost: runs.reduce((n, r) => n + r.lost, 0), runs };
}

export async function datapath(opts: DatapathOptions): Promise<DatapathResult | { skipped: string }> {
  if (process.getuid?.() !== 0) return { skipped: 'needs root (network namespaces)' };
  // tinyproxy, dnsmasq and nft are the gateway machine's (Debian 13's, from the lab's root); these are the host's.
  for (const tool of ['ip', 'wrk', 'nsenter', 'unshare', 'debootstrap']) {
    if (which(tool) === undefined) return { skipped: `${tool} is not installed (sh test/oracles.sh)` };
  }
  const lab = await Lab.create({ sanctionedUsers: [], deb: opts.deb });
  opts.cleanups.push(() => lab.destroy());

  // Every request is a new TCP connection (both paths): a wide port range and TIME_WAIT reuse in the lab's
  // client and gateway keep thousands of closed connections from exhausting ports (per-namespace settings).
  for (const ns of ['client', 'gw'] as const) {
    await must(['ip', 'netns', 'exec', lab.ns[ns], 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535']);
    await must(['ip', 'netns', 'exec', lab.ns[ns], 'sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
  }
  // The gateway qube: its qvm-service on, Qubes' base tables, then the package's hook (as qubes-firewall runs it).
  lab.setService('i2p', true);
  const hook = await lab.gwRun(['/etc/qubes/qubes-firewall.d/50-qubes-i2p-gateway']);
  if (hook.code !== 0) throw new Error(`the firewall hook failed: ${hook.stderr}`);
  // The references' ports, in the admin's chain of Qubes' input (our ruleset never touches custom-input's rules).
  const accept = `add rule ip qubes custom-input iifgroup 2 tcp dport ${STANDIN_PORT} accept\nadd rule ip qubes custom-input iifgroup 2 udp dport ${PLAIN_DNS_PORT} accept\n`;
  await lab.nft(['-f', '-'], accept);

  // The stand-in: copied where any user can read it, on loopback (as the router) and on the vif address.
  const standin = join(lab.scratch, 'tools', 'http-standin.mjs');
  copyFileSync(join(HERE, 'tools/http-standin.mjs'), standin);
  const dnsLoad = join(lab.scratch, 'tools', 'dns-load.mjs');
  copyFileSync(join(HERE, 'tools/dns-load.mjs'), dnsLoad);
  copyFileSync(join(HERE, 'tools/dns-query.mjs'), join(lab.scratch, 'tools', 'dns-query.mjs'));
  // Node runs outside the gateway machine (its root has none), in the gateway's network namespace.
  // A per-client build: the stand-in also where the client's own proxy listens, and the client's map element.
  const perClient = existsSync(join(lab.pkgRoot, 'usr/share/qubes-i2p-gateway/client-proxies.json'));
  const clientPort = perClient ? Number((JSON.parse(readFileSync(join(lab.pkgRoot, 'usr/share/qubes-i2p-gateway/client-proxies.json'), 'utf8')) as { firstPort: number }).firstPort) : 0;
  const sp = lab.nsSpawn('gw', 'standin', [process.execPath, standin, `127.0.0.1:${STANDIN_PORT}`, `${A.gwDown4}:${STANDIN_PORT}`, ...(perClient ? [`127.0.0.1:${clientPort}`] : [])]);
  await sp.waitForLine('READY', 10_000);
  let relay: ReturnType<typeof lab.gwSpawn> | undefined;
  if (perClient) {
    await lab.nft(['-f', '-'], `add element inet qubes-i2p-gateway client-proxy { ${A.client4} : 127.0.0.4 . ${clientPort} }\nadd element inet qubes-i2p-gateway client-proxy-pairs { ${A.client4} . ${clientPort} }\n`);
    // The client's HTTP front, the instance of the packaged template for its port (as i2pd-client-proxies has systemd
    // start it), as a user of its own (an id of systemd's DynamicUser range, as systemd gives it).
    const front = execStart(lab.pkgRoot, 'qubes-i2p-gateway-http@.service').map((a) => a.replace(/%i/g, String(clientPort)));
    relay = lab.gwSpawn('http-front', front, { user: '61184' });
    await lab.waitPidListening(relay.pid, 10_000, "the client's HTTP front");
    // Its user and port in the output chain's sets, as i2pd-client-proxies puts them: it alone opens that port.
    await lab.nft(['-f', '-'], `add element inet qubes-i2p-gateway front-upstream { 61184 . ${clientPort} }\nadd element inet qubes-i2p-gateway front-users { 61184 }\n`);
  }

  const result: { -readonly [K in keyof DatapathResult]: DatapathResult[K] } = {};

  if (opts.http) {
    const tp = lab.gwSpawn('tinyproxy', execStart(lab.pkgRoot, 'qubes-i2p-gateway-tinyproxy.service'));
    const port = Number(/^Port\s+(\d+)/m.exec(readFileSync(join(lab.pkgRoot, 'usr/share/qubes-i2p-gateway/tinyproxy.conf'), 'utf8'))?.[1] ?? 8888);
    await lab.waitListening('tcp', port, 10_000, 'tinyproxy'); // runs on both builds (the status command's self-test)
    const lua = join(lab.scratch, 'tools', 'proxy-request.lua');
    writeFileSync(lua, `request = function() return wrk.format("GET", "http://${HOST}/") end\n`);
    const wrk = (direct: boolean): string[] =>
      direct
        ? ['wrk', '--latency', '-t', String(WRK_THREADS), '-c', String(WRK_CONNECTIONS), '-d', `${WRK_SECONDS}s`, '--timeout', '2s', '-s', lua, `http://${A.gwDown4}:${STANDIN_PORT}/`]
        : ['wrk', '--latency', '-t', String(WRK_THREADS), '-c', String(WRK_CONNECTIONS), '-d', `${WRK_SECONDS}s`, '--timeout', '2s', '-H', `Host: ${HOST}`, `http://${A.vip}/`];
    // Both paths must work before they are timed: the same stand-in must answer the same request.
    for (const direct of [true, false]) {
      const c = direct ? await lab.curl(`http://${HOST}/`, ['-x', `http://${A.gwDown4}:${STANDIN_PORT}`]) : await lab.curl(`http://${HOST}/`, ['--resolve', `${HOST}:80:${A.vip}`]);
      if (c.status !== '200' || !c.body.includes('qig-bench-standin ok')) {
        throw new Error(`P2 ${direct ? 'reference' : 'gateway'} path does not reach the stand-in: ${c.status} ${c.body.slice(0, 200)} ${c.stderr}\n${tp.diagnostics()}`);
      }
    }
    const runs: Record<'gateway' | 'direct', HttpSide['runs'][number][]> = { gateway: [], direct: [] };
    for (let i = 0; i <= opts.runs; i++) {
      for (const side of ['direct', 'gateway'] as const) {
        const r = await lab.nsRun('client', wrk(side === 'direct'), (WRK_SECONDS + 15) * 1000);
        if (r.code !== 0) throw new Error(`wrk failed: ${r.stderr}`);
        const p = parseWrk(r.stdout);
        if (!(p.requests > 0)) throw new Error(`wrk made no request on the ${side} path:\n${r.stdout}`);
        if (i > 0) runs[side].push({ rps: p.rps, p50ms: p.p50ms, p99ms: p.p99ms, errors: p.errors }); // run 0: warm-up
      }
    }
    await lab.stop(tp);
    if (relay) await lab.stop(relay);
    result.http = {
      gateway: summarizeHttp(runs.gateway),
      direct: summarizeHttp(runs.direct),
      wrk: `wrk --latency -t${WRK_THREADS} -c${WRK_CONNECTIONS} -d${WRK_SECONDS}s; one TCP connection per request on both paths (the stand-in and tinyproxy close each); gateway path: ${perClient ? 'the client\'s own HTTP front (strict parse, rewritten request), then its own proxy (per-client destinations, no tinyproxy)' : 'tinyproxy (one destination for all)'}`,
    };
  }

  if (opts.dns) {
    const dm = lab.gwSpawn('dnsmasq', execStart(lab.pkgRoot, 'qubes-i2p-gateway-dnsmasq.service'));
    await lab.waitListening('udp', 53, 10_000, 'packaged dnsmasq');
    const plain = lab.gwSpawn('plain-dnsmasq', [
      'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces',
      `--listen-address=${A.gwDown4}`, `--port=${PLAIN_DNS_PORT}`, '--address=/x.test/1.2.3.4', '--user=dnsmasq', '--group=nogroup', '--pid-file=', '--log-facility=-',
    ]);
    await lab.waitListening('udp', PLAIN_DNS_PORT, 10_000, 'plain dnsmasq');
    // Many clients: P3_SOURCES addresses of their own (10.137.128.0/20, on the client's link, each known to Qubes'
    // antispoof set as a client qube's address is, routed back through the vif), each sending at most P3_BUDGET
    // queries a run, below the gateway's per-client burst (CLIENT_LIMITS.dnsBurst): no query meets the per-client
    // limit, every query pays its bookkeeping. Between two gateway runs each address earns its budget back.
    const sources = Array.from({ length: P3_SOURCES }, (_, i) => `10.137.${128 + (i >> 8)}.${i & 255}`);
    await must(['ip', '-n', lab.ns.client, '-batch', '-'], { input: sources.map((a) => `addr add ${a}/32 dev eth0 nodad\n`).join('') });
    // Routed through the client's own address: one neighbour entry, not 4096 (the kernel's table holds 1024).
    await must(['ip', '-n', lab.ns.gw, 'route', 'add', '10.137.128.0/20', 'via', A.client4, 'dev', CLIENT_VIF]);
    await lab.nft(['-f', '-'], `add element ip qubes allowed { ${sources.map((a) => `"${CLIENT_VIF}" . ${a}`).join(', ')} }\nadd element ip qubes downstream { ${sources.join(', ')} }\n`);
    const sourcesFile = join(lab.scratch, 'tools', 'p3-sources.txt');
    writeFileSync(sourcesFile, `${sources.join('\n')}\n`);
    copyFileSync(join(HERE, 'tools/dns-load-clients.mjs'), join(lab.scratch, 'tools', 'dns-load-clients.mjs'));
    const loadClients = join(lab.scratch, 'tools', 'dns-load-clients.mjs');
    const load = (side: 'gateway' | 'plain'): string[] =>
      side === 'gateway'
        ? [loadClients, A.dns1, '53', HOST, String(DNS_MS), sourcesFile, String(P3_BUDGET)]
        : [loadClients, A.gwDown4, String(PLAIN_DNS_PORT), 'x.test', String(DNS_MS), sourcesFile, String(P3_BUDGET)];
    // The per-client limit's drop counter: it must not move while the many clients run (else they were limited).
    const limited = async (): Promise<number> => {
      const chain = (await lab.nft(['list', 'chain', 'inet', 'qubes-i2p-gateway', 'input-limits'])).stdout;
      return Number(/udp dport 53 update @client-dns-rate .* counter packets (\d+)/.exec(chain)?.[1] ?? NaN);
    };
    const limitedBefore = await limited();
    const runs: Record<'gateway' | 'plain', DnsSide['runs'][number][]> = { gateway: [], plain: [] };
    for (let i = 0; i <= opts.runs; i++) {
      for (const side of ['plain', 'gateway'] as const) {
        const r = await lab.nsRun('client', [process.execPath, ...load(side)], DNS_MS + 15_000);
        if (r.code !== 0) throw new Error(`dns-load-clients failed: ${r.stderr}`);
        const p = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { answersPerSecond: number; lost: number; bad: number; answered: number; addresses: number };
        if (!(p.answered > 0)) throw new Error(`no DNS answers on the ${side} path: ${r.stdout}\n${dm.diagnostics()}\n${plain.diagnostics()}`);
        if (i > 0) runs[side].push({ aps: p.answersPerSecond, lost: p.lost, bad: p.bad });
        if (side === 'gateway') await sleep(P3_REFILL_MS);
      }
    }
    const limitedMany = (await limited()) - limitedBefore;
    if (!(limitedMany === 0)) throw new Error(`P3: the per-client DNS limit dropped ${limitedMany} queries of the many clients' load (budget ${P3_BUDGET} each): the figure would be the limiter's`);
    // One client alone against its limit (the old P3): what a flood from one address gets, for the record.
    const one = await lab.nsRun('client', [process.execPath, dnsLoad, A.dns1, '53', HOST, String(DNS_MS)], DNS_MS + 15_000);
    const oneClient = JSON.parse(one.stdout.trim().split('\n').pop() ?? '{}') as { answersPerSecond: number; answered: number; lost: number; seconds: number };
    await lab.stop(dm);
    await lab.stop(plain);
    result.dns = {
      gateway: summarizeDns(runs.gateway),
      plain: summarizeDns(runs.plain),
      load: `bench/tools/dns-load-clients.mjs: 4 sockets × 16 in flight, each on one of ${P3_SOURCES} client addresses in turn, at most ${P3_BUDGET} queries each a run (the per-client burst is ${CLIENT_LIMITS.dnsBurst}, then ${CLIENT_LIMITS.dnsPerSecond}/s), ${DNS_MS} ms at most`,
      oneClient: { aps: oneClient.answersPerSecond, answered: oneClient.answered, lost: oneClient.lost, seconds: oneClient.seconds, limitedDrops: (await limited()) - limitedBefore },
    };
  }
  await lab.stop(sp);
  return result;
}
