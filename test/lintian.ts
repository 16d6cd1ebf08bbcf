/**
 * lintian as a test oracle: Debian 13's (lintian 2.122, from the oracles root, test/util/trixie.ts), the release
 * the package is for. lintian leaves an `mldbm-elf-*` folder in $TMPDIR on every run; each call gets a temporary
 * TMPDIR of its own, removed afterwards, so the tests leave nothing behind. The .deb must be under os.tmpdir(),
 * which the machine shares at the same path.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machineState, Trixie } from './util/trixie.ts';

export async function lintian(args: readonly string[], timeoutMs = 180_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // A machine of its own per call, its state removed with the call's temp dir (nothing is left in /tmp).
  const state = machineState('lintian');
  const scratch = mkdtempSync(join(tmpdir(), 'qig-lintian-'));
  try {
    const t = await Trixie.open(state);
    const r = spawnSync('env', [`TMPDIR=${scratch}`, 'LC_ALL=C.UTF-8', ...t.prefix(), 'lintian', ...args], { encoding: 'utf8', timeout: timeoutMs });
    if (r.error !== undefined) throw new Error(`lintian: ${r.error.message}`);
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
}
