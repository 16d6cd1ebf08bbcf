/**
 * The gateway's own Tor: /usr/share/qubes-i2p-gateway/torrc (with the admin's /etc/qubes-i2p-gateway/torrc.d/), its unit, and drop-ins that keep the distribution's
 * Tor (tor.service, tor@default.service) from starting alongside it. Nothing at all when tor.enabled is false.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { dirEntry, textFile, type RenderedFile } from '../../files.ts';
import { comment, dropInPath, gatewayFlag, generatedHeader, PATHS, qubesServiceFlag, TOR_RUNTIME_NAME, UNITS, unitPath } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { publishedServices } from '../../config/publish.ts';
import { onionDir } from './publish.ts';
import { port, publishName, qubeName } from './values.ts';

/** Tor's user on Debian (created by the tor package); the firewall lets it reach the network. */
export const TOR_USER = 'debian-tor';
/** Tor's range for automapped .onion addresses: the firewall must send these to TransPort, not drop them. */
export const TOR_VIRTUAL_NET = '10.192.0.0/10';

/** Streams one rendezvous circuit (one visitor) may open to an onion service at once. */
export const ONION_MAX_STREAMS = 16;

/**
 * Tor's defences for each onion service (tor 0.4.9, Debian 13; every line passes its --verify-config): one visitor
 * cannot take every connection the gateway's listener serves at once (MaxConnections=64 in the socket), and a
 * flood of introductions is rate-limited at the introduction points and made costly by proof of work.
 */
const onionDefences =
  comment([
    `At most ${ONION_MAX_STREAMS} streams at once per visitor's circuit (a browser opens a handful), and a circuit that asks for more`,
    'is closed: one visitor cannot hold all of the listener\'s connections.',
  ]) +
  `HiddenServiceMaxStreams ${ONION_MAX_STREAMS}\n` +
  'HiddenServiceMaxStreamsCloseCircuit 1\n' +
  comment([
    'The introduction points limit introductions to this service (tor\'s default rate and burst), and under load',
    'visitors\' Tor must solve a proof of work, paid by a flood, barely noticed by one visitor.',
  ]) +
  'HiddenServiceEnableIntroDoSDefense 1\n' +
  'HiddenServicePoWDefensesEnabled 1\n';

/** An onion service for each published service with `onion: true` (publish.ts has the whole path). */
function onionServices(config: GatewayConfig): string {
  const onions = publishedServices(config).filter((s) => s.onion);
  if (onions.length === 0) return '';
  return (
    comment([
      'Onion services of the published services. Tor passes each visitor\'s stream to the gateway\'s loopback listener',
      'as it is, adding nothing (the application sees the Host header the visitor sent: the .onion name). Their',
      'directories (keys, hostname) are inside DataDirectory: kept across reboots, and never in the template.',
    ]) +
    onions
      .map(
        (s) =>
          comment([`"${publishName(s.name)}": qube ${qubeName(s.qube)}, port ${port(s.port)}.`]) +
          `HiddenServiceDir ${onionDir(s.name)}
` +
          `HiddenServicePort 80 127.0.0.1:${port(s.listen)}
` +
          onionDefences,
      )
      .join('')
  );
}

export function renderTorrc(config: GatewayConfig): string {
  const t = config.tor;
  return (
    generatedHeader('Tor for qubes-i2p-gateway: the gateway qube\'s own Tor instance (not /etc/tor/torrc).') +
    comment([
      '',
      'The firewall (firewall.nft) redirects client qubes\' new TCP connections to TransPort; their DNS goes to',
      'dnsmasq, which forwards every name outside .i2p to DNSPort. Runs as debian-tor through the unit\'s User=',
      '(there is no "User" line here: tor refuses one naming the user it already runs as).',
    ]) +
    '\n' +
    comment(['No SOCKS listener: client qubes reach Tor only through the transparent redirect.']) +
    'SocksPort 0\n' +
    comment([
      'All addresses: the nft redirect delivers a client\'s connection to the address of the vif it came in on,',
      'which differs per gateway qube. Qubes\' input chain (policy drop) admits only connections our NAT chain',
      'redirected here. IsolateClientAddr (the default, written out): each client qube gets its own circuits.',
    ]) +
    `TransPort 0.0.0.0:${port(t.transPort)} IsolateClientAddr\n` +
    comment([
      'Only the DNS relay asks this, over loopback, for dnsmasq: each client qube\'s names from a loopback address of',
      'that client\'s own (127.B.C.D for 10.B.C.D), so IsolateClientAddr (the default here too) keeps two clients\'',
      'lookups off one circuit. DNSPort answers UDP queries (A, AAAA, PTR) only.',
    ]) +
    `DNSPort 127.0.0.1:${port(t.dnsPort)}\n` +
    comment(['.onion names resolve to addresses in this range; the firewall redirects connections to them here.']) +
    `VirtualAddrNetworkIPv4 ${TOR_VIRTUAL_NET}\n` +
    'AutomapHostsOnResolve 1\n' +
    comment(['Kept across reboots (bind-dirs): a new guard on every boot would weaken anonymity.']) +
    `DataDirectory ${PATHS.torData}\n` +
    comment(['A client only: never a relay or an exit.']) +
    'ClientOnly 1\n' +
    comment(['No TCP control port, on any address: nothing on a network, client qubes included, can ever reach one.']) +
    'ControlPort 0\n' +
    comment([
      'A control socket that only root and Tor\'s own user can open (its directory is Tor\'s, mode 0700, made by the',
      'unit\'s RuntimeDirectory=), with cookie authentication on top: `qubes-i2p-gateway status` reads Tor\'s bootstrap',
      'progress here. Nothing steers Tor through it.',
    ]) +
    `ControlSocket ${PATHS.torControl}\n` +
    'CookieAuthentication 1\n' +
    `CookieAuthFile ${PATHS.torCookie}\n` +
    comment([
      'stdout is the journal (journalctl -u qubes-i2p-gateway-tor). Notices and up, but of the "app" domain (client',
      'streams) only errors: its warnings are written for what a client qube does (a connection to an unmapped',
      'automap address logs "Missing mapping for virtual address", one line a probe), and a client must not be able',
      'to fill the gateway\'s journal.',
    ]) +
    'Log [*,~app]notice [app]err stdout\n' +
    onionServices(config) +
    comment([
      'The admin\'s own lines (bridges, say), read last: *.conf in this folder of the template, which the package ships',
      'empty and never writes to. They add to the lines above; the firewall redirects only to the ports set here.',
    ]) +
    `%include ${PATHS.torrcD}/*.conf\n`
  );
}

export function renderTorUnit(config: GatewayConfig): string {
  return (
    generatedHeader('The gateway\'s Tor (transparent TCP and DNS for client qubes).') +
    '\n[Unit]\n' +
    'Description=Tor for qubes-i2p-gateway (transparent proxy for client qubes)\n' +
    'Documentation=man:tor(1)\n' +
    comment(['Only in the gateway qube (its qvm-service); never in the template or other qubes built from it.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    comment(['Start once the firewall hook has put client traffic under our rules.']) +
    'After=network.target qubes-firewall.service\n' +
    `PartOf=${UNITS.target}\n` +
    comment([
      'No start limit: a client qube that can crash Tor (SECURITY.md) must not leave the gateway without Tor for good',
      'once it stops; systemd\'s default (5 starts in 10 s) would. RestartSec= below paces the restarts instead.',
    ]) +
    'StartLimitIntervalSec=0\n' +
    '\n[Service]\n' +
    'Type=notify\n' +
    'NotifyAccess=main\n' +
    comment(['Never root: ports above 1024 need no privilege, and systemd creates the data directory for this user.']) +
    `User=${TOR_USER}\n` +
    `Group=${TOR_USER}\n` +
    comment(['An empty defaults file: nothing from /etc/tor applies to this instance.']) +
    comment(['A bare command name: systemd finds it in its own search path, wherever the release puts it.']) +
    `ExecStart=tor --defaults-torrc /dev/null -f ${PATHS.torrc}\n` +
    'KillSignal=SIGINT\n' +
    'TimeoutStartSec=300\n' +
    'Restart=on-failure\n' +
    'RestartSec=5s\n' +
    'LimitNOFILE=65536\n' +
    `StateDirectory=${PATHS.torData.replace(/^\/var\/lib\//, '')}\n` +
    'StateDirectoryMode=0700\n' +
    comment(['The control socket\'s directory (see the torrc): Tor\'s own, closed to every other user, gone when Tor stops.']) +
    `RuntimeDirectory=${TOR_RUNTIME_NAME}\n` +
    'RuntimeDirectoryMode=0700\n' +
    'CapabilityBoundingSet=\n' +
    SANDBOX.join('\n') +
    '\n'
  );
}

/** Drop-in for the distribution's tor.service and tor@default.service. */
export function renderDistroTorDropIn(): string {
  return (
    comment([
      'qubes-i2p-gateway: the distribution\'s Tor (/etc/tor/torrc) starts only in a qube with the qvm-service "tor".',
      'The gateway runs its own Tor (qubes-i2p-gateway-tor.service); a second, distro-configured Tor there',
      'would open a SOCKS port and circuits nobody asked for. Every other qube built from this template gets the',
      'same rule: enable the service "tor" in a qube to have the system Tor there.',
    ]) +
    '[Unit]\n' +
    `ConditionPathExists=${qubesServiceFlag('tor')}\n`
  );
}

export function renderTor(config: GatewayConfig): readonly RenderedFile[] {
  if (!config.tor.enabled) return [];
  return [
    textFile(PATHS.torrc, renderTorrc(config)),
    dirEntry(PATHS.torrcD),
    textFile(unitPath(UNITS.tor), renderTorUnit(config)),
    textFile(dropInPath('tor.service'), renderDistroTorDropIn()),
    textFile(dropInPath('tor@default.service'), renderDistroTorDropIn()),
  ];
}
