/**
 * dnsmasq: the only DNS server client qubes reach. Their queries to any address (normally Qubes' virtual DNS
 * 10.139.1.1 and 10.139.1.2) are redirected here by firewall.nft; .i2p names get the virtual IP, the rest goes
 * to Tor's DNSPort, or, with Tor off, gets NXDOMAIN.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, UNITS, unitPath } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { ipv4, port } from './values.ts';
import { CLIENT_LIMITS } from './firewall.ts';
import { RELAY_ADDRESS } from './dns-relay.ts';

/** Created by dnsmasq-base's postinst on Debian 12 and 13 (primary group nogroup). */
export const DNSMASQ_USER = 'dnsmasq';
export const DNSMASQ_GROUP = 'nogroup';
/** dnsmasq's limit on forwarded queries in flight, shared by every client qube. */
export const DNS_FORWARD_MAX = 4096;

export function renderDnsmasqConf(config: GatewayConfig): string {
  const vip = ipv4(config.network.virtualIp);
  const upstream = config.tor.enabled
    ? comment([
        'Every other name goes to Tor\'s DNSPort through qubes-i2p-gateway-dns-relay.service on loopback (UDP, and TCP',
        'for a query that came over TCP): client qubes\' names never reach the upstream resolver. The relay sends each',
        'query to Tor from a loopback address of the client qube that asked, so Tor (IsolateClientAddr) puts no two',
        'clients\' lookups on one circuit; it learns the client from the address added here, never from the client:',
        'strip-subnet first removes any client-subnet option a client sent, add-subnet then adds its whole address',
        '(measured with Debian 13\'s dnsmasq 2.91: add-subnet alone keeps an option the client sent). The relay sends',
        'Tor only the question, so the option goes no further. @127.0.0.1: the sockets dnsmasq forwards from (a',
        'random port for each query in flight) are bound to loopback, not to every address of the gateway.',
      ]) +
      `server=${RELAY_ADDRESS}#${port(config.tor.dnsPort)}@127.0.0.1\n` +
      'strip-subnet\nadd-subnet=32,128\n'
    : comment([
        'Tor is off: every other name is NXDOMAIN at once. There is no upstream a client\'s name could safely go to,',
        'and an immediate answer beats a client waiting out a timeout (or retrying the other virtual DNS address).',
      ]) + 'address=/#/\n';
  return (
    generatedHeader('dnsmasq for qubes-i2p-gateway: DNS for client qubes (queries are redirected here by firewall.nft).') +
    '\n' +
    comment(['Nothing from the gateway\'s own resolv.conf or /etc/hosts: the upstream resolver must not see client names.']) +
    'no-resolv\nno-hosts\nno-poll\n' +
    comment(['Every .i2p name and its subdomains: the virtual IP, where the firewall sends port 80 to tinyproxy.']) +
    `address=/i2p/${vip}\n` +
    comment(['...and every other type (AAAA, MX) for .i2p is answered here with no data, never forwarded (dnsmasq 2.86+', 'forwards the types address= does not cover).']) +
    'local=/i2p/\n' +
    upstream +
    comment(['Names without a dot and reverse lookups of private addresses never leave the gateway.']) +
    'domain-needed\nbogus-priv\n' +
    comment([
      'Listen on client qubes\' side only: vif* are Qubes\' downstream interfaces; bind-dynamic follows them as client',
      'qubes start and stop. Not on loopback (Tor\'s DNSPort lives there) nor upstream.',
    ]) +
    'interface=vif*\nexcept-interface=lo\nbind-dynamic\n' +
    comment([
      'No DHCP (no dhcp-range). No stop-dns-rebind: it would refuse Tor\'s automapped 10.192.0.0/10 answers for .onion.',
      'The unit runs dnsmasq as this user already; the lines make a root start drop to it too.',
    ]) +
    `user=${DNSMASQ_USER}\ngroup=${DNSMASQ_GROUP}\n` +
    comment([
      'No cache: one cache for every client qube would let one learn what another asked (a cached answer comes back',
      'at once, with a lower TTL). Each query goes on to Tor\'s DNSPort; the virtual IP above is answered locally.',
    ]) +
    'cache-size=0\n' +
    comment([
      'Queries waiting on Tor at once, for all client qubes together (default 150). The firewall lets one client send',
      `${CLIENT_LIMITS.dnsPerSecond} a second after a burst of ${CLIENT_LIMITS.dnsBurst}, so a client whose queries Tor never answers holds a few hundred`,
      'of these at most, never all of them.',
    ]) +
    `dns-forward-max=${DNS_FORWARD_MAX}\n` +
    comment(['No pid file (systemd tracks the process); log to stderr, which is the journal.']) +
    'pid-file=\nlog-facility=-\n'
  );
}

export function renderDnsmasqUnit(config: GatewayConfig): string {
  const after = ['network.target', 'qubes-firewall.service', ...(config.tor.enabled ? [UNITS.tor, UNITS.dnsRelay] : [])];
  return (
    generatedHeader('The gateway\'s DNS server for client qubes.') +
    '\n[Unit]\n' +
    'Description=dnsmasq for qubes-i2p-gateway (DNS for client qubes)\n' +
    'Documentation=man:dnsmasq(8)\n' +
    comment(['Only in the gateway qube (its qvm-service); never in the template or other qubes built from it.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    comment([
      config.tor.enabled
        ? 'After the firewall hook, and after Tor and its TCP relay so the first forwarded query finds DNSPort open.'
        : 'After the firewall hook.',
    ]) +
    `After=${after.join(' ')}\n` +
    `PartOf=${UNITS.target}\n` +
    '\n[Service]\n' +
    'Type=simple\n' +
    comment([
      'Never root: only the capability to bind port 53, kept as interfaces come and go (bind-dynamic). The group is',
      `the user's primary group (${DNSMASQ_GROUP}, as dnsmasq-base creates it).`,
    ]) +
    `User=${DNSMASQ_USER}\n` +
    'AmbientCapabilities=CAP_NET_BIND_SERVICE\n' +
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n' +
    comment(['A bare command name: systemd finds it in its own search path, wherever the release puts it.']) +
    `ExecStart=dnsmasq --keep-in-foreground --conf-file=${PATHS.dnsmasqConf}\n` +
    'Restart=on-failure\n' +
    SANDBOX.join('\n') +
    '\n'
  );
}

export function renderDnsmasq(config: GatewayConfig): readonly RenderedFile[] {
  return [textFile(PATHS.dnsmasqConf, renderDnsmasqConf(config)), textFile(unitPath(UNITS.dnsmasq), renderDnsmasqUnit(config))];
}
