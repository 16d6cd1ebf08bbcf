/**
 * The gateway's nftables ruleset, /usr/share/qubes-i2p-gateway/firewall.nft, loaded by the qubes-firewall hook
 * (firewall-hook.ts) with one `nft -f`: one transaction, all of it or nothing.
 *
 * Design (Whonix-Gateway's, on Qubes 4.3's nftables; 4.2's base tables had the same shape):
 * - Own table `inet qubes-i2p-gateway`, replaced whole on every load (create-if-missing, delete, define), so a
 *   reload leaves exactly one copy. `inet`: one forward chain drops client IPv4 and IPv6 alike.
 * - Nothing from a client qube is forwarded (forward policy drop). What clients may reach is redirected to the
 *   gateway's own daemons in a NAT chain at `dstnat - 10`, ahead of Qubes' `dnat-dns` (`dstnat`), whose
 *   mapping would otherwise win: DNS → dnsmasq, each client's HTTP and granted applications → their own ports on loopback, TLS to the
 *   virtual IP → the gateway itself, where our input chain resets it (so with forwarding off too), any other TCP
 *   port of the virtual IP → tinyproxy (plain HTTP, host and port
 *   from the Host header), new TCP → Tor's TransPort (Tor on).
 * - Accepts for those redirected connections must sit in Qubes' own `ip qubes` input chain (policy drop): an
 *   accept in our table cannot lift a drop there. They live in a chain of ours inside `ip qubes`, flushed and
 *   refilled here, jumped to once from `custom-input` (the hook adds that jump only if it is missing), and they
 *   match only connections our NAT chain redirected (`ct status dnat`), only on the daemons' ports. DNS (port 53)
 *   is the exception: a query to the gateway's own vif address needs no redirect, so it carries no dnat status.
 * - Per-client limits (`input-limits`, CLIENT_LIMITS): connections, new connections a second and DNS queries per
 *   client address, so one client cannot starve the others or scan Tor's automap range.
 * - The gateway's own output leaves only as Tor and the I2P router (by socket owner, upstream only), over loopback, or as
 *   replies; everything else is refused.
 * - Early drops: fragments and impossible TCP flags before defragmentation, conntrack-invalid packets after.
 * - Last, in the same transaction, the lockdown table the hook installed before loading is removed (and the
 *   "off" table of a time the service was off).
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { CLIENT_PROXY_PORTS, clientDestinations, ROUTERS } from '../../config/routers.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { generatedHeader, PATHS } from './common.ts';
import { TOR_USER, TOR_VIRTUAL_NET } from './tor.ts';
import { ipv4, port, userName } from './values.ts';
import { SAM_PORT, SAM_UDP_PORT } from './i2pd.ts';

export const TABLE = 'qubes-i2p-gateway';
export const LOCKDOWN_TABLE = 'qubes-i2p-gateway-lockdown';
/** Forwarding stopped in a qube that provides network without the gateway's service (lockdown.ts, the hook). */
export const OFF_TABLE = 'qubes-i2p-gateway-off';

/**
 * TLS ports refused on the virtual IP with a reset: an .i2p site cannot be reached over TLS through the router's
 * HTTP proxy transparently (tinyproxy sees only encrypted bytes and would wait out its timeout on them).
 */
export const VIP_TLS_PORTS: readonly number[] = [443, 8443];
/**
 * Per-client destinations: where each client's HTTP front listens (wait-page.ts), on the port of the client's own
 * proxy in i2pd (which is on 127.0.0.1), as the SOCKS and IRC tunnels are on 127.0.0.2 and 127.0.0.3.
 */
export const CLIENT_FRONT_ADDRESS = '127.0.0.4';
/** Per-client destinations: client address → CLIENT_FRONT_ADDRESS . the port of its front (filled by i2pd-client-proxies). */
export const CLIENT_PROXY_MAP = 'client-proxy';
/** The same pairs as a set, address . port: the input chain lets a client reach its own proxy's port only. */
export const CLIENT_PROXY_PAIRS = 'client-proxy-pairs';
/** Each running front's user and port (uid . port): the only local sockets that may open a client proxy's port. */
export const FRONT_UPSTREAM = 'front-upstream';
/** The running fronts' users: they open nothing else on the gateway. */
export const FRONT_USERS = 'front-users';

/** Router i2pd with per-client destinations: the virtual IP's HTTP goes to each client's own i2pd proxy. */
export function perClientProxies(config: GatewayConfig): boolean {
  return config.i2p.router === 'i2pd' && clientDestinations(config) === 'per-client';
}

/** The loopback port range of the per-client proxies, as nft writes it. */
export function clientProxyRange(): string {
  return `${CLIENT_PROXY_PORTS.first}-${CLIENT_PROXY_PORTS.first + CLIENT_PROXY_PORTS.count - 1}`;
}

/**
 * I2P applications granted to one client qube each (i2p.apps): the router's port on the virtual IP, DNATed to the
 * router on loopback only from the addresses in the app's set. i2pd-client-proxies fills the set from the gateway's
 * qubesdb key, where dom0's clients.sls writes the granted qube's address (a vm-config feature of the gateway).
 */
export interface GrantedApp {
  readonly name: 'sam' | 'i2cp';
  readonly port: number;
  readonly set: string;
  readonly qubesdb: string;
  readonly qube: string;
}

/** The vm-config feature (dom0, on the gateway qube) and qubesdb key (in it) that carry a granted qube's address. */
export function appFeature(name: GrantedApp['name']): string {
  return `qubes-i2p-gateway-${name}`;
}

export function grantedApps(config: GatewayConfig): GrantedApp[] {
  if (!perClientProxies(config)) return [];
  const ports = { sam: SAM_PORT, i2cp: ROUTERS.i2pd.exposable.i2cp } as const;
  return (['sam', 'i2cp'] as const)
    .filter((n) => config.i2p.apps[n].length > 0)
    .map((n) => ({ name: n, port: ports[n], set: `app-${n}`, qubesdb: `/vm-config/${appFeature(n)}`, qube: config.i2p.apps[n][0] as string }));
}

/**
 * The I2P applications that are a tunnel of each granted client's own (i2p.apps.socks, i2p.apps.irc): on the
 * client's own keys (the destination of its HTTP proxy), on the application's loopback address and the same port
 * as the client's HTTP proxy (so the HTTP proxies' pairs set also says which port is whose), reached from the
 * application's port on the virtual IP through its map, filled by i2pd-client-proxies for the addresses dom0
 * writes into qubesdb. SOCKS: i2pd's SOCKS port. IRC: the port of i2pd's own IRC tunnel in Debian's tunnels.conf,
 * which IRC clients know; the tunnel leads to i2p.ircServer.
 */
export const TUNNEL_APPS = {
  socks: { loopback: '127.0.0.2', port: 4447, map: 'client-socks', label: 'SOCKS', one: 'SOCKS proxy', many: 'SOCKS proxies' },
  irc: { loopback: '127.0.0.3', port: 6668, map: 'client-irc', label: 'IRC', one: 'IRC tunnel', many: 'IRC tunnels' },
} as const;
export type TunnelApp = keyof typeof TUNNEL_APPS;

/** The tunnel applications granted to at least one client qube (router i2pd, per-client destinations), in order. */
export function grantedTunnelApps(config: GatewayConfig): (typeof TUNNEL_APPS[TunnelApp] & { app: TunnelApp })[] {
  if (!perClientProxies(config)) return [];
  return (Object.keys(TUNNEL_APPS) as TunnelApp[]).filter((app) => config.i2p.apps[app].length > 0).map((app) => ({ app, ...TUNNEL_APPS[app] }));
}

/** Our chain inside Qubes' `ip qubes` table, jumped to from `custom-input`. */
export const INPUT_CHAIN = 'qubes-i2p-gateway-input';

/**
 * Destinations never sent to Tor: local, private, shared, link-local, multicast and reserved IPv4. A client's
 * connection to them reaches nothing through an exit and would tell the exit about the client's network.
 * Tor's own automap range (10.192.0.0/10, inside 10.0.0.0/8) is redirected by a rule before this one.
 */
const NOT_FOR_TOR = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '224.0.0.0/4', '240.0.0.0/4'];

const SYN_ONLY = 'tcp flags & (syn|ack|fin|rst) == syn';

/**
 * Per-client limits (issue 19): one client qube must not starve the others of the gateway's shared daemons, nor
 * scan Tor's automap range for the .onion addresses other clients' lookups mapped. Each figure leaves a browser
 * room (about 6 connections per host, dozens in all, a burst of lookups for one page) and is counted per client
 * address in a dynamic set, so one client's flood never spends another's allowance.
 */
export const CLIENT_LIMITS = {
  /** Concurrent connections to tinyproxy (.i2p HTTP) from one client; tinyproxy's MaxClients is shared by all. */
  proxyConnections: 64,
  /** Concurrent connections to Tor's TransPort from one client. */
  torConnections: 256,
  /** New connections to Tor's TransPort from one client, per second, after a burst. */
  torNewPerSecond: 50,
  torNewBurst: 200,
  /** New connections into Tor's automap range (10.192.0.0/10) from one client, per second, after a burst. */
  onionNewPerSecond: 4,
  onionNewBurst: 64,
  /** DNS queries from one client, per second, after a burst (UDP and new TCP connections alike). */
  dnsPerSecond: 10,
  dnsBurst: 100,
  /** Concurrent DNS-over-TCP connections from one client. */
  dnsTcpConnections: 16,
} as const;

export function renderRuleset(config: GatewayConfig): string {
  const vip = ipv4(config.network.virtualIp);
  const proxyPort = port(config.tinyproxy.port);
  const routerUser = userName(ROUTERS[config.i2p.router].user);
  const tor = config.tor.enabled;
  const transPort = port(config.tor.transPort);
  const own = perClientProxies(config);
  const range = clientProxyRange();
  const apps = grantedApps(config);
  const tunnels = grantedTunnelApps(config);
  const L: string[] = [];
  const add = (...lines: string[]): void => {
    L.push(...lines);
  };

  add(
    ...generatedHeader('The qubes-i2p-gateway firewall, loaded by /etc/qubes/qubes-firewall.d/50-qubes-i2p-gateway.').trimEnd().split('\n'),
    '#',
    '# Default deny: nothing from a client qube is forwarded, ever. What client qubes may reach is redirected to the',
    "# gateway's own daemons and only those redirected connections are accepted. The gateway's own traffic leaves",
    `# only as ${tor ? 'Tor or ' : ''}the I2P router. One nft -f: if any line fails, nothing changes and the hook's lockdown stays.`,
    '',
    '# Replace, never add to: create the table if missing so the delete cannot fail, delete it, define it anew.',
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    '',
    `table inet ${TABLE} {`,
    ...(own
      ? [
          "\t# Each client qube's HTTP front, before its own I2P HTTP proxy in i2pd (its own destination): client address ->",
          `\t# ${CLIENT_FRONT_ADDRESS} . the port of its proxy (on 127.0.0.1), and the same pairs (address . port) as a set. Empty here:`,
          '\t# /usr/libexec/qubes-i2p-gateway/i2pd-client-proxies fills both as',
          "\t# each client's interface appears (and again after every load of this ruleset), and empties them as it goes.",
          `\tmap ${CLIENT_PROXY_MAP} {`,
          '\t\ttype ipv4_addr : ipv4_addr . inet_service',
          '\t}',
          `\tset ${CLIENT_PROXY_PAIRS} {`,
          '\t\ttype ipv4_addr . inet_service',
          '\t}',
          "\t# Each client's HTTP front as the kernel knows its sockets: its user (systemd's DynamicUser) . its port, and its",
          "\t# user alone; filled by i2pd-client-proxies from the front's listener once it runs, emptied when it stops.",
          `\tset ${FRONT_UPSTREAM} {`,
          '\t\ttypeof meta skuid . tcp dport',
          '\t}',
          `\tset ${FRONT_USERS} {`,
          '\t\ttypeof meta skuid',
          '\t}',
          '',
        ]
      : []),
    ...tunnels.flatMap((t) => [
      `\t# The ${t.many} of the client qubes granted one (i2p.apps.${t.app}): client address -> ${t.loopback} . its port, filled`,
      `\t# by i2pd-client-proxies for the addresses dom0 writes into qubesdb (/vm-config/qubes-i2p-gateway-${t.app}).`,
      `\tmap ${t.map} {`,
      '\t\ttype ipv4_addr : ipv4_addr . inet_service',
      '\t}',
      '',
    ]),
    ...apps.flatMap((a) => [
      `\t# The one client qube granted ${a.name.toUpperCase()} (i2p.apps.${a.name}: ${a.qube}), by its address: filled by i2pd-client-proxies from`,
      `\t# qubesdb ${a.qubesdb}, which dom0 writes. Empty until then: nobody reaches the router's ${a.name.toUpperCase()}.`,
      `\tset ${a.set} {`,
      '\t\ttype ipv4_addr',
      '\t}',
      '',
    ]),
    '\t# Before defragmentation (-400) and conntrack: stateless drops.',
    '\tchain prerouting-raw {',
    '\t\ttype filter hook prerouting priority -450; policy accept;',
    '\t\t# Fragments from client qubes: nothing they may reach needs them, and overlapping fragments hide headers.',
    '\t\tiifgroup 2 ip frag-off & 0x3fff != 0 counter drop',
    '\t\tiifgroup 2 exthdr frag exists counter drop',
    '\t\t# 127.0.0.0/8 arriving on a real interface is a martian; route_localnet (set when clients have proxies',
    '\t\t# of their own) would otherwise let it reach loopback services. Our DNAT to 127.0.0.1 happens later (dstnat).',
    '\t\tiif != lo ip saddr 127.0.0.0/8 counter drop',
    '\t\tiif != lo ip daddr 127.0.0.0/8 counter drop',
    '\t\t# TCP flag combinations no real stack sends: scans and fingerprinting.',
    '\t\ttcp flags & (fin|syn) == fin|syn counter drop',
    '\t\ttcp flags & (syn|rst) == syn|rst counter drop',
    '\t\ttcp flags & (fin|rst) == fin|rst counter drop',
    '\t\ttcp flags & (fin|ack) == fin counter drop',
    '\t\ttcp flags & (psh|ack) == psh counter drop',
    '\t\ttcp flags & (urg|ack) == urg counter drop',
    '\t\ttcp flags & (fin|syn|rst|psh|ack|urg) == 0x0 counter drop',
    '\t}',
    '',
    '\t# After conntrack (-200), before NAT: packets that belong to no connection conntrack can place.',
    '\tchain prerouting-invalid {',
    '\t\ttype filter hook prerouting priority mangle; policy accept;',
    '\t\tct state invalid counter drop',
    '\t}',
    '',
    "\t# Redirects for client qubes, ahead of Qubes' dnat-dns (priority dstnat): the first NAT mapping wins.",
    '\tchain prerouting-nat {',
    '\t\ttype nat hook prerouting priority dstnat - 10; policy accept;',
    '\t\t# Client qubes only (downstream vif*, interface group 2), IPv4 only: client IPv6 is dropped in forward.',
    '\t\tiifgroup != 2 accept',
    '\t\tmeta nfproto != ipv4 accept',
    '\t\t# DNS to any address goes to our dnsmasq, never to the upstream resolver.',
    '\t\tudp dport 53 redirect to :53',
    '\t\ttcp dport 53 redirect to :53',
  );
  for (const t of tunnels) {
    add(
      `\t\t# ${t.label} on the virtual IP: a granted client's own ${t.one} (its own destination); any other client, a reset.`,
      `\t\tip daddr ${vip} tcp dport ${port(t.port)} dnat ip to ip saddr map @${t.map}`,
      `\t\tip daddr ${vip} tcp dport ${port(t.port)} redirect`,
    );
  }
  if (apps.length > 0) {
    add("\t\t# I2P applications granted to one client qube each: the router's port on loopback for that qube's address only.");
    for (const a of apps) add(`\t\tip daddr ${vip} tcp dport ${port(a.port)} ip saddr @${a.set} dnat ip to 127.0.0.1:${port(a.port)}`);
    add(
      '\t\t# Any other client: to the same port of the gateway itself, where our input chain resets it (no connection).',
      `\t\tip daddr ${vip} tcp dport { ${apps.map((a) => port(a.port)).join(', ')} } redirect`,
    );
  }
  if (own) add("\t\t# Each client's HTTP front, in front of its own I2P proxy, listens on loopback (needs route_localnet, set by the hook).");
  add(
    '\t\t# TLS to the virtual IP cannot be served: the I2P router\'s HTTP proxy cannot speak TLS to an .i2p site for a',
    '\t\t# client, and tinyproxy would wait out its timeout on the encrypted bytes. Redirected to the same port of the',
    '\t\t# gateway itself, where our input chain resets it: with forwarding off (no-forward.conf) a packet to the',
    '\t\t# virtual IP that stayed unredirected would reach no chain that could answer it, and the client would time out.',
    `\t\tip daddr ${vip} tcp dport { ${VIP_TLS_PORTS.map(port).join(', ')} } redirect`,
    ...(own
      ? [
          "\t\t# Plain HTTP on any other port of the virtual IP (http://site.i2p:8080/) goes to the client's own HTTP front",
          `\t\t# (${CLIENT_FRONT_ADDRESS}, the port of its own I2P proxy: the map), a process of its own that parses the request strictly and`,
          "\t\t# passes it to the client's own I2P HTTP proxy in i2pd (its own destination; the host and port from the Host",
          '\t\t# header, .i2p names only), with its own page while the router is not ready. Only clients with a front (in the',
          '\t\t# map); one not in it yet (its interface appeared a moment ago) is not redirected: forward drops it.',
          `\t\tip daddr ${vip} meta l4proto tcp dnat ip to ip saddr map @${CLIENT_PROXY_MAP}`,
        ]
      : [
          '\t\t# Plain HTTP on any other port of the virtual IP (http://site.i2p:8080/) goes to tinyproxy, which takes the host',
          '\t\t# and port from the Host header and passes .i2p requests to the I2P router (other protocols: its 400, or its timeout).',
          `\t\tip daddr ${vip} meta l4proto tcp redirect to :${proxyPort}`,
        ]),
    '\t\t# Nothing else to the virtual IP is redirected (forward refuses it): it must not reach Tor either.',
    `\t\tip daddr ${vip} accept`,
  );
  if (tor) {
    add(
      `\t\t# Tor's automapped .onion addresses (${TOR_VIRTUAL_NET}): new connections to Tor's TransPort.`,
      `\t\tip daddr ${TOR_VIRTUAL_NET} ${SYN_ONLY} redirect to :${transPort}`,
      '\t\t# Local, private and reserved destinations are not for Tor: they stay unredirected and are dropped in forward.',
      `\t\tip daddr { ${NOT_FOR_TOR.join(', ')} } accept`,
      '\t\t# Every other new TCP connection (a bare SYN) goes to Tor\'s TransPort; other TCP is dropped in forward.',
      `\t\t${SYN_ONLY} redirect to :${transPort}`,
    );
  } else {
    add('\t\t# Tor is off: nothing else is redirected, so all other client traffic is dropped in forward.');
  }
  const lim = CLIENT_LIMITS;
  const perClient = (name: string, timeout: boolean): string[] => [
    `\tset ${name} {`,
    '\t\ttype ipv4_addr',
    '\t\tsize 65535',
    `\t\tflags dynamic${timeout ? ',timeout' : ''}`,
    ...(timeout ? ['\t\ttimeout 1m'] : []),
    '\t}',
  ];
  const limits: string[] = [];
  const addLimit = (...lines: string[]): void => {
    limits.push(...lines);
  };
  addLimit(
    '\t# Per-client limits, keyed by the client\'s address: one client qube cannot starve the others of tinyproxy,',
    '\t# dnsmasq or Tor, nor scan Tor\'s automap range for the .onion addresses other clients\' lookups mapped.',
    ...perClient('client-proxy-conns', false),
    ...perClient('client-dns-rate', true),
    ...perClient('client-dns-tcp-conns', false),
  );
  if (tor) addLimit(...perClient('client-tor-conns', false), ...perClient('client-tor-rate', true), ...perClient('client-onion-rate', true));
  addLimit(
    '',
    '\t# After NAT, ahead of Qubes\' input chain (priority filter): the redirected port is the daemon\'s here.',
    '\tchain input-limits {',
    '\t\ttype filter hook input priority filter - 10; policy accept;',
    '\t\tiifgroup != 2 accept',
    '\t\tmeta nfproto != ipv4 accept',
    `\t\t# DNS: ${lim.dnsPerSecond} queries a second after a burst of ${lim.dnsBurst}, so one client cannot fill dnsmasq's dns-forward-max.`,
    `\t\tudp dport 53 update @client-dns-rate { ip saddr limit rate over ${lim.dnsPerSecond}/second burst ${lim.dnsBurst} packets } counter drop`,
    `\t\ttcp dport 53 ct state new update @client-dns-rate { ip saddr limit rate over ${lim.dnsPerSecond}/second burst ${lim.dnsBurst} packets } counter reject with tcp reset`,
    `\t\ttcp dport 53 ct state new add @client-dns-tcp-conns { ip saddr ct count over ${lim.dnsTcpConnections} } counter reject with tcp reset`,
    ...(own
      ? [
          "\t\t# The client proxies' ports: nothing DNATs a client there (the fronts reach them from loopback), and should",
          "\t\t# anything ever do so, a client reaches its own proxy's port and no other (Qubes' input chain, below, accepts none).",
          `\t\tip daddr 127.0.0.1 tcp dport ${range} ip saddr . tcp dport != @${CLIENT_PROXY_PAIRS} counter drop`,
          `\t\t# The HTTP fronts: each client its own and no other, at most ${lim.proxyConnections} open connections.`,
          `\t\tip daddr ${CLIENT_FRONT_ADDRESS} tcp dport ${range} ip saddr . tcp dport != @${CLIENT_PROXY_PAIRS} counter drop`,
          `\t\tip daddr ${CLIENT_FRONT_ADDRESS} tcp dport ${range} ct state new ct status dnat add @client-proxy-conns { ip saddr ct count over ${lim.proxyConnections} } counter reject with tcp reset`,
          ...tunnels.flatMap((t) => [`\t\t# The ${t.many}: the same port as the client's HTTP proxy, on ${t.loopback}: its own and no other.`, `\t\tip daddr ${t.loopback} tcp dport ${range} ip saddr . tcp dport != @${CLIENT_PROXY_PAIRS} counter drop`]),
        ]
      : [
          `\t\t# tinyproxy: at most ${lim.proxyConnections} open connections per client (its MaxClients is shared by all).`,
          `\t\ttcp dport ${proxyPort} ct state new ct status dnat add @client-proxy-conns { ip saddr ct count over ${lim.proxyConnections} } counter reject with tcp reset`,
        ]),
  );
  if (tor) {
    addLimit(
      `\t\t# Tor's automap range: ${lim.onionNewPerSecond} new connections a second after a burst of ${lim.onionNewBurst}. A scan for the addresses other`,
      "\t\t# clients' .onion lookups mapped (a mapped one stays open while Tor works on it) crawls: see SECURITY.md.",
      `\t\ttcp dport ${transPort} ct state new ct status dnat ct original ip daddr ${TOR_VIRTUAL_NET} update @client-onion-rate { ip saddr limit rate over ${lim.onionNewPerSecond}/second burst ${lim.onionNewBurst} packets } counter reject with tcp reset`,
      `\t\t# Tor's TransPort: ${lim.torNewPerSecond} new connections a second after a burst of ${lim.torNewBurst}, at most ${lim.torConnections} open per client.`,
      `\t\ttcp dport ${transPort} ct state new ct status dnat update @client-tor-rate { ip saddr limit rate over ${lim.torNewPerSecond}/second burst ${lim.torNewBurst} packets } counter reject with tcp reset`,
      `\t\ttcp dport ${transPort} ct state new ct status dnat add @client-tor-conns { ip saddr ct count over ${lim.torConnections} } counter reject with tcp reset`,
    );
  }
  addLimit('\t}');
  add(
    '\t}',
    '',
    '\t# The gateway routes nothing: client traffic is either redirected to a local daemon above or dropped here.',
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter - 10; policy drop;',
    '\t\t# Everything else, from client qubes or to them, IPv4 or IPv6: no route past the gateway.',
    '\t\tcounter drop',
    '\t}',
    '',
    "\t# The gateway's own traffic: only what its job needs.",
    '\tchain output {',
    '\t\ttype filter hook output priority filter; policy drop;',
    ...(own
      ? [
          "\t\t# The client proxies in i2pd (and the SOCKS and IRC tunnels on their keys): each opened only by its own client's",
          "\t\t# HTTP front (its user . the port); a front opens nothing else, and nobody else opens a proxy's port. A front",
          "\t\t# taken over by its client cannot browse as another client, nor reach the router's console or other ports.",
          `\t\toif lo ip daddr 127.0.0.1 tcp dport ${range} ct state new meta skuid . tcp dport @${FRONT_UPSTREAM} accept`,
          `\t\toif lo ct state new meta skuid @${FRONT_USERS} counter reject with icmpx admin-prohibited`,
          `\t\toif lo ip daddr 127.0.0.0/30 tcp dport ${range} ct state new counter reject with tcp reset`,
        ]
      : []),
    '\t\t# Loopback: dnsmasq to Tor\'s DNSPort, tinyproxy to the router\'s HTTP proxy.',
    '\t\toif lo accept',
    '\t\t# Replies on existing connections: answers to redirected client connections, ICMP errors, resets.',
    '\t\tct state established,related accept',
  );
  add(
    '\t\t# Tor and the router reach their networks upstream only (eth0, interface group 1): never a client qube (vif*,',
    `\t\t# group 2), nor the virtual IP${tor ? " or Tor's automap range, which" : ', which'} the default route would also send upstream.`,
    '\t\t# Private ranges upstream stay reachable: the router resolves its reseed servers through the netvm\'s DNS',
    '\t\t# (10.139.1.1/2), and the netvm\'s own network may be the way out.',
    `\t\tip daddr ${tor ? `{ ${vip}, ${TOR_VIRTUAL_NET} }` : vip} counter reject with icmpx admin-prohibited`,
  );
  if (tor) add('\t\t# Tor reaches the Tor network: that is its job.', `\t\toifgroup 1 meta skuid ${userName(TOR_USER)} accept`);
  add(
    ...(apps.some((a) => a.name === 'sam')
      ? [
          "\t\t# SAM's datagram socket never sends upstream: a DATAGRAM/RAW session's HOST= names where i2pd forwards what",
          "\t\t# arrives, and from the granted client that could be any address: the gateway's own IP, outside Tor and I2P.",
          `\t\toifgroup 1 meta skuid ${routerUser} udp sport ${port(SAM_UDP_PORT)} counter reject with icmpx admin-prohibited`,
        ]
      : []),
    '\t\t# The I2P router reaches the I2P network (and its reseed servers).',
    `\t\toifgroup 1 meta skuid ${routerUser} accept`,
    '\t\t# IPv6 neighbour discovery and multicast listener reports, which the kernel sends for every interface.',
    '\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld2-listener-report } accept',
    '\t\t# Anything else the gateway itself would send (its own DNS, apt, a shell\'s curl) is refused.',
    '\t\tcounter reject with icmpx admin-prohibited',
    '\t}',
    '}',
    '',
    "# Accepts inside Qubes' input chain (policy drop), where an accept in our own table could not lift the drop.",
    '# Our chain in Qubes\' table, emptied and refilled on every load; the hook jumps to it from custom-input once.',
    'table ip qubes {',
    `\tchain ${INPUT_CHAIN} {`,
    '\t}',
    '}',
    `flush chain ip qubes ${INPUT_CHAIN}`,
    'table ip qubes {',
    `\tchain ${INPUT_CHAIN} {`,
    "\t\t# DNS to dnsmasq, redirected or not: a query sent to the gateway's own address on the vif is redirected to",
    '\t\t# that same address and port, a mapping that changes nothing, so conntrack never marks it dnat. Only dnsmasq',
    '\t\t# listens on port 53 here, and only on vif*; every other client packet to port 53 was redirected there.',
    '\t\tiifgroup 2 udp dport 53 accept',
    '\t\tiifgroup 2 tcp dport 53 accept',
    '\t\t# TLS to the virtual IP (redirected here by our NAT chain, port kept): refused at once with a reset.',
    `\t\tiifgroup 2 ct status dnat ct original ip daddr ${vip} tcp dport { ${VIP_TLS_PORTS.map(port).join(', ')} } counter reject with tcp reset`,
    ...tunnels.flatMap((t) => [
      `\t\tiifgroup 2 ct status dnat ip daddr ${t.loopback} tcp dport ${range} accept`,
      `\t\tiifgroup 2 ct status dnat ct original ip daddr ${vip} tcp dport ${port(t.port)} counter reject with tcp reset`,
    ]),
    ...(apps.length > 0
      ? [
          "\t\t# The granted qube's application ports (DNATed to loopback only from its address), then every other client's: a reset.",
          ...apps.map((a) => `\t\tiifgroup 2 ct status dnat ip daddr 127.0.0.1 tcp dport ${port(a.port)} accept`),
          `\t\tiifgroup 2 ct status dnat ct original ip daddr ${vip} tcp dport { ${apps.map((a) => port(a.port)).join(', ')} } counter reject with tcp reset`,
        ]
      : []),
    '\t\t# Everything else: only connections our NAT chain redirected (ct status dnat), only to our daemons\' ports.',
    // The fronts' ports: each client's own alone (our table's client chain drops the others' before this).
    own ? `\t\tiifgroup 2 ct status dnat ip daddr ${CLIENT_FRONT_ADDRESS} tcp dport ${range} accept` : `\t\tiifgroup 2 ct status dnat tcp dport ${proxyPort} accept`,
  );
  if (tor) add(`\t\tiifgroup 2 ct status dnat tcp dport ${transPort} accept`);
  add(
    '\t}',
    '}',
    '',
    '# The ruleset is complete: lift the lockdown the hook installed before loading it, in this same transaction,',
    '# and the "off" table of a time the gateway\'s service was off.',
    `table inet ${LOCKDOWN_TABLE}`,
    `delete table inet ${LOCKDOWN_TABLE}`,
    `table inet ${OFF_TABLE}`,
    `delete table inet ${OFF_TABLE}`,
    '',
    '# Per-client limits: our table again, in the same transaction, after the lockdown is lifted. The kernel commits a',
    "# transaction's objects in their order, so a listing can catch the moment after our table is in and before the",
    '# lockdown is gone; the limits (many objects) come after it, to keep that moment as short as before they existed.',
    `table inet ${TABLE} {`,
    ...limits,
    '}',
  );
  return L.join('\n') + '\n';
}

export function renderFirewallRuleset(config: GatewayConfig): readonly RenderedFile[] {
  return [textFile(PATHS.ruleset, renderRuleset(config))];
}
