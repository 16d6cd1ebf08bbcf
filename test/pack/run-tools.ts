/** Shared test helpers: run real Debian tools, in a fixed locale and time zone. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ENV = { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' };

export function run(cmd: string, args: readonly string[], opts: { cwd?: string; input?: Uint8Array | string; env?: Record<string, string> } = {}): string {
  return execFileSync(cmd, args, {
    cwd: opts.cwd,
    input: opts.input,
    env: { ...ENV, ...opts.env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Run and return stdout bytes, status and stderr without throwing. */
export function runRaw(cmd: string, args: readonly string[], opts: { cwd?: string; input?: Uint8Array | string; env?: Record<string, string> } = {}): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, input: opts.input, env: { ...ENV, ...opts.env }, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

/** A temporary directory and its removal. */
export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `qig-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
