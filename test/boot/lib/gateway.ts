/**
 * A gateway qube booted from the template: an overlay of the template's changes over the pristine root (a
 * qube's root is its template's, fresh at every boot), its own /rw (the private volume, a host folder that
 * survives its reboots), the qubesdb of a network-providing qube with the gateway's service, and
 * systemd-nspawn joined to the datapath lab's gateway namespace, so the lab's client probes and up's recorder
 * see the booted gateway exactly as they see the emulated one.
 *
 * While it boots, a sampler reads the namespace's forwarding switch and table list every few milliseconds, and
 * the client keeps probing upstream, so the boot's every moment is checked, not only its end. The tables are
 * listed with the nft of the gateway's own root (Debian 13's, chrooted into from the host): the host's older
 * nft fails on a ruleset the newer one loaded.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeOverlay, type Overlay } from '../../util/chroot.ts';
import { A, type GatewaySeat, type Probe } from '../../net/lib/lab.ts';
import { run, sleep } from '../../net/lib/sh.ts';
import { Machine, monotonicUs } from './machine.ts';
import { writeQubesDb } from './qubes.ts';

/** What dom0 enables in a network-providing qube (qubes-core-admin), plus the gateway's own service. */
export function gatewayServices(service: string): string[] {
  return [service, 'qubes-firewall', 'qubes-network'];
}

/** The uid of `user` in a root's /etc/passwd (read from the host). */
export function uidIn(root: string, user: string): number {
  const line = readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  if (line === undefined) throw new Error(`no user ${user} in ${root}/etc/passwd`);
  return Number(line.split(':')[2]);
}

export interface Sample {
  /** CLOCK_MONOTONIC, µs. */
  readonly at: number;
  readonly forwarding: boolean;
  readonly tables: readonly string[];
}

/**
 * Reads gw's forwarding switch and tables until stopped; the samples, in order. A listing that names one table twice
 * is a torn read (nft's dump ran into a transaction and was restarted; seen once in a booted run: the off table
 * twice, beside the lockdown and the ruleset): no namespace holds two tables of one family and name, so it is no
 * state of the gateway's; it is counted in `torn`, not kept. A real moment with two tables is kept.
 */
export class Sampler {
  readonly samples: Sample[] = [];
  torn = 0;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(lab: Pick<GatewaySeat, 'ns'>, root: string) {
    this.loop = (async () => {
      while (!this.stopped) {
        const at = monotonicUs();
        const script = 'cat /proc/sys/net/ipv4/ip_forward && chroot "$1" nft list tables';
        const r = await run(['ip', 'netns', 'exec', lab.ns.gw, 'sh', '-c', script, 'sh', root], { timeoutMs: 5000 });
        if (r.code === 0) {
          const [fwd, ...tables] = r.stdout.split('\n').filter((l) => l !== '');
          if (new Set(tables).size !== tables.length) this.torn++;
          else this.samples.push({ at, forwarding: fwd === '1', tables: tables.map((t) => t.replace(/^table /, '')) });
        }
        await sleep(5);
      }
    })();
  }

  async stop(): Promise<Sample[]> {
    this.stopped = true;
    await this.loop;
    return this.samples;
  }
}

/** What a client qube tries again and again while the gateway boots: clearnet TCP, UDP, ICMP, DNS upstream. */
export const LEAK_PROBES: readonly Probe[] = [
  { kind: 'tcp', host: A.web, port: 443, timeout: 0.4 },
  { kind: 'udp', host: A.web, port: 443, timeout: 0.4 },
  { kind: 'icmp', host: A.web, timeout: 0.4 },
  { kind: 'dns', server: A.dns1, name: 'leak-check.example', qtype: 'A', timeout: 0.4 },
  { kind: 'dns', server: A.upDns, name: 'leak-check.example', qtype: 'A', timeout: 0.4 },
];

/** Runs LEAK_PROBES from the client in rounds until stopped; how many rounds ran. */
export class Prober {
  rounds = 0;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(lab: Pick<GatewaySeat, 'probe'>, probes: readonly Probe[] = LEAK_PROBES) {
    this.loop = (async () => {
      while (!this.stopped) {
        await lab.probe('client', probes);
        this.rounds++;
      }
    })();
  }

  async stop(): Promise<number> {
    this.stopped = true;
    await this.loop;
    return this.rounds;
  }
}

export interface GatewayQube {
  readonly machine: Machine;
  readonly overlay: Overlay;
  readonly rw: string;
  readonly samples: readonly Sample[];
  /** Torn listings the sampler left out (Sampler.torn). */
  readonly tornSamples: () => number;
  /** Client probe rounds that ran while it booted. */
  readonly probeRounds: number;
}

export interface GatewayBootOptions {
  readonly name: string;
  /** The template's layers, topmost first: its upper dir, then the pristine root. */
  readonly lowers: readonly string[];
  /** The qube's private volume on the host (created if missing; kept across its reboots). */
  readonly rw: string;
  readonly services: readonly string[];
  /** Changes to this boot's root only (a broken file, say), applied before it boots: [path inside, contents]. */
  readonly edits?: ReadonlyArray<readonly [string, string | Uint8Array]>;
  /** Host directories bound into the qube besides its /rw: [host, inside] (a stand-in's socket directory, say). */
  readonly binds?: ReadonlyArray<readonly [string, string]>;
  readonly log: (msg: string) => void;
}

/**
 * Boot a gateway qube in the lab (the Lab itself: its gw namespace; or a second gateway's seat, Lab.addGateway);
 * returns once systemd settled, with what the sampler and prober saw meanwhile.
 */
export async function bootGateway(lab: GatewaySeat, opts: GatewayBootOptions): Promise<GatewayQube> {
  const overlay = await makeOverlay(opts.lowers);
  try {
    mkdirSync(opts.rw, { recursive: true, mode: 0o755 });
    writeQubesDb(overlay.root, { type: 'AppVM', persistence: 'rw-only', services: opts.services });
    // What the Qubes agent writes in a qube with a netvm: its resolvers are the netvm's 10.139.1.1 and .2.
    rmSync(join(overlay.root, 'etc/resolv.conf'), { force: true });
    writeFileSync(join(overlay.root, 'etc/resolv.conf'), `nameserver ${A.dns1}\nnameserver ${A.dns2}\n`);
    writeFileSync(join(overlay.root, 'etc/hostname'), `${opts.name}\n`);
    for (const [path, data] of opts.edits ?? []) {
      mkdirSync(dirname(join(overlay.root, path)), { recursive: true, mode: 0o755 });
      writeFileSync(join(overlay.root, path), data);
    }
    await lab.freshBoot();
    const sampler = new Sampler(lab, overlay.root);
    const prober = new Prober(lab);
    let machine: Machine;
    try {
      machine = await Machine.boot(overlay, { name: opts.name, network: { kind: 'netns', name: lab.ns.gw }, binds: [[opts.rw, '/rw'], ...(opts.binds ?? [])], log: opts.log });
    } finally {
      await prober.stop();
      await sampler.stop();
    }
    return { machine, overlay, rw: opts.rw, samples: sampler.samples, tornSamples: () => sampler.torn, probeRounds: prober.rounds };
  } catch (e) {
    await overlay.dispose();
    throw e;
  }
}

/** Power a gateway off and throw its root away (its /rw stays). */
export async function shutdown(q: GatewayQube | undefined): Promise<void> {
  if (q === undefined) return;
  try {
    await q.machine.poweroff();
  } finally {
    await q.machine.kill();
    await q.overlay.dispose();
  }
}
