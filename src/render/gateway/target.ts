/**
 * qubes-i2p-gateway.target: the one unit that pulls in the whole gateway, shipped already enabled (a static
 * symlink in multi-user.target.wants) so the maintainer scripts enable nothing. Every unit it wants carries
 * its own ConditionPathExists on the gateway's qvm-service, so in the template and in every other qube built
 * from it the target pulls in units that then skip themselves.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { ROUTERS } from '../../config/routers.ts';
import { symlink, textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayFlag, generatedHeader, UNIT_DIR, UNITS, unitPath } from './common.ts';
import { LOCKDOWN_UNIT } from './lockdown.ts';
import { publishUnits } from './publish.ts';
import { perClientProxies } from './firewall.ts';

export function targetWants(config: GatewayConfig): string[] {
  // The published services' listeners last: each is a socket, started here, whose connections start their own units.
  return [LOCKDOWN_UNIT, UNITS.noForward, ...(config.tor.enabled ? [UNITS.tor, UNITS.dnsRelay] : []), UNITS.dnsmasq, UNITS.tinyproxy, ...(config.i2p.router === 'i2pd' ? [UNITS.waitPage] : []), ROUTERS[config.i2p.router].unit, ...(perClientProxies(config) ? [UNITS.clientProxies] : []), ...publishUnits(config)];
}

export function renderTargetUnit(config: GatewayConfig): string {
  return (
    generatedHeader('Everything the gateway qube runs.') +
    '\n[Unit]\n' +
    'Description=qubes-i2p-gateway: transparent I2P and Tor gateway for client qubes\n' +
    comment(['Only in the gateway qube; the units below check the same flag themselves.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    `Wants=${targetWants(config).join(' ')}\n` +
    '\n[Install]\n' +
    comment(['Enabled by the package itself (multi-user.target.wants/ symlink), not by a maintainer script.']) +
    'WantedBy=multi-user.target\n'
  );
}

export function renderTarget(config: GatewayConfig): readonly RenderedFile[] {
  return [
    textFile(unitPath(UNITS.target), renderTargetUnit(config)),
    symlink(`${UNIT_DIR}/multi-user.target.wants/${UNITS.target}`, `../${UNITS.target}`),
  ];
}
