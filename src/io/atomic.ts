/**
 * Writing a build's output: everything goes into a fresh sibling directory first, and only a complete tree is
 * renamed into place. A failed build leaves the previous output untouched and no half-written directory.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { dirname, join, resolve, basename, sep } from 'node:path';

export interface OutputFile {
  /** Relative to the output directory, with `/` separators. */
  readonly path: string;
  readonly data: Uint8Array;
  readonly mode: number;
}

export function writeTreeAtomically(outDir: string, files: readonly OutputFile[]): void {
  const target = resolve(outDir);
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const staging = join(parent, `.${basename(target)}.new-${tag}`);
  const old = join(parent, `.${basename(target)}.old-${tag}`);
  try {
    mkdirSync(staging);
    chmodSync(staging, 0o755);
    const made = new Set<string>([staging]);
    for (const f of files) {
      if (f.path.startsWith('/') || f.path.split('/').some((p) => p === '..' || p === '.' || p === '')) {
        throw new Error(`refusing to write outside the output directory: ${f.path}`);
      }
      const dest = join(staging, ...f.path.split('/'));
      if (!dest.startsWith(staging + sep)) throw new Error(`refusing to write outside the output directory: ${f.path}`);
      for (let d = dirname(dest); !made.has(d); d = dirname(d)) {
        // every directory up to the staging root: chmod-ed below, since mkdir's mode is masked by the umask
        made.add(d);
      }
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, f.data, { flag: 'wx' });
      // chmod after writing: the process umask must not decide the modes.
      chmodSync(dest, f.mode);
    }
    for (const d of made) chmodSync(d, 0o755);
    if (existsSync(target)) renameSync(target, old);
    renameSync(staging, target);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(target)) renameSync(old, target);
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
}
