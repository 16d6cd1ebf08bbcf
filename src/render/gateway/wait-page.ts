/**
 * Router i2pd only: the waiting page. /usr/libexec/qubes-i2p-gateway/i2p-wait-page (gateway/i2p-wait-page, Python 3
 * standard library) and its unit: a relay between tinyproxy and i2pd's HTTP proxy that passes every connection on
 * byte for byte and, only while the router is not ready (its proxy silent, no tunnel through other routers yet, or
 * a name unknown before any subscription was fetched), answers i2pd's own error pages with a page that says so.
 * With per-client destinations (the default) it also stands between each client qube and that client's own proxy
 * in i2pd: the firewall sends every client's TCP to the virtual IP here, and the relay picks the client's own proxy
 * from the peer address and the tunnel file i2pd-client-proxies wrote for it (root's directory, read only).
 * Everything it needs to know comes on its command line, rendered here from validated values.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { CLIENT_PROXY_PORTS, ROUTERS, WAIT_PAGE_PORT } from '../../config/routers.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { CLIENT_TUNNEL_PREFIX, I2PD_TUNNELS_DIR } from './client-proxies.ts';
import { CLIENT_LIMITS, perClientProxies } from './firewall.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, UNITS, unitPath } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { CONSOLE_USER } from './i2pd.ts';
import { TINYPROXY_MAX_CLIENTS } from './tinyproxy.ts';
import { port } from './values.ts';

const I2PD = ROUTERS.i2pd;

/** Connections the relay holds at once with per-client destinations: each client at most CLIENT_LIMITS.proxyConnections (firewall). */
export const WAIT_PAGE_PER_CLIENT_MAX = 4096;

export function renderWaitPageUnit(config: GatewayConfig): string {
  const own = perClientProxies(config);
  const last = CLIENT_PROXY_PORTS.first + CLIENT_PROXY_PORTS.count - 1;
  return (
    generatedHeader('The waiting page: tinyproxy to i2pd\'s HTTP proxy, with a page of its own while the router is not ready.') +
    '\n[Unit]\n' +
    'Description=waiting page for qubes-i2p-gateway (while the I2P router is not ready)\n' +
    `Documentation=file:${PATHS.waitPage}\n` +
    comment(['Only in the gateway qube (its qvm-service); never in the template or other qubes built from it.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    'After=network.target qubes-firewall.service\n' +
    `PartOf=${UNITS.target}\n` +
    '\n[Service]\n' +
    comment(['Ready once it listens (it tells systemd), so tinyproxy\'s first request finds it.']) +
    'Type=notify\n' +
    comment([
      'As i2pd\'s user: it reads the router\'s console with the password only that user (and root) may read, and its',
      'address book. It parses nothing a client sends (the request goes to i2pd as it came, and i2pd, which parses',
      'it, runs as this user already), only the start of i2pd\'s answer. systemd holds it to loopback.',
    ]) +
    `User=${I2PD.user}\n` +
    `Group=${I2PD.user}\n` +
    (own
      ? comment([
          'Client qubes reach it too (the firewall DNATs their TCP to the virtual IP here, keeping their addresses):',
          'loopback and the client ranges, nothing else.',
        ]) + `IPAddressAllow=localhost ${config.network.clientRanges.join(' ')}\n`
      : 'IPAddressAllow=localhost\n') +
    'IPAddressDeny=any\n' +
    (own
      ? comment([
          `On 127.0.0.1:${port(WAIT_PAGE_PORT)}: tinyproxy's upstream (to i2pd's shared HTTP proxy) and, DNATed by the firewall,`,
          "every client qube's HTTP to the virtual IP, passed to that client's own proxy: the port in its tunnel file in",
          `${I2PD_TUNNELS_DIR} (root's, read only); a peer without one is refused. The router's figures from its console.`,
          `Each client holds at most ${CLIENT_LIMITS.proxyConnections} connections (the firewall); two descriptors each.`,
        ]) + 'LimitNOFILE=16384\n'
      : comment([
          `From 127.0.0.1:${port(WAIT_PAGE_PORT)} (tinyproxy's upstream) to i2pd's HTTP proxy; the router's figures from its`,
          'console; at most as many connections as tinyproxy opens.',
        ])) +
    `ExecStart=${PATHS.waitPage} --listen 127.0.0.1:${port(WAIT_PAGE_PORT)} --upstream 127.0.0.1:${port(I2PD.httpProxyPort)} ` +
    `--console 127.0.0.1:${port(I2PD.exposable.console)} --console-user ${CONSOLE_USER} --password-file ${PATHS.consolePassword} ` +
    `--addressbook ${PATHS.i2pdData}/addressbook --max-connections ${own ? WAIT_PAGE_PER_CLIENT_MAX : TINYPROXY_MAX_CLIENTS}` +
    (own ? ` --client-tunnels ${I2PD_TUNNELS_DIR} --client-prefix ${CLIENT_TUNNEL_PREFIX} --client-ports ${CLIENT_PROXY_PORTS.first}-${last}` : '') +
    '\n' +
    'Restart=always\n' +
    'RestartSec=2\n' +
    'CapabilityBoundingSet=\n' +
    SANDBOX.join('\n') +
    '\n'
  );
}

/** `program`: the text of gateway/i2p-wait-page. */
export function renderWaitPage(config: GatewayConfig, program: string): readonly RenderedFile[] {
  if (config.i2p.router !== 'i2pd') return [];
  return [textFile(PATHS.waitPage, program, 0o755), textFile(unitPath(UNITS.waitPage), renderWaitPageUnit(config))];
}
