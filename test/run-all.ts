/**
 * `npm run test:all`: every suite one after the other: the unit suite from a copy of the repository alone (`alone`,
 * below), then the datapath, install and boot suites in the checkout, then one closing line `N passed, N failed`
 * summed from vitest's JSON reports. Exits non-zero if any test failed or any suite did not report.
 *
 * The unit suite runs once, from the copy: it is the same vitest config and files as `npm test` in the checkout (CI
 * ran it both ways until a whole run came to 47 min on CI's machine; the checkout's run proved nothing the copy's
 * does not). `npm run test:all -- unit` still runs it in the checkout.
 *
 * `alone` proves that a fresh clone tests green with nothing beside it: the working tree's files (tracked and
 * untracked, not ignored: what a commit of this tree would hold) are copied into a new temporary directory that
 * holds nothing else, committed there as a repository of its own (dated like HEAD, so the default
 * SOURCE_DATE_EPOCH is the same), given its own `npm ci`, and tested there. A test that reads a file outside the
 * repository (../shared, a sibling checkout) fails in that run. The one thing shared is the cache of Debian 13
 * roots (QIG_CHROOT_CACHE, test/util/chroot.ts): derived data, rebuilt from Debian's mirror by the same recipe
 * when missing or stale, so sharing it saves the debootstrap and changes no result.
 *
 * `npm run test:all -- unit alone` runs only the suites named.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

interface Suite {
  readonly name: string;
  readonly config: string;
  readonly report: string;
  /** Run from a copy of the repository alone instead of the checkout. */
  readonly alone?: boolean;
  /** Run only when named (`npm run test:all -- unit`). */
  readonly byName?: boolean;
  /**
   * Vitest runs of the suite side by side, each given these arguments (files, or --exclude) and its own report.
   * The first lane's output is shown as it comes; the others' is kept in .cache/<report>.log and shown after.
   */
  readonly lanes?: ReadonlyArray<{ readonly args: readonly string[]; readonly report: string }>;
}

const SUITES: readonly Suite[] = [
  { name: 'alone', config: 'vitest.config.ts', report: '.cache/vitest-results.json', alone: true },
  { name: 'unit', config: 'vitest.config.ts', report: '.cache/vitest-results.json', byName: true },
  // privnet.test.ts (about 470 s, most of it i2pd's address-book timers: 4 s of the networks' CPU and 22 s of
  // Tor's in a whole run) beside the other files (about 640 s): each lab is namespaces and a scratch directory of
  // its own, named by its process (test/net/lib/lab.ts), so two vitest processes do not meet.
  {
    name: 'net',
    config: 'vitest.net.config.ts',
    report: '.cache/vitest-net.json',
    lanes: [
      { args: ['--exclude', 'test/net/privnet.test.ts'], report: '.cache/vitest-net.json' },
      { args: ['test/net/privnet.test.ts'], report: '.cache/vitest-net-privnet.json' },
    ],
  },
  { name: 'install', config: 'vitest.install.config.ts', report: '.cache/vitest-install.json' },
  { name: 'boot', config: 'vitest.boot.config.ts', report: '.cache/vitest-boot.json' },
];

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTotalTests: number;
  testResults?: Array<{ name: string; status: string; message?: string; assertionResults: Array<{ status: string }> }>;
}

/**
 * Tests that did not run because their file failed (a beforeAll that threw: vitest reports them as skipped and
 * counts no failed test, yet the suite fails). They count as failed here, so the closing line never says 0 failed
 * of a run that failed; `why` names each such file and the first line of its error.
 */
function notRun(r: Report): { count: number; why: string[] } {
  let count = 0;
  const why: string[] = [];
  for (const f of r.testResults ?? []) {
    if (f.status !== 'failed') continue;
    const n = f.assertionResults.filter((a) => a.status !== 'passed' && a.status !== 'failed').length;
    if (n === 0) continue;
    count += n;
    why.push(`${relative(ROOT, f.name)}: ${n} not run (${(f.message ?? '').split('\n')[0]?.slice(0, 200) ?? ''})`);
  }
  return { count, why };
}

function must(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${String(r.status)}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The working tree's files alone, in a fresh directory with nothing beside them; returns the copy's root. */
function copyAlone(): { dir: string; parent: string } {
  const parent = mkdtempSync(join(tmpdir(), 'qig-alone-'));
  const dir = join(parent, 'qubes-i2p-gateway');
  mkdirSync(dir);
  const files = must('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT).split('\0').filter((f) => f !== '');
  for (const f of files) {
    const from = join(ROOT, f);
    if (!existsSync(from) && !isLink(from)) continue; // deleted in the working tree, not yet committed
    const to = join(dir, f);
    mkdirSync(dirname(to), { recursive: true });
    if (isLink(from)) symlinkSync(readlinkSync(from), to);
    else copyFileSync(from, to);
  }
  const date = must('git', ['log', '-1', '--format=%ct'], ROOT).trim();
  const gitEnv = { ...process.env, GIT_AUTHOR_DATE: `@${date} +0000`, GIT_COMMITTER_DATE: `@${date} +0000` };
  must('git', ['init', '-q'], dir);
  must('git', ['add', '-A'], dir);
  must('git', ['-c', 'user.name=test:all', '-c', 'user.email=test-all@invalid', '-c', 'commit.gpgsign=false', 'commit', '-q', '-m', 'the working tree, alone'], dir, gitEnv);
  must('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], dir);
  return { dir, parent };
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** `npx vitest run ARGS` in cwd; its output to this process's or to the file `log`; resolves to its exit code. */
function vitest(cwd: string, env: NodeJS.ProcessEnv, args: readonly string[], log?: string): Promise<number> {
  if (log !== undefined) mkdirSync(dirname(log), { recursive: true });
  const fd = log === undefined ? undefined : openSync(log, 'w');
  const out = fd === undefined ? 'inherit' : fd;
  return new Promise((done) => {
    const child = spawn('npx', ['vitest', 'run', ...args], { cwd, env, stdio: ['ignore', out, out] });
    child.on('error', () => done(127));
    child.on('close', (code) => {
      if (fd !== undefined) closeSync(fd);
      done(code ?? 1);
    });
  });
}

/** The lanes' reports as one. */
function merge(reports: readonly Report[]): Report {
  const sum = (k: 'numPassedTests' | 'numFailedTests' | 'numPendingTests' | 'numTotalTests'): number => reports.reduce((a, r) => a + r[k], 0);
  return {
    numPassedTests: sum('numPassedTests'),
    numFailedTests: sum('numFailedTests'),
    numPendingTests: sum('numPendingTests'),
    numTotalTests: sum('numTotalTests'),
    testResults: reports.flatMap((r) => r.testResults ?? []),
  };
}

let passed = 0;
let failed = 0;
let skipped = 0;
let broken = false;
const only = process.argv.slice(2);
for (const suite of SUITES) {
  if (only.length > 0 ? !only.includes(suite.name) : suite.byName === true) continue;
  const started = Date.now();
  let cwd = ROOT;
  let cleanup = (): void => {};
  if (suite.alone === true) {
    try {
      const copy = copyAlone();
      cwd = copy.dir;
      cleanup = () => rmSync(copy.parent, { recursive: true, force: true });
      process.stdout.write(`suite ${suite.name}: the repository alone in ${copy.dir}\n`);
    } catch (e) {
      process.stdout.write(`suite ${suite.name}: could not make the copy: ${e instanceof Error ? e.message : String(e)}\n`);
      broken = true;
      continue;
    }
  }
  try {
    const config = join(cwd, suite.config);
    const report = join(cwd, suite.report);
    if (!existsSync(config)) {
      process.stdout.write(`suite ${suite.name}: ${suite.config} missing\n`);
      broken = true;
      continue;
    }
    const env = suite.alone === true ? { ...process.env, QIG_CHROOT_CACHE: process.env['QIG_CHROOT_CACHE'] ?? join(ROOT, '.cache') } : process.env;
    const lanes = suite.lanes ?? [{ args: [], report: suite.report }];
    for (const l of lanes) rmSync(join(cwd, l.report), { force: true });
    const runs = await Promise.all(lanes.map((l, i) => vitest(cwd, env, [...l.args, '--config', suite.config, `--outputFile.json=${l.report}`], i === 0 ? undefined : join(cwd, `${l.report}.log`))));
    for (const [i, l] of lanes.entries()) {
      if (i === 0) continue;
      process.stdout.write(`suite ${suite.name}: the output of its lane ${l.args.join(' ')} (run beside the first)\n`);
      process.stdout.write(readFileSync(join(cwd, `${l.report}.log`), 'utf8'));
    }
    const status = runs.find((c) => c !== 0) ?? 0;
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    const missing = lanes.filter((l) => !existsSync(join(cwd, l.report)));
    if (missing.length > 0) {
      process.stdout.write(`suite ${suite.name}: no report from ${missing.map((l) => l.args.join(' ') || 'its run').join(', ')} (exit ${status})\n`);
      broken = true;
      continue;
    }
    const r = merge(lanes.map((l) => JSON.parse(readFileSync(join(cwd, l.report), 'utf8')) as Report));
    const lost = notRun(r);
    const suiteFailed = r.numFailedTests + lost.count;
    const suiteSkipped = r.numPendingTests - lost.count;
    passed += r.numPassedTests;
    failed += suiteFailed;
    skipped += suiteSkipped;
    if (status !== 0 && suiteFailed === 0) broken = true;
    for (const w of lost.why) process.stdout.write(`suite ${suite.name}: ${w}\n`);
    process.stdout.write(`suite ${suite.name}: ${r.numPassedTests} passed, ${suiteFailed} failed, ${suiteSkipped} skipped in ${seconds} s (exit ${status})\n`);
  } finally {
    cleanup();
  }
}
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exitCode = failed > 0 || broken || passed === 0 ? 1 : 0;
