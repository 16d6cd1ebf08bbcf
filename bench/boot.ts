/**
 * P5 of the benchmark, from booted gateways (the booted suite's machinery, test/boot/lib/, imported, not
 * changed): the default build installed into a Debian 13 template through install.sls (test/boot/lib/template.ts),
 * then, run by run, qubes booted from that template with systemd-nspawn in the datapath lab's gateway namespace.
 *
 *   P5 subject:   a gateway qube (services i2p, qubes-firewall, qubes-network), each run a first boot with a new
 *                 /rw: from systemd-nspawn's start to "ruleset loaded" (the journal entry of the firewall hook's
 *                 "firewall loaded from …") and to the first `.i2p` answer the client gets (bench/tools/
 *                 first-answer.mjs asks 10.139.1.1 every 10 ms); all on CLOCK_MONOTONIC, which the host, the
 *                 container's systemd and journal share.
 *      reference: an ordinary qube of the same template (no services, so nothing of the gateway starts), same
 *                 lab, same kind of boot: from systemd-nspawn's start to multi-user.target.
 *   P6 (the memory of the gateway's daemons with 0, 1, 10 and 50 clients) is bench/clients.ts's: it needs the
 *   private I2P network, for each client's destination to build its tunnels.
 *
 * Runs alternate reference and subject; run 0 of each is a discarded warm-up. Needs root, systemd-nspawn
 * (systemd-container), debootstrap and the Debian mirror for the first template (cached in .cache/ after), else
 * the figures are reported as skipped.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { A, Lab } from '../test/net/lib/lab.ts';
import { run, sleep } from '../test/net/lib/sh.ts';
import { aptCacheDirs, ensurePristine, makeOverlay, writeAptSources, type Overlay } from '../test/util/chroot.ts';
import { bootGateway, gatewayServices, shutdown, uidIn, type GatewayQube } from '../test/boot/lib/gateway.ts';
import { Machine } from '../test/boot/lib/machine.ts';
import { installCoreAgentStandIns, writeQubesDb } from '../test/boot/lib/qubes.ts';
import { applyState, buildRelease, downloadFor, installDummy, stageFormula } from '../test/boot/lib/template.ts';
import { median } from './measure.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface BootRun {
  readonly rulesetMs: number;
  readonly firstI2pMs: number;
  readonly multiUserMs: number;
}

export interface BootResult {
  readonly gateway: readonly BootRun[];
  readonly reference: readonly { multiUserMs: number }[];
  readonly versions: string;
}

/** The booted suite's template (install.sls performed in a Debian 13 root), made once for P5, P6 and P8. */
export interface BootTemplate {
  readonly pristine: string;
  readonly release: ReturnType<typeof buildRelease>;
  readonly template: Overlay;
  readonly versions: string;
}

/**
 * Make the template: install.sls inside the pristine root, booted with no network, then powered off and kept.
 * The apt cache is shared with other users of the machine: when its lock is held, the attempt is thrown away and
 * made again (bounded).
 */
export async function bootTemplate(cleanups: Array<() => Promise<void> | void>, log: (msg: string) => void): Promise<BootTemplate> {
  const pristine = await ensurePristine(log);
  const release = buildRelease({});
  for (let tries = 1; ; tries++) {
    try {
      return await templateOnce(pristine, release, cleanups, log);
    } catch (e) {
      if (tries >= 30 || !String(e).includes('Could not get lock')) throw e;
      log(`the shared apt cache is locked by another process; again in 15 s (try ${tries} of 30)`);
      await sleep(15_000);
    }
  }
}

async function templateOnce(pristine: string, release: ReturnType<typeof buildRelease>, cleanups: Array<() => Promise<void> | void>, log: (msg: string) => void): Promise<BootTemplate> {
  await downloadFor(pristine, release, 'i2p-gateway.install', log);
  const template: Overlay = await makeOverlay([pristine]);
  let tm: Machine | undefined;
  try {
    await writeAptSources(template.root);
    installCoreAgentStandIns(template.root);
    writeQubesDb(template.root, { type: 'TemplateVM', persistence: 'full', services: [] });
    stageFormula(template.root, release);
    tm = await Machine.boot(template, { name: 'qig-bench-template', network: { kind: 'private' }, binds: await aptCacheDirs(), log });
    await installDummy(tm);
    await applyState(tm, release, 'i2p-gateway.install', () => {});
    const versions = (await tm.must(['dpkg-query', '-W', '-f', '${Package} ${Version}, ', 'systemd', 'tor', 'i2pd', 'tinyproxy', 'dnsmasq-base', 'nftables'])).stdout.replace(/, $/, '');
    await tm.poweroff();
    await template.unmount();
    cleanups.push(() => template.dispose());
    return { pristine, release, template, versions };
  } catch (e) {
    await tm?.kill();
    await template.dispose();
    throw e;
  }
}

export interface BootOptions {
  /** A template made by bootTemplate (else one is made). */
  readonly template?: BootTemplate;
  readonly runs: number;
  readonly cleanups: Array<() => Promise<void> | void>;
  readonly log: (msg: string) => void;
}

function which(cmd: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, cmd)));
}

/** Microseconds on CLOCK_MONOTONIC of a unit's property, inside the machine. */
async function monotonic(m: Machine, unit: string, prop: string): Promise<number> {
  return Number((await m.show(unit, [prop])).get(prop) ?? '0');
}

/** Every process of a unit (its cgroup), summed: VmRSS and PSS (smaps_rollup), read from the host's /proc. */
export async function unitMemory(m: Machine, unit: string): Promise<{ rssKiB: number; pssKiB: number; processes: number }> {
  const group = (await m.show(unit, ['ControlGroup'])).get('ControlGroup') ?? '';
  const procs = (await m.must(['cat', `/sys/fs/cgroup${group}/cgroup.procs`])).stdout.split('\n').filter((l) => l !== '').map(Number);
  let rss = 0;
  let pss = 0;
  for (const inner of procs) {
    const host = m.hostPidOf(inner);
    if (host === undefined) continue;
    rss += Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${host}/status`, 'utf8'))?.[1] ?? 0);
    pss += Number(/^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${host}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  }
  return { rssKiB: rss, pssKiB: pss, processes: procs.length };
}

export async function bootFigures(opts: BootOptions): Promise<BootResult | { skipped: string }> {
  if (process.getuid?.() !== 0) return { skipped: 'needs root (systemd-nspawn, network namespaces)' };
  for (const tool of ['systemd-nspawn', 'debootstrap', 'ip', 'nsenter']) {
    if (!which(tool)) return { skipped: `${tool} is not installed (sh test/oracles.sh)` };
  }
  const log = opts.log;
  const { pristine, release, template, versions } = opts.template ?? (await bootTemplate(opts.cleanups, log));

  const lab = await Lab.create({ sanctionedUsers: [], sanctionedUids: [uidIn(template.upper, 'debian-tor'), uidIn(template.upper, 'i2pd')], gateway: 'booted' });
  opts.cleanups.push(() => lab.destroy());
  const lowers = [template.upper, pristine];
  const firstAnswer = join(lab.scratch, 'tools', 'first-answer.mjs');
  mkdirSync(dirname(firstAnswer), { recursive: true });
  await run(['cp', join(HERE, 'tools/first-answer.mjs'), join(HERE, 'tools/dns-query.mjs'), dirname(firstAnswer)]);

  const gateway: BootRun[] = [];
  const reference: { multiUserMs: number }[] = [];
  let current: GatewayQube | undefined;
  opts.cleanups.push(() => shutdown(current));
  for (let i = 0; i <= opts.runs; i++) {
    // Reference: an ordinary qube of this template.
    current = await bootGateway(lab, { name: `qig-bench-plain-${i}`, lowers, rw: join(template.base, `rw-plain-${i}`), services: [], log: () => {} });
    const plainUp = await monotonic(current.machine, 'multi-user.target', 'ActiveEnterTimestampMonotonic');
    const plain = { multiUserMs: (plainUp - current.machine.spawnedAtUs) / 1000 };
    await shutdown(current);
    current = undefined;

    // Subject: the gateway, with the client asking for a .i2p name from before its start.
    const asking = run(['ip', 'netns', 'exec', lab.ns.client, process.execPath, firstAnswer, A.dns1, 'bench-first.i2p', '60000', '10'], { timeoutMs: 70_000 });
    current = await bootGateway(lab, { name: `qig-bench-gw-${i}`, lowers, rw: join(template.base, `rw-gw-${i}`), services: gatewayServices(release.config.qubes.service), log: () => {} });
    const m = current.machine;
    const answer = await asking;
    if (answer.code !== 0) throw new Error(`P5: the client got no .i2p answer: ${answer.stderr}`);
    const first = JSON.parse(answer.stdout.trim()) as { monotonicUs: number; address: string };
    if (first.address !== release.config.network.virtualIp) throw new Error(`P5: .i2p answered ${first.address}`);
    const loaded = (await m.journal(['SYSLOG_IDENTIFIER=qubes-i2p-gateway'])).find((e) => String(e['MESSAGE']).startsWith('firewall loaded from'));
    if (loaded === undefined) throw new Error('P5: the firewall hook never logged "firewall loaded"');
    const run5: BootRun = {
      rulesetMs: (Number(loaded['__MONOTONIC_TIMESTAMP']) - m.spawnedAtUs) / 1000,
      firstI2pMs: (first.monotonicUs - m.spawnedAtUs) / 1000,
      multiUserMs: ((await monotonic(m, 'multi-user.target', 'ActiveEnterTimestampMonotonic')) - m.spawnedAtUs) / 1000,
    };

    await shutdown(current);
    current = undefined;
    if (i > 0) {
      reference.push(plain);
      gateway.push(run5);
    }
    log(`boot run ${i}${i === 0 ? ' (warm-up)' : ''}: plain qube multi-user ${plain.multiUserMs.toFixed(0)} ms; gateway ruleset ${run5.rulesetMs.toFixed(0)} ms, first .i2p ${run5.firstI2pMs.toFixed(0)} ms`);
  }
  return { gateway, reference, versions };
}

export function medianOf<T>(xs: readonly T[], f: (x: T) => number): number {
  return median(xs.map(f));
}
