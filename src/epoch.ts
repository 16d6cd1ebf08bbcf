/**
 * SOURCE_DATE_EPOCH: the one time stamp every output carries (file mtimes, build time, changelog date).
 * Taken from the environment when set, else from the last commit of the source tree, else a fixed value.
 */
import { execFileSync } from 'node:child_process';

/** 2026-01-01T00:00:00Z: used outside git when SOURCE_DATE_EPOCH is not set. */
export const FALLBACK_EPOCH = 1767225600;

export type EpochSource = 'environment' | 'git' | 'fallback';

export function parseEpoch(text: string): number {
  if (!/^[0-9]{1,12}$/.test(text.trim())) {
    throw new Error(`SOURCE_DATE_EPOCH="${text}" is not a number of seconds since 1970. Fix: export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct), or unset it`);
  }
  return Number(text.trim());
}

export function resolveEpoch(env: NodeJS.ProcessEnv, repoDir: string): { epoch: number; source: EpochSource } {
  const fromEnv = env['SOURCE_DATE_EPOCH'];
  if (fromEnv !== undefined && fromEnv !== '') return { epoch: parseEpoch(fromEnv), source: 'environment' };
  try {
    const out = execFileSync('git', ['-C', repoDir, 'log', '-1', '--format=%ct'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    if (/^[0-9]+\s*$/.test(out)) return { epoch: Number(out.trim()), source: 'git' };
  } catch {
    // not a git checkout, or no git: fall through
  }
  return { epoch: FALLBACK_EPOCH, source: 'fallback' };
}
