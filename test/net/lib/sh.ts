/**
 * Running commands with a bound on everything: every call has a timeout, every child is remembered so that
 * it can be ended by its pid, never by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface RunOptions {
  readonly timeoutMs?: number;
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Run argv to completion (killed after timeoutMs, default 10 s); never throws for a non-zero exit. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('run: empty argv');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.on('error', () => undefined); // a child that exits without reading its input is not our error
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run, but a non-zero exit (or a timeout) is an error that shows the command and its output. */
export async function must(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(argv, opts);
  if (r.code !== 0 || r.timedOut) {
    throw new Error(
      `command failed (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}): ${argv.join(' ')}\n` +
        `stdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`,
    );
  }
  return r;
}

/** A long-running child: its pid, its output so far, and a way to wait for a line. */
export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  out = '';
  err = '';
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<void>;

  constructor(name: string, argv: readonly string[], env?: NodeJS.ProcessEnv) {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('Proc: empty argv');
    this.name = name;
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    this.child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.out = (this.out + d).slice(-65536)));
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.err = (this.err + d).slice(-65536)));
    this.exitPromise = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve();
      });
      this.child.on('error', (e) => {
        this.err += `\nspawn error: ${String(e)}`;
        this.exited = { code: -1, signal: null };
        resolve();
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name}: not started (${this.err})`);
    return this.child.pid;
  }

  /** Resolve once stdout has a line equal to `line`; reject on exit or after timeoutMs. */
  async waitForLine(line: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.out.split('\n').includes(line)) return;
      if (this.exited) break;
      await sleep(20);
    }
    throw new Error(`${this.name} did not print ${line} (${this.exited ? `exited ${JSON.stringify(this.exited)}` : 'timeout'})\n${this.diagnostics()}`);
  }

  async waitExit(timeoutMs: number): Promise<boolean> {
    if (this.exited) return true;
    // The bound's timer is cleared as soon as the process exits: a pending one would keep a script alive.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exitPromise, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    return this.exited !== undefined;
  }

  diagnostics(): string {
    return `--- ${this.name} stdout ---\n${this.out.slice(-3000)}\n--- ${this.name} stderr ---\n${this.err.slice(-3000)}`;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** End one process by pid: SIGTERM, then SIGKILL after graceMs. Returns when it is gone (or after the bound). */
export async function endPid(pid: number, graceMs = 3000): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive(pid) || isZombie(pid)) return;
    await sleep(25);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  for (let i = 0; i < 40 && alive(pid) && !isZombie(pid); i++) await sleep(25);
}


function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** CPU seconds (user + system) the processes have used so far (/proc/<pid>/stat, 100 ticks a second); ended ones count 0. */
export function cpuSeconds(procs: readonly Proc[]): number {
  let ticks = 0;
  for (const p of procs) {
    try {
      const st = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* ended */
    }
  }
  return ticks / 100;
}
