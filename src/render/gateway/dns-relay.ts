/**
 * The DNS relay between dnsmasq and Tor (Tor on only): /usr/libexec/qubes-i2p-gateway/dns-relay and its unit.
 *
 * Tor isolates streams by the client address it sees (IsolateClientAddr, on for DNSPort too). dnsmasq forwards
 * every client qube's names from one address, so without this relay two clients' lookups could share a Tor
 * circuit. dnsmasq adds the asking client's address to each forwarded query (add-subnet, after strip-subnet
 * removed any the client sent); the relay sends the query on to Tor's DNSPort from a loopback address of that
 * client's own (10.B.C.D becomes 127.B.C.D), with only its header and question, and refuses a query it cannot
 * place. It also carries queries that came over TCP (a truncated answer, `options use-vc`): Tor's DNSPort answers
 * UDP only, so they go on over UDP the same way and come back with their length prefix.
 *
 * The program is gateway/dns-relay in the repository (Python 3, standard library only; the package depends on
 * python3), read by src/io/static.ts and placed here unchanged: it takes every address and limit on its command
 * line, so it never changes with the config; the unit renders them from validated values.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, UNITS, unitPath } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { port } from './values.ts';

/** Where Tor's DNSPort listens (torrc: `DNSPort 127.0.0.1:<dnsPort>`). */
const TOR_DNS = '127.0.0.1';
/**
 * Where the relay listens, UDP and TCP, at the port of Tor's DNSPort (dnsmasq's `server=`). Its own loopback
 * address: Tor holds UDP 127.0.0.1:<dnsPort>. A client at 10.0.0.2 would be given it as its stand-in, which is no
 * clash (the stand-in is a source address with a port of the kernel's choosing); Qubes never uses 10.0.0.0/16.
 */
export const RELAY_ADDRESS = '127.0.0.2';

/** Limits, written into the unit's command line. */
export const RELAY_LIMITS = {
  /** dnsmasq serves at most 20 TCP clients at once by default (--max-tcp-connections), one upstream connection each. */
  maxConnections: 64,
  /** A query is a header and one question (a name of at most 255 bytes), plus EDNS options: far below this. */
  maxQuery: 4096,
  /** Seconds a connection may sit without a complete next query (RFC 7766 asks servers for idle timeouts). */
  idleTimeout: 10,
  /** Seconds to wait for Tor's answer (a name resolved through a new circuit takes a few) or to hand it back. */
  answerTimeout: 10,
  /**
   * UDP queries of one client waiting on Tor at once. The firewall lets a client send 10 a second after a burst
   * of 100 and the relay forgets a query after answerTimeout, so a client reaches this only with queries Tor never
   * answers; then its new ones are dropped and no other client's are touched.
   */
  maxWaiting: 256,
  /** Client qubes' sockets to Tor open at once (one per client with queries in the last minute). */
  maxClients: 1024,
} as const;

export function renderDnsRelayUnit(config: GatewayConfig): string {
  const listen = `${RELAY_ADDRESS}:${port(config.tor.dnsPort)}`;
  const tor = `${TOR_DNS}:${port(config.tor.dnsPort)}`;
  const L = RELAY_LIMITS;
  return (
    generatedHeader('DNS for the gateway\'s Tor: dnsmasq\'s forwarded queries to DNSPort, each from its client qube\'s own address.') +
    '\n[Unit]\n' +
    'Description=DNS relay for qubes-i2p-gateway (dnsmasq to Tor\'s DNSPort, per client qube)\n' +
    `Documentation=file:${PATHS.dnsRelay}\n` +
    comment(['Only in the gateway qube (its qvm-service); never in the template or other qubes built from it.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    comment(['It needs nothing to start (it asks Tor per query); dnsmasq orders itself after it.']) +
    'After=network.target qubes-firewall.service\n' +
    `PartOf=${UNITS.target}\n` +
    '\n[Service]\n' +
    comment(['Ready once it listens (it tells systemd), so dnsmasq\'s first query finds it.']) +
    'Type=notify\n' +
    comment([
      'Never root, and no account on disk: a user of its own for as long as it runs. The firewall lets only Tor\'s',
      'and the router\'s users out of the gateway, so the relay reaches loopback and nothing else; systemd holds',
      'it to loopback as well.',
    ]) +
    'DynamicUser=yes\n' +
    'IPAddressAllow=localhost\n' +
    'IPAddressDeny=any\n' +
    comment([
      `From UDP and TCP ${listen} (dnsmasq's server=) to Tor's DNSPort, UDP ${tor}, each query from its client's`,
      'stand-in address 127.B.C.D. Limits: TCP connections at once (dnsmasq keeps at most 20 TCP clients by default,',
      'one upstream connection each), query bytes, seconds idle and to an answer, queries waiting per client, clients.',
    ]) +
    `ExecStart=${PATHS.dnsRelay} --listen ${listen} --upstream ${tor} --max-connections ${L.maxConnections} --max-query ${L.maxQuery} ` +
    `--idle-timeout ${L.idleTimeout} --answer-timeout ${L.answerTimeout} --max-waiting ${L.maxWaiting} --max-clients ${L.maxClients}\n` +
    'Restart=on-failure\n' +
    comment(['One socket per client qube, one per TCP connection, beyond the 1024 files systemd allows by default.']) +
    'LimitNOFILE=4096\n' +
    'CapabilityBoundingSet=\n' +
    SANDBOX.join('\n') +
    '\n'
  );
}

/** `program`: the text of gateway/dns-relay. */
export function renderDnsRelay(config: GatewayConfig, program: string): readonly RenderedFile[] {
  if (!config.tor.enabled) return [];
  return [textFile(PATHS.dnsRelay, program, 0o755), textFile(unitPath(UNITS.dnsRelay), renderDnsRelayUnit(config))];
}
