/**
 * A Debian root booted with systemd-nspawn: its own PID 1 (systemd), its own journal, units started the way a
 * qube starts them. Everything runs from an overlay (test/util/chroot.ts makeOverlay), so nothing a boot writes
 * reaches the cached roots.
 *
 * The options are those this machine needs (FIELD-NOTES.md, "The platform users run"):
 *   - SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1: the host's PID 1 is not systemd and its cgroups are hybrid; a Qubes
 *     4.3 qube has cgroup v2 only, and so does the container;
 *   - --register=no --keep-unit: no machined, no transient scope (there is no systemd on the host to ask);
 *   - --capability=CAP_NET_ADMIN: without it every `nft` inside fails (and units that merely order themselves
 *     after the firewall still start);
 *   - --private-network for a boot whose daemons may start (a template while packages install), with
 *     --network-namespace-path= to join an existing namespace instead of a new one (the gateway in the
 *     datapath lab); the pair also keeps /proc/sys/net writable inside, which the namespace path alone does not;
 *   - --resolv-conf=off --timezone=off --link-journal=no: the root's own /etc, as the template has it.
 *
 * Commands run inside with `nsenter --all` into the container's PID 1 (mount, pid, net, ipc, uts, cgroup
 * namespaces), with a clean environment. The container's systemd has no way to know about them, exactly like a
 * `qvm-run` shell: they are not part of any unit.
 *
 * What a test must say it did not check: IPAddressDeny=/IPAddressAllow= are cgroup BPF programs, which systemd
 * cannot attach in such a container (the host's cgroup v2 has no BPF firewall for it); systemd starts the unit
 * without them. Those settings are read back, never proven to filter.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { Overlay } from '../../util/chroot.ts';
import { alive, endPid, Proc, run, sleep, type RunResult } from '../../net/lib/sh.ts';

export type Network = { readonly kind: 'private' } | { readonly kind: 'netns'; readonly name: string };

export interface BootOptions {
  /** Machine name and host name; also how the test log tells boots apart. */
  readonly name: string;
  readonly network: Network;
  /** Host directories bind-mounted read-write: [host, inside]. */
  readonly binds?: ReadonlyArray<readonly [string, string]>;
  readonly log?: (msg: string) => void;
  /** Bound on reaching a settled boot (`systemctl is-system-running --wait`). */
  readonly bootTimeoutMs?: number;
}

/**
 * Bound on `systemctl stop` of the router: Debian 13's i2pd.service stops with SIGTERM and TimeoutStopSec=30s, then
 * SIGKILL; i2pd 2.56 waits up to 30 s at its stop for an address book download in progress (AddressBook::Stop), so a
 * stop on an integrated router may take the whole 30 s (seen once in the booted privnet suite, where the default
 * subscription's host does not exist). exec's default of 30 s is not enough for that.
 */
export const ROUTER_STOP_MS = 75_000;

/** The environment of commands run inside: what a root shell in the qube would have, non-interactive. */
const INSIDE_ENV = [
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  'HOME=/root',
  'LANG=C.UTF-8',
  'LC_ALL=C.UTF-8',
  'TERM=dumb',
  'SYSTEMD_PAGER=',
  'SYSTEMD_COLORS=0',
];

/** CLOCK_MONOTONIC in microseconds: the clock systemd's *TimestampMonotonic and the journal use, host and container alike. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export class Machine {
  readonly name: string;
  readonly overlay: Overlay;
  /** CLOCK_MONOTONIC (µs) just before systemd-nspawn was started. */
  readonly spawnedAtUs: number;
  readonly proc: Proc;
  private leaderPid = 0;
  private readonly log: (msg: string) => void;

  private constructor(overlay: Overlay, opts: BootOptions, proc: Proc, spawnedAtUs: number) {
    this.name = opts.name;
    this.overlay = overlay;
    this.proc = proc;
    this.spawnedAtUs = spawnedAtUs;
    this.log = opts.log ?? (() => {});
  }

  /** Boot the overlay's root; returns once systemd reports the boot settled (running or degraded). */
  static async boot(overlay: Overlay, opts: BootOptions): Promise<Machine> {
    const args = [
      '--quiet',
      '--boot',
      `--directory=${overlay.root}`,
      `--machine=${opts.name}`,
      '--register=no',
      '--keep-unit',
      '--capability=CAP_NET_ADMIN',
      '--resolv-conf=off',
      '--timezone=off',
      '--link-journal=no',
      // --private-network with a namespace path: that namespace, with /proc/sys/net writable inside as in any
      // private network (without it nspawn leaves /proc/sys/net read-only, and no sysctl of the qube's works).
      '--private-network',
      ...(opts.network.kind === 'netns' ? [`--network-namespace-path=/run/netns/${opts.network.name}`] : []),
      ...(opts.binds ?? []).map(([host, inside]) => `--bind=${host}:${inside}`),
    ];
    const env = { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' };
    const spawnedAtUs = monotonicUs();
    const proc = new Proc(`nspawn ${opts.name}`, ['systemd-nspawn', ...args], env);
    const m = new Machine(overlay, opts, proc, spawnedAtUs);
    try {
      await m.waitLeader(20_000);
      await m.waitSettled(opts.bootTimeoutMs ?? 120_000);
    } catch (e) {
      await m.kill();
      throw e;
    }
    m.log(`${opts.name}: booted in ${((monotonicUs() - spawnedAtUs) / 1e6).toFixed(1)} s (container PID 1 is host pid ${m.leaderPid})`);
    return m;
  }

  /** The host pid of the container's PID 1 (systemd). */
  get leader(): number {
    if (this.leaderPid === 0) throw new Error(`${this.name}: not booted`);
    return this.leaderPid;
  }

  private async waitLeader(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exited !== undefined) throw new Error(`${this.name}: systemd-nspawn exited ${JSON.stringify(this.proc.exited)}\n${this.proc.diagnostics()}`);
      for (const child of childrenOf(this.proc.pid)) {
        if (comm(child) === 'systemd') {
          this.leaderPid = child;
          return;
        }
      }
      await sleep(20);
    }
    throw new Error(`${this.name}: no container PID 1 after ${timeoutMs} ms\n${this.proc.diagnostics()}`);
  }

  private async waitSettled(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: RunResult | undefined;
    while (Date.now() < deadline) {
      if (this.proc.exited !== undefined) break;
      last = await this.exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: Math.max(1000, deadline - Date.now()) });
      const state = last.stdout.trim();
      if (state === 'running' || state === 'degraded') return;
      await sleep(50); // systemd inside not reachable yet: its private socket appears early in the boot
    }
    throw new Error(`${this.name}: boot did not settle (${last?.stdout.trim() ?? 'no answer'}: ${last?.stderr.trim() ?? ''})\n${this.proc.diagnostics()}`);
  }

  /** argv prefix that runs a command inside, as root, with INSIDE_ENV. */
  inside(extraEnv: readonly string[] = []): string[] {
    return ['nsenter', '-t', String(this.leader), '--all', '--', 'env', '-i', ...INSIDE_ENV, ...extraEnv];
  }

  exec(argv: readonly string[], opts: { input?: string; timeoutMs?: number; env?: readonly string[] } = {}): Promise<RunResult> {
    return run([...this.inside(opts.env), ...argv], { timeoutMs: opts.timeoutMs ?? 30_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  }

  /** Like exec, but a non-zero exit or a timeout is an error that shows the command and its output. */
  async must(argv: readonly string[], opts: { input?: string; timeoutMs?: number; env?: readonly string[] } = {}): Promise<RunResult> {
    const r = await this.exec(argv, opts);
    if (r.code !== 0 || r.timedOut) {
      throw new Error(
        `${this.name}: (inside) ${argv.join(' ')} ${r.timedOut ? 'timed out' : `exited ${String(r.code ?? r.signal)}`}\n` +
          `--- stdout\n${r.stdout.slice(-6000)}\n--- stderr\n${r.stderr.slice(-6000)}`,
      );
    }
    return r;
  }

  /** `systemctl show` of one unit: property → value. */
  async show(unit: string, props: readonly string[]): Promise<Map<string, string>> {
    const r = await this.must(['systemctl', 'show', unit, ...props.flatMap((p) => ['-p', p])]);
    const out = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
    }
    return out;
  }

  /** Host pids of every process in the container's PID namespace (PID 1 included). */
  hostPids(): number[] {
    const ns = readlinkSync(`/proc/${this.leader}/ns/pid`);
    const pids: number[] = [];
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        if (readlinkSync(`/proc/${e}/ns/pid`) === ns) pids.push(Number(e));
      } catch {
        // gone
      }
    }
    return pids;
  }

  /** The host pid of the process that is `pid` inside the container (its NSpid line), if it exists. */
  hostPidOf(pid: number): number | undefined {
    for (const h of this.hostPids()) {
      try {
        const ns = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${h}/status`, 'utf8'))?.[1]?.trim().split(/\s+/);
        if (ns !== undefined && Number(ns.at(-1)) === pid) return h;
      } catch {
        // gone
      }
    }
    return undefined;
  }

  /** The command names of every process inside, sorted (kernel threads have none here: a container has none). */
  processNames(): string[] {
    return this.hostPids().map(comm).filter((c) => c !== '').sort();
  }

  /** Its journal of this boot, one object per entry (`journalctl -o json`), optionally filtered (journalctl match args). */
  async journal(matches: readonly string[] = []): Promise<Array<Record<string, unknown>>> {
    const r = await this.must(['journalctl', '-b', '--no-pager', '-o', 'json', ...matches], { timeoutMs: 30_000 });
    return r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** `systemctl poweroff` and wait for the container to be gone (then the overlay may be unmounted). */
  async poweroff(timeoutMs = 60_000): Promise<void> {
    if (this.proc.exited !== undefined) return;
    await this.exec(['systemctl', 'poweroff', '--no-block'], { timeoutMs: 10_000 });
    if (!(await this.proc.waitExit(timeoutMs))) {
      this.log(`${this.name}: no clean poweroff within ${timeoutMs} ms, killing it`);
      await this.kill();
      throw new Error(`${this.name}: poweroff did not finish in ${timeoutMs} ms\n${this.proc.diagnostics()}`);
    }
    this.log(`${this.name}: powered off`);
  }

  /** End it at once: SIGKILL to the container's PID 1 (which ends its PID namespace), then to nspawn. */
  async kill(): Promise<void> {
    if (this.leaderPid !== 0 && alive(this.leaderPid)) {
      try {
        process.kill(this.leaderPid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (this.proc.child.pid !== undefined && !(await this.proc.waitExit(5000))) await endPid(this.proc.child.pid, 1000);
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '').map(Number);
  } catch {
    return [];
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
