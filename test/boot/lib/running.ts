/**
 * What a running gateway shows about its daemons: each unit's sandbox as systemd reports it (`systemctl show`)
 * against what the packaged unit file says, what the kernel applied to the main process (/proc), and the
 * sockets each main process listens on against what the packaged configs say.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { RenderedFile } from '../../../src/files.ts';
import { PATHS, UNITS } from '../../../src/render/gateway/common.ts';
import { parseUnit } from '../../net/lib/units.ts';
import { parseIni, torListen } from '../../net/lib/world.ts';
import { run } from '../../net/lib/sh.ts';
import type { Machine } from './machine.ts';

/** systemd's DynamicUser= range (systemd.exec(5)). */
export const DYNAMIC_UIDS = [61184, 65519] as const;

/** The settings that confine a daemon, as our unit files write them; each is read back with `systemctl show`. */
export const SANDBOX_KEYS = [
  'User', 'Group', 'DynamicUser', 'NoNewPrivileges', 'UMask', 'ProtectSystem', 'ProtectHome', 'PrivateTmp',
  'PrivateDevices', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups',
  'ProtectClock', 'ProtectHostname', 'RestrictNamespaces', 'RestrictRealtime', 'RestrictSUIDSGID', 'LockPersonality',
  'MemoryDenyWriteExecute', 'SystemCallArchitectures', 'SystemCallFilter', 'RestrictAddressFamilies',
  'CapabilityBoundingSet', 'AmbientCapabilities', 'IPAddressAllow', 'IPAddressDeny', 'Restart', 'StateDirectory',
] as const;

/** System calls @system-service leaves out (systemd.exec(5) "SystemCallFilter="): none may be allowed. */
const OUTSIDE_SYSTEM_SERVICE = ['reboot', 'kexec_load', 'init_module', 'delete_module', 'mount', 'umount2', 'pivot_root', 'swapon', 'settimeofday'];

function text(files: readonly RenderedFile[], path: string): string {
  const f = files.find((x) => x.path === path);
  if (f === undefined) throw new Error(`the package has no ${path}`);
  return new TextDecoder().decode(f.data);
}

/** [Service] settings of a packaged unit file or drop-in (last assignment wins, as for these keys). */
export function serviceSettings(files: readonly RenderedFile[], path: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of parseUnit(text(files, path)).get('Service') ?? []) out.set(k, v);
  return out;
}

/** The value `systemctl show` prints for a setting written as `written` in a unit file; undefined: compare apart. */
function shownAs(key: string, written: string): string | undefined {
  switch (key) {
    case 'CapabilityBoundingSet':
    case 'AmbientCapabilities':
      return written.toLowerCase();
    case 'IPAddressAllow':
    case 'IPAddressDeny':
      return written.split(/\s+/).flatMap((w) => (w === 'any' ? ['0.0.0.0/0', '::/0'] : w === 'localhost' ? ['127.0.0.0/8', '::1/128'] : [w])).join(' ');
    case 'SystemCallFilter':
      return undefined;
    default:
      return written;
  }
}

/** Differences between a unit's sandbox as written and as systemd runs it ([] when they agree). */
export async function sandboxDifferences(m: Machine, unit: string, written: ReadonlyMap<string, string>): Promise<string[]> {
  const keys = SANDBOX_KEYS.filter((k) => written.has(k));
  const shown = await m.show(unit, keys);
  const problems: string[] = [];
  for (const k of keys) {
    const w = written.get(k) ?? '';
    const s = shown.get(k);
    if (s === undefined) {
      problems.push(`${unit}: systemctl show has no ${k}`);
      continue;
    }
    if (k === 'SystemCallFilter') {
      if (w !== '@system-service') problems.push(`${unit}: SystemCallFilter=${w}: not read back by this test`);
      const calls = new Set(s.replace(/^~/, '').split(/\s+/));
      if (s.startsWith('~') || !calls.has('read') || !calls.has('openat')) problems.push(`${unit}: SystemCallFilter is not an allow-list of @system-service: ${s.slice(0, 80)}`);
      for (const c of OUTSIDE_SYSTEM_SERVICE) if (calls.has(c)) problems.push(`${unit}: SystemCallFilter allows ${c}`);
    } else if (k === 'RestrictAddressFamilies' || k === 'IPAddressAllow' || k === 'IPAddressDeny') {
      // Sets: systemd prints them in an order of its own, which differs between runs.
      const a = [...new Set(s.split(/\s+/))].sort();
      const b = [...new Set((shownAs(k, w) ?? w).split(/\s+/))].sort();
      if (a.join(' ') !== b.join(' ')) problems.push(`${unit}: ${k}=${s}, written ${w}`);
    } else if (s !== shownAs(k, w)) {
      problems.push(`${unit}: ${k}=${s}, written ${w}`);
    }
  }
  return problems;
}

function statusOf(hostPid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(`/proc/${hostPid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** Mount options of the root as process `hostPid` sees it (its /proc/<pid>/mountinfo line for "/"). */
function rootMountOptions(hostPid: number): string[] {
  const lines = readFileSync(`/proc/${hostPid}/mountinfo`, 'utf8').split('\n').filter((l) => l.split(' ')[4] === '/');
  return (lines.at(-1)?.split(' ')[5] ?? '').split(',');
}

export interface Applied {
  readonly uid: number;
  readonly noNewPrivs: boolean;
  readonly seccomp: boolean;
  readonly capBnd: bigint;
  readonly capEff: bigint;
  /** Its own mount namespace (ProtectSystem= and friends), not PID 1's. */
  readonly ownMountNs: boolean;
  readonly rootReadOnly: boolean;
}

/** What the kernel applied to a unit's main process (read from the host's /proc). */
export async function applied(m: Machine, unit: string): Promise<Applied> {
  const inner = Number((await m.show(unit, ['MainPID'])).get('MainPID') ?? '0');
  const host = inner > 0 ? m.hostPidOf(inner) : undefined;
  if (host === undefined) throw new Error(`${unit}: no main process (MainPID=${inner})`);
  const st = statusOf(host);
  return {
    uid: Number((st.get('Uid') ?? '').split(/\s+/)[0]),
    noNewPrivs: st.get('NoNewPrivs') === '1',
    seccomp: st.get('Seccomp') === '2',
    capBnd: BigInt(`0x${st.get('CapBnd') ?? '0'}`),
    capEff: BigInt(`0x${st.get('CapEff') ?? '0'}`),
    ownMountNs: readlinkSync(`/proc/${host}/ns/mnt`) !== readlinkSync(`/proc/${m.leader}/ns/mnt`),
    rootReadOnly: rootMountOptions(host).includes('ro'),
  };
}

/** CAP_NET_BIND_SERVICE's bit (linux/capability.h: 10). */
export const CAP_NET_BIND_SERVICE = 1n << 10n;

// ----------------------------------------------------------------------------------------------- listeners

export interface Socket {
  readonly proto: 'tcp' | 'udp';
  /** As ss prints it: 0.0.0.0:9040, [fd09::1]:53, [fe80::1]%vif3.0:53. */
  readonly local: string;
  readonly hostPid: number;
}

/** Every listening TCP and bound UDP socket in the gateway's namespace, with the host pid that holds it. */
export async function sockets(netns: string): Promise<Socket[]> {
  const r = await run(['ip', 'netns', 'exec', netns, 'ss', '-Htulnp'], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`ss: ${r.stderr}`);
  const out: Socket[] = [];
  for (const line of r.stdout.split('\n').filter((l) => l.trim() !== '')) {
    const f = line.trim().split(/\s+/);
    const pid = /pid=(\d+)/.exec(line)?.[1];
    out.push({ proto: f[0] === 'tcp' ? 'tcp' : 'udp', local: f[4] ?? '', hostPid: pid === undefined ? 0 : Number(pid) });
  }
  return out;
}

/** `address:port` as ss prints a local address (IPv6 in brackets, link-local with %interface). */
export function ssAddress(addr: string, port: number, iface?: string): string {
  if (!addr.includes(':')) return `${addr}:${port}`;
  return `[${addr}]${iface !== undefined && addr.toLowerCase().startsWith('fe80:') ? `%${iface}` : ''}:${port}`;
}

/**
 * The client tunnels i2pd reads in a root (the package's main tunnels file, the drop-in's --tunconf, in place of
 * Debian's tunnels.conf; then Debian's tunnels directory): `address:port` each listens on.
 */
export function i2pdTunnelListeners(root: string): string[] {
  const files = [join(root, PATHS.i2pdMainTunnels)];
  const dir = join(root, 'etc/i2pd/tunnels.d');
  try {
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.conf')) files.push(join(dir, f));
  } catch {
    // no tunnels.d
  }
  const out: string[] = [];
  for (const f of files) {
    let section: Map<string, string> | undefined;
    const flush = (): void => {
      if (section !== undefined && section.get('type') === 'client' && section.has('port')) out.push(`${section.get('address') ?? '127.0.0.1'}:${section.get('port') ?? ''}`);
    };
    for (const raw of readFileSync(f, 'utf8').split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      if (/^\[.*\]$/.test(line)) {
        flush();
        section = new Map();
        continue;
      }
      const eq = line.indexOf('=');
      if (eq > 0 && section !== undefined) section.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
    }
    flush();
  }
  return out;
}

/**
 * Where each daemon must listen, from the packaged configs: unit → the sorted `proto local` entries. i2pd's own
 * transports (NTCP2 and SSU2) are left out: no config sets their port, i2pd picks one; the caller checks them.
 */
export function expectedListeners(files: readonly RenderedFile[], opts: { vifAddrs: readonly string[]; vif: string; tunnels: readonly string[] }): Map<string, string[]> {
  const torrc = text(files, PATHS.torrc);
  const trans = torListen(torrc, 'TransPort');
  const dns = torListen(torrc, 'DNSPort');
  const relayStart = serviceSettings(files, `/usr/lib/systemd/system/${UNITS.dnsRelay}`).get('ExecStart') ?? '';
  const relayListen = /--listen (\S+)/.exec(relayStart)?.[1];
  const waitStart = serviceSettings(files, `/usr/lib/systemd/system/${UNITS.waitPage}`).get('ExecStart') ?? '';
  const waitListen = /--listen (\S+)/.exec(waitStart)?.[1];
  const tiny = text(files, PATHS.tinyproxyConf);
  const tinyPort = /^Port (\d+)$/m.exec(tiny)?.[1];
  const tinyAddr = /^Listen (\S+)$/m.exec(tiny)?.[1] ?? '0.0.0.0';
  const dnsmasq = text(files, PATHS.dnsmasqConf);
  const dnsmasqPort = Number(/^port=(\d+)$/m.exec(dnsmasq)?.[1] ?? '53');
  const ini = parseIni(text(files, PATHS.i2pdConf));
  if (trans === undefined || dns === undefined || relayListen === undefined || waitListen === undefined || tinyPort === undefined) throw new Error('cannot read the listeners from the packaged configs');
  const sorted = (xs: string[]): string[] => [...xs].sort();
  return new Map([
    [UNITS.tor, sorted([`tcp ${trans.host}:${trans.port}`, `udp ${dns.host}:${dns.port}`])],
    [UNITS.dnsRelay, [`tcp ${relayListen}`, `udp ${relayListen}`]],
    [UNITS.dnsmasq, sorted(opts.vifAddrs.flatMap((a) => ['tcp', 'udp'].map((p) => `${p} ${ssAddress(a, dnsmasqPort, opts.vif)}`)))],
    [UNITS.tinyproxy, [`tcp ${tinyAddr}:${tinyPort}`]],
    [UNITS.waitPage, [`tcp ${waitListen}`]],
    [
      'i2pd.service',
      sorted([
        `tcp ${ini.get('http.address') ?? '127.0.0.1'}:${ini.get('http.port') ?? '7070'}`,
        `tcp ${ini.get('httpproxy.address') ?? '127.0.0.1'}:${ini.get('httpproxy.port') ?? '4444'}`,
        ...opts.tunnels.map((t) => `tcp ${t}`),
      ]),
    ],
  ]);
}
