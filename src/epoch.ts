/**
 * SOURCE_DATE_EPOCH: the one time stamp every output carries (file mtimes, build time, changelog date).
 * Taken from the environment when set, else from the last commit of the source tree, else a fixed value; for a
 * build, the default also takes the config file's and the keyring's modification times when they are later
 * (`resolveBuildTimes`): they are inputs too, and a changed config must give a newer package (src/version.ts).
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
  return commitTime(repoDir);
}

/** HEAD's commit time, or the fixed fallback outside git. */
export function commitTime(repoDir: string): { epoch: number; source: 'git' | 'fallback' } {
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

export interface BuildTimes {
  /** SOURCE_DATE_EPOCH: every time stamp in the outputs, and the version's input time. */
  readonly epoch: number;
  readonly source: EpochSource | 'input files';
  /** HEAD's commit time (the fallback outside git; SOURCE_DATE_EPOCH when that is set): the version's source time. */
  readonly sourceTime: number;
}

/**
 * The two times of a build. SOURCE_DATE_EPOCH from the environment sets both (one value reproduces a build);
 * otherwise the source time is HEAD's commit time and SOURCE_DATE_EPOCH the latest of that and
 * `inputMtimes` (the config file's and the keyring's, in seconds), as reproducible-builds.org defines the
 * default: the time of the last modification of any input. The same checkout and unchanged input files give the
 * same times, so the same bytes.
 */
export function resolveBuildTimes(env: NodeJS.ProcessEnv, repoDir: string, inputMtimes: readonly number[]): BuildTimes {
  const fromEnv = env['SOURCE_DATE_EPOCH'];
  if (fromEnv !== undefined && fromEnv !== '') {
    const epoch = parseEpoch(fromEnv);
    return { epoch, source: 'environment', sourceTime: epoch };
  }
  const commit = commitTime(repoDir);
  const latest = Math.max(0, ...inputMtimes.filter((t) => Number.isInteger(t) && t >= 0));
  return latest > commit.epoch ? { epoch: latest, source: 'input files', sourceTime: commit.epoch } : { epoch: commit.epoch, source: commit.source, sourceTime: commit.epoch };
}
