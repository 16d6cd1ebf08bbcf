/**
 * What a booted machine shows about the gateway's daemons: whether any is active or has run since the boot,
 * what listens, what state a run wrote, what failed. A template must show nothing at all.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RenderedFile } from '../../../src/files.ts';
import { run } from '../../net/lib/sh.ts';
import type { Machine } from './machine.ts';

/** The distribution's units the gateway runs (or keeps off): Debian's i2pd, Tor (both), tinyproxy, dnsmasq. */
export const DISTRO_UNITS = ['i2pd.service', 'tor.service', 'tor@default.service', 'tinyproxy.service', 'dnsmasq.service'] as const;

/** Process names of the daemons (i2pd names its main thread i2pd-daemon; the DNS relay runs in python3). */
const DAEMON_COMMS = /^(tor|i2pd.*|tinyproxy|dnsmasq|python3.*|dns-relay)$/;

/**
 * systemd's catalog ids of "Starting …" and "Started …" (src/core/job.c): a unit that has been started. A start
 * job that a condition skipped logs the "Started" id too, with the message "… skipped, unmet condition check …"
 * (or, for triggering conditions `|`, "… skipped, no trigger condition checks were met.").
 */
const STARTING = '7d4958e842da4a758f6c1cdc7b36dcc5';
const STARTED = '39f53479d3a045ac8e11786248231fbf';
const SKIPPED = /skipped, (unmet condition check|no trigger condition checks were met)/;

/** Where the daemons keep state when they run: anything in here that no package ships was written by a run. */
export const STATE_DIRS = ['/var/lib/i2pd', '/var/lib/tor', '/var/lib/qubes-i2p-gateway', '/var/lib/i2p'] as const;

/** File names of a router identity, its keys and network database (i2pd), and of Tor's state. */
const IDENTITY_NAMES = new Set(['router.keys', 'router.info', 'ntcp2.keys', 'ssu2.keys', 'netDb', 'peerProfiles', 'irc-keys.dat']);
const TOR_STATE_NAMES = new Set(['state', 'lock', 'keys', 'cached-certs', 'cached-microdesc-consensus', 'cached-microdescs', 'cached-microdescs.new', 'cached-descriptors']);

/** The unit files (not drop-ins) the package ships: qubes-i2p-gateway-*.service and the target. */
export function ourUnits(files: readonly RenderedFile[]): string[] {
  const dir = '/usr/lib/systemd/system/';
  return files
    .filter((f) => f.kind === 'file' && f.path.startsWith(dir) && /^[^/]+\.(service|target)$/.test(f.path.slice(dir.length)))
    .map((f) => f.path.slice(dir.length))
    .sort();
}

export interface Quiet {
  /** Units not inactive right now (`unit: ActiveState/SubState`). */
  readonly active: string[];
  /** Units that left the inactive state since this boot, or were started (journal), with the evidence. */
  readonly ran: string[];
  /** Daemon processes running inside. */
  readonly daemons: string[];
  /** Sockets listening inside (ss, from the host, in the machine's network namespace). */
  readonly listening: string[];
  /** Paths a daemon's run wrote (router identity, netDb, Tor state), anywhere in the root. */
  readonly state: string[];
  /** `systemctl --failed`. */
  readonly failed: string[];
}

export const NOTHING: Quiet = { active: [], ran: [], daemons: [], listening: [], state: [], failed: [] };

export async function listening(m: Machine): Promise<string[]> {
  const r = await run(['nsenter', '-t', String(m.leader), '-n', 'ss', '-Htulnp'], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`ss in ${m.name}: ${r.stderr}`);
  return r.stdout.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => l !== '');
}

/** Entries under the state directories that no installed package ships (asked inside with dpkg-query -S). */
async function unownedState(m: Machine): Promise<string[]> {
  const script =
    'for d in "$@"; do [ -d "$d" ] && find "$d" -mindepth 1; done | while read -r p; do ' +
    'dpkg-query -S "$p" >/dev/null 2>&1 || echo "$p"; done';
  const r = await m.must(['sh', '-c', script, 'sh', ...STATE_DIRS]);
  return r.stdout.split('\n').filter((l) => l !== '');
}

/** Identity and Tor-state names anywhere in what the machine wrote (the overlay's upper dir). */
export function identityWrites(upper: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, inside: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(dir, name);
      const at = `${inside}/${name}`;
      const parent = inside.split('/').at(-1) ?? '';
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isCharacterDevice()) continue; // an overlay whiteout: something deleted, not written
      if (IDENTITY_NAMES.has(name) || (parent === 'tor' && TOR_STATE_NAMES.has(name))) found.push(at);
      if (st.isDirectory()) walk(p, at);
    }
  };
  walk(upper, '');
  return found.sort();
}

/** Everything the checks look at, for `units` (ours and the distribution's). */
export async function quietReport(m: Machine, units: readonly string[]): Promise<Quiet> {
  const active: string[] = [];
  const ran: string[] = [];
  for (const u of units) {
    const p = await m.show(u, ['LoadState', 'ActiveState', 'SubState', 'InactiveExitTimestampMonotonic', 'ExecMainStartTimestampMonotonic', 'NRestarts']);
    if (p.get('LoadState') === 'not-found') continue;
    if (p.get('ActiveState') !== 'inactive') active.push(`${u}: ${p.get('ActiveState') ?? '?'}/${p.get('SubState') ?? '?'}`);
    const left = Number(p.get('InactiveExitTimestampMonotonic') ?? '0');
    const exec = Number(p.get('ExecMainStartTimestampMonotonic') ?? '0');
    if (left !== 0 || exec !== 0) ran.push(`${u}: left inactive at ${left} us, main process started at ${exec} us`);
  }
  const wanted = new Set(units);
  for (const e of await m.journal()) {
    const unit = String(e['UNIT'] ?? '');
    const id = String(e['MESSAGE_ID'] ?? '');
    if (wanted.has(unit) && (id === STARTING || id === STARTED) && !SKIPPED.test(String(e['MESSAGE']))) ran.push(`${unit}: journal "${String(e['MESSAGE'])}"`);
    const comm = String(e['_COMM'] ?? '');
    if (DAEMON_COMMS.test(comm) && e['_PID'] !== undefined) ran.push(`${comm}[${String(e['_PID'])}] logged "${String(e['MESSAGE']).slice(0, 120)}"`);
  }
  const failed = (await m.must(['systemctl', '--failed', '--plain', '--no-legend'])).stdout.split('\n').filter((l) => l.trim() !== '');
  return {
    active,
    ran,
    daemons: m.processNames().filter((c) => DAEMON_COMMS.test(c)),
    listening: await listening(m),
    state: [...(await unownedState(m)), ...identityWrites(m.overlay.upper)],
    failed,
  };
}
