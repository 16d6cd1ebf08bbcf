/**
 * `npm run repro`: build twice under different conditions and prove the bytes are the same.
 *
 * Build A runs in a copy of the source tree made in sorted order, from that tree, in UTC and the C locale,
 * umask 022, with a relative --out. Build B runs in a second copy made in reverse order (every file dated
 * 2004), from an unrelated working directory, with an absolute --out, TZ=Pacific/Chatham (+12:45), a Turkish
 * locale, umask 077, another HOME/USER/TMPDIR (so a cold tsx cache), shuffled and padded environment, another
 * host name (its own UTS namespace, when root), and another wall clock: `faketime` years ahead when it is
 * installed, and always a preload that shifts JavaScript's Date. Both get the same SOURCE_DATE_EPOCH (the
 * environment's, else HEAD's commit time, as the CLI would pick). Then:
 *   - every artifact (the .deb, the .rpm, every file under formula/ and minion.d/) must have the same sha256
 *     and mode; on a difference the first differing member is named (build/repro-unpack.ts) and diffoscope
 *     runs on it when installed;
 *   - every time stamp inside the packages (ar, tar, cpio, rpm BUILDTIME/FILEMTIMES) must be the epoch;
 *   - the precompiled entry (node build/fast.mjs, bundling on first use, under B's conditions) must match A;
 *   - every Node major in build/node-majors.ts (20, 22, 24) must write the same bytes: the running Node builds
 *     A and B, the others (the pinned registry binaries, fetched once into .cache/node/<major>/; no registry is
 *     a failure, never a skip) run build/fast.mjs under B's conditions in B's copy for every config, and each
 *     must have left its own .cache/entry/node<major>/ there (no major ran another's bundle or code cache);
 *   - a build of the real checkout with SOURCE_DATE_EPOCH unset (so the CLI takes git's) must match A;
 *   - sanity: another SOURCE_DATE_EPOCH must give a different .deb and .rpm (the README's claim).
 * Exit 0 only when all of that holds. Options: --config FILE (repeatable; default: the built-in defaults and
 * a config with clients and granted I2P applications), --keep (keep the temporary trees), --no-diffoscope, --no-faketime
 * (the fallback: Date preload and a delay only), --json FILE.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveEpoch } from '../src/epoch.ts';
import { NODE_MAJORS, nodeFor, runningMajor, type NodeBinary } from './node-majors.ts';
import { collectTimes, firstDifference } from './repro-unpack.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Top-level names never copied into the build trees (node_modules is linked instead). */
const SKIP_TOP = new Set(['.git', 'node_modules', 'dist', '.cache']);
const BUILD_TIMEOUT_MS = 180_000;

export interface FileState {
  readonly sha256: string;
  readonly mode: number;
  readonly data: Uint8Array;
}

export interface Variant {
  readonly label: string;
  readonly what: string;
  readonly srcRoot: string;
  readonly cwd: string;
  readonly outDir: string;
  /** As passed to --out (relative to cwd for A). */
  readonly outArg: string;
  readonly env: NodeJS.ProcessEnv;
  readonly umask: string;
  readonly hostname?: string;
  readonly faketime?: string;
  /** The node binary that runs the build; the running one when absent. */
  readonly node?: string;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function canUnshareUts(): boolean {
  return spawnSync('unshare', ['--uts', 'true'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/** A small PRNG so a run's shuffle can be repeated from its printed seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Relative paths of every file and symlink under root (skipping SKIP_TOP and stray atomic-write dirs). */
function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      if (rel === '' && (SKIP_TOP.has(name) || /\.(new|old)-/.test(name))) continue;
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, r));
      if (st.isDirectory()) walk(r);
      else if (st.isFile() || st.isSymbolicLink()) out.push(r);
    }
  };
  walk('');
  return out.sort();
}

/** One digest of every source file's path and bytes: tells whether two trees (or one over time) are the same. */
export function treeDigest(root: string): string {
  const h = createHash('sha256');
  for (const rel of sourceFiles(root)) {
    const p = join(root, rel);
    h.update(rel).update('\0');
    h.update(lstatSync(p).isSymbolicLink() ? `-> ${readlinkSync(p)}` : readFileSync(p)).update('\0');
  }
  return h.digest('hex');
}

/** Copy the source tree, creating files in the given order; optionally date every file `mtime`. */
export function copyTree(from: string, to: string, order: 'sorted' | 'reversed', mtime?: Date): void {
  const files = sourceFiles(from);
  if (order === 'reversed') files.reverse();
  mkdirSync(to, { recursive: true });
  for (const rel of files) {
    const src = join(from, rel);
    const dst = join(to, rel);
    mkdirSync(dirname(dst), { recursive: true });
    const st = lstatSync(src);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else {
      copyFileSync(src, dst);
      chmodSync(dst, st.mode & 0o7777);
      if (mtime !== undefined) utimesSync(dst, mtime, mtime);
    }
  }
  symlinkSync(join(from, 'node_modules'), join(to, 'node_modules'));
}

/** Every file under dir: sha256, permission bits and bytes; directory modes separately. */
export function readTree(dir: string): { files: Map<string, FileState>; dirs: Map<string, number> } {
  const files = new Map<string, FileState>();
  const dirs = new Map<string, number>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = join(dir, r);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        dirs.set(r, st.mode & 0o7777);
        walk(r);
      } else {
        const data = new Uint8Array(readFileSync(p));
        files.set(r, { sha256: createHash('sha256').update(data).digest('hex'), mode: st.mode & 0o7777, data });
      }
    }
  };
  walk('');
  return { files, dirs };
}

/** Debian's python3 sets the host name in B's own UTS namespace and execs the build, keeping env order. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const SET_HOSTNAME = 'import os, socket, sys; socket.sethostname(sys.argv[1]); os.execv(sys.argv[2], sys.argv[2:])';

/**
 * The command line that runs argv under v's conditions. No shell in between: a shell would re-sort the
 * environment (B's is shuffled on purpose). The umask is set around the spawn (the child inherits it).
 */
function wrap(v: Variant, argv: readonly string[]): string[] {
  let cmd = [...argv];
  if (v.hostname !== undefined) cmd = ['unshare', '--uts', PYTHON, '-c', SET_HOSTNAME, v.hostname, ...cmd];
  if (v.faketime !== undefined) cmd = ['faketime', '-f', v.faketime, ...cmd];
  return cmd;
}

function runIn(v: Variant, argv: readonly string[]): { code: number | null; stdout: string; stderr: string; ms: number } {
  const cmd = wrap(v, argv);
  const t0 = performance.now();
  const old = process.umask(parseInt(v.umask, 8));
  let r;
  try {
    r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: v.cwd, env: v.env, encoding: 'utf8', timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 << 20 });
  } finally {
    process.umask(old);
  }
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? `\n${String(r.error)}` : ''), ms: performance.now() - t0 };
}

/** Run the build CLI under v: through tsx (what `tsx build/build.ts` runs), or the precompiled entry. */
export function runBuild(v: Variant, config: string | undefined, entry: 'tsx' | 'fast' = 'tsx'): { code: number | null; stdout: string; stderr: string; ms: number } {
  const argv = [
    v.node ?? process.execPath,
    ...(entry === 'tsx' ? [join(v.srcRoot, 'node_modules/tsx/dist/cli.mjs'), join(v.srcRoot, 'build/build.ts')] : [join(v.srcRoot, 'build/fast.mjs')]),
    '--out',
    v.outArg,
    ...(config === undefined ? [] : ['--config', config]),
  ];
  return runIn(v, argv);
}

const PROBE = `
import { hostname, userInfo } from 'node:os';
const o = Intl.DateTimeFormat().resolvedOptions();
console.log(JSON.stringify({ date: new Date().toISOString(), tz: o.timeZone, offset: new Date().getTimezoneOffset(), locale: o.locale,
  umask: process.umask().toString(8).padStart(3, '0'), host: hostname(), user: userInfo().username + '/' + (process.env.USER ?? ''),
  cwd: process.cwd(), envKeys: Object.keys(process.env).slice(0, 3).join(',') }));
`;

/** What a build under this variant sees: proves the variations are in effect. */
function probe(v: Variant): string {
  const r = runIn(v, [process.execPath, '--input-type=module', '-e', PROBE]);
  if (r.code !== 0) return `probe failed: ${r.stderr.trim().slice(-300)}`;
  try {
    const p = JSON.parse(r.stdout) as Record<string, string | number>;
    return `clock ${p['date']}, TZ ${p['tz']} (offset ${p['offset']} min), locale ${p['locale']}, umask ${p['umask']}, host ${p['host']}, user ${p['user']}, cwd ${p['cwd']}, env starts ${p['envKeys']}`;
  } catch {
    return `probe: ${r.stdout.trim()}`;
  }
}

/** A preload that moves JavaScript's clock (Date and Date.now) by REPRO_CLOCK_SHIFT_MS. */
const CLOCK_SHIFT = `
const shift = Number(process.env.REPRO_CLOCK_SHIFT_MS ?? 0);
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);
class ShiftedDate extends RealDate {
  constructor(...args) { if (args.length === 0) super(realNow() + shift); else super(...args); }
  static now() { return realNow() + shift; }
}
globalThis.Date = ShiftedDate;
`;

export interface ArtifactRow {
  readonly path: string;
  readonly a?: string;
  readonly b?: string;
  readonly same: boolean;
  readonly modes?: string;
  readonly firstDifference?: string;
}

/** Compare two output trees: one row per artifact, with the first differing member when the bytes differ. */
export function compareTrees(a: ReturnType<typeof readTree>, b: ReturnType<typeof readTree>): { rows: ArtifactRow[]; dirNotes: string[] } {
  const paths = [...new Set([...a.files.keys(), ...b.files.keys()])].sort();
  const rows: ArtifactRow[] = [];
  for (const p of paths) {
    const x = a.files.get(p);
    const y = b.files.get(p);
    if (x === undefined || y === undefined) {
      rows.push({ path: p, ...(x ? { a: x.sha256 } : {}), ...(y ? { b: y.sha256 } : {}), same: false, firstDifference: `only in build ${x ? 'A' : 'B'}` });
      continue;
    }
    const sameBytes = x.sha256 === y.sha256;
    const sameMode = x.mode === y.mode;
    const diff = sameBytes ? undefined : firstDifference(p.split('/').pop() ?? p, x.data, y.data);
    rows.push({
      path: p,
      a: x.sha256,
      b: y.sha256,
      same: sameBytes && sameMode,
      ...(sameMode ? {} : { modes: `${x.mode.toString(8)} vs ${y.mode.toString(8)}` }),
      ...(diff === undefined ? {} : { firstDifference: diff }),
    });
  }
  const dirNotes: string[] = [];
  for (const d of [...new Set([...a.dirs.keys(), ...b.dirs.keys()])].sort()) {
    const x = a.dirs.get(d);
    const y = b.dirs.get(d);
    if (x !== y) dirNotes.push(`directory ${d}/: mode ${x?.toString(8) ?? '-'} vs ${y?.toString(8) ?? '-'}`);
  }
  return { rows, dirNotes };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function printTable(title: string, rows: readonly ArtifactRow[], labels: [string, string]): void {
  const w = Math.max(8, ...rows.map((r) => r.path.length));
  process.stdout.write(`\n${title}\n`);
  process.stdout.write(`  ${pad('artifact', w)}  ${pad(`sha256 (${labels[0]})`, 18)}  ${pad(`sha256 (${labels[1]})`, 18)}  same\n`);
  for (const r of rows) {
    process.stdout.write(`  ${pad(r.path, w)}  ${pad(r.a?.slice(0, 16) ?? '-', 18)}  ${pad(r.b?.slice(0, 16) ?? '-', 18)}  ${r.same ? 'yes' : 'NO'}\n`);
    if (r.modes !== undefined) process.stdout.write(`    mode differs: ${r.modes}\n`);
    if (r.firstDifference !== undefined) process.stdout.write(`    first difference: ${r.firstDifference}\n`);
  }
}

function diffoscope(a: string, b: string, report: string): string {
  const r = spawnSync('diffoscope', ['--text', report, '--max-report-size', '2000000', a, b], {
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' },
  });
  const text = existsSync(report) ? readFileSync(report, 'utf8') : `${r.stdout}${r.stderr}`;
  const lines = text.split('\n');
  return `${lines.slice(0, 80).join('\n')}${lines.length > 80 ? `\n… (${lines.length - 80} more lines in ${report})` : ''}`;
}

/** Show diffoscope's report for every artifact in both trees whose bytes differ (when diffoscope is installed). */
function explain(rows: readonly ArtifactRow[], dirA: string, dirB: string, reportPrefix: string): void {
  if (!have('diffoscope')) return;
  for (const r of rows.filter((x) => !x.same && x.a !== undefined && x.b !== undefined)) {
    process.stdout.write(`\n  diffoscope ${r.path}:\n`);
    const report = `${reportPrefix}-${r.path.replace(/[^A-Za-z0-9._-]/g, '_')}.txt`;
    process.stdout.write(`${diffoscope(join(dirA, r.path), join(dirB, r.path), report)}\n`);
  }
}

/** Lines of the build's own code that could make it depend on the clock, host, user or locale: for review. */
const SUSPECT = /\bDate\.now\(|\bnew Date\(\s*\)|performance\.now|hrtime|hostname\(|userInfo\(|toLocale|localeCompare|\bIntl\.|Math\.random|readdirSync|process\.env/;
const REVIEWED: Record<string, string> = {
  'src/io/atomic.ts': 'names the staging directory, never written into an artifact',
  'src/epoch.ts': 'reads SOURCE_DATE_EPOCH itself',
  'build/build.ts': 'the CLI: paths, --help text',
};

function scanSources(root: string): string[] {
  const notes: string[] = [];
  const files = sourceFiles(root).filter((f) => (f.startsWith('src/') || f === 'build/build.ts') && f.endsWith('.ts'));
  for (const f of files) {
    const lines = readFileSync(join(root, f), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '');
      if (SUSPECT.test(code)) notes.push(`${f}:${i + 1}: ${line.trim().slice(0, 100)}${REVIEWED[f] ? `  [${REVIEWED[f]}]` : ''}`);
    });
  }
  return notes;
}

const RICH_CONFIG = `# repro: a config that exercises clients, granted I2P applications and a non-default version
qubes:
  gateway: sys-i2p-repro
  clients: [work, personal, { name: untrusted, apps: [socks] }, vault-browser]
  autostart: true
i2p:
  apps:
    irc: [work]
    sam: [personal]
package:
  version: 1.2.3
  release: 4
`;

interface ConfigResult {
  readonly config: string;
  readonly identical: boolean;
  readonly rows: ArtifactRow[];
  readonly dirNotes: string[];
  readonly timeProblems: string[];
  readonly timesChecked: number;
  readonly buildMs: { a: number; b: number };
}

export interface MajorsResult {
  /** Every major built with, the running one first. */
  readonly nodes: { major: number; version: string; v8: string; zlib: string; source: NodeBinary['source'] }[];
  /** One row per other major and config: its fast.mjs build against A (the running major's). */
  readonly builds: { major: number; config: string; identical: boolean; rows: ArtifactRow[]; ms: number }[];
  /** The per-major entry caches found in B's tree afterwards. */
  readonly entryCaches: string[];
  /** Wall time of the whole cross-major part, fetching included. */
  readonly ms: number;
}

export interface ReproResult {
  readonly ok: boolean;
  readonly epoch: number;
  readonly epochSource: string;
  readonly conditions: Record<string, string>;
  readonly configs: ConfigResult[];
  readonly gitDefault?: { identical: boolean; rows: ArtifactRow[] } | { skipped: string };
  readonly fastEntry?: { identical: boolean; rows: ArtifactRow[] };
  readonly majors?: MajorsResult;
  readonly sanity?: { otherEpoch: number; debDiffers: boolean; rpmDiffers: boolean; rows: ArtifactRow[] };
  readonly sourceNotes: string[];
  readonly failures: string[];
}

function checkTimes(tree: ReturnType<typeof readTree>, epoch: number): { problems: string[]; count: number } {
  const problems: string[] = [];
  let count = 0;
  for (const [p, f] of tree.files) {
    if (!/\.(deb|rpm)$/.test(p)) continue;
    for (const t of collectTimes(p, f.data)) {
      count++;
      if (t.value !== epoch && problems.length < 10) problems.push(`${t.where} = ${t.value}, not SOURCE_DATE_EPOCH ${epoch}`);
    }
  }
  return { problems, count };
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', multiple: true },
      keep: { type: 'boolean' },
      'no-diffoscope': { type: 'boolean' },
      'no-faketime': { type: 'boolean' },
      json: { type: 'string' },
    },
  });
  // Every other Node major first: without one the check cannot claim what it is for, so it stops here.
  const fetchT0 = performance.now();
  let running: NodeBinary;
  let others: NodeBinary[];
  try {
    running = nodeFor(runningMajor());
    others = NODE_MAJORS.filter((m) => m !== running.major).map((m) => nodeFor(m));
  } catch (e) {
    process.stderr.write(`repro: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  const fetchMs = performance.now() - fetchT0;
  const failures: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'qig-repro-'));
  let keep = values.keep === true;
  try {
    const { epoch, source: epochSource } = resolveEpoch(process.env, ROOT);
    const seed = (Date.now() ^ (process.pid << 8)) >>> 0;
    const rand = mulberry32(seed);
    process.stdout.write(`repro: SOURCE_DATE_EPOCH=${epoch} (from ${epochSource}), work dir ${work}, shuffle seed ${seed}\n`);
    process.stdout.write(
      `repro: Node ${[running, ...others].map((n) => `${n.versions.node} (zlib ${n.versions.zlib}${n.source === 'running' ? ', running' : `, ${n.source}`})`).join(', ')}\n`,
    );

    const configs: (string | undefined)[] = [];
    if (values.config !== undefined && values.config.length > 0) configs.push(...values.config.map((c) => resolve(c)));
    else {
      const rich = join(work, 'rich.yaml');
      writeFileSync(rich, RICH_CONFIG);
      configs.push(undefined, rich);
    }

    // Two snapshots of the source tree: sorted creation order with fresh mtimes; reversed with 2004 mtimes.
    const srcA = join(work, 'a', 'src');
    const srcB = join(work, 'b tree', 'src');
    // Others may be editing the checkout: retry until both copies hold the same sources.
    let snapshot = '';
    for (let attempt = 1; ; attempt++) {
      rmSync(join(work, 'a'), { recursive: true, force: true });
      rmSync(join(work, 'b tree'), { recursive: true, force: true });
      copyTree(ROOT, srcA, 'sorted');
      copyTree(ROOT, srcB, 'reversed', new Date('2004-02-29T12:34:56Z'));
      snapshot = treeDigest(srcA);
      if (snapshot === treeDigest(srcB)) break;
      if (attempt === 5) throw new Error('the checkout keeps changing while it is copied: cannot take a snapshot');
      await new Promise((r) => setTimeout(r, 1000));
    }
    const elsewhere = join(work, 'b tree', 'somewhere else');
    const homeB = join(work, 'b tree', 'home');
    const tmpB = join(work, 'b tree', 'tmp');
    for (const d of [elsewhere, homeB, tmpB]) mkdirSync(d, { recursive: true });
    const shiftFile = join(work, 'clock-shift.mjs');
    writeFileSync(shiftFile, CLOCK_SHIFT);

    const base: NodeJS.ProcessEnv = { ...process.env };
    delete base['SOURCE_DATE_EPOCH'];
    const envA: NodeJS.ProcessEnv = { ...base, TZ: 'UTC', LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8', SOURCE_DATE_EPOCH: String(epoch) };
    const bVars: NodeJS.ProcessEnv = {
      ...base,
      TZ: 'Pacific/Chatham',
      LC_ALL: 'tr_TR.UTF-8',
      LANG: 'tr_TR.UTF-8',
      LANGUAGE: 'tr:de',
      HOME: homeB,
      USER: 'repro-b',
      LOGNAME: 'repro-b',
      TMPDIR: tmpB,
      COLUMNS: '37',
      NODE_OPTIONS: `${base['NODE_OPTIONS'] ?? ''} --import ${pathToFileURL(shiftFile).href}`.trim(),
      REPRO_CLOCK_SHIFT_MS: String((5 * 365 + 1) * 86_400_000 + 13 * 3_600_000 + 7_000),
      SOURCE_DATE_EPOCH: String(epoch),
    };
    for (let i = 0; i < 8; i++) bVars[`QIG_REPRO_NOISE_${Math.floor(rand() * 1e6)}`] = `noise ${i} ${rand()}`;
    const envB: NodeJS.ProcessEnv = Object.fromEntries(shuffled(Object.entries(bVars), rand));

    const faketime = values['no-faketime'] !== true && have('faketime') ? '@2031-05-05 12:00:00' : undefined;
    const unshare = process.getuid?.() === 0 && canUnshareUts();
    const conditions: Record<string, string> = {};
    const failNote = (s: string): void => {
      failures.push(s);
    };

    const results: ConfigResult[] = [];
    let firstA: ReturnType<typeof readTree> | undefined;
    let firstBVariant: Variant | undefined;
    /** Per config: its name, A's output and B's conditions, for the other majors' builds. */
    const perConfig: { name: string; a: ReturnType<typeof readTree>; outA: string; b: Variant }[] = [];
    for (const [ci, config] of configs.entries()) {
      const name = config === undefined ? '(defaults)' : config === join(work, 'rich.yaml') ? '(clients + granted apps)' : config;
      const outA = join(work, 'a', `out-${ci}`);
      const outB = join(work, 'b tree', `out ${ci}`);
      const A: Variant = {
        label: 'A',
        what: 'sorted copy, cwd = its tree, relative --out, UTC, C.UTF-8, umask 022',
        srcRoot: srcA,
        cwd: srcA,
        outDir: outA,
        outArg: relative(srcA, outA),
        env: envA,
        umask: '022',
      };
      const B: Variant = {
        label: 'B',
        what: `reversed copy dated 2004, cwd elsewhere, absolute --out, Pacific/Chatham, tr_TR.UTF-8, umask 077, shuffled env${unshare ? ', own host name' : ''}${faketime ? ', faketime' : ''}, shifted Date`,
        srcRoot: srcB,
        cwd: elsewhere,
        outDir: outB,
        outArg: outB,
        env: envB,
        umask: '077',
        ...(unshare ? { hostname: 'repro-b.invalid' } : {}),
        ...(faketime === undefined ? {} : { faketime }),
      };
      if (ci === 0) {
        conditions['A'] = `${A.what}\n      sees: ${probe(A)}`;
        conditions['B'] = `${B.what}\n      sees: ${probe(B)}`;
        if (faketime === undefined) conditions['note'] = 'faketime not used (not installed? apt-get install faketime): B relies on the Date preload and a 1.2 s delay';
      }
      const t0 = Date.now();
      const ra = runBuild(A, config);
      if (ra.code !== 0) throw new Error(`build A (${name}) failed (exit ${ra.code}):\n${ra.stdout}\n${ra.stderr}`);
      // Without faketime, make sure the wall-clock second differs between the two builds.
      const wait = 1200 - (Date.now() - t0);
      if (faketime === undefined && wait > 0) await new Promise((r) => setTimeout(r, wait));
      const rb = runBuild(B, config);
      if (rb.code !== 0) throw new Error(`build B (${name}) failed (exit ${rb.code}):\n${rb.stdout}\n${rb.stderr}`);
      const ta = readTree(outA);
      const tb = readTree(outB);
      if (ci === 0) {
        firstA = ta;
        firstBVariant = B;
      }
      perConfig.push({ name, a: ta, outA, b: B });
      const { rows, dirNotes } = compareTrees(ta, tb);
      printTable(`config ${name}: build A vs build B`, rows, ['A', 'B']);
      for (const n of dirNotes) process.stdout.write(`  note: ${n} (directories are not artifacts)\n`);
      const times = checkTimes(ta, epoch);
      const timesB = checkTimes(tb, epoch);
      const timeProblems = [...times.problems, ...timesB.problems];
      process.stdout.write(
        timeProblems.length === 0
          ? `  time stamps: all ${times.count} in the packages (ar, tar, cpio, rpm BUILDTIME/FILEMTIMES) are SOURCE_DATE_EPOCH\n`
          : `  time stamps NOT the epoch:\n${timeProblems.map((p) => `    ${p}`).join('\n')}\n`,
      );
      const identical = rows.every((r) => r.same) && rows.length > 0;
      if (!identical) {
        failNote(`config ${name}: ${rows.filter((r) => !r.same).length} artifact(s) differ between A and B`);
        if (values['no-diffoscope'] !== true) explain(rows, outA, outB, join(work, `diffoscope-${ci}`));
      }
      if (timeProblems.length > 0) failNote(`config ${name}: time stamps that are not SOURCE_DATE_EPOCH`);
      results.push({ config: name, identical, rows, dirNotes, timeProblems, timesChecked: times.count, buildMs: { a: ra.ms, b: rb.ms } });
    }

    // The precompiled entry (build/fast.mjs) must write the same bytes as tsx: run under B's conditions, in B's
    // copy, where it has no bundle yet (.cache is never copied), so this also covers its first-use bundling.
    let fastEntry: ReproResult['fastEntry'];
    if (firstA !== undefined && existsSync(join(srcB, 'build/fast.mjs')) && firstBVariant !== undefined) {
      const outF = join(work, 'b tree', 'out fast');
      const F: Variant = { ...firstBVariant, label: 'F', outDir: outF, outArg: outF };
      const rf = runBuild(F, configs[0], 'fast');
      if (rf.code !== 0) throw new Error(`build F (node build/fast.mjs) failed (exit ${rf.code}):\n${rf.stdout}\n${rf.stderr}`);
      const { rows } = compareTrees(firstA, readTree(outF));
      const identical = rows.every((r) => r.same);
      printTable('the precompiled entry (node build/fast.mjs, first use, B\'s conditions) vs build A (tsx)', rows, ['A', 'fast']);
      if (!identical) failNote('the precompiled entry build/fast.mjs writes different bytes than tsx build/build.ts');
      fastEntry = { identical, rows };
    }

    // Every other Node major: build/fast.mjs (what `npm run build` runs) under B's conditions in B's copy, every
    // config, against A. B's copy already holds the running major's entry cache from F: each major must bundle
    // and keep its own, never run the one another major wrote.
    let majors: MajorsResult | undefined;
    {
      const t0 = performance.now();
      const builds: MajorsResult['builds'] = [];
      for (const n of others) {
        for (const [ci, { name, a, outA, b }] of perConfig.entries()) {
          const outM = join(work, 'b tree', `out node${n.major} ${ci}`);
          const M: Variant = { ...b, label: `node${n.major}`, outDir: outM, outArg: outM, node: n.bin };
          const rm = runBuild(M, configs[ci], 'fast');
          if (rm.code !== 0) throw new Error(`build with Node ${n.versions.node} (${name}, node build/fast.mjs) failed (exit ${rm.code}):\n${rm.stdout}\n${rm.stderr}`);
          const tm = readTree(outM);
          const { rows } = compareTrees(a, tm);
          const identical = rows.every((r) => r.same) && rows.length > 0;
          printTable(`config ${name}: Node ${n.versions.node} (node build/fast.mjs, B's conditions) vs build A (Node ${running.versions.node}, tsx)`, rows, ['A', `node ${n.major}`]);
          const times = checkTimes(tm, epoch);
          if (times.problems.length > 0) failNote(`config ${name}, Node ${n.versions.node}: ${times.problems[0]}`);
          if (!identical) {
            failNote(`config ${name}: ${rows.filter((r) => !r.same).length} artifact(s) differ between Node ${running.versions.node} and Node ${n.versions.node}`);
            if (values['no-diffoscope'] !== true) explain(rows, outA, outM, join(work, `diffoscope-node${n.major}-${ci}`));
          }
          builds.push({ major: n.major, config: name, identical, rows, ms: rm.ms });
        }
      }
      const entryRoot = join(srcB, '.cache', 'entry');
      const entryCaches = existsSync(entryRoot) ? readdirSync(entryRoot).sort() : [];
      const expected = [running, ...others].map((n) => `node${n.major}`).sort();
      const incomplete = expected.filter((d) => !['build.cjs', 'build.stamp.json', 'build.v8cache'].every((f) => existsSync(join(entryRoot, d, f))));
      if (JSON.stringify(entryCaches) !== JSON.stringify(expected) || incomplete.length > 0) {
        failNote(`the entry cache in B's copy is not one per Node major: found .cache/entry/{${entryCaches.join(',')}}, want {${expected.join(',')}}${incomplete.length > 0 ? `, incomplete: ${incomplete.join(', ')}` : ''}`);
      }
      const ms = performance.now() - t0 + fetchMs;
      process.stdout.write(`\nbytes by Node major (sha256 of the packages):\n`);
      for (const { name, a } of perConfig) {
        process.stdout.write(`  config ${name}\n`);
        const pkgs = [...a.files.keys()].filter((p) => /^[^/]+\.(deb|rpm)$/.test(p));
        for (const p of pkgs) {
          process.stdout.write(`    Node ${pad(running.versions.node, 8)}  ${a.files.get(p)?.sha256}  ${p}\n`);
          for (const bld of builds.filter((x) => x.config === name)) {
            const row = bld.rows.find((r) => r.path === p);
            process.stdout.write(`    Node ${pad(others.find((n) => n.major === bld.major)?.versions.node ?? String(bld.major), 8)}  ${row?.b ?? '(missing)'}  ${p}\n`);
          }
        }
      }
      process.stdout.write(`  entry caches in B's copy: ${entryCaches.map((d) => `.cache/entry/${d}/`).join(', ')}\n`);
      process.stdout.write(`  the other majors took ${(ms / 1000).toFixed(1)} s (${builds.length} builds; fetching or checking the binaries ${(fetchMs / 1000).toFixed(1)} s)\n`);
      majors = {
        nodes: [running, ...others].map((n) => ({ major: n.major, version: n.versions.node, v8: n.versions.v8, zlib: n.versions.zlib, source: n.source })),
        builds,
        entryCaches,
        ms,
      };
    }

    // The default epoch: a build of the real checkout without SOURCE_DATE_EPOCH must take git's and match A.
    let gitDefault: ReproResult['gitDefault'];
    // Valid only while the checkout and HEAD stay as they were when the snapshot was taken.
    const unchanged = (): string | undefined => {
      if (treeDigest(ROOT) !== snapshot) return 'the checkout changed while the check ran (someone is editing it)';
      const now = resolveEpoch(base, ROOT).epoch;
      if (now !== epoch) return `HEAD moved while the check ran (commit time ${epoch} → ${now})`;
      return undefined;
    };
    if (epochSource !== 'git' || firstA === undefined) {
      gitDefault = { skipped: `SOURCE_DATE_EPOCH came from ${epochSource}` };
    } else {
      const before = unchanged();
      const outG = join(work, 'g-out');
      const G: Variant = { label: 'G', what: 'real checkout, SOURCE_DATE_EPOCH unset', srcRoot: ROOT, cwd: ROOT, outDir: outG, outArg: outG, env: { ...base, TZ: 'UTC', LC_ALL: 'C.UTF-8' }, umask: '022' };
      const rg = before === undefined ? runBuild(G, configs[0]) : undefined;
      const after = before ?? unchanged();
      if (after !== undefined) {
        gitDefault = { skipped: `${after}: a build of it cannot be compared with the snapshot` };
        process.stdout.write(`\nSOURCE_DATE_EPOCH unset: skipped, ${gitDefault.skipped}\n`);
      } else {
        if (rg === undefined || rg.code !== 0) throw new Error(`build G failed (exit ${rg?.code}):\n${rg?.stdout}\n${rg?.stderr}`);
        const { rows } = compareTrees(firstA, readTree(outG));
        const identical = rows.every((r) => r.same);
        printTable("SOURCE_DATE_EPOCH unset (the CLI takes HEAD's commit time) vs build A", rows, ['A', 'git']);
        if (!identical) failNote('the build of the checkout with SOURCE_DATE_EPOCH unset differs from A');
        gitDefault = { identical, rows };
      }
    }

    // Sanity: a different SOURCE_DATE_EPOCH must change the packages.
    let sanity: ReproResult['sanity'];
    if (firstA !== undefined) {
      const other = epoch + 400 * 86_400 + 7;
      const outS = join(work, 's-out');
      const S: Variant = { label: 'S', what: 'as A, another epoch', srcRoot: srcA, cwd: srcA, outDir: outS, outArg: outS, env: { ...envA, SOURCE_DATE_EPOCH: String(other) }, umask: '022' };
      const rs = runBuild(S, configs[0]);
      if (rs.code !== 0) throw new Error(`build S failed (exit ${rs.code}):\n${rs.stdout}\n${rs.stderr}`);
      const ts = readTree(outS);
      const { rows } = compareTrees(firstA, ts);
      const debDiffers = rows.some((r) => r.path.endsWith('.deb') && !r.path.includes('/') && !r.same);
      const rpmDiffers = rows.some((r) => r.path.endsWith('.rpm') && !r.same);
      process.stdout.write(`\nsanity: SOURCE_DATE_EPOCH ${other} instead of ${epoch}\n`);
      for (const r of rows) process.stdout.write(`  ${pad(r.path, 48)}  ${r.same ? 'same' : 'differs'}\n`);
      const otherTimes = checkTimes(ts, other);
      if (!debDiffers || !rpmDiffers) failNote(`another SOURCE_DATE_EPOCH left the ${!debDiffers ? '.deb' : '.rpm'} unchanged: the epoch is not honoured`);
      if (otherTimes.problems.length > 0) failNote(`with SOURCE_DATE_EPOCH ${other}: ${otherTimes.problems[0]}`);
      sanity = { otherEpoch: other, debDiffers, rpmDiffers, rows };
    }

    const sourceNotes = scanSources(ROOT);
    if (sourceNotes.length > 0) {
      process.stdout.write(`\nbuild code that reads the clock, host, locale, environment or directory order (for review; the bytes above are the judge):\n`);
      for (const n of sourceNotes) process.stdout.write(`  ${n}\n`);
    }

    process.stdout.write(`\nconditions:\n${Object.entries(conditions).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`);
    const ok = failures.length === 0;
    process.stdout.write(ok ? `\nrepro: OK, every artifact is byte-identical\n` : `\nrepro: FAILED\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
    if (!ok) keep = true;
    const result: ReproResult = { ok, epoch, epochSource, conditions, configs: results, ...(gitDefault ? { gitDefault } : {}), ...(fastEntry ? { fastEntry } : {}), ...(majors ? { majors } : {}), ...(sanity ? { sanity } : {}), sourceNotes, failures };
    if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(result, (k, v: unknown) => (k === 'data' ? undefined : v), 2)}\n`);
    return ok ? 0 : 1;
  } catch (e) {
    keep = true;
    process.stderr.write(`repro: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  } finally {
    if (keep) process.stdout.write(`kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}

