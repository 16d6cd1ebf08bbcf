/**
 * Router i2pd only: the waiting page. /usr/libexec/qubes-i2p-gateway/i2p-wait-page (gateway/i2p-wait-page, Python 3
 * standard library) and its unit: a relay between tinyproxy and i2pd's HTTP proxy that passes every connection on
 * byte for byte and, only while the router is not ready (its proxy silent, no tunnel through other routers yet, or
 * a name unknown before any subscription was fetched), answers i2pd's own error pages with a page that says so.
 * With per-client destinations (the default) the same program, as `--front`, is each client qube's HTTP front: one
 * instance of a template unit per client (renderHttpFrontUnit), its own user, between that client and its own proxy
 * in i2pd; the relay writes the router's figures for them (PATHS.routerFacts).
 * Everything it needs to know comes on its command line, rendered here from validated values.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { ROUTERS, WAIT_PAGE_PORT } from '../../config/routers.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { CLIENT_FRONT_ADDRESS, CLIENT_LIMITS, perClientProxies } from './firewall.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, UNITS, unitPath, WAIT_PAGE_RUNTIME } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { CONSOLE_USER } from './i2pd.ts';
import { TINYPROXY_MAX_CLIENTS } from './tinyproxy.ts';
import { port } from './values.ts';

const I2PD = ROUTERS.i2pd;

export function renderWaitPageUnit(config: GatewayConfig): string {
  const own = perClientProxies(config);
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
    'IPAddressAllow=localhost\n' +
    'IPAddressDeny=any\n' +
    (own
      ? comment([
          `From 127.0.0.1:${port(WAIT_PAGE_PORT)} (tinyproxy's upstream) to i2pd's shared HTTP proxy; the router's figures from`,
          `its console, also written (nothing else) into ${PATHS.routerFacts} for the client qubes' HTTP fronts`,
          `(${UNITS.httpFront}), which may not read the console's password. Client qubes do not reach this relay.`,
        ]) +
        `RuntimeDirectory=${WAIT_PAGE_RUNTIME}\n` +
        'RuntimeDirectoryMode=0755\n'
      : comment([
          `From 127.0.0.1:${port(WAIT_PAGE_PORT)} (tinyproxy's upstream) to i2pd's HTTP proxy; the router's figures from its`,
          'console; at most as many connections as tinyproxy opens.',
        ])) +
    `ExecStart=${PATHS.waitPage} --listen 127.0.0.1:${port(WAIT_PAGE_PORT)} --upstream 127.0.0.1:${port(I2PD.httpProxyPort)} ` +
    `--console 127.0.0.1:${port(I2PD.exposable.console)} --console-user ${CONSOLE_USER} --password-file ${PATHS.consolePassword} ` +
    `--addressbook ${PATHS.i2pdData}/addressbook --max-connections ${TINYPROXY_MAX_CLIENTS}` +
    (own ? ` --facts-out ${PATHS.routerFacts}` : '') +
    '\n' +
    'Restart=always\n' +
    'RestartSec=2\n' +
    'CapabilityBoundingSet=\n' +
    SANDBOX.join('\n') +
    '\n'
  );
}

/** The user of one client's front: systemd's DynamicUser, named after the instance (the port of the client's proxy). */
export const FRONT_USER_PREFIX = 'qig-http-';

/**
 * One client qube's HTTP front (per-client destinations), a template whose instance is the port of the client's own
 * proxy in i2pd: `i2p-wait-page --front` on CLIENT_FRONT_ADDRESS:PORT (where the firewall's map sends that client's
 * TCP to the virtual IP) to 127.0.0.1:PORT, as a user of its own that exists only while it runs (DynamicUser). The
 * one program that parses what the client sends; i2pd gets only the requests it rewrote.
 */
export function renderHttpFrontUnit(config: GatewayConfig): string {
  return (
    generatedHeader('One client qube\'s HTTP front: the only parser of its requests, in front of its own I2P proxy in i2pd.') +
    '\n[Unit]\n' +
    'Description=qubes-i2p-gateway: HTTP front of the client qube with I2P proxy port %i\n' +
    `Documentation=file:${PATHS.waitPage}\n` +
    comment([
      'Only in the gateway qube (its qvm-service); started by i2pd-client-proxies when a client qube appears (the',
      'instance is the port of that client\'s proxy in i2pd), stopped when it goes.',
    ]) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    `After=network.target qubes-firewall.service ${UNITS.waitPage}\n` +
    `PartOf=${UNITS.target}\n` +
    '\n[Service]\n' +
    comment(['Ready once it listens (it tells systemd): i2pd-client-proxies gives the client its map element only then.']) +
    'Type=notify\n' +
    comment([
      'A user of its own (systemd makes it at the start and removes it at the stop), one per client: a client that',
      'took this process over holds its own connections and its own proxy\'s port, not another client\'s traffic. It',
      `reads the router's figures from ${PATHS.routerFacts} (i2pd's user writes it; read as untrusted).`,
    ]) +
    'DynamicUser=yes\n' +
    `User=${FRONT_USER_PREFIX}%i\n` +
    comment(['Its client qube (DNATed, its address kept) and loopback (its proxy in i2pd), nothing else.']) +
    `IPAddressAllow=localhost ${config.network.clientRanges.join(' ')}\n` +
    'IPAddressDeny=any\n' +
    comment([`The firewall lets its client hold at most ${CLIENT_LIMITS.proxyConnections} connections; so does the front.`]) +
    `ExecStart=${PATHS.waitPage} --front --listen ${CLIENT_FRONT_ADDRESS}:%i --upstream 127.0.0.1:%i --facts ${PATHS.routerFacts} --max-connections ${CLIENT_LIMITS.proxyConnections}\n` +
    'Restart=always\n' +
    'RestartSec=2\n' +
    'MemoryMax=64M\n' +
    'TasksMax=16\n' +
    'CapabilityBoundingSet=\n' +
    SANDBOX.join('\n') +
    '\n'
  );
}

/** `program`: the text of gateway/i2p-wait-page. */
export function renderWaitPage(config: GatewayConfig, program: string): readonly RenderedFile[] {
  if (config.i2p.router !== 'i2pd') return [];
  return [
    textFile(PATHS.waitPage, program, 0o755),
    textFile(unitPath(UNITS.waitPage), renderWaitPageUnit(config)),
    ...(perClientProxies(config) ? [textFile(unitPath(UNITS.httpFront), renderHttpFrontUnit(config))] : []),
  ];
}
