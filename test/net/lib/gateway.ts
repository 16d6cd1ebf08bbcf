/**
 * The gateway under test: our .deb, built in-process from a config exactly as the build does, unpacked into
 * the lab's gateway machine (tools/gw-view.sh), and its daemons started the way systemd would start them,
 * from the packaged unit files (and Debian's i2pd.service plus our drop-in).
 *
 * What is emulated of systemd, and nothing more: Condition*PathExists, User=/Group= (setpriv, with
 * AmbientCapabilities and NoNewPrivileges), DynamicUser= (a free uid of systemd's dynamic range, with no
 * passwd entry), Runtime/State/Logs/CacheDirectory (+Mode), Environment=,
 * EnvironmentFile=, UMask=, ExecStartPre= and ExecStart= (with their prefixes), Type=simple/exec/notify/forking with
 * PIDFile=, Type=oneshot (run to completion), KillSignal=. The sandboxing options (ProtectSystem=, SystemCallFilter=, ...) are not applied:
 * they can only take permissions away, and a daemon that fails under them is `systemd-analyze verify`'s and
 * the install test's concern, not a leak.
 *
 * Socket units with Accept=yes (the published services' listeners) are emulated with systemd's own
 * systemd-socket-activate (--accept --inetd): it binds ListenStream= and starts the template's ExecStart once per
 * connection with the connection as stdin and stdout, as systemd does; the template's User=/DynamicUser= and
 * NoNewPrivileges= apply to each connection's process. Not emulated: MaxConnections=, IPAddressAllow=/Deny=
 * (cgroup BPF) and SupplementaryGroups= (this machine has no group qubes).
 *
 * One deliberate substitution: the real Tor gets `--DisableNetwork 1` appended to its packaged command line,
 * so it never tries to reach the Tor network (the lab must send nothing towards real addresses). Its listeners
 * (TransPort, DNSPort) and .onion automapping work as packaged.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigValue } from '../../../src/config/load.ts';
import type { GatewayConfig } from '../../../src/config/schema.ts';
import { writeDeb } from '../../../src/pack/deb.ts';
import { renderDebPackage } from '../../../src/render/deb/package.ts';
import type { Lab } from './lab.ts';
import { sleep, type Proc, type RunResult } from './sh.ts';
import { loadUnit, parseExec, unitEnvironment, type EffectiveUnit } from './units.ts';
import { pidAlive } from '../../util/process.ts';
import { readStaticSources } from '../../../src/io/static.ts';

const DEB_STATICS = readStaticSources().deb;

export const SOURCE_DATE_EPOCH = 1_700_000_000;

export interface BuiltGateway {
  readonly config: GatewayConfig;
  readonly debPath: string;
}

/** Validate `input` as the build does, render the package, write the .deb bytes to a temp file. */
export function buildGatewayDeb(input: unknown): BuiltGateway {
  const loaded = parseConfigValue(input);
  if (!loaded.ok) throw new Error(`config refused: ${JSON.stringify(loaded.issues)}`);
  const config = loaded.config;
  const keyring = config.i2p.keyring === undefined ? undefined : new Uint8Array(readFileSync(config.i2p.keyring));
  const { meta, files } = renderDebPackage(config, keyring === undefined ? { sourceDateEpoch: SOURCE_DATE_EPOCH, statics: DEB_STATICS } : { keyring, sourceDateEpoch: SOURCE_DATE_EPOCH, statics: DEB_STATICS });
  const bytes = writeDeb(meta, files, { sourceDateEpoch: SOURCE_DATE_EPOCH });
  const dir = mkdtempSync(join(tmpdir(), `qignet-${process.pid}-deb-`));
  const debPath = join(dir, 'gateway.deb');
  writeFileSync(debPath, bytes);
  return { config, debPath };
}

export const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunningUnit {
  readonly unit: EffectiveUnit;
  readonly argv: readonly string[];
  /** The main process: the one we spawned, or for Type=forking the pid from PIDFile=. */
  readonly pid: number;
  readonly proc: Proc;
  readonly killSignal: NodeJS.Signals;
  /** DynamicUser=: the id the lab gave its user (no two running units share one). */
  readonly dynamicId?: number;
}

export class Gateway {
  readonly lab: Lab;
  readonly config: GatewayConfig;
  private readonly running = new Map<string, RunningUnit>();

  constructor(lab: Lab, config: GatewayConfig) {
    this.lab = lab;
    this.config = config;
  }

  /**
   * Unit search path in the gateway machine: what was written into its /etc since it started (an admin's drop-in:
   * the machine's upper layer, tools/machine-view.sh), the package's files, then the distribution's (Debian 13's).
   */
  unitDirs(): string[] {
    const p = this.lab.pkgRoot;
    return [join(this.lab.scratch, 'machines/gw/upper/etc/systemd/system'), join(p, 'etc/systemd/system'), join(p, 'usr/lib/systemd/system'), join(this.lab.root, 'etc/systemd/system'), join(this.lab.root, 'usr/lib/systemd/system')];
  }

  unit(name: string): EffectiveUnit {
    return loadUnit(name, this.unitDirs());
  }

  /** A file as the gateway machine sees it (the package's layers over the Debian 13 root), for EnvironmentFile=. */
  viewFile(path: string): string | undefined {
    for (const base of [this.lab.pkgRoot, join(this.lab.scratch, 'machine'), this.lab.root]) {
      if (existsSync(join(base, path))) return readFileSync(join(base, path), 'utf8');
    }
    return undefined;
  }

  /** Would systemd start this unit here? Every ConditionPathExists= (with ! and | as systemd reads them). */
  async conditionsHold(unit: EffectiveUnit): Promise<boolean> {
    const conds = unit.list('Unit', 'ConditionPathExists');
    let anyTriggering = false;
    let triggeringHeld = false;
    for (let c of conds) {
      const triggering = c.startsWith('|');
      if (triggering) c = c.slice(1);
      const negate = c.startsWith('!');
      if (negate) c = c.slice(1);
      const exists = (await this.lab.gwRun(['test', '-e', c])).code === 0;
      const holds = negate ? !exists : exists;
      if (triggering) {
        anyTriggering = true;
        triggeringHeld ||= holds;
      } else if (!holds) {
        return false;
      }
    }
    return !anyTriggering || triggeringHeld;
  }

  /**
   * Start `name` as systemd would. `ready`: the ports that must be listening before we return (the caller
   * knows them from the config). `extraArgs`: appended to ExecStart (only Tor's --DisableNetwork 1).
   */
  async start(name: string, ready: ReadonlyArray<readonly ['tcp' | 'udp', number]>, extraArgs: readonly string[] = [], opts: { override?: string } = {}): Promise<RunningUnit> {
    if (this.running.has(name)) throw new Error(`${name} is already running`);
    const unit = this.unit(name);
    if (!(await this.conditionsHold(unit))) throw new Error(`${name}: a Condition of the unit does not hold, systemd would not start it`);
    const S = 'Service';
    const named = unit.get(S, 'User');
    // DynamicUser=yes: User= if that user exists, else a transient uid named after User= or the unit.
    const dynamic = unit.get(S, 'DynamicUser') === 'yes' && (named === undefined || this.lab.findAccount(named) === undefined);
    const user = dynamic ? String(freeDynamicId(this.takenIds())) : (named ?? 'root');
    const group = unit.get(S, 'Group') ?? (user === 'root' ? 'root' : dynamic ? user : this.lab.account(user).group);
    const env = unitEnvironment(unit, (p) => this.viewFile(p));

    const dirs: Array<[string, string, string | undefined]> = [
      ['/run', 'RuntimeDirectory', unit.get(S, 'RuntimeDirectoryMode')],
      ['/var/lib', 'StateDirectory', unit.get(S, 'StateDirectoryMode')],
      ['/var/log', 'LogsDirectory', unit.get(S, 'LogsDirectoryMode')],
      ['/var/cache', 'CacheDirectory', unit.get(S, 'CacheDirectoryMode')],
    ];
    for (const [base, key, mode] of dirs) {
      for (const entry of unit.list(S, key)) {
        for (const d of entry.split(/\s+/).filter((x) => x !== '')) {
          const r = await this.lab.gwRun(['install', '-d', '-o', user, '-g', group, '-m', mode ?? '0755', `${base}/${d}`]);
          if (r.code !== 0) throw new Error(`${name}: cannot create ${base}/${d}: ${r.stderr}`);
        }
      }
    }

    const privFlags: string[] = [];
    const ambient = unit.list(S, 'AmbientCapabilities').join(' ').split(/\s+/).filter((c) => c !== '');
    if (ambient.length > 0) {
      const caps = ambient.map((c) => `+${c.toLowerCase().replace(/^cap_/, '')}`).join(',');
      privFlags.push(`--inh-caps=${caps}`, `--ambient-caps=${caps}`);
    }
    if (unit.get(S, 'NoNewPrivileges') === 'yes') privFlags.push('--no-new-privs');

    const envArgs = ['env', '-i', `PATH=${SYSTEMD_PATH}`];
    // A dynamic user is named after its unit (or User=), with / as its home.
    const userName = dynamic ? (named ?? name.replace(/\.service$/, '')) : user;
    if (user !== 'root') envArgs.push(`USER=${userName}`, `LOGNAME=${userName}`, `HOME=${dynamic ? '/' : this.lab.account(user).home}`, 'SHELL=/usr/sbin/nologin');
    for (const [k, v] of env) envArgs.push(`${k}=${v}`);

    const preAsRoot = unit.get(S, 'PermissionsStartOnly') === 'yes';
    for (const line of unit.list(S, 'ExecStartPre')) {
      const ex = parseExec(line, env);
      const asRoot = preAsRoot || ex.privileged;
      const r = await this.lab.gwRun([...envArgs, ...ex.argv], asRoot ? { timeoutMs: 30_000 } : { user, timeoutMs: 30_000 });
      if (r.code !== 0 && !ex.ignoreFailure) throw new Error(`${name}: ExecStartPre ${ex.argv.join(' ')} failed: ${r.stderr}`);
    }

    const starts = unit.list(S, 'ExecStart');
    if (starts.length !== 1) throw new Error(`${name}: expected one ExecStart, found ${starts.length}: ${JSON.stringify(starts)}`);
    const ex = parseExec(starts[0] as string, env);
    const argv = [...ex.argv, ...extraArgs];
    const type = unit.get(S, 'Type') ?? 'simple';
    const over = opts.override === undefined ? {} : { override: opts.override };
    const proc = this.lab.gwSpawn(name, [...envArgs, ...withUmask(unit.get(S, 'UMask'), argv)], ex.privileged ? over : { user, privFlags, ...over });
    let pid = proc.pid;
    if (type === 'forking') {
      if (!(await proc.waitExit(30_000)) || proc.exited?.code !== 0) throw new Error(`${name}: forking start failed\n${proc.diagnostics()}`);
      const pidFile = unit.get(S, 'PIDFile');
      if (pidFile === undefined || pidFile === '') throw new Error(`${name}: Type=forking without PIDFile=`);
      pid = Number(readFileSync(join(this.lab.scratch, pidFile.replace(/^\/run\//, 'run/')), 'utf8').trim());
      this.lab.adoptPid(pid);
    } else if (type !== 'simple' && type !== 'exec' && type !== 'notify') {
      throw new Error(`${name}: Type=${type} is not emulated`);
    }
    const killSignal = (unit.get(S, 'KillSignal') ?? 'SIGTERM') as NodeJS.Signals;
    const running: RunningUnit = { unit, argv, pid, proc, killSignal, ...(dynamic ? { dynamicId: Number(user) } : {}) };
    this.running.set(name, running);
    // Its main pid where the lab's systemctl stand-in (tools/lab-systemctl) finds it for `systemctl reload`.
    mkdirSync(join(this.lab.scratch, 'run', 'qig-lab-units'), { recursive: true, mode: 0o755 });
    writeFileSync(join(this.lab.scratch, 'run', 'qig-lab-units', `${name}.pid`), `${pid}\n`);
    for (const [proto, port] of ready) {
      try {
        await this.lab.waitListening(proto, port, 20_000, name);
      } catch (e) {
        throw new Error(`${String(e)}\n${proc.diagnostics()}`);
      }
    }
    return running;
  }

  /**
   * Start an Accept=yes socket unit as systemd would (see the header): returns once it listens. `override`: a layer
   * over the gateway machine's /etc and /usr for the connections' processes (a stand-in for a program Qubes has).
   */
  async startSocket(name: string, opts: { override?: string } = {}): Promise<RunningUnit> {
    if (this.running.has(name)) throw new Error(`${name} is already running`);
    const unit = this.unit(name);
    if (!(await this.conditionsHold(unit))) throw new Error(`${name}: a Condition of the unit does not hold, systemd would not start it`);
    const listens = unit.list('Socket', 'ListenStream');
    const m = listens.length === 1 ? /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(listens[0] ?? '') : null;
    if (m === null) throw new Error(`${name}: expected one ListenStream=ADDRESS:PORT, found ${JSON.stringify(listens)}`);
    if (unit.get('Socket', 'Accept') !== 'yes') throw new Error(`${name}: only Accept=yes sockets are emulated`);
    const template = this.unit(name.replace(/\.socket$/, '@.service'));
    const S = 'Service';
    if (template.get(S, 'StandardInput') !== 'socket') throw new Error(`${template.name}: StandardInput=socket expected`);
    const named = template.get(S, 'User');
    const dynamic = template.get(S, 'DynamicUser') === 'yes' && (named === undefined || this.lab.findAccount(named) === undefined);
    const user = dynamic ? String(freeDynamicId(this.takenIds())) : (named ?? 'root');
    const starts = template.list(S, 'ExecStart');
    if (starts.length !== 1) throw new Error(`${template.name}: expected one ExecStart`);
    const env = unitEnvironment(template, (p) => this.viewFile(p));
    const ex = parseExec(starts[0] as string, env);
    const cred =
      user === 'root'
        ? []
        : dynamic
          ? ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--clear-groups', ...(template.get(S, 'NoNewPrivileges') === 'yes' ? ['--no-new-privs'] : []), '--']
          : ['setpriv', `--reuid=${user}`, `--regid=${this.lab.account(user).gid}`, '--init-groups', '--'];
    const envArgs = ['env', '-i', `PATH=${SYSTEMD_PATH}`, ...[...env].map(([k, v]) => `${k}=${v}`)];
    const argv = ['systemd-socket-activate', '--listen', `${m[1]}:${m[2]}`, '--accept', '--inetd', '--', ...cred, ...envArgs, ...withUmask(template.get(S, 'UMask'), ex.argv)];
    const proc = this.lab.gwSpawn(name, argv, opts.override === undefined ? {} : { override: opts.override });
    const running: RunningUnit = { unit, argv, pid: proc.pid, proc, killSignal: 'SIGTERM', ...(dynamic ? { dynamicId: Number(user) } : {}) };
    this.running.set(name, running);
    try {
      await this.lab.waitListening('tcp', Number(m[2]), 10_000, name);
    } catch (e) {
      throw new Error(`${String(e)}\n${proc.diagnostics()}`);
    }
    return running;
  }

  /** Run a Type=oneshot unit to completion (its ExecStart lines in order), as systemd would at boot. */
  async runOneshot(name: string): Promise<RunResult[]> {
    const unit = this.unit(name);
    if (unit.get('Service', 'Type') !== 'oneshot') throw new Error(`${name} is not Type=oneshot`);
    if (!(await this.conditionsHold(unit))) throw new Error(`${name}: a Condition of the unit does not hold, systemd would not start it`);
    const user = unit.get('Service', 'User') ?? 'root';
    const env = unitEnvironment(unit, (p) => this.viewFile(p));
    const envArgs = ['env', '-i', `PATH=${SYSTEMD_PATH}`, ...[...env].map(([k, v]) => `${k}=${v}`)];
    const results: RunResult[] = [];
    for (const line of unit.list('Service', 'ExecStart')) {
      const ex = parseExec(line, env);
      const r = await this.lab.gwRun([...envArgs, ...ex.argv], ex.privileged || user === 'root' ? { timeoutMs: 20_000 } : { user, timeoutMs: 20_000 });
      results.push(r);
      if (r.code !== 0 && !ex.ignoreFailure) throw new Error(`${name}: ${ex.argv.join(' ')} failed: ${r.stderr}`);
    }
    return results;
  }

  /** The machine's users' and groups' ids, and those of the running units' dynamic users (as systemd, one each). */
  private takenIds(): Set<number> {
    const taken = this.lab.takenIds();
    for (const r of this.running.values()) if (r.dynamicId !== undefined) taken.add(r.dynamicId);
    return taken;
  }

  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  get(name: string): RunningUnit | undefined {
    return this.running.get(name);
  }

  async stop(name: string): Promise<void> {
    const r = this.running.get(name);
    if (r === undefined) return;
    this.running.delete(name);
    try {
      process.kill(r.pid, r.killSignal);
    } catch {
      /* gone already */
    }
    for (let i = 0; i < 100; i++) {
      if (r.proc.exited !== undefined || !pidAlive(r.pid)) return;
      await sleep(30);
    }
    await this.lab.stopPid(r.pid);
  }

  async stopAll(): Promise<void> {
    for (const name of [...this.running.keys()]) await this.stop(name);
  }

  /** The packaged qubes-firewall hook, run as qubes-firewall.service runs it (root, systemd's environment). */
  async runHook(opts: { override?: string } = {}): Promise<RunResult> {
    const hook = '/etc/qubes/qubes-firewall.d/50-qubes-i2p-gateway';
    return this.lab.gwRun(['env', '-i', `PATH=${SYSTEMD_PATH}`, hook], { timeoutMs: 20_000, ...opts });
  }
}

/** UMask= as systemd applies it before exec (setpriv has no umask of its own). */
function withUmask(umask: string | undefined, argv: readonly string[]): string[] {
  if (umask === undefined) return [...argv];
  if (!/^0?[0-7]{3}$/.test(umask)) throw new Error(`UMask=${umask} is not an octal mask`);
  return ['sh', '-c', 'umask "$0" && exec "$@"', umask, ...argv];
}

/** The first id of systemd's DynamicUser= range (61184-65519) that is neither a user's nor a group's there. */
function freeDynamicId(taken: ReadonlySet<number>): number {
  for (let id = 61184; id <= 65519; id++) if (!taken.has(id)) return id;
  throw new Error('no free id in the DynamicUser= range');
}
