/**
 * DNS over TCP for Tor (Tor on only): /usr/libexec/qubes-i2p-gateway/dns-tcp-relay and its unit.
 *
 * dnsmasq forwards a query it received over TCP to its `server=` over TCP, and a client's resolver uses TCP
 * after a truncated answer or when told to (`options use-vc`). Tor's DNSPort speaks UDP only, so without
 * this relay every clearnet name asked over TCP goes unanswered. The relay listens on TCP at the address and
 * port of Tor's DNSPort (TCP and UDP ports are separate, and dnsmasq uses one server address for both) and
 * passes each length-prefixed query on as one UDP datagram, returning the answer with its length prefix.
 *
 * The program is gateway/dns-tcp-relay in the repository (Python 3, standard library only; the package depends
 * on python3), read by src/io/static.ts and placed here unchanged: it takes every address and limit on its
 * command line, so it never changes with the config; the unit renders them from validated values.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, UNITS, unitPath } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { port } from './values.ts';

/** Where Tor's DNSPort listens (torrc: `DNSPort 127.0.0.1:<dnsPort>`), and so where the relay listens on TCP. */
const LOOPBACK = '127.0.0.1';

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
} as const;

export function renderDnsRelayUnit(config: GatewayConfig): string {
  const at = `${LOOPBACK}:${port(config.tor.dnsPort)}`;
  const L = RELAY_LIMITS;
  return (
    generatedHeader('DNS over TCP for the gateway\'s Tor (relays dnsmasq\'s TCP queries to the UDP-only DNSPort).') +
    '\n[Unit]\n' +
    'Description=DNS TCP relay for qubes-i2p-gateway (dnsmasq to Tor\'s UDP-only DNSPort)\n' +
    `Documentation=file:${PATHS.dnsRelay}\n` +
    comment(['Only in the gateway qube (its qvm-service); never in the template or other qubes built from it.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    comment(['It needs nothing to start (it asks Tor per query); dnsmasq orders itself after it.']) +
    'After=network.target qubes-firewall.service\n' +
    `PartOf=${UNITS.target}\n` +
    '\n[Service]\n' +
    comment(['Ready once it listens (it tells systemd), so dnsmasq\'s first TCP query finds it.']) +
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
      `From TCP ${at}, where Tor's DNSPort listens on UDP, to UDP ${at}. Limits: connections at once`,
      '(dnsmasq keeps at most 20 TCP clients by default, one upstream connection each), query bytes, seconds idle',
      'and seconds to an answer.',
    ]) +
    `ExecStart=${PATHS.dnsRelay} --listen ${at} --upstream ${at} --max-connections ${L.maxConnections} --max-query ${L.maxQuery} ` +
    `--idle-timeout ${L.idleTimeout} --answer-timeout ${L.answerTimeout}\n` +
    'Restart=on-failure\n' +
    'CapabilityBoundingSet=\n' +
    SANDBOX.join('\n') +
    '\n'
  );
}

/** `program`: the text of gateway/dns-tcp-relay. */
export function renderDnsRelay(config: GatewayConfig, program: string): readonly RenderedFile[] {
  if (!config.tor.enabled) return [];
  return [textFile(PATHS.dnsRelay, program, 0o755), textFile(unitPath(UNITS.dnsRelay), renderDnsRelayUnit(config))];
}
