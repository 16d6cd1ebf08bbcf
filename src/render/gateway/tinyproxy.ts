/**
 * tinyproxy: client qubes' HTTP to the virtual IP (any port but the granted applications' and TLS) is redirected
 * here by firewall.nft. Requests for
 * .i2p hosts go on to the I2P router's HTTP proxy; everything else is refused. Also a drop-in that keeps the
 * distribution's tinyproxy.service off unless a qube asks for it.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { ROUTERS, WAIT_PAGE_PORT } from '../../config/routers.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { comment, dropInPath, gatewayFlag, generatedHeader, PATHS, qubesServiceFlag, UNITS, unitPath } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { cidr, port } from './values.ts';
import { CLIENT_LIMITS } from './firewall.ts';

/** Created by the tinyproxy package's postinst (not by tinyproxy-bin). */
export const TINYPROXY_USER = 'tinyproxy';
/** tinyproxy's MaxClients: eight clients' full per-client allowance (CLIENT_LIMITS.proxyConnections). */
export const TINYPROXY_MAX_CLIENTS = 512;

export function renderTinyproxyConf(config: GatewayConfig): string {
  const router = ROUTERS[config.i2p.router];
  return (
    generatedHeader('tinyproxy for qubes-i2p-gateway: HTTP to the virtual IP, passed to the I2P router for .i2p hosts.') +
    '\n' +
    comment(['The unit runs tinyproxy as this user already; the lines make a root start drop to it too.']) +
    `User ${TINYPROXY_USER}\nGroup ${TINYPROXY_USER}\n` +
    `Port ${port(config.tinyproxy.port)}\n` +
    comment([
      'IPv4, all addresses: the firewall\'s redirect delivers to the address of the vif a client came in on. Qubes\'',
      'input chain (policy drop) admits only connections our NAT chain redirected here.',
    ]) +
    'Listen 0.0.0.0\n' +
    comment([
      `Connections open at once, for all client qubes together (one thread each). The firewall lets one client hold`,
      `${CLIENT_LIMITS.proxyConnections} at most, so one client's idle connections can never take every slot.`,
    ]) +
    'Timeout 600\n' +
    `MaxClients ${TINYPROXY_MAX_CLIENTS}\n` +
    comment(['Client qubes\' networks only: once one Allow exists tinyproxy refuses every other address.']) +
    config.network.clientRanges.map((r) => `Allow ${cidr(r)}\n`).join('') +
    comment([
      '.i2p hosts go to the router\'s HTTP proxy on loopback. Transparent requests (origin-form with a Host header)',
      'are rebuilt into absolute URLs by tinyproxy before they go upstream.',
    ]) +
    (config.i2p.router === 'i2pd'
      ? comment([
          `With i2pd, through the waiting page's relay (${UNITS.waitPage}), which passes everything on to i2pd's proxy`,
          `(127.0.0.1:${port(router.httpProxyPort)}) and answers with a page of its own only while the router is not ready.`,
        ]) + `upstream http 127.0.0.1:${port(WAIT_PAGE_PORT)} ".i2p"\n`
      : `upstream http 127.0.0.1:${port(router.httpProxyPort)} ".i2p"\n`) +
    comment([
      'Only .i2p hosts are served (the filter is an allow list): any other host would be fetched directly, past Tor.',
      'The firewall would stop that too (tinyproxy\'s user may not reach the network); this refuses it politely.',
      'The filter also covers tinyproxy\'s built-in statistics host (tinyproxy.stats).',
    ]) +
    'FilterDefaultDeny Yes\n' +
    `Filter "${PATHS.tinyproxyFilter}"\n` +
    'FilterType ere\n' +
    comment(['No CONNECT: plain HTTP to the virtual IP is all that reaches tinyproxy (TLS ports are reset by the firewall).']) +
    'ConnectPort 0\n' +
    comment(['Add nothing that tells the far side a proxy (or which one) was here.']) +
    'DisableViaHeader Yes\nXTinyproxy No\n' +
    comment(['No LogFile, no Syslog: tinyproxy -d logs to stderr, which is the journal.']) +
    'LogLevel Notice\n'
  );
}

/** A whole host name in the i2p domain: dot-separated DNS labels ending in the label i2p (case by REG_ICASE). */
export const I2P_HOST_PATTERN = '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?[.])+i2p$';

export function renderTinyproxyFilter(): string {
  return (
    generatedHeader('tinyproxy\'s allow list (FilterDefaultDeny Yes): hosts it serves.') +
    comment([
      'Extended regular expressions (FilterType ere), matched case-insensitively against the request\'s host: for a',
      'transparent request, the Host header up to its first \':\', exactly as the client wrote it. tinyproxy finds a',
      'pattern anywhere in it (regexec, not anchored), so this one spans the whole string: one or more DNS labels',
      '(letters, digits, inner hyphens, at most 63 each), then i2p. Anything else in the host, such as',
      '"example.com/.i2p", "evil.com@x.i2p" or "evil.com#.i2p", would be rebuilt into a URL upstream whose host is',
      'not in I2P, and a router with an outproxy would fetch it from the clearnet past Tor.',
    ]) +
    `${I2P_HOST_PATTERN}\n`
  );
}

export function renderTinyproxyUnit(config: GatewayConfig): string {
  const router = ROUTERS[config.i2p.router];
  return (
    generatedHeader('The gateway\'s tinyproxy: HTTP to the virtual IP, to the I2P router.') +
    '\n[Unit]\n' +
    'Description=tinyproxy for qubes-i2p-gateway (HTTP to .i2p hosts for client qubes)\n' +
    'Documentation=man:tinyproxy(8) man:tinyproxy.conf(5)\n' +
    comment(['Only in the gateway qube (its qvm-service); never in the template or other qubes built from it.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    comment(['After the firewall hook, and after the router whose HTTP proxy it forwards to.']) +
    `After=network.target qubes-firewall.service ${router.unit}\n` +
    `PartOf=${UNITS.target}\n` +
    '\n[Service]\n' +
    'Type=simple\n' +
    comment(['Never root: its port is above 1024.']) +
    `User=${TINYPROXY_USER}\n` +
    `Group=${TINYPROXY_USER}\n` +
    comment(['A bare command name: systemd finds it in its own search path, wherever the release puts it.']) +
    `ExecStart=tinyproxy -d -c ${PATHS.tinyproxyConf}\n` +
    'Restart=on-failure\n' +
    'CapabilityBoundingSet=\n' +
    SANDBOX.join('\n') +
    '\n'
  );
}

/** Drop-in for the distribution's tinyproxy.service. */
export function renderDistroTinyproxyDropIn(): string {
  return (
    comment([
      'qubes-i2p-gateway: the distribution\'s tinyproxy (/etc/tinyproxy) starts only in a qube with the qvm-service',
      '"tinyproxy" (Qubes\' own drop-in says the same; this keeps it so if that one changes). The gateway runs its',
      'own instance (qubes-i2p-gateway-tinyproxy.service); Qubes\' updates proxy is a different unit and unaffected.',
    ]) +
    '[Unit]\n' +
    `ConditionPathExists=${qubesServiceFlag('tinyproxy')}\n`
  );
}

export function renderTinyproxy(config: GatewayConfig): readonly RenderedFile[] {
  return [
    textFile(PATHS.tinyproxyConf, renderTinyproxyConf(config)),
    textFile(PATHS.tinyproxyFilter, renderTinyproxyFilter()),
    textFile(unitPath(UNITS.tinyproxy), renderTinyproxyUnit(config)),
    textFile(dropInPath('tinyproxy.service'), renderDistroTinyproxyDropIn()),
  ];
}
