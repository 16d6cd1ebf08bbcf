/**
 * Shared by the render and deb tests: configs, temp trees of rendered files, running the real tools, and
 * throwaway network namespaces. Everything made here is removed by the caller's cleanup (see `Scratch`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseConfigValue } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import type { RenderedFile } from '../../src/files.ts';
import { readStaticSources } from '../../src/io/static.ts';
import type { GatewayPrograms } from '../../src/render/gateway/index.ts';

/** Test data the project owns (origins in test/fixtures/README.md); no test reads outside the repository. */
export const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
export const REAL_KEYRING = join(FIXTURES, 'i2p-archive-keyring.gpg');
export const REAL_KEYRING_ASC = join(FIXTURES, 'i2p-debian-repo.key.asc');
/** The programs under gateway/, as the build reads them. */
export const PROGRAMS: GatewayPrograms = readStaticSources().deb.programs;
export const BASE_QUBES_NFT = join(FIXTURES, 'base-qubes.nft');

export function configOf(value: unknown = {}): GatewayConfig {
  const r = parseConfigValue(value);
  if (!r.ok) throw new Error(`test config refused: ${JSON.stringify(r.issues)}`);
  return r.config;
}

export function text(files: readonly RenderedFile[], path: string): string {
  const f = files.find((x) => x.path === path);
  if (f === undefined) throw new Error(`no rendered file ${path}; have ${files.map((x) => x.path).join(', ')}`);
  return new TextDecoder().decode(f.data);
}

/** Write rendered files under `root` as dpkg would unpack them (symlinks as symlinks, directories as directories, modes kept); returns `root`. */
export function writeTree(files: readonly RenderedFile[], root: string): string {
  for (const f of files) {
    const p = join(root, f.path);
    if (f.kind === 'dir') {
      mkdirSync(p, { recursive: true, mode: f.mode });
      continue;
    }
    mkdirSync(dirname(p), { recursive: true, mode: 0o755 });
    if (f.kind === 'symlink') symlinkSync(f.target ?? '', p);
    else {
      writeFileSync(p, f.data);
      chmodSync(p, f.mode);
    }
  }
  return root;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(argv: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): RunResult {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('run: empty argv');
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input ?? '',
    timeout: opts.timeoutMs ?? 30_000,
    ...(opts.env === undefined ? {} : { env: opts.env }),
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  });
  if (r.error !== undefined) throw new Error(`${argv.join(' ')}: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function must(argv: readonly string[], opts: Parameters<typeof run>[1] = {}): RunResult {
  const r = run(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** argv prefix giving the credentials systemd's User= gives (as the unit would run the daemon). */
export function asUser(user: string, group?: string): string[] {
  return ['setpriv', `--reuid=${user}`, `--regid=${group ?? user}`, '--init-groups'];
}

/** Temp dirs, network namespaces and child processes of one test file, removed in `cleanup()`. */
export class Scratch {
  private readonly dirs: string[] = [];
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];
  private counter = 0;

  /** A temp dir readable by the daemons' users (they run as debian-tor, dnsmasq, tinyproxy). */
  dir(tag: string): string {
    const d = mkdtempSync(join(tmpdir(), `qig-${tag}-`));
    chmodSync(d, 0o755);
    this.dirs.push(d);
    return d;
  }

  /** Write rendered files under `root` (symlinks as symlinks, directories as directories). */
  tree(files: readonly RenderedFile[], root = this.dir('tree')): string {
    return writeTree(files, root);
  }

  /** A new, empty network namespace with loopback up. */
  netns(): string {
    const name = `qig${process.pid}x${++this.counter}`;
    must(['ip', 'netns', 'add', name]);
    this.namespaces.push(name);
    must(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  spawn(argv: readonly string[]): ChildProcess {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('spawn: empty argv');
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    this.children.push(child);
    return child;
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        c.kill('SIGTERM');
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            c.kill('SIGKILL');
            resolve();
          }, 2000);
          c.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    }
    for (const n of this.namespaces) run(['ip', 'netns', 'delete', n]);
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** Collect a child's output; resolves when `pattern` appears in stdout+stderr (or rejects after timeoutMs). */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 5000): Promise<string> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${String(pattern)}; output so far:\n${seen}`)), timeoutMs);
    const on = (chunk: string): void => {
      seen += chunk;
      if (pattern.test(seen)) {
        clearTimeout(t);
        resolve(seen);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`exited (${String(code)}) before ${String(pattern)}; output:\n${seen}`));
    });
  });
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Poll `ss` in a namespace until a listener matching `pattern` (e.g. /127\.0\.0\.1:5353\b/) shows up. */
export async function waitListening(ns: string, proto: 'tcp' | 'udp', pattern: RegExp, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = '';
  while (Date.now() < deadline) {
    seen = must(['ip', 'netns', 'exec', ns, 'ss', '-Hln', proto === 'tcp' ? '-t' : '-u']).stdout;
    if (pattern.test(seen)) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${proto} ${String(pattern)} in ${ns} after ${timeoutMs} ms; listeners:\n${seen}`);
}
