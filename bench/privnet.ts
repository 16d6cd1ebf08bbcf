/**
 * P7 and P9 of the benchmark: pages of the lab's private networks (test/net/lib/i2pnet.ts: real Debian 13 i2pd
 * routers and an eepsite; test/net/lib/torenet.ts: real Debian 13 tor, three authorities, an exit, an onion service
 * and a "clearnet" web server with its DNS), fetched through the lab's emulated gateway (test/net/lib/world.ts: the
 * package's units and configs, the firewall hook's whole ruleset; the same joining as test/net/privnet.test.ts: one
 * drop-in for i2pd, the routers' router.info in its netDb, one file in torrc.d) and, for the reference, from inside
 * the gateway through the daemon's own proxy (the limit: what the gateway adds is everything in between).
 *
 *   P7 subject:   curl in the client qube → its DNS (10.139.1.1, redirected to the packaged dnsmasq: the b32's
 *                 answer is the virtual IP) → the virtual IP → nft redirect → tinyproxy → i2pd's HTTP proxy →
 *                 the private I2P network → the eepsite
 *      reference: curl inside the gateway with i2pd's HTTP proxy (127.0.0.1:4444) as its proxy, same URL
 *   P9 subject:   a clearnet page by name (the client's DNS → dnsmasq → Tor's DNSPort → the exit resolves; then
 *                 TransPort → the exit → the web server), and the onion page (its name resolved once by the client's
 *                 DNS to Tor's mapped address, as a browser caches it; then TransPort → the onion service)
 *      reference: curl inside the gateway through a SocksPort of the same Tor (--socks5-hostname: the exit
 *                 resolves the name, the onion is reached by name). The packaged torrc has `SocksPort 0`, and Tor
 *                 refuses a torrc with both "SocksPort 0" and another SocksPort, so the bench's Tor gets
 *                 `--SocksPort 127.0.0.1:9150` on its command line (World.torExtraArgs), which replaces the
 *                 torrc's line; TransPort, DNSPort and everything else are the package's.
 *
 * Each fetch is one curl process; its time is curl's own time_total (from its start of name resolution to the
 * last byte), so process start-up is in neither side. Fetches are paced (PACE_S between two) so that one client
 * stays inside the gateway's per-client limits (10 DNS queries a second; 4 new connections a second into Tor's
 * automap range): the figure is the path's latency, not the limiter's. Reference and subject alternate in blocks.
 * A fetch counts only with HTTP 200 and the page's size; the others are counted as failures and reported.
 */
import { join } from 'node:path';
import { PATHS } from '../src/render/gateway/common.ts';
import { EEPSITE_MARKER, gatewayI2pdDropIn, I2pNet, netDbPath } from '../test/net/lib/i2pnet.ts';
import { A } from '../test/net/lib/lab.ts';
import { run, sleep } from '../test/net/lib/sh.ts';
import { gatewayTorrc, ONION_MARKER, TorNet, WEB_MARKER, WEB_NAME, WEB_PORT } from '../test/net/lib/torenet.ts';
import { World } from '../test/net/lib/world.ts';
import { median } from './measure.ts';

/** Seconds between two fetches of one side (one client inside its DNS and automap limits). */
const PACE_S = 0.25;
/** Blocks per side: reference and subject alternate block by block. */
const BLOCKS = 10;
const BENCH_SOCKS = '127.0.0.1:9150';

export interface FetchSide {
  readonly p50ms: number;
  readonly p99ms: number;
  readonly meanMs: number;
  readonly fetches: number;
  readonly failures: number;
  /** Every successful fetch's time, ms, in order. */
  readonly times: readonly number[];
}

export interface PagePair {
  readonly gateway: FetchSide;
  readonly inside: FetchSide;
}

export interface PrivnetResult {
  readonly i2p?: PagePair;
  readonly clearnet?: PagePair;
  readonly onion?: PagePair;
  /** ms the networks took to come up, the first pages, and the stage's whole time. */
  readonly timing: Record<string, number>;
  readonly versions: string;
}

export interface PrivnetOptions {
  readonly i2p: boolean;
  readonly tor: boolean;
  readonly i2pFetches: number;
  readonly torFetches: number;
  readonly cleanups: Array<() => Promise<void> | void>;
  readonly log: (msg: string) => void;
}

export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

function side(times: number[], failures: number, fetches: number): FetchSide {
  return { p50ms: median(times), p99ms: quantile(times, 0.99), meanMs: times.reduce((a, b) => a + b, 0) / Math.max(1, times.length), fetches, failures, times };
}

/** One curl after another (PACE_S apart): "code size seconds" a line; a failed curl prints "000 0 0". */
const LOOP =
  'n=$1; pace=$2; shift 2; i=0; while [ "$i" -lt "$n" ]; do ' +
  'out=$(curl -sS -m 20 -o /dev/null -w "%{http_code} %{size_download} %{time_total}" "$@" 2>/dev/null); ' +
  'echo "${out:-000 0 0}"; sleep "$pace"; i=$((i+1)); done';

async function series(prefix: readonly string[], n: number, curlArgs: readonly string[], size: number): Promise<{ ok: number[]; failed: number }> {
  const r = await run([...prefix, 'sh', '-c', LOOP, 'sh', String(n), String(PACE_S), ...curlArgs], { timeoutMs: n * 25_000 + 10_000 });
  const ok: number[] = [];
  let failed = 0;
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  for (const l of lines) {
    const [code, bytes, secs] = l.trim().split(/\s+/);
    if (code === '200' && Number(bytes) === size) ok.push(Number(secs) * 1000);
    else failed++;
  }
  failed += Math.max(0, n - lines.length);
  return { ok, failed };
}

/** One fetch with its body: the page (and its size) both paths must give before they are timed. */
async function page(prefix: readonly string[], curlArgs: readonly string[]): Promise<{ status: string; body: string; err: string }> {
  const r = await run([...prefix, 'curl', '-sS', '-m', '30', '-o', '-', '-w', '\n@@%{http_code}', ...curlArgs], { timeoutMs: 40_000 });
  const at = r.stdout.lastIndexOf('\n@@');
  return { status: at >= 0 ? r.stdout.slice(at + 3) : '', body: at >= 0 ? r.stdout.slice(0, at) : r.stdout, err: r.stderr };
}

/** Poll until both paths give the page with its marker (a first fetch waits for tunnels or circuits); its size. */
async function firstPage(what: string, paths: ReadonlyArray<{ prefix: readonly string[]; args: readonly string[] }>, marker: string, timeoutMs: number): Promise<{ size: number; ms: number }> {
  const t0 = Date.now();
  let size = -1;
  for (const p of paths) {
    let last = { status: '', body: '', err: '' };
    for (;;) {
      last = await page(p.prefix, p.args);
      if (last.status === '200' && last.body.includes(marker)) break;
      if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: no page within ${timeoutMs} ms through ${p.args.join(' ')}: HTTP ${last.status} ${last.err}\n${last.body.slice(0, 600)}`);
      await sleep(1000);
    }
    const s = Buffer.byteLength(last.body);
    if (size >= 0 && s !== size) throw new Error(`${what}: the two paths give pages of ${size} and ${s} bytes`);
    size = s;
  }
  return { size, ms: Date.now() - t0 };
}

async function pair(
  what: string,
  n: number,
  gateway: { prefix: readonly string[]; args: readonly string[] },
  inside: { prefix: readonly string[]; args: readonly string[] },
  size: number,
  log: (msg: string) => void,
): Promise<PagePair> {
  const times = { gateway: [] as number[], inside: [] as number[] };
  const failed = { gateway: 0, inside: 0 };
  const per = Math.ceil(n / BLOCKS);
  for (let b = 0; b < BLOCKS; b++) {
    for (const [k, p] of [['inside', inside], ['gateway', gateway]] as const) {
      const r = await series(p.prefix, per, p.args, size);
      times[k].push(...r.ok);
      failed[k] += r.failed;
    }
  }
  const out = { gateway: side(times.gateway, failed.gateway, per * BLOCKS), inside: side(times.inside, failed.inside, per * BLOCKS) };
  log(`${what}: through the gateway p50 ${out.gateway.p50ms.toFixed(1)} ms p99 ${out.gateway.p99ms.toFixed(1)} ms (${out.gateway.failures} failed); inside p50 ${out.inside.p50ms.toFixed(1)} ms p99 ${out.inside.p99ms.toFixed(1)} ms (${out.inside.failures} failed)`);
  return out;
}

export async function privnetFigures(opts: PrivnetOptions): Promise<PrivnetResult | { skipped: string }> {
  if (process.getuid?.() !== 0) return { skipped: 'needs root (network namespaces)' };
  const t0 = Date.now();
  const timing: Record<string, number> = {};
  const log = opts.log;
  const w = await World.create({});
  timing['labMs'] = Date.now() - t0;
  opts.cleanups.push(() => w.destroy());
  const lab = w.lab;
  let i2p: I2pNet | undefined;
  let tor: TorNet | undefined;
  if (opts.i2p) {
    const t = Date.now();
    i2p = await I2pNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 90_000 });
    const net = i2p;
    opts.cleanups.push(() => net.stop());
    timing['i2pNetworkUpMs'] = Date.now() - t;
    await lab.gwRun(['sh', '-c', 'mkdir -p /etc/systemd/system/i2pd.service.d && cat > /etc/systemd/system/i2pd.service.d/zz-lab-privnet.conf'], { input: gatewayI2pdDropIn(PATHS.i2pdRuntimeConf, false) });
    for (const [i, r] of i2p.routers.entries()) {
      const dst = join('/var/lib/i2pd/netDb', netDbPath(i2p.routerInfos()[i] as Buffer));
      const cp = await lab.gwRun(['sh', '-c', 'mkdir -p "$(dirname "$2")" && cp "$1" "$2"', 'sh', join(r.dir, 'router.info'), dst], { user: 'i2pd' });
      if (cp.code !== 0) throw new Error(`P7: cannot seed the gateway's netDb: ${cp.stderr}`);
    }
  }
  if (opts.tor) {
    const t = Date.now();
    tor = await TorNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 180_000 });
    const net = tor;
    opts.cleanups.push(() => net.stop());
    timing['torNetworkUpMs'] = Date.now() - t;
    const wr = await lab.gwRun(['sh', '-c', `cat > ${PATHS.torrcD}/lab-privnet.conf`], { input: gatewayTorrc(tor.dirAuthorities) });
    if (wr.code !== 0) throw new Error(`P9: cannot write the torrc.d file: ${wr.stderr}`);
    w.torExtraArgs = ['--SocksPort', BENCH_SOCKS];
  }
  const t1 = Date.now();
  await w.use({ tor: opts.tor ? 'real' : 'off', router: opts.i2p ? 'real' : 'off', dnsmasq: true, tinyproxy: true });
  const versions = (await lab.gwRun(['dpkg-query', '-W', '-f', '${Package} ${Version}, ', 'tor', 'i2pd', 'tinyproxy', 'dnsmasq-base', 'curl'])).stdout.replace(/, $/, '');
  const client = lab.clientView();
  const gw = lab.gwView();
  const result: { -readonly [K in keyof PrivnetResult]: PrivnetResult[K] } = { timing, versions };

  if (i2p !== undefined) {
    const url = `http://${i2p.b32}/`;
    const proxy = `http://${w.routerHttp.host}:${w.routerHttp.port}`;
    const subject = { prefix: client, args: [url] };
    const reference = { prefix: gw, args: ['-x', proxy, url] };
    const first = await firstPage('P7', [subject, reference], EEPSITE_MARKER, 240_000);
    timing['i2pFirstPageMs'] = Date.now() - t1;
    log(`P7: the eepsite loads on both paths (${first.size} bytes), ${timing['i2pFirstPageMs']} ms after the gateway's daemons started`);
    const tp = Date.now();
    result.i2p = await pair('P7 eepsite', opts.i2pFetches, subject, reference, first.size, log);
    timing['p7FetchesMs'] = Date.now() - tp;
  }
  if (tor !== undefined) {
    const net = tor;
    const clear = `http://${WEB_NAME}:${WEB_PORT}/`;
    const socks = ['--socks5-hostname', BENCH_SOCKS];
    const cSubject = { prefix: client, args: [clear] };
    const cReference = { prefix: gw, args: [...socks, clear] };
    const first = await firstPage('P9 clearnet', [cSubject, cReference], WEB_MARKER, 180_000);
    timing['torFirstPageMs'] = Date.now() - t1;
    log(`P9: the clearnet page loads on both paths (${first.size} bytes)`);
    const tp = Date.now();
    result.clearnet = await pair('P9 clearnet', opts.torFetches, cSubject, cReference, first.size, log);
    const peers = [...new Set(net.webRequests().map((r) => r.peer))];
    if (peers.length !== 1 || peers[0] !== net.exit.addr) throw new Error(`P9: the web server saw ${peers.join(', ')}, not only the exit ${net.exit.addr}`);

    // The onion's name: resolved once by the client's DNS (Tor's mapped address), as a browser caches it.
    const dig = await run([...client, 'dig', '+short', '+time=5', '+tries=1', `@${A.dns1}`, net.onion, 'A'], { timeoutMs: 10_000 });
    const addr = dig.stdout.trim().split('\n')[0] ?? '';
    if (!/^10\.(19[2-9]|2[0-5][0-9])\.\d+\.\d+$/.test(addr)) throw new Error(`P9: the client's DNS gave ${addr || 'nothing'} for the onion: ${dig.stderr}`);
    const oSubject = { prefix: client, args: ['-H', `Host: ${net.onion}`, `http://${addr}/`] };
    const oReference = { prefix: gw, args: [...socks, `http://${net.onion}/`] };
    const firstOnion = await firstPage('P9 onion', [oSubject, oReference], ONION_MARKER, 180_000);
    log(`P9: the onion page loads on both paths (${firstOnion.size} bytes)`);
    result.onion = await pair('P9 onion', opts.torFetches, oSubject, oReference, firstOnion.size, log);
    timing['p9FetchesMs'] = Date.now() - tp;
  }
  timing['stageMs'] = Date.now() - t0;
  return result;
}
