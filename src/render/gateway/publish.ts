/**
 * Published services (config `publish`): the gateway as the reverse proxy in front of a web application that runs
 * in a service qube with no network at all.
 *
 *   I2P visitor ──▶ i2pd server tunnel (type http) ─┐
 *                                                  ├─▶ 127.0.0.1:<listen> (a systemd socket, Accept=yes)
 *   Tor visitor ──▶ Tor onion service (tor.ts) ─────┘     └─▶ per connection: qrexec-client-vm <qube> qubes.ConnectTCP+<port>
 *                                                                └─▶ (dom0's policy, salt/publish.ts) ─▶ <qube>'s 127.0.0.1:<port>
 *
 * For each service: `qubes-i2p-gateway-publish-<name>.socket`, a listener on loopback only, and its template
 * `qubes-i2p-gateway-publish-<name>@.service`, which systemd starts once per connection with the connection as
 * stdin and stdout. The I2P side: /usr/share/qubes-i2p-gateway/i2pd-tunnels.conf, linked into i2pd's tunnels
 * directory; the onion side is in torrc (tor.ts). The application's port is reachable by nothing but this path:
 * the service qube has no netvm, and dom0's policy allows the gateway exactly `qubes.ConnectTCP +<port>` to it.
 *
 * The reverse proxy's duties, as the seed's Apache setup has them, and how they are met here:
 * - The application sees requests for its own host name: nothing rewrites Host. A visitor who opens
 *   http://<b32>.b32.i2p/ or http://<onion>/ sends that name, and i2pd (no `hostoverride`), Tor and qrexec pass
 *   it on unchanged (the address is the router's to make at first start, so no build could write it in).
 * - No header reveals the visitor beyond what the router itself adds: we add none. i2pd's http tunnel adds
 *   X-I2P-DestB32, X-I2P-DestHash and X-I2P-DestB64, the visitor's I2P destination (the I2P counterpart of a
 *   source address, nothing of the visitor's network location), and first strips any X-I2P-* the visitor sent,
 *   so the application may trust them; it also strips the visitor's Keep-Alive and forces Connection: close, and
 *   strips Server, Date, X-Runtime, X-Powered-By and Proxy-* from the answer (they would fingerprint the
 *   service's software and clock). Tor adds nothing: an onion service passes the stream as it is.
 * - The backend port is closed to everything else: see above; the gateway's listener binds 127.0.0.1 only.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { publishedServices, type PublishedService } from '../../config/publish.ts';
import { symlink, textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, UNITS, unitPath } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { port, publishName, qubeName } from './values.ts';

/** The listener's unit (and, with @, its per-connection template). */
export function publishSocketUnit(name: string): string {
  return `qubes-i2p-gateway-publish-${publishName(name)}.socket`;
}

export function publishConnectionUnit(name: string): string {
  return `qubes-i2p-gateway-publish-${publishName(name)}@.service`;
}

/** The i2pd tunnel's section (also its I2CP nickname, shown in the console). */
export function i2pdTunnelName(name: string): string {
  return `qubes-i2p-gateway-${publishName(name)}`;
}

/**
 * The server tunnel's private keys, relative to i2pd's data directory /var/lib/i2pd (i2pd resolves `keys =` there
 * and creates the file at first start). That directory is bind-dirs' in the gateway qube only (persistence.ts),
 * so the site keeps its address across reboots and the keys never exist in the template.
 */
export function i2pdKeysFile(name: string): string {
  return `${i2pdTunnelName(name)}.dat`;
}

/** Where that file is in the gateway (what the status command reads the site's address from). */
export function i2pdKeysPath(name: string): string {
  return `${PATHS.i2pdData}/${i2pdKeysFile(name)}`;
}

/** The onion service's directory (its keys and `hostname`), inside Tor's persistent DataDirectory. */
export function onionDir(name: string): string {
  return `${PATHS.torData}/onion-${publishName(name)}`;
}

/** The qrexec call one connection makes: service and argument, as qrexec-client-vm and the policy spell it. */
export function connectTcpCall(s: { readonly port: number }): string {
  return `qubes.ConnectTCP+${port(s.port)}`;
}

/**
 * Connections served at once per service. systemd accepts one beyond that and closes it at once (systemd.socket(5):
 * "refused until at least one existing connection is terminated"; counted in the socket's NRefused).
 */
export const PUBLISH_MAX_CONNECTIONS = 64;
/**
 * The poll limit: at most this many new connections per window are looked at; then systemd stops accepting until
 * the window ends (they wait in the kernel's listen queue). It bounds the qrexec calls, and so dom0's policy
 * evaluations, one service can cause: 150 per 2 s. systemd 257's default for Accept=yes, written out.
 */
export const PUBLISH_POLL_LIMIT = { intervalSec: 2, burst: 150 } as const;

export function renderPublishSocket(config: GatewayConfig, s: PublishedService): string {
  const listen = `127.0.0.1:${port(s.listen)}`;
  return (
    generatedHeader(`Published service "${publishName(s.name)}": the gateway's loopback listener for qube ${qubeName(s.qube)}, port ${port(s.port)}.`) +
    comment([
      '',
      `Visitors arrive here from ${[...(s.i2p ? ['the i2pd server tunnel'] : []), ...(s.onion ? ["Tor's onion service"] : [])].join(' and ')}. Each connection starts`,
      `${publishConnectionUnit(s.name)}, which carries it over qrexec to ${s.qube}'s 127.0.0.1:${s.port}.`,
    ]) +
    '\n[Unit]\n' +
    `Description=qubes-i2p-gateway: published service ${s.name} (qube ${s.qube}, port ${s.port})\n` +
    comment(['Only in the gateway qube (its qvm-service); never in the template or other qubes built from it.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    `PartOf=${UNITS.target}\n` +
    '\n[Socket]\n' +
    comment([
      'Loopback only: client qubes never reach it (the firewall drops 127.0.0.0/8 arriving on any other interface), only',
      'the router and Tor in the gateway do. The port follows from the service\'s place in the config\'s publish list.',
    ]) +
    `ListenStream=${listen}\n` +
    comment([
      'One qrexec-client-vm per connection (inetd style), at most this many at once; a connection beyond them is',
      'accepted and closed at once (it does not wait). No MaxConnectionsPerSource=: every visitor arrives from',
      '127.0.0.1 (i2pd and Tor connect from there), so a per-source limit would be this same limit for all of them.',
    ]) +
    'Accept=yes\n' +
    `MaxConnections=${PUBLISH_MAX_CONNECTIONS}\n` +
    comment([
      'A flood must slow the service down, never switch it off. The trigger limit (systemd\'s default: 200',
      'activations in 2 s) puts the socket in the failed state until someone restarts it, so it is off; with',
      'Accept=yes every activation accepts its connection, so there is no busy loop for it to stop. The poll limit',
      'pauses accepting for the rest of its window instead: new connections wait in the listen queue. It also bounds',
      'the qrexec calls, each a policy evaluation in dom0, that visitors can cause. The poll limit needs systemd 255',
      '(Debian 13 has 257); Debian 12\'s 252 predates it (unknown keys are ignored with a warning), and has no trigger',
      'limit here either.',
    ]) +
    'TriggerLimitIntervalSec=0\n' +
    `PollLimitIntervalSec=${PUBLISH_POLL_LIMIT.intervalSec}s\n` +
    `PollLimitBurst=${PUBLISH_POLL_LIMIT.burst}\n` +
    comment(['And once more, by systemd: only loopback peers.']) +
    'IPAddressAllow=localhost\n' +
    'IPAddressDeny=any\n'
  );
}

/** SANDBOX without PrivateDevices: qrexec-client-vm opens the vchan to the other qube itself (/dev/xen/*). */
const CONNECTION_SANDBOX = SANDBOX.filter((l) => l !== 'PrivateDevices=yes' && !l.startsWith('#'));

export function renderPublishConnection(s: PublishedService): string {
  return (
    generatedHeader(`Published service "${publishName(s.name)}": one visitor's connection, carried over qrexec to qube ${qubeName(s.qube)}, port ${port(s.port)}.`) +
    comment([
      '',
      `Started by ${publishSocketUnit(s.name)} for each connection, which is this service's stdin and stdout.`,
      `qrexec-client-vm asks dom0 for ${connectTcpCall(s)} in ${s.qube}; dom0's policy (i2p-gateway.publish) allows`,
      `exactly that, and ${s.qube}'s qubes.ConnectTCP connects to its own 127.0.0.1:${s.port}. Refused, it exits 126.`,
    ]) +
    '\n[Unit]\n' +
    `Description=qubes-i2p-gateway: a connection to published service ${s.name} (qube ${s.qube}, port ${s.port})\n` +
    comment(['One instance per connection: forget it once it ends, failed or not, so none piles up.']) +
    'CollectMode=inactive-or-failed\n' +
    '\n[Service]\n' +
    comment([
      '--use-stdin-socket: stdin is the connection, a socket, used both ways (qrexec-client-vm(1)). A bare command',
      'name: qubes-core-qrexec installs it, and systemd\'s own search finds it.',
    ]) +
    `ExecStart=qrexec-client-vm --use-stdin-socket ${qubeName(s.qube)} ${connectTcpCall(s)}\n` +
    'StandardInput=socket\n' +
    'StandardError=journal\n' +
    comment([
      'Never root, and no account on disk. The group qubes (made by qubes-core-agent) is what a Qubes user has to call',
      'qrexec: /run/qubes, where the agent listens, is root:qubes 2770, and the vchan devices /dev/xen/evtchn,',
      'gntdev and gntalloc are group qubes 0660; so no PrivateDevices= here. It opens no IP socket at all.',
    ]) +
    'DynamicUser=yes\n' +
    'SupplementaryGroups=qubes\n' +
    'CapabilityBoundingSet=\n' +
    comment(['Sandbox: it needs its program, the agent\'s socket and the vchan devices, and writes nothing.']) +
    CONNECTION_SANDBOX.join('\n') +
    '\n'
  );
}

export function renderI2pdTunnels(services: readonly PublishedService[]): string {
  const sections = services.filter((s) => s.i2p).map(
    (s) =>
      '\n' +
      comment([`Published service "${publishName(s.name)}": qube ${qubeName(s.qube)}, port ${port(s.port)}, through the gateway's listener.`]) +
      `[${i2pdTunnelName(s.name)}]\n` +
      comment([
        'An HTTP server tunnel: it adds X-I2P-DestB32, -DestHash and -DestB64 (the visitor\'s destination) after',
        'removing any X-I2P-* the visitor sent, and removes Server, Date, X-Powered-By, X-Runtime from the answer.',
      ]) +
      'type = http\n' +
      `host = 127.0.0.1\nport = ${port(s.listen)}\n` +
      comment(['Visitors reach the site on port 80 of its destination (http://<address>.b32.i2p/).']) +
      'inport = 80\n' +
      comment([
        'No hostoverride: the Host header arrives as the visitor sent it, the site\'s own name (its b32 address, which',
        'i2pd makes from these keys at first start, or a name registered for it).',
      ]) +
      comment([
        'Relative to i2pd\'s data directory /var/lib/i2pd, kept across reboots in the gateway qube only (bind-dirs):',
        'the site keeps its address, and its keys are never in the template.',
      ]) +
      `keys = ${i2pdKeysFile(s.name)}\n` +
      comment([
        'i2pd would otherwise connect from a loopback address made from each visitor\'s destination hash: the',
        'socket\'s per-connection unit names would then log who came how often. Every visitor comes from 127.0.0.1.',
      ]) +
      'enableuniquelocal = false\n',
  );
  return (
    generatedHeader('i2pd server tunnels of qubes-i2p-gateway: the published services\' I2P sites.') +
    comment([
      '',
      'Read by i2pd through its tunnels directory (/etc/i2pd/tunnels.conf.d, where the package links this file), beside',
      'Debian\'s tunnels.conf and the admin\'s own files there.',
    ]) +
    sections.join('')
  );
}

/** Where the package links the tunnels file: Debian's /etc/i2pd/tunnels.conf.d is a link to this directory. */
export const I2PD_TUNNELS_LINK = '/etc/i2pd/tunnels.d/50-qubes-i2p-gateway.conf';

export function publishUnits(config: GatewayConfig): string[] {
  return publishedServices(config).map((s) => publishSocketUnit(s.name));
}

export function renderPublish(config: GatewayConfig): readonly RenderedFile[] {
  const services = publishedServices(config);
  if (services.length === 0) return [];
  const files: RenderedFile[] = [];
  for (const s of services) {
    files.push(textFile(unitPath(publishSocketUnit(s.name)), renderPublishSocket(config, s)));
    files.push(textFile(unitPath(publishConnectionUnit(s.name)), renderPublishConnection(s)));
  }
  if (services.some((s) => s.i2p)) {
    if (config.i2p.router !== 'i2pd') {
      throw new Error('render: publish with i2p: true needs router i2pd (the config loader should have refused it)');
    }
    files.push(textFile(PATHS.i2pdTunnels, renderI2pdTunnels(services)));
    // A link, like the firewall hook's: package data, replaced on every upgrade, never a conffile.
    files.push(symlink(I2PD_TUNNELS_LINK, PATHS.i2pdTunnels));
  }
  return files;
}
