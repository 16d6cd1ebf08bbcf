/**
 * lintian as a test oracle. lintian 2.116 leaves an `mldbm-elf-*` folder in $TMPDIR on every run; each call gets
 * a temporary TMPDIR of its own, removed afterwards, so the tests leave nothing behind.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function lintian(args: readonly string[], timeoutMs = 120_000): { code: number | null; stdout: string; stderr: string } {
  const scratch = mkdtempSync(join(tmpdir(), 'qig-lintian-'));
  try {
    const r = spawnSync('lintian', args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, TMPDIR: scratch, LC_ALL: 'C.UTF-8' } });
    if (r.error !== undefined) throw new Error(`lintian: ${r.error.message}`);
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
