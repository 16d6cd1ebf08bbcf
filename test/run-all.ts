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
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
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
}

const SUITES: readonly Suite[] = [
  { name: 'alone', config: 'vitest.config.ts', report: '.cache/vitest-results.json', alone: true },
  { name: 'unit', config: 'vitest.config.ts', report: '.cache/vitest-results.json', byName: true },
  { name: 'net', config: 'vitest.net.config.ts', report: '.cache/vitest-net.json' },
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
    rmSync(report, { force: true });
    const env = suite.alone === true ? { ...process.env, QIG_CHROOT_CACHE: process.env['QIG_CHROOT_CACHE'] ?? join(ROOT, '.cache') } : process.env;
    const run = spawnSync('npx', ['vitest', 'run', '--config', suite.config], { cwd, stdio: 'inherit', env });
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    if (!existsSync(report)) {
      process.stdout.write(`suite ${suite.name}: no report (exit ${run.status})\n`);
      broken = true;
      continue;
    }
    const r = JSON.parse(readFileSync(report, 'utf8')) as Report;
    const lost = notRun(r);
    const suiteFailed = r.numFailedTests + lost.count;
    const suiteSkipped = r.numPendingTests - lost.count;
    passed += r.numPassedTests;
    failed += suiteFailed;
    skipped += suiteSkipped;
    if (run.status !== 0 && suiteFailed === 0) broken = true;
    for (const w of lost.why) process.stdout.write(`suite ${suite.name}: ${w}\n`);
    process.stdout.write(`suite ${suite.name}: ${r.numPassedTests} passed, ${suiteFailed} failed, ${suiteSkipped} skipped in ${seconds} s (exit ${run.status})\n`);
  } finally {
    cleanup();
  }
}
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exitCode = failed > 0 || broken || passed === 0 ? 1 : 0;
