/**
 * The lab: three network namespaces joined by veth pairs, nothing else.
 *
 *   client (app qube)                 gw (the gateway qube)                         up ("clearnet" + netvm)
 *   eth0 10.137.0.10 ──────────── vif3.0 10.137.0.1, group 2 │ eth0 172.31.0.2, group 1 ──── eth0 172.31.0.1
 *        fd09:24ef:4179::a89:a          fd09:24ef:4179::a89:1 │      fd00:200::2                  fd00:200::1
 *   default via the gateway                                   │ default via up          + 172.31.0.53 (DNS server)
 *   resolv.conf: 10.139.1.1, .2                                                         + 203.0.113.80, 2001:db8::80
 *                                                                                         (clearnet web, RFC 5737/3849)
 *                                                                                       + 172.31.1.80 (a private host)
 *                                                                                       + 10.139.1.1/.2 (nothing on 53)
 *
 * With `serviceQube`, a fourth namespace `svc`: a service qube with no netvm, loopback and nothing else. It is
 * reached only through the qrexec stand-ins (tools/qrexec-client-vm in the gateway, tools/qrexec-dom0.py here).
 *
 * `Lab.addGateway()` (test/boot) attaches a second gateway qube to the same up: its own namespace gw<N> with its
 * own client gw<N>client, the same addresses on the client side, and its upstream link on up's eth<N-1>
 * (172.31.1<N>.2/24, up 172.31.1<N>.1), with the lab's tag table in its namespace as in gw.
 *
 * Nothing upstream is inside 10.192.0.0/10: that is Tor's VirtualAddrNetwork, which the gateway sends to Tor.
 *
 * The veths are created inside the namespaces (never in the host's), no namespace has a route out, and every
 * address used is one of the above or the gateway's virtual IP, so no packet can leave the lab.
 *
 * `up` runs netlab.py up: it records every frame it receives on each interface that faces a gateway (eth0, and
 * every eth<N> a later gateway gets; AF_PACKET, below its own netfilter), with the interface in each record, and answers
 * DNS and TCP/UDP on its "clearnet" addresses with markers (UP-LEAKED, 172.31.1.66) so that a leak is seen both
 * in its log and in the client's answer.
 *
 * The gateway's sanctioned upstream traffic (the Tor and router users) is tagged DSCP CS1 by a lab-only table
 * `inet qig-lab-tag` that only tags (it never accepts or drops): `up` then counts as the client's everything
 * that is not tagged and not link housekeeping (ARP, neighbour discovery, MLD, IGMP).
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PATHS } from '../../../src/render/gateway/common.ts';
import { ensureOracles } from '../../util/chroot.ts';
import { alive, endPid, must, Proc, run, sleep, type RunResult } from './sh.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const TOOLS = join(HERE, '..', 'tools');
export const QUBES_BASE_NFT = join(HERE, '..', 'qubes-base.nft');
const MACHINE_VIEW = join(HERE, '..', '..', 'util', 'machine-view.sh');
// Debian's python3 (not a per-user shim): the stand-ins run as debian-tor and i2pd too.
// The host's python3 runs only what stands outside the machines: up's recorder ("the internet") and the marker
// frame sent below the gateway's netfilter, and the stand-ins of the service qube's namespace (svc): dom0's policy
// and the qube's qubes.ConnectTCP (tools/qrexec-dom0.py), the web application. Everything inside the gateway and
// the app qube is Debian 13's.
export const PYTHON = process.env['QIG_NET_PYTHON'] ?? '/usr/bin/python3';

/** One HTTP/1.1 GET over a raw socket (host's python3, standard library): prints the whole answer, or CONNECT-FAILED / READ-FAILED. */
const RAW_GET = [
  'import socket, sys',
  'host, path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])',
  'source = (sys.argv[5], 0) if len(sys.argv) > 5 else None',
  'try:',
  '    s = socket.create_connection((sys.argv[4], port), timeout=5, source_address=source)',
  'except OSError as e:',
  '    print("CONNECT-FAILED %s" % e); sys.exit(0)',
  's.settimeout(25)',
  's.sendall(("GET %s HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n" % (path, host)).encode())',
  'data = b""',
  'try:',
  '    while True:',
  '        c = s.recv(65536)',
  '        if not c: break',
  '        data += c',
  'except OSError as e:',
  '    print("READ-FAILED %s" % e)',
  'sys.stdout.write(data.decode("latin-1"))',
].join('\n');

/**
 * GET `path` with `Host: host` from namespace `ns` to `to`:`port` (the request a client qube's program sends to
 * the virtual IP, in origin form), from the address `from` if given (a spoofing client): the status code (or the
 * first line printed when there is none) and the answer.
 */
export async function rawGet(ns: string, req: { host: string; path: string; to: string; port?: number; from?: string }): Promise<{ status: string; body: string }> {
  const argv = [req.host, req.path, String(req.port ?? 80), req.to, ...(req.from !== undefined ? [req.from] : [])];
  const r = await run(['ip', 'netns', 'exec', ns, PYTHON, '-c', RAW_GET, ...argv], { timeoutMs: 40_000 });
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(r.stdout);
  return { status: m ? (m[1] as string) : r.stdout.split('\n')[0] ?? '', body: r.stdout };
}
const PREFIX = 'qignet';

export const A = {
  client4: '10.137.0.10',
  gwDown4: '10.137.0.1',
  client6: 'fd09:24ef:4179::a89:a',
  gwDown6: 'fd09:24ef:4179::a89:1',
  gwUp4: '172.31.0.2',
  up4: '172.31.0.1',
  upDns: '172.31.0.53',
  /** a "clearnet" web host: a documentation address (RFC 5737), which exists only inside up */
  web: '203.0.113.80',
  /** a host on a private network upstream (the gateway must send private destinations nowhere, not even to Tor) */
  lan: '172.31.1.80',
  gwUp6: 'fd00:200::2',
  up6: 'fd00:200::1',
  /** a "clearnet" IPv6 host: a documentation address (RFC 3849), which exists only inside up */
  web6: '2001:db8::80',
  dns1: '10.139.1.1',
  dns2: '10.139.1.2',
  vip: '10.100.100.100',
  /** what up's DNS answers for A: a client that sees it has leaked DNS */
  leakA: '172.31.1.66',
  /** what the Tor stand-in's DNSPort answers for A */
  torA: '10.192.0.99',
} as const;

/** The TCP and UDP ports up serves on all its addresses ("clearnet TCP on any port" is probed on these). */
export const UP_TCP_PORTS = [80, 443, 22, 8080, 9001] as const;
export const UP_UDP_PORTS = [443, 123] as const;

export type Ns = 'client' | 'gw' | 'up' | 'svc';

export interface UpEvent {
  readonly ev: string;
  readonly [k: string]: unknown;
}

export interface Frame extends UpEvent {
  readonly ev: 'frame';
  /** up's interface it arrived on: eth0 from the lab's gateway, eth<N-1> from the Nth (LabGateway.upIface). */
  readonly iface: string;
  readonly l3: 'ip4' | 'ip6' | 'arp' | 'other';
  readonly src?: string;
  readonly dst?: string;
  readonly proto?: number;
  readonly ttl?: number;
  readonly dscp?: number;
  readonly sport?: number;
  readonly dport?: number;
  readonly icmptype?: number;
}

/** DSCP CS1 = 8: set by the lab's tag table on the gateway's own output from the Tor and router users. */
export const SANCTIONED_DSCP = 8;

/** Frames that are link housekeeping, never traffic: ARP, ICMPv6 MLD/RS/RA/NS/NA/redirect/MLDv2, IGMP. */
function housekeeping(f: Frame): boolean {
  if (f.l3 === 'arp' || f.l3 === 'other') return true;
  if (f.l3 === 'ip6' && f.proto === 58 && f.icmptype !== undefined && ((f.icmptype >= 130 && f.icmptype <= 137) || f.icmptype === 143)) return true;
  if (f.l3 === 'ip4' && f.proto === 2) return true;
  return false;
}

/** Everything up received that the gateway did not sanction: client packets, forwarded or proxied. */
/**
 * An untagged frame that is the gateway's kernel answering a node of the private networks, not anyone's traffic: an
 * ICMP "destination unreachable" or a TCP reset from the gateway's upstream address to a node, sent when a node's
 * packet finds the daemon's socket gone (i2pd or Tor restarted). It has no socket, so no user to tag. A client's
 * packet never leaves with the gateway's address (the kernel forwards nothing), so the exception cannot hide one.
 * `gateway`: that gateway's upstream address (the lab's first gateway's unless given: Lab.addGateway's have others).
 */
export function kernelAnswer(f: Frame, nodes: { has(addr: string): boolean }, gateway: string = A.gwUp4): boolean {
  if (f.src !== gateway || f.dst === undefined || !nodes.has(f.dst)) return false;
  const rst = (((f['tcpflags'] as number | undefined) ?? 0) & 0x04) !== 0;
  return (f.proto === 1 && f.icmptype === 3) || (f.proto === 6 && rst);
}

export function unsanctioned(events: readonly UpEvent[]): Frame[] {
  return events.filter((e): e is Frame => e.ev === 'frame').filter((f) => !housekeeping(f) && f.dscp !== SANCTIONED_DSCP);
}

/** The frames of these events that arrived on up's interface `iface` (one gateway's upstream). */
export function onIface(events: readonly UpEvent[], iface: string): Frame[] {
  return events.filter((e): e is Frame => e.ev === 'frame' && e['iface'] === iface);
}

/** Hits on up's servers (DNS, TCP, UDP): each one is a client request that got out (of any gateway). */
export function serverHits(events: readonly UpEvent[]): UpEvent[] {
  return events.filter((e) => e.ev === 'up-dns' || e.ev === 'up-tcp' || e.ev === 'up-udp');
}

/** The address a server of up logged for its peer (python logs an IPv4 peer of a dual-stack socket as ::ffff:a.b.c.d). */
export const peerOf = (h: UpEvent): string => String(h['peer']).replace(/^::ffff:/, '');

/**
 * Requests up's servers answered that did not come from the private Tor network's exit (`exit`): with Tor on, a
 * client's TCP to a clearnet address (A.web) goes out through Tor, the way it must, and reaches up from the exit.
 */
export function hitsNotThroughTor(events: readonly UpEvent[], exit: string): UpEvent[] {
  return serverHits(events).filter((h) => peerOf(h) !== exit);
}

export function describe(frames: readonly UpEvent[]): string {
  return frames.slice(0, 20).map((f) => JSON.stringify(f)).join('\n') + (frames.length > 20 ? `\n… ${frames.length - 20} more` : '');
}

export interface LabOptions {
  /** Users whose gateway-local output is the gateway's sanctioned upstream traffic (tagged, not counted). */
  readonly sanctionedUsers: readonly string[];
  /** The .deb to install (unpack) into the gateway machine's view before it starts; none: a bare gateway. */
  readonly deb?: string;
  /**
   * System users to create in the gateway machine before it starts (the Java router's i2psvc, which only the I2P
   * repository's package creates): made with the root's own useradd, inside the lab, never on the host.
   */
  readonly users?: readonly string[];
  /** Also make `svc`, a service qube's namespace: loopback only, no link to anything (it has no netvm). */
  readonly serviceQube?: boolean;
  /** Numeric uids sanctioned too: users of a booted gateway's own passwd (test/boot), which the lab's machine lacks. */
  readonly sanctionedUids?: readonly number[];
  /**
   * 'emulated' (the default): the gateway machine runs the daemons the tests start, with Qubes' base tables loaded
   * and kernel forwarding as `forwarding` says. 'booted': gw keeps only its links, addresses and routes, the kernel's defaults (no
   * forwarding) and the lab's tag table, for a booted root (systemd-nspawn --network-namespace-path=/run/netns/<gw>,
   * test/boot) that brings the rest, as a qube does at boot. The lab's gateway machine still exists, for its
   * Debian 13 nft (the tag table, freshBoot), and runs nothing.
   */
  readonly gateway?: 'emulated' | 'booted';
  /**
   * The emulated gateway's kernel forwarding. 'off' (the default): as every real gateway runs, the package's own
   * no-forward.conf (the bytes of the unpacked .deb) applied with the gateway machine's `sysctl -p` right after the
   * machine starts, before any table is loaded or daemon started; needs `deb`. 'on': what Qubes' qubes-network
   * leaves (ip_forward and IPv6 forwarding 1), for a qube without our package (the lab's own controls) and the
   * tests of the layer above the kernel: what our tables do with forwarding on (see forwardingOn()).
   * Not for a 'booted' gateway, whose root brings its own units.
   */
  readonly forwarding?: 'off' | 'on';
}

/** Where the package ships its sysctl file (no-forward.ts). */
export const NO_FORWARD_CONF = PATHS.noForwardSysctl;

/** One line of a machine's /etc/passwd. */
export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** The name of the primary group (from /etc/group), or the gid as text when it has none. */
  readonly group: string;
}

export class Lab {
  readonly id: string;
  /** The namespaces; `svc` only when the lab was made with serviceQube. */
  readonly ns: Readonly<Record<Exclude<Ns, 'svc'>, string>> & { readonly svc?: string };
  readonly scratch: string;
  /** Where the .deb was unpacked: the package's files, e.g. pkgRoot + '/usr/share/qubes-i2p-gateway/torrc'. */
  readonly pkgRoot: string;
  private readonly procs = new Map<string, Proc>();
  /** Daemons that forked away from the process we spawned (Type=forking): ended by pid too. */
  private readonly forkedPids = new Set<number>();
  private syncCounter = 0;
  private holder: Proc | undefined;
  private clientHolder: Proc | undefined;
  private sanctioned: readonly string[] = [];
  private sanctionedUids: readonly number[] = [];
  /** The emulated gateway's forwarding as made (restoreForwarding goes back to it); undefined for a booted gateway. */
  private forwarding: 'off' | 'on' | undefined;
  /** What the gateway machine's `sysctl -p` printed when the lab applied the package's no-forward.conf last. */
  noForwardApplied = '';
  /** The Debian 13 tree every machine of the lab runs from (test/util/chroot.ts ensureOracles), on the host. */
  root = '';
  /** The gateway machine's /etc/passwd and /etc/group, read after it starts and after users are added. */
  private accounts: { passwd: string; group: string } = { passwd: '', group: '' };
  /** Client qubes added after the first (addClient), in the order they were attached. */
  private readonly extraClients: LabClient[] = [];
  /** Gateways added after the first (addGateway), in order. */
  private readonly extraGateways: LabGateway[] = [];
  /** Their namespaces (gateway and client), removed with the lab. */
  private readonly extraNamespaces: string[] = [];

  private constructor(serviceQube: boolean) {
    this.id = `${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
    const base = { client: `${PREFIX}-${this.id}-client`, gw: `${PREFIX}-${this.id}-gw`, up: `${PREFIX}-${this.id}-up` };
    this.ns = serviceQube ? { ...base, svc: `${PREFIX}-${this.id}-svc` } : base;
    this.scratch = mkdtempSync(join(tmpdir(), `${PREFIX}-${process.pid}-`));
    chmodSync(this.scratch, 0o755);
    this.pkgRoot = join(this.scratch, 'pkg');
  }

  static async create(opts: LabOptions): Promise<Lab> {
    await removeLeftovers();
    const lab = new Lab(opts.serviceQube === true);
    try {
      await lab.setup(opts);
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  private async setup(opts: LabOptions): Promise<void> {
    this.sanctioned = opts.sanctionedUsers;
    this.sanctionedUids = opts.sanctionedUids ?? [];
    const booted = opts.gateway === 'booted';
    if (booted && opts.forwarding !== undefined) throw new Error('lab: forwarding is for the emulated gateway; a booted root brings its own');
    this.forwarding = booted ? undefined : (opts.forwarding ?? 'off');
    if (this.forwarding === 'off' && opts.deb === undefined) {
      throw new Error("lab: forwarding 'off' applies the package's no-forward.conf, and this lab has no package (deb): give one, or say forwarding: 'on' (a qube without our package, as qubes-network leaves it)");
    }
    this.root = await ensureOracles();
    const s = this.scratch;
    for (const d of ['logs', 'pkg', 'run', 'run/qubes-service', 'client-run', 'machine/etc', 'client/etc', 'tools']) {
      mkdirSync(join(s, d), { recursive: true, mode: 0o755 });
    }
    chmodSync(join(s, 'logs'), 0o1777);
    // Non-root stand-ins (debian-tor, i2pd) must read the tools; the checkout may not be readable to them.
    // Only the tools' files: a __pycache__ left by a local python run is not part of the lab.
    for (const f of readdirSync(TOOLS, { withFileTypes: true })) if (f.isFile()) copyFileSync(join(TOOLS, f.name), join(s, 'tools', f.name));
    copyFileSync(QUBES_BASE_NFT, join(s, 'tools', 'qubes-base.nft'));
    copyFileSync(MACHINE_VIEW, join(s, 'tools', 'machine-view.sh'));
    for (const f of readdirSync(join(s, 'tools'))) chmodSync(join(s, 'tools', f), 0o755);
    // What the Qubes agent writes in a network-providing qube, and in an app qube.
    writeFileSync(join(s, 'machine/etc/resolv.conf'), 'nameserver 10.139.1.1\nnameserver 10.139.1.2\n');
    writeFileSync(join(s, 'client/etc/resolv.conf'), 'nameserver 10.139.1.1\nnameserver 10.139.1.2\n');
    // "Install" the package: its files become the top layer of the gateway machine (tools/machine-view.sh).
    if (opts.deb !== undefined) await must(['dpkg-deb', '-x', opts.deb, join(s, 'pkg')]);
    mkdirSync(join(s, 'pkg/etc'), { recursive: true });

    const { client, gw, up } = this.ns;
    for (const n of [client, gw, up, ...(this.ns.svc === undefined ? [] : [this.ns.svc])]) {
      await must(['ip', 'netns', 'add', n]);
      await this.sysctl(n, 'net.ipv6.conf.default.accept_dad', '0');
      await this.sysctl(n, 'net.ipv6.conf.default.accept_ra', '0');
      await this.sysctl(n, 'net.ipv6.conf.all.accept_dad', '0');
      await must(['ip', '-n', n, 'link', 'set', 'lo', 'up']);
    }
    // Links are created inside gw, each with its peer placed straight into the other namespace.
    await must(['ip', '-n', gw, 'link', 'add', 'vif3.0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client]);
    await must(['ip', '-n', gw, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', up]);
    await must(['ip', '-n', gw, 'link', 'set', 'vif3.0', 'group', '2']);
    await must(['ip', '-n', gw, 'link', 'set', 'eth0', 'group', '1']);

    const addrs: Array<[string, string, string]> = [
      [client, 'eth0', `${A.client4}/24`],
      [client, 'eth0', `${A.client6}/64`],
      [gw, 'vif3.0', `${A.gwDown4}/24`],
      [gw, 'vif3.0', `${A.gwDown6}/64`],
      [gw, 'eth0', `${A.gwUp4}/24`],
      [gw, 'eth0', `${A.gwUp6}/64`],
      [up, 'eth0', `${A.up4}/24`],
      [up, 'eth0', `${A.upDns}/24`],
      [up, 'eth0', `${A.web}/24`],
      [up, 'eth0', `${A.lan}/24`],
      // The netvm's resolver addresses, with nothing listening: the gateway's own lookups (its router's reseed)
      // fail at once with "port unreachable" instead of after minutes of timeouts. Clients never get here:
      // Qubes' dnat-dns rewrites their 10.139.1.1/.2 to up's DNS server, 172.31.0.53.
      [up, 'eth0', `${A.dns1}/32`],
      [up, 'eth0', `${A.dns2}/32`],
      [up, 'eth0', `${A.up6}/64`],
      [up, 'eth0', `${A.web6}/64`],
    ];
    for (const [n, dev, addr] of addrs) await must(['ip', '-n', n, 'addr', 'add', addr, 'dev', dev, 'nodad']);
    for (const [n, dev] of [[client, 'eth0'], [gw, 'vif3.0'], [gw, 'eth0'], [up, 'eth0']] as const) {
      await must(['ip', '-n', n, 'link', 'set', dev, 'up']);
    }
    await must(['ip', '-n', client, 'route', 'add', 'default', 'via', A.gwDown4]);
    await must(['ip', '-n', client, '-6', 'route', 'add', 'default', 'via', A.gwDown6]);
    await must(['ip', '-n', gw, 'route', 'add', 'default', 'via', A.up4]);
    await must(['ip', '-n', gw, '-6', 'route', 'add', 'default', 'via', A.up6]);
    // up answers every closed port at once ("port unreachable" is not rate-limited), so nothing waits on it.
    await this.sysctl(up, 'net.ipv4.icmp_ratelimit', '0');
    await this.sysctl(up, 'net.ipv6.icmp.ratelimit', '0');

    // One mount namespace and root for each machine, held by a sleeping process; every process of the machine
    // enters it (nsenter), so they share /, /run and /var like processes on one machine do.
    const view = join(s, 'tools/machine-view.sh');
    const hold = ['sh', '-c', 'echo READY; exec sleep infinity'];
    this.holder = this.track(
      new Proc('gw-machine', ['ip', 'netns', 'exec', gw, 'unshare', '-m', '--propagation', 'private', 'sh', view, 'gw', s, join(s, 'run'), `${join(s, 'pkg')}:${join(s, 'machine')}:${this.root}`, s, ...hold]),
    );
    await this.holder.waitForLine('READY', 5000);
    // Forwarding first, before any table is loaded or any daemon starts (a real gateway: qubes-network turns it
    // on, the package's no-forward unit off again before network.target; the lab has no window in between).
    if (this.forwarding !== undefined) await this.restoreForwarding();
    this.clientHolder = this.track(
      new Proc('client-machine', ['ip', 'netns', 'exec', client, 'unshare', '-m', '--propagation', 'private', 'sh', view, 'client', s, join(s, 'client-run'), `${join(s, 'client')}:${this.root}`, s, ...hold]),
    );
    await this.clientHolder.waitForLine('READY', 5000);
    for (const user of opts.users ?? []) {
      await must([...this.gwView(), 'useradd', '--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--user-group', user]);
    }
    await this.readAccounts();

    const logUp = join(s, 'logs/up.jsonl');
    writeFileSync(logUp, '');
    // eth0 now, and every eth<N> a later gateway brings (addGateway waits until it is watched).
    const upArgs = ['--iface', 'eth0', '--watch', 'eth[0-9]+', '--log', logUp];
    for (const addr of [A.up4, A.upDns, A.web, A.lan, A.up6, A.web6]) upArgs.push('--addr', addr);
    for (const p of UP_TCP_PORTS) upArgs.push('--tcp', String(p));
    for (const p of UP_UDP_PORTS) upArgs.push('--udp', String(p));
    const rec = this.track(new Proc('up-recorder', ['ip', 'netns', 'exec', up, PYTHON, join(s, 'tools/netlab.py'), 'up', ...upArgs]));
    await rec.waitForLine('READY', 5000);
    if (booted) await this.bareFirewall();
    else await this.resetFirewall();
  }

  /** Written under /proc/sys from inside the namespace (net.* is per namespace): no procps needed. */
  private async sysctl(ns: string, key: string, value: string): Promise<void> {
    await must(['ip', 'netns', 'exec', ns, 'sh', '-c', 'echo "$1" > "$2"', 'sh', value, `/proc/sys/${key.replace(/\./g, '/')}`]);
  }

  private track(p: Proc): Proc {
    this.procs.set(`${p.name}#${p.child.pid ?? '?'}`, p);
    return p;
  }

  // ------------------------------------------------------------------------------------------------ firewall

  /**
   * The gateway machine's nft (Debian 13's): every table of the gateway is loaded and read with it, as a
   * Debian 12 nft can misread (or crash on) rules a newer one loaded.
   */
  async nft(args: readonly string[], input?: string): Promise<RunResult> {
    return must([...this.gwView(), 'nft', ...args], input === undefined ? {} : { input });
  }

  /** Back to a freshly booted gateway: Qubes' base tables (and the lab's tag table), nothing of ours. */
  async resetFirewall(): Promise<void> {
    await this.bareFirewall();
    await this.nft(['-f', join(this.scratch, 'tools', 'qubes-base.nft')]);
    for (const c of this.extraClients) await this.qubesKnowsClient(c);
  }

  /** No tables at all (not even Qubes'), except the lab's tag table: a gateway whose base firewall never loaded. */
  async bareFirewall(): Promise<void> {
    await this.nft(['flush', 'ruleset']);
    await this.sysctl(this.ns.gw, 'net.ipv4.conf.all.route_localnet', '0');
    const tag = this.tagTable();
    if (tag !== undefined) await this.nft(['-f', '-'], tag);
  }

  /** The lab's tag table (DSCP CS1 on the sanctioned users' output), or undefined when no user is sanctioned. */
  private tagTable(): string | undefined {
    const uids = [...this.sanctioned.map((u) => this.account(u).uid), ...this.sanctionedUids];
    if (uids.length === 0) return undefined;
    const set = uids.join(', ');
    return (
      'table inet qig-lab-tag {\n' +
      '\t# lab instrumentation: tags (never filters) the gateway\'s sanctioned upstream traffic\n' +
      '\tchain output {\n\t\ttype filter hook output priority 400; policy accept;\n' +
      `\t\tmeta skuid { ${set} } ip dscp set cs1\n` +
      `\t\tmeta skuid { ${set} } ip6 dscp set cs1\n\t}\n}\n`
    );
  }

  /**
   * What a fresh boot gives gw's kernel state (gateway 'booted'): no tables but the lab's tag table, forwarding
   * and route_localnet off. The namespace outlives a booted gateway; a qube's next boot starts from scratch.
   */
  async freshBoot(): Promise<void> {
    await this.bareFirewall();
    await this.sysctl(this.ns.gw, 'net.ipv4.ip_forward', '0');
    await this.sysctl(this.ns.gw, 'net.ipv6.conf.all.forwarding', '0');
  }

  /**
   * The package's no-forward.conf, applied as the packaged unit and udev rule do it but with the gateway machine's
   * procps `sysctl -p` (the lab has no systemd to run systemd-sysctl for it at every start): the file is the
   * package's (the .deb's layer of the machine). Returns what sysctl printed (each key it set).
   */
  async applyNoForward(): Promise<string> {
    const r = await this.gwRun(['sysctl', '-p', NO_FORWARD_CONF]);
    if (r.code !== 0) throw new Error(`lab: sysctl -p ${NO_FORWARD_CONF} in the gateway machine failed (exit ${r.code}): ${r.stderr}`);
    this.noForwardApplied = r.stdout;
    return r.stdout;
  }

  /**
   * Forwarding on, as Qubes' qubes-network.service (network-proxy-setup.sh) turns it on in a qube that provides
   * network: for the tests of the layer above the kernel (our tables with forwarding on: the boot window before
   * our no-forward unit runs, a user who turned it on) and of a qube without our package. restoreForwarding() ends it.
   */
  async forwardingOn(): Promise<void> {
    await this.sysctl(this.ns.gw, 'net.ipv4.ip_forward', '1');
    await this.sysctl(this.ns.gw, 'net.ipv6.conf.all.forwarding', '1');
  }

  /** Back to the forwarding the emulated lab was made with: the package's no-forward.conf applied again, or on. */
  async restoreForwarding(): Promise<void> {
    if (this.forwarding === undefined) throw new Error('lab: a booted gateway sets its own forwarding (freshBoot for a new boot)');
    if (this.forwarding === 'on') await this.forwardingOn();
    else await this.applyNoForward();
  }

  async ruleset(stateless = true): Promise<string> {
    return (await this.nft([...(stateless ? ['-s'] : []), 'list', 'ruleset'])).stdout;
  }

  // ------------------------------------------------------------------------------------------------ accounts

  private async readAccounts(): Promise<void> {
    const passwd = (await must([...this.gwView(), 'cat', '/etc/passwd'])).stdout;
    const group = (await must([...this.gwView(), 'cat', '/etc/group'])).stdout;
    this.accounts = { passwd, group };
  }

  /** A user of the gateway machine (its own /etc/passwd, not the host's), or undefined. */
  findAccount(user: string): Account | undefined {
    const f = this.accounts.passwd.split('\n').find((l) => l.startsWith(`${user}:`))?.split(':');
    if (f === undefined) return undefined;
    const gid = Number(f[3]);
    const group = this.accounts.group.split('\n').find((l) => l.split(':')[2] === String(gid))?.split(':')[0] ?? String(gid);
    return { name: user, uid: Number(f[2]), gid, home: f[5] ?? '/', group };
  }

  account(user: string): Account {
    const a = this.findAccount(user);
    if (a === undefined) throw new Error(`no user ${user} in the gateway machine's /etc/passwd`);
    return a;
  }

  /** Every uid and gid the gateway machine has a name for. */
  takenIds(): Set<number> {
    const taken = new Set<number>();
    for (const text of [this.accounts.passwd, this.accounts.group]) for (const l of text.split('\n')) if (l !== '') taken.add(Number(l.split(':')[2]));
    return taken;
  }

  /** A file of the gateway machine, read from inside it (the package's layer over the Debian 13 root). */
  async readGwFile(path: string): Promise<string | undefined> {
    const r = await this.gwRun(['cat', path]);
    return r.code === 0 ? r.stdout : undefined;
  }

  /** Switch the qvm-service on or off inside the gateway: the file /run/qubes-service/<name>. */
  setService(name: string, on: boolean): void {
    const f = join(this.scratch, 'run/qubes-service', name);
    if (on) writeFileSync(f, '');
    else rmSync(f, { force: true });
  }

  /**
   * Stand-in for qubes-sysinit.sh in a qube that provides network: Qubes writes /qubes-vm-type ProxyVM (NetVM
   * without a netvm of its own) into qubesdb for it, and qubes-sysinit then creates /run/qubes/this-is-proxyvm
   * and enables the services qubes-network and qubes-firewall by default (/run/qubes-service/<name>). The
   * template and app qubes get none of these. Off: the lab's gateway is a qube that provides no network.
   */
  setProvidesNetwork(on: boolean): void {
    mkdirSync(join(this.scratch, 'run/qubes'), { recursive: true, mode: 0o755 });
    const files = [join(this.scratch, 'run/qubes/this-is-proxyvm'), join(this.scratch, 'run/qubes-service/qubes-network')];
    for (const f of files) {
      if (on) writeFileSync(f, '');
      else rmSync(f, { force: true });
    }
  }

  /**
   * A kernel setting of the gateway's network namespace (net.* is per namespace), as /proc/sys shows it. `key` in
   * dots (net.ipv4.ip_forward) or, for an interface name with a dot in it, in slashes (net/ipv4/conf/vif4.0/forwarding).
   */
  async gwSysctl(key: string): Promise<string> {
    const path = key.includes('/') ? key : key.replace(/\./g, '/');
    return (await must(['ip', 'netns', 'exec', this.ns.gw, 'cat', `/proc/sys/${path}`])).stdout.trim();
  }

  /** Set a kernel setting in the gateway's namespace (what Qubes' own scripts write there, say). */
  async setGwSysctl(key: string, value: string): Promise<void> {
    await this.sysctl(this.ns.gw, key, value);
  }

  /**
   * Attach another client qube, as Qubes does when a qube whose netvm is the gateway starts: a new vif<N>.0 in
   * group 2 with the gateway's address on it, and what vif-route-qubes (qubes-core-agent-linux network/) adds for
   * the client: its address in Qubes' `allowed` and `downstream` sets and a route to it; plus the per-client chain
   * qubes-firewall adds for a client with dom0's default policy (accept). The client's namespace gets a default
   * route via the gateway and Qubes' resolver addresses, like the first client.
   */
  async addClient(): Promise<LabClient> {
    const n = this.extraClients.length + 2;
    const vif = `vif${n + 2}.0`;
    const addr = `10.137.0.${n + 9}`;
    const ns = `${PREFIX}-${this.id}-client${n}`;
    const gw = this.ns.gw;
    await must(['ip', 'netns', 'add', ns]);
    // Its probes run the host's python3 in its namespace (the first client is a machine of the Debian 13 root; the
    // probes are the same program, and nothing in them depends on the client's release).
    const client: LabClient = { ns, vif, addr, probe: (probes) => this.probeIn(['ip', 'netns', 'exec', ns], probes, PYTHON) };
    this.extraClients.push(client);
    await this.sysctl(ns, 'net.ipv6.conf.default.accept_dad', '0');
    await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await must(['ip', '-n', gw, 'link', 'add', vif, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await must(['ip', '-n', gw, 'link', 'set', vif, 'group', '2']);
    await must(['ip', '-n', ns, 'addr', 'add', `${addr}/32`, 'dev', 'eth0', 'nodad']);
    await must(['ip', '-n', gw, 'addr', 'add', `${A.gwDown4}/32`, 'dev', vif, 'nodad']);
    await must(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    await must(['ip', '-n', gw, 'link', 'set', vif, 'up']);
    await must(['ip', '-n', ns, 'route', 'add', A.gwDown4, 'dev', 'eth0']);
    await must(['ip', '-n', ns, 'route', 'add', 'default', 'via', A.gwDown4]);
    await must(['ip', '-n', gw, 'route', 'add', addr, 'dev', vif]);
    await this.qubesKnowsClient(client);
    return client;
  }

  /** What vif-route-qubes and qubes-firewall add to Qubes' tables for an attached client (if those tables exist). */
  private async qubesKnowsClient(c: LabClient): Promise<void> {
    const chain = `qbs-${c.addr.replace(/\./g, '-')}`;
    const rules =
      `add element ip qubes allowed { "${c.vif}" . ${c.addr} }\n` +
      `add element ip qubes downstream { ${c.addr} }\n` +
      `add chain ip qubes-firewall ${chain}\n` +
      `add rule ip qubes-firewall ${chain} accept\n` +
      `add rule ip qubes-firewall qubes-forward ip saddr ${c.addr} jump ${chain}\n`;
    const tables = (await this.nft(['list', 'tables'])).stdout;
    if (tables.includes('table ip qubes\n') && tables.includes('table ip qubes-firewall')) await this.nft(['-f', '-'], rules);
  }

  /**
   * Attach a second (third, …) gateway qube to the same up, for a booted root (gateway 'booted'): a namespace of
   * its own with a bare kernel state (no forwarding, no tables), its client qube's namespace and machine (Debian 13,
   * Qubes' resolv.conf), wired as the first: the client at 10.137.0.10 behind vif3.0 (group 2), the gateway's
   * eth0 (group 1) to up, whose side is eth<N-1>. up's recorder watches eth<N-1> before the link comes up, and
   * freshBoot gives the namespace the lab's tag table (the same sanctioned uids: a gateway of the same template).
   * Torn down with the lab.
   */
  async addGateway(): Promise<LabGateway> {
    const n = this.extraGateways.length + 2;
    const gw = `${PREFIX}-${this.id}-gw${n}`;
    const client = `${PREFIX}-${this.id}-gw${n}client`;
    const upIface = `eth${n - 1}`;
    const up4 = `172.31.1${n}.1`;
    const gwUp4 = `172.31.1${n}.2`;
    const up6 = `fd00:20${n}::1`;
    const gwUp6 = `fd00:20${n}::2`;
    const s = this.scratch;
    for (const ns of [gw, client]) {
      await must(['ip', 'netns', 'add', ns]);
      this.extraNamespaces.push(ns);
      await this.sysctl(ns, 'net.ipv6.conf.default.accept_dad', '0');
      await this.sysctl(ns, 'net.ipv6.conf.default.accept_ra', '0');
      await this.sysctl(ns, 'net.ipv6.conf.all.accept_dad', '0');
      await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await must(['ip', '-n', gw, 'link', 'add', 'vif3.0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client]);
    await must(['ip', '-n', gw, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', upIface, 'netns', this.ns.up]);
    await this.waitWatched(upIface);
    await must(['ip', '-n', gw, 'link', 'set', 'vif3.0', 'group', '2']);
    await must(['ip', '-n', gw, 'link', 'set', 'eth0', 'group', '1']);
    const addrs: Array<[string, string, string]> = [
      [client, 'eth0', `${A.client4}/24`],
      [client, 'eth0', `${A.client6}/64`],
      [gw, 'vif3.0', `${A.gwDown4}/24`],
      [gw, 'vif3.0', `${A.gwDown6}/64`],
      [gw, 'eth0', `${gwUp4}/24`],
      [gw, 'eth0', `${gwUp6}/64`],
      [this.ns.up, upIface, `${up4}/24`],
      [this.ns.up, upIface, `${up6}/64`],
    ];
    for (const [ns, dev, addr] of addrs) await must(['ip', '-n', ns, 'addr', 'add', addr, 'dev', dev, 'nodad']);
    for (const [ns, dev] of [[client, 'eth0'], [gw, 'vif3.0'], [gw, 'eth0'], [this.ns.up, upIface]] as const) await must(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    await must(['ip', '-n', client, 'route', 'add', 'default', 'via', A.gwDown4]);
    await must(['ip', '-n', client, '-6', 'route', 'add', 'default', 'via', A.gwDown6]);
    await must(['ip', '-n', gw, 'route', 'add', 'default', 'via', up4]);
    await must(['ip', '-n', gw, '-6', 'route', 'add', 'default', 'via', up6]);
    const run = join(s, `gw${n}client-run`);
    mkdirSync(run, { recursive: true, mode: 0o755 });
    const view = join(s, 'tools/machine-view.sh');
    const holder = this.track(
      new Proc(`gw${n}client-machine`, ['ip', 'netns', 'exec', client, 'unshare', '-m', '--propagation', 'private', 'sh', view, `gw${n}client`, s, run, `${join(s, 'client')}:${this.root}`, s, 'sh', '-c', 'echo READY; exec sleep infinity']),
    );
    await holder.waitForLine('READY', 5000);
    const clientView = (): string[] => ['nsenter', '-t', String(holder.pid), '-m', '-n', '-r', '-w', '--'];
    const root = this.root;
    const g: LabGateway = {
      ns: { gw, client },
      upIface,
      up4,
      gwUp4,
      clientView,
      curl: (url, extra = []) => curlIn(clientView(), url, extra),
      probe: (_where, probes) => this.probeIn(clientView(), probes),
      freshBoot: async () => {
        await must(['ip', 'netns', 'exec', gw, 'chroot', root, 'nft', 'flush', 'ruleset']);
        const tag = this.tagTable();
        if (tag !== undefined) await must(['ip', 'netns', 'exec', gw, 'chroot', root, 'nft', '-f', '-'], { input: tag });
        await this.sysctl(gw, 'net.ipv4.ip_forward', '0');
        await this.sysctl(gw, 'net.ipv6.conf.all.forwarding', '0');
      },
    };
    this.extraGateways.push(g);
    return g;
  }

  // ------------------------------------------------------------------------------------------------- running

  /** argv prefix that runs a command in the gateway machine, our package installed (see tools/machine-view.sh). */
  gwView(opts: { user?: string; override?: string; privFlags?: readonly string[] } = {}): string[] {
    if (this.holder === undefined) throw new Error('lab: the gateway machine is not up');
    const pre = ['nsenter', '-t', String(this.holder.pid), '-m', '-n', '-r', '-w', '--'];
    // Extra /etc and /usr layers for one command only (a broken file): a private copy of the machine's mounts.
    if (opts.override !== undefined) pre.push('unshare', '-m', '--propagation', 'private', 'sh', join(this.scratch, 'tools/etc-layer.sh'), opts.override);
    return opts.user === undefined ? pre : [...pre, ...this.asUser(opts.user, opts.privFlags ?? [])];
  }

  /** argv prefix that runs a command in the app qube: Debian 13 too, with Qubes' resolv.conf (10.139.1.1, .2). */
  clientView(): string[] {
    if (this.clientHolder === undefined) throw new Error('lab: the client machine is not up');
    return ['nsenter', '-t', String(this.clientHolder.pid), '-m', '-n', '-r', '-w', '--'];
  }

  /** setpriv with the credentials systemd's User= gives: uid, primary gid, supplementary groups (from the machine). */
  private asUser(user: string, privFlags: readonly string[]): string[] {
    if (user === 'root') return privFlags.length > 0 ? ['setpriv', ...privFlags, '--'] : [];
    // A bare number: a user with no passwd entry (what systemd's DynamicUser= gives: uid = gid, no other groups).
    if (/^\d+$/.test(user)) return ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--clear-groups', ...privFlags, '--'];
    return ['setpriv', `--reuid=${user}`, `--regid=${this.account(user).gid}`, '--init-groups', ...privFlags, '--'];
  }

  /**
   * A layer (for gwRun's `override`) with the status command's stand-ins for what the lab has not: systemd's
   * answers (tools/fake-systemctl: a unit active while the process the lab started for it lives) and qubesdb's
   * (tools/fake-qubesdb-read: dom0's keys for a network-providing qube). Both record what they are asked into
   * logs/NAME-fakes.jsonl. `write` replaces one of their state files (units.json, qubesdb.json) with `value`
   * and that log.
   */
  statusStandIns(name: string): { readonly layer: string; readonly log: string; write(file: 'units.json' | 'qubesdb.json', value: object): void } {
    const layer = join(this.scratch, name);
    for (const d of ['usr/bin', 'etc/qig-lab']) mkdirSync(join(layer, d), { recursive: true, mode: 0o755 });
    copyFileSync(join(this.scratch, 'tools', 'fake-systemctl'), join(layer, 'usr/bin/systemctl'));
    copyFileSync(join(this.scratch, 'tools', 'fake-qubesdb-read'), join(layer, 'usr/bin/qubesdb-read'));
    for (const f of ['usr/bin/systemctl', 'usr/bin/qubesdb-read']) chmodSync(join(layer, f), 0o755);
    const log = join(this.scratch, 'logs', `${name}-fakes.jsonl`);
    writeFileSync(log, '');
    chmodSync(log, 0o666);
    const write = (file: string, value: object): void => {
      const f = join(layer, 'etc/qig-lab', file);
      writeFileSync(f, JSON.stringify({ log, ...value }));
      chmodSync(f, 0o644);
    };
    return { layer, log, write };
  }

  async gwRun(argv: readonly string[], opts: { user?: string; override?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
    return run([...this.gwView(opts), ...argv], { timeoutMs: opts.timeoutMs ?? 10_000, ...(opts.env ? { env: opts.env } : {}), ...(opts.input !== undefined ? { input: opts.input } : {}) });
  }

  gwSpawn(name: string, argv: readonly string[], opts: { user?: string; privFlags?: readonly string[]; env?: NodeJS.ProcessEnv; override?: string } = {}): Proc {
    return this.track(new Proc(name, [...this.gwView(opts), ...argv], opts.env));
  }

  /**
   * A host program in one of the lab's network namespaces, outside its machine's root, as root (the bench's Node
   * stand-in; the service qube's stand-ins in svc).
   */
  nsSpawn(ns: Ns, name: string, argv: readonly string[]): Proc {
    return this.track(new Proc(name, ['ip', 'netns', 'exec', this.nsName(ns), ...argv]));
  }

  /** A long-running process in the app qube machine (see clientView), ended with the lab. */
  clientSpawn(name: string, argv: readonly string[]): Proc {
    return this.track(new Proc(name, [...this.clientView(), ...argv]));
  }

  /**
   * A TCP connection from the app qube that stays open (netlab.py hold): `send` later puts one line on it and
   * waits for the one line that answers. For "an open connection survives X" tests.
   */
  async holdTcp(name: string, host: string, port: number): Promise<HeldTcp> {
    const ctl = join(this.scratch, 'logs', `${name}.ctl`);
    mkdirSync(ctl, { recursive: true });
    const proc = this.clientSpawn(name, ['python3', join(this.scratch, 'tools/netlab.py'), 'hold', '--host', host, '--port', String(port), '--ctl', ctl]);
    const first = await waitPrefixed(proc, 'OPEN ', 5000);
    return new HeldTcp(proc, ctl, first);
  }

  async nsRun(ns: Ns, argv: readonly string[], timeoutMs = 10_000): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.nsName(ns), ...argv], { timeoutMs });
  }

  nsName(ns: Ns): string {
    const name = this.ns[ns];
    if (name === undefined) throw new Error(`lab: no ${ns} namespace (make the lab with serviceQube)`);
    return name;
  }

  adoptPid(pid: number): void {
    this.forkedPids.add(pid);
  }

  async stop(p: Proc): Promise<void> {
    await endPid(p.pid);
    await p.waitExit(2000);
  }

  async stopPid(pid: number): Promise<void> {
    await endPid(pid);
    this.forkedPids.delete(pid);
  }

  /** The gateway's MAC address on its client-facing interface (for frames the client crafts itself). */
  async gwMac(): Promise<string> {
    const r = await must(['ip', '-n', this.ns.gw, '-j', 'link', 'show', 'vif3.0']);
    const links = JSON.parse(r.stdout) as Array<{ address: string }>;
    return links[0]?.address ?? '';
  }

  /** Is something listening in gw on this TCP or UDP port (any address)? */
  async listening(proto: 'tcp' | 'udp', port: number): Promise<boolean> {
    const r = await this.nsRun('gw', ['ss', '-Hln', proto === 'tcp' ? '-t' : '-u', `sport = :${port}`]);
    return r.stdout.trim() !== '';
  }

  /** Wait until process `pid` in gw has a listening TCP or UDP socket (for units whose ports we do not know). */
  async waitPidListening(pid: number, timeoutMs: number, who: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = await this.nsRun('gw', ['ss', '-Hlntup']);
      if (r.stdout.includes(`pid=${pid},`)) return;
      await sleep(50);
    }
    throw new Error(`${who}: process ${pid} listens on nothing in gw after ${timeoutMs} ms`);
  }

  async waitListening(proto: 'tcp' | 'udp', port: number, timeoutMs: number, who: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.listening(proto, port)) return;
      await sleep(50);
    }
    throw new Error(`${who}: nothing listens on ${proto} ${port} in gw after ${timeoutMs} ms`);
  }

  // -------------------------------------------------------------------------------------------------- probes

  /** Run probes (netlab.py probe) concurrently from the client (as root) or the gateway (as `user`). */
  async probe(where: 'client' | 'gw', probes: readonly Probe[], user?: string): Promise<ProbeResult[]> {
    return this.probeIn(where === 'client' ? this.clientView() : this.gwView(user === undefined ? {} : { user }), probes);
  }

  private async probeIn(prefix: readonly string[], probes: readonly Probe[], python = 'python3'): Promise<ProbeResult[]> {
    const argv = [...prefix, python, join(this.scratch, 'tools/netlab.py'), 'probe', JSON.stringify(probes)];
    const r = await run(argv, { timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`probe failed: ${r.stderr}`);
    const results = JSON.parse(r.stdout) as ProbeResult[];
    return results.map((res, i) => ({ ...res, probe: probes[i] as Probe }));
  }

  /** curl from the app qube, with its own resolv.conf; -m bounds the whole transfer. */
  async curl(url: string, extra: readonly string[] = []): Promise<CurlResult> {
    return curlIn(this.clientView(), url, extra);
  }

  // ---------------------------------------------------------------------------------------------- recorders

  private log(name: string): string {
    return join(this.scratch, 'logs', name);
  }

  readLog(name: string): UpEvent[] {
    const f = this.log(name);
    if (!existsSync(f)) return [];
    const text = readFileSync(f, 'utf8');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    return complete.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as UpEvent);
  }

  /** A position in up's log: events after it belong to the probes that follow. */
  upMark(): number {
    return this.readLog('up.jsonl').length;
  }

  /** Wait until up's recorder has a capture socket on its interface `iface` (its `watch` line). */
  private async waitWatched(iface: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.readLog('up.jsonl').some((e) => e.ev === 'watch' && e['iface'] === iface)) return;
      await sleep(25);
    }
    throw new Error(`up recorder does not watch ${iface} after 10 s: is it running?`);
  }

  /**
   * Everything up received since `mark` (frames on every interface that faces a gateway, each with its `iface`),
   * after proving the recorder has seen every frame sent before now: a marker frame goes out of each gateway's
   * eth0 below netfilter (gw's, and each added gateway's) and each must appear in the log, on its interface.
   */
  async upSince(mark: number): Promise<UpEvent[]> {
    const seats: Array<[string, string]> = [[this.ns.gw, 'eth0'], ...this.extraGateways.map((g): [string, string] => [g.ns.gw, g.upIface])];
    const tokens = new Map<string, string>();
    for (const [ns, upIface] of seats) {
      const token = `sync-${this.id}-${++this.syncCounter}`;
      tokens.set(token, upIface);
      await must(['ip', 'netns', 'exec', ns, PYTHON, join(this.scratch, 'tools/netlab.py'), 'sync', '--iface', 'eth0', '--token', token]);
    }
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      const seen = this.readLog('up.jsonl').filter((e) => e.ev === 'sync' && tokens.get(String(e['token'])) === e['iface']);
      if (seen.length === tokens.size) {
        await sleep(100); // frames queued on another CPU's backlog a moment before the marker
        return this.readLog('up.jsonl').slice(mark).filter((e) => e.ev !== 'sync' && e.ev !== 'watch');
      }
      await sleep(25);
    }
    const seen = this.readLog('up.jsonl').filter((e) => e.ev === 'sync' || e.ev === 'watch');
    throw new Error(`up recorder did not see every sync marker (${[...tokens].map(([t, i]) => `${t} on ${i}`).join(', ')}): is it running? It saw: ${seen.slice(-10).map((e) => JSON.stringify(e)).join(' ')}`);
  }

  /** Start a stand-in from netlab.py in gw as `user`; returns once its sockets are bound. */
  async startStandIn(name: string, args: readonly string[], user: string): Promise<{ proc: Proc; log: string }> {
    const log = `${name}.jsonl`;
    writeFileSync(this.log(log), '');
    chmodSync(this.log(log), 0o666);
    const proc = this.gwSpawn(name, ['python3', join(this.scratch, 'tools/netlab.py'), ...args, '--log', this.log(log)], { user });
    await proc.waitForLine('READY', 5000);
    return { proc, log };
  }

  // ---------------------------------------------------------------------------------------------- teardown

  async destroy(): Promise<void> {
    for (const pid of this.forkedPids) await endPid(pid);
    for (const p of this.procs.values()) if (p !== this.holder && p !== this.clientHolder && p.child.pid !== undefined) await endPid(p.child.pid);
    for (const h of [this.holder, this.clientHolder]) if (h?.child.pid !== undefined) await endPid(h.child.pid);
    for (const n of [...Object.values(this.ns), ...this.extraClients.map((c) => c.ns), ...this.extraNamespaces]) if (n !== undefined) await destroyNamespace(n);
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

/** The client side of a held connection (see Lab.holdTcp); `greeting` is the server's answer to the opening line. */
export class HeldTcp {
  private sent = 0;
  constructor(
    readonly proc: Proc,
    private readonly ctl: string,
    readonly greeting: string,
  ) {}

  /** Send one line on the open connection; the server's one-line answer, or `FAIL <why>` if the connection broke. */
  async send(line: string): Promise<string> {
    const n = ++this.sent;
    writeFileSync(join(this.ctl, `${n}.tmp`), line);
    renameSync(join(this.ctl, `${n}.tmp`), join(this.ctl, String(n)));
    const reply = await waitPrefixed(this.proc, `${n} `, 6000);
    return reply;
  }

  /** Close the connection and end the client process. */
  async close(): Promise<void> {
    writeFileSync(join(this.ctl, 'close'), '');
    if (!(await this.proc.waitExit(3000)) && this.proc.child.pid !== undefined) await endPid(this.proc.child.pid);
  }
}

/** The rest of the first stdout line of `proc` that starts with `prefix`. */
async function waitPrefixed(proc: Proc, prefix: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const line = proc.out.split('\n').find((l) => l.startsWith(prefix));
    if (line !== undefined) return line.slice(prefix.length);
    if (proc.exited) break;
    await sleep(20);
  }
  throw new Error(`${proc.name}: no line starting with "${prefix}" (${proc.exited ? `exited ${JSON.stringify(proc.exited)}` : 'timeout'})\n${proc.diagnostics()}`);
}

export interface CurlResult {
  readonly code: number | null;
  /** The HTTP status curl printed ('000' or '' when there was none). */
  readonly status: string;
  readonly body: string;
  readonly stderr: string;
}

/** curl with a client's own resolv.conf (argv prefix `view`); -m bounds the whole transfer (3 s unless `extra` says). */
async function curlIn(view: readonly string[], url: string, extra: readonly string[]): Promise<CurlResult> {
  const m = extra.indexOf('-m');
  const maxS = m >= 0 ? Number(extra[m + 1]) : 3;
  const r = await run([...view, 'curl', '-sS', '--connect-timeout', '2', '-m', '3', '-o', '-', '-w', '\n@@%{http_code}', ...extra, url], { timeoutMs: (Number.isFinite(maxS) ? maxS : 3) * 1000 + 5000 });
  const at = r.stdout.lastIndexOf('\n@@');
  return { code: r.code, status: at >= 0 ? r.stdout.slice(at + 3) : '', body: at >= 0 ? r.stdout.slice(0, at) : r.stdout, stderr: r.stderr };
}

/**
 * Where a booted gateway sits in the lab (test/boot/lib/gateway.ts bootGateway): its namespace and its client's.
 * The Lab itself is the first gateway's seat; addGateway gives more.
 */
export interface GatewaySeat {
  readonly ns: { readonly gw: string; readonly client: string };
  /** What a fresh boot gives the namespace's kernel state: no tables (the first's keeps the lab's tag table), no forwarding. */
  freshBoot(): Promise<void>;
  /** Probes from the seat's client qube. */
  probe(where: 'client', probes: readonly Probe[]): Promise<ProbeResult[]>;
  /** curl from the seat's client qube. */
  curl(url: string, extra?: readonly string[]): Promise<CurlResult>;
  /** argv prefix that runs a command in the seat's client qube. */
  clientView(): string[];
}

/** A gateway attached after the first (Lab.addGateway). */
export interface LabGateway extends GatewaySeat {
  /** up's interface towards it, up's address there and the gateway's upstream address. */
  readonly upIface: string;
  readonly up4: string;
  readonly gwUp4: string;
}

/** A client qube attached after the first (Lab.addClient). */
export interface LabClient {
  readonly ns: string;
  /** The gateway's interface towards it. */
  readonly vif: string;
  readonly addr: string;
  probe(probes: readonly Probe[]): Promise<ProbeResult[]>;
}

export interface Probe {
  readonly kind: 'tcp' | 'udp' | 'icmp' | 'dns' | 'tcpraw' | 'frag' | 'l2syn' | 'l2dns';
  readonly [k: string]: unknown;
}

export interface ProbeResult {
  readonly outcome: string;
  readonly probe: Probe;
  readonly data?: string;
  readonly rcode?: string;
  readonly answers?: ReadonlyArray<{ type: string; data: string }>;
  readonly [k: string]: unknown;
}


async function destroyNamespace(name: string): Promise<void> {
  // Processes keep a namespace alive after `ip netns del`: end the ones in it (ours, by pid) first.
  const pids = await run(['ip', 'netns', 'pids', name], { timeoutMs: 5000 });
  for (const pid of pids.stdout.split('\n').map(Number).filter((n) => n > 0)) await endPid(pid, 1000);
  await run(['ip', 'netns', 'del', name], { timeoutMs: 5000 });
}

/** Namespaces and scratch dirs of a previous run whose process is gone (a crash, a killed runner). */
export async function removeLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  const list = await run(['ip', 'netns', 'list'], { timeoutMs: 5000 });
  for (const line of list.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${PREFIX}-(\\d+)-[a-z0-9]+-(client\\d*|gw\\d*|gw\\d+client|up|svc)$`).exec(name);
    if (m && !alive(Number(m[1]))) {
      await destroyNamespace(name);
      removed.push(name);
    }
  }
  for (const d of readdirSync(tmpdir())) {
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(d);
    if (m && !alive(Number(m[1]))) {
      rmSync(join(tmpdir(), d), { recursive: true, force: true });
      removed.push(d);
    }
  }
  return removed;
}
