/**
 * `npm run test:all`: every suite (unit, datapath, install) one after the other, then one closing line
 * `N passed, N failed` summed from vitest's JSON reports. Exits non-zero if any test failed or any suite did not
 * report.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const SUITES: { name: string; config: string; report: string }[] = [
  { name: 'unit', config: 'vitest.config.ts', report: '.cache/vitest-results.json' },
  { name: 'net', config: 'vitest.net.config.ts', report: '.cache/vitest-net.json' },
  { name: 'install', config: 'vitest.install.config.ts', report: '.cache/vitest-install.json' },
];

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTotalTests: number;
}

let passed = 0;
let failed = 0;
let skipped = 0;
let broken = false;
const only = process.argv.slice(2);
for (const suite of SUITES) {
  if (only.length > 0 && !only.includes(suite.name)) continue;
  if (!existsSync(suite.config)) {
    process.stdout.write(`suite ${suite.name}: ${suite.config} missing\n`);
    broken = true;
    continue;
  }
  rmSync(suite.report, { force: true });
  const started = Date.now();
  const run = spawnSync('npx', ['vitest', 'run', '--config', suite.config], { stdio: 'inherit' });
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  if (!existsSync(suite.report)) {
    process.stdout.write(`suite ${suite.name}: no report (exit ${run.status})\n`);
    broken = true;
    continue;
  }
  const r = JSON.parse(readFileSync(suite.report, 'utf8')) as Report;
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests;
  if (run.status !== 0 && r.numFailedTests === 0) broken = true;
  process.stdout.write(`suite ${suite.name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped in ${seconds} s (exit ${run.status})\n`);
}
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exitCode = failed > 0 || broken || passed === 0 ? 1 : 0;
