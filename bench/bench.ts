/**
 * `npm run bench`: ten figures, each a ratio against a reference measured in the same run, each side the median of at
 * least 5 runs (after one discarded warm-up), reference and subject interleaved run by run (P6 and P10: the median
 * of P6_RUNS boots, see bench/clients.ts).
 *
 *   P1  the full build (formula, .deb, .rpm) as a cold process (`tsx build/build.ts`, and the precompiled entry
 *       when there is one) vs `dpkg-deb --build --root-owner-group` + `rpmbuild -bb` on the same staged trees
 *       (the .deb unpacked with `dpkg-deb -R`; the spec rpm/qubes-mgmt-salt-i2p-gateway.spec with
 *       `_sourcedir` = our output). Both native tools compress with gzip -9 like our writers (dpkg-deb -Zgzip
 *       -z9; the spec pins w9.gzdio), so the work compared is the same.
 *   P2  HTTP through the gateway (client → nft DNAT → the client's own HTTP front, 127.0.0.4:31000 → the stand-in
 *       where the client's own i2pd proxy listens, 127.0.0.1:31000;
 *       with i2p.clientDestinations: shared, client → nft redirect → tinyproxy → the stand-in on 127.0.0.1:4444)
 *       vs the client using the stand-in directly as its proxy (on the gateway's vif address): requests/s, p50
 *       and p99 latency, with wrk (bounded duration). The stand-in closes every connection (as i2pd's proxy
 *       does), so both paths pay one TCP connect per request.
 *   P3  `.i2p` A answers/s from the packaged dnsmasq (client → 10.139.1.1:53, redirected) vs a plain dnsmasq
 *       with one local record (address=/x.test/1.2.3.4) on the gateway's vif address, the same load on both: many
 *       client addresses (bench/tools/dns-load-clients.mjs, 4096 addresses), each below the gateway's per-client
 *       DNS limit (10 queries a second after a burst of 100), so the figure is the DNS path's (the limit's
 *       bookkeeping included), not the limiter's; the limit's drop counter must not move. One client alone
 *       against its limit (bench/tools/dns-load.mjs from one address) is in the detail.
 *   P4  the build with 100 client qubes vs 1 (cold process through the entry with the least start-up,
 *       build/fast.mjs when present; the in-process pipeline time is shown too).
 *   P5  a booted gateway qube (systemd-nspawn, in the lab): time from the container's start to "ruleset loaded"
 *       (and, in the detail, to the client's first `.i2p` answer) vs an ordinary qube of the same template
 *       reaching multi-user.target in the same run.
 *   P6  the resident memory of a booted gateway's daemons together (VmRSS and PSS of every process of their units;
 *       i2pd's alone in the detail) on the private I2P network with 1, 10 and 50 client qubes, each its own
 *       destination with its tunnels built and a page fetched (at 10 and 50 also before the page) vs the same
 *       boot with no client; the figure is 50 clients' PSS ratio (bench/clients.ts).
 *   P7  an eepsite page of the lab's private I2P network (real Debian 13 i2pd routers, test/net/lib/i2pnet.ts)
 *       through the emulated gateway (client → DNS → virtual IP → tinyproxy → i2pd) vs curl inside the gateway
 *       with i2pd's HTTP proxy: p50 and p99 of 200 paced fetches a side (bench/privnet.ts).
 *   P8  a booted gateway's first I2P page in a client qube, from systemd-nspawn's start, on its first boot (new
 *       /rw) and its second (identity and netDb kept), vs a bare i2pd with the same config and seeds in the same
 *       network, from its start to the first page through its own proxy (bench/firstpage.ts; median of 5 runs).
 *   P9  a clearnet page (P9a) and an onion page (P9b) of the lab's private Tor network (test/net/lib/torenet.ts)
 *       through the emulated gateway's TransPort vs curl inside the gateway through a SocksPort of the same Tor:
 *       p50 and p99 of 100 paced fetches a side and page (bench/privnet.ts).
 *  P10  a client qube's first eepsite page from its start (its address in Qubes' set), its destination new vs
 *       its destination kept (the client went away and came back), in P6's boots (bench/clients.ts).
 *
 * P1's figure is for the entry package.json's `build` script runs; every entry's ratio is in its detail.
 *
 * P5 (bench/boot.ts), P6 and P10 (bench/clients.ts) boot the Debian 13 root of the booted suite (test/boot/); they
 * need root and systemd-nspawn, and are reported as skipped otherwise.
 *
 * P2 and P3 run in the datapath suite's namespace lab (test/net/lib/lab.ts) with the packaged configs and the
 * gateway's full ruleset loaded; they need root, ip, nft, tinyproxy, dnsmasq and wrk, and are reported as
 * skipped (with the reason) otherwise. Everything it creates (temp dirs, namespaces, processes) is removed on
 * the way out, also after a failure or Ctrl-C. Writes bench/results.json. No figure is ever asserted.
 *
 * P7 and P9 run the private networks in the datapath lab, P6, P8 and P10 in the booted lab (root, systemd-nspawn).
 * results.json's `stageSeconds` has the time each group of figures took.
 *
 * Options: --runs N (default 7, at least 5), --only P1,P3 (P6,P7,P8,P9,P10: the private networks' figures alone),
 * --out FILE (default bench/results.json).
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseConfigText } from '../src/config/load.ts';
import { readStaticSources } from '../src/io/static.ts';
import { build } from '../src/pipeline.ts';
import { bootFigures, bootTemplate, medianOf, type BootResult, type BootTemplate } from './boot.ts';
import { firstPageFigures, firstPageMedians, P8_RUNS, type FirstPageResult } from './firstpage.ts';
import { clientsFigures, pointMedian, STEPS, type ClientsResult, type Point } from './clients.ts';
import { datapath, type DatapathResult } from './datapath.ts';
import { privnetFigures, type FetchSide, type PrivnetResult } from './privnet.ts';
import { median, timeCold, type Timing } from './measure.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TSX_CLI = join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const SPEC = join(ROOT, 'rpm/qubes-mgmt-salt-i2p-gateway.spec');
const EPOCH = '1767225600';
const WARMUP = 10;
/** P7: fetches per side; P9: per side and page (each paced, see bench/privnet.ts). */
const I2P_FETCHES = 200;
const TOR_FETCHES = 100;

interface Entry {
  readonly name: string;
  readonly argv: (out: string, config?: string) => string[];
}

/** The ways to run the build as a cold process: what `npm run build` runs, and the precompiled entry if any. */
function entries(): Entry[] {
  const list: Entry[] = [
    { name: 'tsx build/build.ts', argv: (out, config) => [process.execPath, TSX_CLI, join(ROOT, 'build/build.ts'), '--out', out, ...(config ? ['--config', config] : [])] },
    { name: 'node --import tsx build/build.ts', argv: (out, config) => [process.execPath, '--import', 'tsx', join(ROOT, 'build/build.ts'), '--out', out, ...(config ? ['--config', config] : [])] },
  ];
  const fast = join(ROOT, 'build/fast.mjs');
  if (existsSync(fast)) {
    list.push({ name: 'node build/fast.mjs (precompiled)', argv: (out, config) => [process.execPath, fast, '--out', out, ...(config ? ['--config', config] : [])] });
  }
  return list;
}

/** The entry `npm run build` runs (package.json scripts.build), so the figures are about what users get. */
function npmBuildEntry(list: readonly Entry[]): Entry {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts?.['build'] ?? '';
  const pick = script.includes('build/fast.mjs') ? 'node build/fast.mjs' : script.includes('--import tsx') ? 'node --import tsx' : 'tsx build/build.ts';
  return list.find((e) => e.name.startsWith(pick)) ?? list[0]!;
}

function configWithClients(n: number): string {
  const names = Array.from({ length: n }, (_, i) => `client-${String(i + 1).padStart(3, '0')}`);
  return `qubes:\n  clients:\n${names.map((c) => `    - ${c}\n`).join('')}`;
}

function must(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 32 << 20, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}${r.error ? String(r.error) : ''}`);
  return r.stdout;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export interface Figure {
  readonly id: string;
  readonly title: string;
  /** subject / reference for times; for rates also subject / reference (below 1: slower). */
  readonly ratio?: number;
  readonly unit?: string;
  readonly subject?: Timing | Record<string, unknown>;
  readonly reference?: Timing | Record<string, unknown>;
  readonly detail?: Record<string, unknown>;
  readonly skipped?: string;
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

// ------------------------------------------------------------------------------------------------------ P1

function p1(work: string, runs: number, distDir: string, debFile: string): Figure {
  if (!have('dpkg-deb') || !have('rpmbuild')) return { id: 'P1', title: 'full build vs dpkg-deb + rpmbuild', skipped: 'dpkg-deb or rpmbuild missing (sh test/oracles.sh)' };
  const stage = join(work, 'p1-stage');
  must('dpkg-deb', ['-R', debFile, stage]);
  const topdir = join(work, 'p1-rpmbuild');
  const refDeb = join(work, 'p1-ref.deb');
  const env = { ...process.env, SOURCE_DATE_EPOCH: EPOCH, LC_ALL: 'C.UTF-8', TZ: 'UTC' };
  const ref = (): number => {
    const t0 = performance.now();
    must('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z9', '--build', stage, refDeb], { env });
    must('rpmbuild', ['-bb', '--quiet', '--define', `_sourcedir ${distDir}`, '--define', `_topdir ${topdir}`, '--define', 'gw_version 0.1.0', SPEC], { env });
    return performance.now() - t0;
  };
  const out = join(work, 'p1-out');
  const subjects = entries();
  const times = new Map<string, number[]>([['reference', []], ...subjects.map((s) => [s.name, []] as [string, number[]])]);
  // one warm-up of each (page cache, tsx's transform cache), then interleaved measured runs
  ref();
  for (const s of subjects) timeCold(s.argv(out), { cwd: ROOT });
  for (let i = 0; i < runs; i++) {
    times.get('reference')!.push(ref());
    for (const s of subjects) times.get(s.name)!.push(timeCold(s.argv(out), { cwd: ROOT }));
  }
  // Where the time goes: node itself, tsx's start-up, and the pipeline in-process.
  const empty = join(work, 'empty.ts');
  writeFileSync(empty, 'export {};\n');
  const nodeBare: number[] = [];
  const tsxBare: number[] = [];
  for (let i = 0; i < runs; i++) {
    nodeBare.push(timeCold([process.execPath, '-e', '0']));
    tsxBare.push(timeCold([process.execPath, TSX_CLI, empty]));
  }
  const [inProc] = inProcess(runs, ['']);
  const refT: Timing = { median: median(times.get('reference')!), runs: times.get('reference')! };
  const subjectTimings = Object.fromEntries(subjects.map((s) => [s.name, { median: median(times.get(s.name)!), runs: times.get(s.name)! }]));
  const npmEntry = npmBuildEntry(subjects);
  const main = subjectTimings[npmEntry.name]!;
  return {
    id: 'P1',
    title: `full build, cold process (${npmEntry.name}, what npm run build runs), vs dpkg-deb --build + rpmbuild -bb on the same trees`,
    ratio: main.median / refT.median,
    unit: 'time ratio (below 1: faster than the native tools)',
    subject: main,
    reference: refT,
    detail: {
      npmRunBuild: npmEntry.name,
      entries: Object.fromEntries(Object.entries(subjectTimings).map(([k, v]) => [k, { ...v, ratio: v.median / refT.median }])),
      nodeStartMs: median(nodeBare),
      tsxStartMs: median(tsxBare),
      pipelineInProcessMs: inProc!,
    },
  };
}

/**
 * The pure pipeline in this process (modules loaded, JIT warm): the work itself, without any start-up.
 * Several configs are measured interleaved, after WARMUP builds of each (JIT tiers); returns the medians in ms.
 */
function inProcess(runs: number, configTexts: readonly string[]): number[] {
  const sources = readStaticSources();
  const configs = configTexts.map((t) => {
    const loaded = parseConfigText(t);
    if (!loaded.ok) throw new Error('bench: config does not parse');
    return loaded.config;
  });
  const times = configs.map((): number[] => []);
  for (let i = 0; i < runs + WARMUP; i++) {
    configs.forEach((config, k) => {
      const t0 = performance.now();
      build({ config, sourceDateEpoch: Number(EPOCH), sources });
      if (i >= WARMUP) times[k]!.push(performance.now() - t0);
    });
  }
  return times.map(median);
}

// ------------------------------------------------------------------------------------------------------ P4

function p4(work: string, runs: number): Figure {
  const one = join(work, 'p4-1.yaml');
  const hundred = join(work, 'p4-100.yaml');
  writeFileSync(one, configWithClients(1));
  writeFileSync(hundred, configWithClients(100));
  // The entry with the least start-up, so that the figure is about the build's own work.
  const entry = entries().find((e) => e.name.includes('fast.mjs')) ?? npmBuildEntry(entries());
  const out = join(work, 'p4-out');
  const t1: number[] = [];
  const t100: number[] = [];
  timeCold(entry.argv(out, one), { cwd: ROOT });
  timeCold(entry.argv(out, hundred), { cwd: ROOT });
  for (let i = 0; i < runs; i++) {
    t1.push(timeCold(entry.argv(out, one), { cwd: ROOT }));
    t100.push(timeCold(entry.argv(out, hundred), { cwd: ROOT }));
  }
  const [in1, in100] = inProcess(runs, [configWithClients(1), configWithClients(100)]) as [number, number];
  return {
    id: 'P4',
    title: `build with 100 client qubes vs 1 (cold process, ${entry.name})`,
    ratio: median(t100) / median(t1),
    unit: 'time ratio',
    subject: { median: median(t100), runs: t100 },
    reference: { median: median(t1), runs: t1 },
    detail: { pipelineInProcessMs: { clients1: in1, clients100: in100, ratio: in100 / in1 } },
  };
}

// ------------------------------------------------------------------------------------------------- P2, P3

function datapathFigures(r: DatapathResult | { skipped: string }): Figure[] {
  const p2Title = 'HTTP requests/s through the gateway (nft → the client\'s own HTTP front → its own proxy stand-in; shared: nft → tinyproxy → stand-in) vs the stand-in directly as proxy';
  const p3Title = '.i2p A answers/s from the packaged dnsmasq (redirected, the per-client limits loaded) for 4096 client addresses each inside its limit vs a plain dnsmasq with one record, same load';
  if ('skipped' in r) return [{ id: 'P2', title: p2Title, skipped: r.skipped }, { id: 'P3', title: p3Title, skipped: r.skipped }];
  const figs: Figure[] = [];
  if (r.http !== undefined) {
    const { gateway, direct, wrk } = r.http;
    figs.push({
      id: 'P2',
      title: p2Title,
      ratio: gateway.rps / direct.rps,
      unit: 'throughput ratio (1: no cost; p50/p99 latency ratios in detail)',
      subject: { ...gateway },
      reference: { ...direct },
      detail: { p50Ratio: gateway.p50ms / direct.p50ms, p99Ratio: gateway.p99ms / direct.p99ms, wrk },
    });
  }
  if (r.dns !== undefined) {
    const { gateway, plain, load, oneClient } = r.dns;
    figs.push({
      id: 'P3',
      title: p3Title,
      ratio: gateway.aps / plain.aps,
      unit: 'throughput ratio (1: no cost)',
      subject: { ...gateway },
      reference: { ...plain },
      detail: { load, oneClientAgainstItsLimit: oneClient },
    });
  }
  return figs;
}

// ------------------------------------------------------------------------------------------------- P5, P6

function bootFigureList(r: BootResult | { skipped: string }): Figure[] {
  const p5Title = 'booted gateway: container start to "ruleset loaded" vs an ordinary qube of the template to multi-user.target';
  if ('skipped' in r) return [{ id: 'P5', title: p5Title, skipped: r.skipped }];
  const ruleset = r.gateway.map((g) => g.rulesetMs);
  const first = r.gateway.map((g) => g.firstI2pMs);
  const plain = r.reference.map((g) => g.multiUserMs);
  const ref = median(plain);
  return [
    {
      id: 'P5',
      title: p5Title,
      ratio: median(ruleset) / ref,
      unit: 'time ratio',
      subject: { median: median(ruleset), runs: ruleset },
      reference: { median: ref, runs: plain },
      detail: {
        firstI2pAnswerMs: { median: median(first), runs: first, ratio: median(first) / ref },
        gatewayMultiUserMs: medianOf(r.gateway, (g) => g.multiUserMs),
        versions: r.versions,
        note: 'each run a first boot of a new gateway (new /rw); CLOCK_MONOTONIC from systemd-nspawn\'s start',
      },
    },
  ];
}

// ------------------------------------------------------------------------------------------------ P6, P10

function clientsFigureList(r: ClientsResult | { skipped: string }): Figure[] {
  const p6Title = 'booted gateway on the private I2P network: its daemons\' memory (PSS, RSS; i2pd\'s alone) with 1, 10 and 50 client qubes, each its own destination with its tunnels built and a page fetched, vs the same gateway with no client';
  const p10Title = 'a client qube\'s first eepsite page from its start (its address in Qubes\' set) with a new destination vs with its destination kept (the client went away and came back)';
  if ('skipped' in r) return [{ id: 'P6', title: p6Title, skipped: r.skipped }, { id: 'P10', title: p10Title, skipped: r.skipped }];
  const MiB = 1024;
  const at = (n: number, page: boolean, f: (p: Point) => number): number => pointMedian(r, n, page, f) / MiB;
  const i2pd = (p: Point): number => p.byUnit['i2pd.service']?.pssKiB ?? 0;
  const i2pdRss = (p: Point): number => p.byUnit['i2pd.service']?.rssKiB ?? 0;
  const show = (n: number, page: boolean): Record<string, number> => ({
    clients: n,
    pssMiB: at(n, page, (p) => p.pssKiB),
    rssMiB: at(n, page, (p) => p.rssKiB),
    i2pdPssMiB: at(n, page, i2pd),
    i2pdRssMiB: at(n, page, i2pdRss),
  });
  const ref = show(0, false);
  const point = (n: number, page: boolean): Record<string, number> => {
    const x = show(n, page);
    return {
      ...x,
      pssRatio: x['pssMiB']! / ref['pssMiB']!,
      rssRatio: x['rssMiB']! / ref['rssMiB']!,
      i2pdPssRatio: x['i2pdPssMiB']! / ref['i2pdPssMiB']!,
      i2pdRssRatio: x['i2pdRssMiB']! / ref['i2pdRssMiB']!,
      perClientPssMiB: (x['pssMiB']! - ref['pssMiB']!) / n,
      perClientI2pdPssMiB: (x['i2pdPssMiB']! - ref['i2pdPssMiB']!) / n,
    };
  };
  const last = STEPS[STEPS.length - 1]!;
  const withPage = Object.fromEntries(STEPS.map((n) => [String(n), point(n, true)]));
  const beforePage = Object.fromEntries(STEPS.slice(1).map((n) => [String(n), point(n, false)]));
  const units = r.units;
  const newMs = r.runs.map((x) => x.firstNewMs);
  const existingMs = r.runs.map((x) => x.firstExistingMs);
  return [
    {
      id: 'P6',
      title: p6Title,
      ratio: withPage[String(last)]!['pssRatio']!,
      unit: `PSS ratio, ${last} clients (each with a page fetched) / none, the same boot; median of ${r.runs.length} boots (every point in detail)`,
      subject: { ...withPage[String(last)]! },
      reference: ref,
      detail: {
        withPage,
        tunnelsBuiltNoPageYet: beforePage,
        units,
        settleSeconds: r.settleSeconds,
        runs: r.runs.map((x) => ({
          destinationStoppedWhenTheClientLeft: x.destinationStopped,
          points: x.points.map((p) => ({ clients: p.clients, page: p.page, destinationsBeyondOneAClient: p.console.destinations - (x.points[0]?.console.destinations ?? 0) - p.clients, pssMiB: p.pssKiB / MiB, rssMiB: p.rssKiB / MiB, i2pdPssMiB: i2pd(p) / MiB, i2pdRssMiB: i2pdRss(p) / MiB, console: p.console, byUnitPssMiB: Object.fromEntries(Object.entries(p.byUnit).map(([u, m]) => [u, m.pssKiB / MiB])) })),
          tunnelsBuiltMs: x.readyMs,
          pagesMs: x.pagesMs,
        })),
        i2pNetworkUpMs: r.i2pNetworkUpMs,
        note: 'clients attached as Lab.addClient attaches them (a vif, a route, the address in Qubes\' allowed/downstream sets); "tunnels built": i2pd\'s console lists every local destination with an established inbound and outbound tunnel; each point measured settleSeconds after its state was reached; destinationsBeyondOneAClient: local destinations i2pd lists beyond the no-client ones and one a client (seen here, and in the figure as a gateway whose clients come and go has them: i2pd 2.56 makes a new shared local destination at every reload, ClientContext::ReloadConfig, and a departed client\'s destination stayed listed with its tunnels); the gateway booted with no client (the first lab client taken out of the stand-in\'s qubes-base.nft)',
        javaRouter: 'not measured: the Java router is not in Debian and its repository is unreachable here; a stand-in says nothing of its memory',
        versions: r.versions,
      },
    },
    {
      id: 'P10',
      title: p10Title,
      ratio: median(newMs) / median(existingMs),
      unit: `time ratio; median of ${r.runs.length} runs (one pair a boot, on the first client, no other client attached)`,
      subject: { median: median(newMs), runs: newMs },
      reference: { median: median(existingMs), runs: existingMs },
      detail: {
        destinationStoppedWhenTheClientLeft: r.runs.map((x) => x.destinationStopped),
        note: 'from the client\'s address entering Qubes\' set `ip qubes allowed` to its first 200 with the eepsite\'s page (a new curl every 500 ms in the client\'s namespace, the b32 pinned to the virtual IP); existing: the client went away (address out of the set, vif down), the proxies\' program removed its tunnel file and its port closed, then it came back with its keys in i2pd\'s state; destinationStoppedWhenTheClientLeft false: i2pd 2.56 still listed its destination (with its tunnels) 20 s after its proxy was gone, so the returning proxy found it running',
        versions: r.versions,
      },
    },
  ];
}

// ------------------------------------------------------------------------------------------------------ P8

/** Why booted gateways cannot run here, or undefined. */
function bootSkip(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (systemd-nspawn, network namespaces)';
  for (const tool of ['systemd-nspawn', 'debootstrap', 'ip', 'nsenter']) {
    if (!['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, tool)))) return `${tool} is not installed (sh test/oracles.sh)`;
  }
  return undefined;
}

function firstPageFigureList(r: FirstPageResult | { skipped: string }): Figure[] {
  const title = 'booted gateway: first I2P page in a client qube after the first boot of a new gateway (and the second, identity and netDb kept) vs a bare i2pd started the same way in the same network';
  if ('skipped' in r) return [{ id: 'P8', title, skipped: r.skipped }];
  const m = firstPageMedians(r);
  return [
    {
      id: 'P8',
      title,
      ratio: m.gatewayFirstMs / m.bareFirstMs,
      unit: `time ratio, first boot (second boot in detail); median of ${P8_RUNS} runs`,
      subject: { median: m.gatewayFirstMs, runs: r.runs.map((x) => x.gatewayFirstMs), secondBootMedian: m.gatewaySecondMs, secondBootRuns: r.runs.map((x) => x.gatewaySecondMs) },
      reference: { median: m.bareFirstMs, runs: r.runs.map((x) => x.bareFirstMs), secondStartMedian: m.bareSecondMs, secondStartRuns: r.runs.map((x) => x.bareSecondMs) },
      detail: {
        secondBootRatio: m.gatewaySecondMs / m.bareSecondMs,
        warmup: r.warmup,
        i2pNetworkUpMs: r.i2pNetworkUpMs,
        versions: r.versions,
        note: 'subject from systemd-nspawn\'s start to the client\'s first eepsite page (DNS → virtual IP → tinyproxy → i2pd); reference from the bare i2pd\'s start to the first page through its own HTTP proxy; both polled with a new curl every 500 ms',
      },
    },
  ];
}

// --------------------------------------------------------------------------------------------------- P7, P9

/** Fetch latencies as a figure: p50 ratio (gateway / inside), p99 ratio in detail. */
function fetchFigure(id: string, title: string, gateway: FetchSide, inside: FetchSide, extra: Record<string, unknown>): Figure {
  const summary = (x: FetchSide): Record<string, unknown> => ({ p50ms: x.p50ms, p99ms: x.p99ms, meanMs: x.meanMs, fetches: x.fetches, failures: x.failures });
  return {
    id,
    title,
    ratio: gateway.p50ms / inside.p50ms,
    unit: 'latency ratio, p50 (1: no cost; p99 ratio in detail)',
    subject: summary(gateway),
    reference: summary(inside),
    detail: { p99Ratio: gateway.p99ms / inside.p99ms, ...extra, timesMs: { gateway: gateway.times, inside: inside.times } },
  };
}

function privnetFigureList(r: PrivnetResult | { skipped: string }, want: ReadonlySet<string>): Figure[] {
  const p7Title = 'an eepsite page of the private I2P network: client qube → DNS → virtual IP → tinyproxy → i2pd, vs curl inside the gateway with i2pd\'s HTTP proxy';
  const p9aTitle = 'a clearnet page by name on the private Tor network: client qube → DNS → Tor DNSPort, TransPort → exit, vs curl inside the gateway through a SocksPort of the same Tor';
  const p9bTitle = 'an onion page on the private Tor network: client qube → Tor\'s mapped address → TransPort → onion service, vs curl inside the gateway through a SocksPort of the same Tor';
  if ('skipped' in r) {
    return [
      ...(want.has('P7') ? [{ id: 'P7', title: p7Title, skipped: r.skipped }] : []),
      ...(want.has('P9') ? [{ id: 'P9a', title: p9aTitle, skipped: r.skipped }, { id: 'P9b', title: p9bTitle, skipped: r.skipped }] : []),
    ];
  }
  const common = { versions: r.versions, timing: r.timing, gateway: 'the lab\'s emulated gateway (test/net/lib/world.ts): the package\'s units and configs, its whole ruleset' };
  const figs: Figure[] = [];
  if (r.i2p) figs.push(fetchFigure('P7', p7Title, r.i2p.gateway, r.i2p.inside, common));
  if (r.clearnet) figs.push(fetchFigure('P9a', p9aTitle, r.clearnet.gateway, r.clearnet.inside, common));
  if (r.onion) figs.push(fetchFigure('P9b', p9bTitle, r.onion.gateway, r.onion.inside, common));
  return figs;
}

// --------------------------------------------------------------------------------------------------- table

function print(figs: readonly Figure[]): void {
  const lines: string[] = ['', 'figure  ratio    subject                          reference                        what'];
  for (const f of figs) {
    if (f.skipped !== undefined) {
      lines.push(`${f.id.padEnd(6)}  skipped  ${f.skipped}`);
      continue;
    }
    const s = f.subject as Record<string, unknown>;
    const r = (f.reference ?? {}) as Record<string, unknown>;
    const show = (x: Record<string, unknown>): string => {
      if (typeof x['median'] === 'number') return `${fmtMs(x['median'])} (median)`;
      if (typeof x['rps'] === 'number') return `${(x['rps'] as number).toFixed(0)} req/s p50 ${(x['p50ms'] as number).toFixed(2)} p99 ${(x['p99ms'] as number).toFixed(2)} ms`;
      if (typeof x['p50ms'] === 'number' && typeof x['fetches'] === 'number') return `p50 ${(x['p50ms'] as number).toFixed(1)} p99 ${(x['p99ms'] as number).toFixed(1)} ms (${x['fetches'] as number}, ${x['failures'] as number} failed)`;
      if (typeof x['aps'] === 'number') return `${(x['aps'] as number).toFixed(0)} answers/s`;
      if (typeof x['clients'] === 'number' && typeof x['pssMiB'] === 'number') return `${x['clients'] as number} clients: ${(x['pssMiB'] as number).toFixed(1)} MiB PSS`;
      if (typeof x['rssMiB'] === 'number') return `${(x['rssMiB'] as number).toFixed(1)} MiB RSS, ${(x['pssMiB'] as number).toFixed(1)} PSS`;
      if (Object.keys(x).length === 0) return '(none in this run)';
      return JSON.stringify(x);
    };
    const ratio = f.ratio === undefined ? 'figure' : f.ratio.toFixed(3);
    lines.push(`${f.id.padEnd(6)}  ${ratio.padEnd(7)}  ${show(s).padEnd(31)}  ${show(r).padEnd(31)}  ${f.title}`);
    if (f.id === 'P1' && f.detail) {
      const d = f.detail as { entries: Record<string, { median: number; ratio: number }>; nodeStartMs: number; tsxStartMs: number; pipelineInProcessMs: number };
      for (const [name, e] of Object.entries(d.entries)) lines.push(`          ${name}: ${fmtMs(e.median)}, ratio ${e.ratio.toFixed(3)}`);
      lines.push(`          start-up: node ${fmtMs(d.nodeStartMs)}, tsx (empty file) ${fmtMs(d.tsxStartMs)}; the pipeline in-process ${fmtMs(d.pipelineInProcessMs)}`);
    }
    if (f.id === 'P2' && f.detail) {
      const d = f.detail as { p50Ratio: number; p99Ratio: number };
      lines.push(`          latency ratios: p50 ${d.p50Ratio.toFixed(2)}, p99 ${d.p99Ratio.toFixed(2)}`);
    }
    if (f.id === 'P3' && f.detail) {
      const o = (f.detail as { oneClientAgainstItsLimit: { aps: number; answered: number; seconds: number; limitedDrops: number } }).oneClientAgainstItsLimit;
      lines.push(`          one client alone flooding: ${o.aps.toFixed(0)} answers/s (${o.answered} in ${o.seconds.toFixed(1)} s; the limit dropped ${o.limitedDrops})`);
    }
    if (/^P[79]/.test(f.id) && f.detail) {
      lines.push(`          p99 ratio ${(f.detail as { p99Ratio: number }).p99Ratio.toFixed(2)}`);
    }
    if (f.id === 'P8' && f.detail) {
      const sub = f.subject as { secondBootMedian: number };
      const ref = f.reference as { secondStartMedian: number };
      lines.push(`          second boot (identity and netDb kept): ${fmtMs(sub.secondBootMedian)} vs the bare i2pd's second start ${fmtMs(ref.secondStartMedian)}, ratio ${(f.detail as { secondBootRatio: number }).secondBootRatio.toFixed(3)}`);
    }
    if (f.id === 'P5' && f.detail) {
      const d = f.detail as { firstI2pAnswerMs: { median: number; ratio: number }; gatewayMultiUserMs: number };
      lines.push(`          first .i2p answer for the client: ${fmtMs(d.firstI2pAnswerMs.median)}, ratio ${d.firstI2pAnswerMs.ratio.toFixed(3)}; the gateway's own multi-user.target: ${fmtMs(d.gatewayMultiUserMs)}`);
    }
    if (f.id === 'P6' && f.detail) {
      const d = f.detail as { withPage: Record<string, Record<string, number>>; tunnelsBuiltNoPageYet: Record<string, Record<string, number>> };
      const ref = f.reference as Record<string, number>;
      lines.push(`          no client: ${ref['pssMiB']!.toFixed(1)} MiB PSS, ${ref['rssMiB']!.toFixed(1)} RSS; i2pd ${ref['i2pdPssMiB']!.toFixed(1)} PSS, ${ref['i2pdRssMiB']!.toFixed(1)} RSS`);
      for (const [label, pts] of [['page fetched', d.withPage], ['tunnels, no page yet', d.tunnelsBuiltNoPageYet]] as const) {
        for (const [n, x] of Object.entries(pts)) {
          lines.push(`          ${n} clients (${label}): PSS ${x['pssMiB']!.toFixed(1)} MiB (${x['pssRatio']!.toFixed(3)}), RSS ${x['rssMiB']!.toFixed(1)} (${x['rssRatio']!.toFixed(3)}); i2pd PSS ${x['i2pdPssMiB']!.toFixed(1)} (${x['i2pdPssRatio']!.toFixed(3)}), RSS ${x['i2pdRssMiB']!.toFixed(1)} (${x['i2pdRssRatio']!.toFixed(3)}); ${x['perClientPssMiB']!.toFixed(2)} MiB PSS a client`);
        }
      }
    }
    if (f.id === 'P4' && f.detail) {
      const d = (f.detail as { pipelineInProcessMs: { clients1: number; clients100: number; ratio: number } }).pipelineInProcessMs;
      lines.push(`          in-process pipeline: 1 client ${fmtMs(d.clients1)}, 100 clients ${fmtMs(d.clients100)}, ratio ${d.ratio.toFixed(2)}`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------------- main

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, only: { type: 'string' }, out: { type: 'string' } } });
  const runs = Math.max(5, Number(values.runs ?? 7) || 7);
  const only = new Set((values.only ?? 'P1,P2,P3,P4,P5,P6,P7,P8,P9,P10').toUpperCase().split(',').map((s) => s.trim()));
  const outFile = resolve(values.out ?? join(ROOT, 'bench/results.json'));
  const work = mkdtempSync(join(tmpdir(), 'qig-bench-'));
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(work, { recursive: true, force: true })];
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      for (const c of cleanups.reverse()) {
        try {
          await c();
        } catch (e) {
          process.stderr.write(`bench: cleanup: ${String(e)}\n`);
        }
      }
    })();
    return cleaning;
  };
  // A stage's own cleanups run when it ends (its labs, networks and machines do not load the stages after it),
  // or with the rest on the way out if it never ends.
  const staged = async <T,>(fn: (stageCleanups: Array<() => Promise<void> | void>) => Promise<T>): Promise<T> => {
    const mine: Array<() => Promise<void> | void> = [];
    let done = false;
    const runMine = async (): Promise<void> => {
      if (done) return;
      done = true;
      for (const c of mine.reverse()) {
        try {
          await c();
        } catch (e) {
          process.stderr.write(`bench: cleanup: ${String(e)}\n`);
        }
      }
    };
    cleanups.push(runMine);
    try {
      return await fn(mine);
    } finally {
      if (!interrupted) await runMine();
    }
  };
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = true;
    process.stderr.write(`bench: ${sig}, cleaning up\n`);
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const started = performance.now();
    process.stdout.write(`bench: ${runs} runs per side, node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})\n`);
    // One build of the default gateway: the trees P1's reference packs, the .deb P2/P3 run.
    const dist = join(work, 'dist');
    must(process.execPath, [TSX_CLI, join(ROOT, 'build/build.ts'), '--out', dist], { cwd: ROOT, env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH } });
    const debName = readdirSync(dist).find((f) => f.endsWith('.deb'));
    if (debName === undefined) throw new Error('bench: the build wrote no .deb');
    const deb = join(dist, debName);

    const figs: Figure[] = [];
    const stageSeconds: Record<string, number> = {};
    if (only.has('P1')) {
      process.stdout.write('P1: full build vs dpkg-deb + rpmbuild …\n');
      const t = performance.now();
      figs.push(p1(work, runs, dist, deb));
      stageSeconds['P1'] = (performance.now() - t) / 1000;
    }
    if (only.has('P2') || only.has('P3')) {
      process.stdout.write('P2, P3: datapath in network namespaces …\n');
      const t = performance.now();
      const r = await staged((c) => datapath({ deb, runs, work, cleanups: c, http: only.has('P2'), dns: only.has('P3') }));
      figs.push(...datapathFigures(r).filter((f) => only.has(f.id)));
      stageSeconds['P2+P3'] = (performance.now() - t) / 1000;
    }
    if (only.has('P4')) {
      process.stdout.write('P4: 1 vs 100 client qubes …\n');
      const t = performance.now();
      figs.push(p4(work, runs));
      stageSeconds['P4'] = (performance.now() - t) / 1000;
    }
    // P5, P6 and P8 boot gateways of one template, made once.
    let template: BootTemplate | undefined;
    const bootable = bootSkip();
    if (bootable === undefined && (only.has('P5') || only.has('P6') || only.has('P8') || only.has('P10'))) {
      process.stdout.write('the template for booted gateways (install.sls in Debian 13) …\n');
      const t = performance.now();
      template = await bootTemplate(cleanups, (msg) => process.stdout.write(`  ${msg}\n`));
      stageSeconds['template (P5, P6, P8, P10)'] = (performance.now() - t) / 1000;
    }
    if (only.has('P5')) {
      process.stdout.write('P5: booted gateways (systemd-nspawn) …\n');
      const t = performance.now();
      const r = bootable !== undefined ? { skipped: bootable } : await staged((c) => bootFigures({ ...(template ? { template } : {}), runs, cleanups: c, log: (msg) => process.stdout.write(`  ${msg}\n`) }));
      figs.push(...bootFigureList(r));
      stageSeconds['P5'] = (performance.now() - t) / 1000;
    }
    if (only.has('P6') || only.has('P10')) {
      process.stdout.write('P6, P10: a booted gateway with 0, 1, 10, 50 client qubes on the private I2P network …\n');
      const t = performance.now();
      const r = bootable !== undefined || template === undefined ? { skipped: bootable ?? 'no template' } : await staged((c) => clientsFigures({ template, cleanups: c, log: (msg) => process.stdout.write(`  ${msg}\n`) }));
      figs.push(...clientsFigureList(r).filter((f) => only.has(f.id)));
      stageSeconds['P6+P10'] = (performance.now() - t) / 1000;
    }
    if (only.has('P8')) {
      process.stdout.write('P8: a booted gateway\'s first I2P page (first and second boot) vs a bare i2pd …\n');
      const t = performance.now();
      const r = bootable !== undefined || template === undefined ? { skipped: bootable ?? 'no template' } : await staged((c) => firstPageFigures({ template, cleanups: c, log: (msg) => process.stdout.write(`  ${msg}\n`) }));
      figs.push(...firstPageFigureList(r));
      stageSeconds['P8'] = (performance.now() - t) / 1000;
    }
    if (only.has('P7') || only.has('P9')) {
      process.stdout.write('P7, P9: pages of the private I2P and Tor networks through the gateway …\n');
      const t = performance.now();
      const r = await staged((c) => privnetFigures({ i2p: only.has('P7'), tor: only.has('P9'), i2pFetches: I2P_FETCHES, torFetches: TOR_FETCHES, cleanups: c, log: (msg) => process.stdout.write(`  ${msg}\n`) }));
      figs.push(...privnetFigureList(r, only));
      stageSeconds['P7+P9'] = (performance.now() - t) / 1000;
    }
    figs.sort((a, b) => Number(a.id.slice(1).replace(/\D.*$/, '')) - Number(b.id.slice(1).replace(/\D.*$/, '')) || a.id.localeCompare(b.id));
    print(figs);
    const result = {
      generatedAt: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? '',
      runs,
      seconds: (performance.now() - started) / 1000,
      stageSeconds,
      figures: Object.fromEntries(figs.map((f) => [f.id, f])),
    };
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`\nwrote ${outFile} (${result.seconds.toFixed(0)} s: ${Object.entries(stageSeconds).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')})\n`);
    return 0;
  } catch (e) {
    if (!interrupted) process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main();
