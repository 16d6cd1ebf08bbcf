/**
 * Fail closed: the lockdown table that cuts client qubes off while the gateway firewall is not (yet) loaded.
 *
 * A network-providing qube forwards its clients' traffic by default. The lockdown table is installed early
 * at boot by qubes-i2p-gateway-lockdown.service (before the network and qubes-firewall come up) and again by
 * the firewall hook before each load; the ruleset removes it in the same transaction that installs the real
 * rules. So client qubes get nothing until the full ruleset is in, and nothing if it never loads.
 *
 * The same at boot in any qube that provides network from this template without the gateway's qvm-service
 * (unticked in the qube's settings, say): there the hook then replaces the lockdown with the "off" table below,
 * which keeps forwarding nothing for as long as the service is off. Without both, such a qube would be a plain
 * clearnet router for its clients through Qubes' own tables.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayOrNetworkConditions, generatedHeader, PATHS, SHARE_DIR, unitPath } from './common.ts';
import { INPUT_CHAIN, LOCKDOWN_TABLE, OFF_TABLE, TABLE } from './firewall.ts';

export const LOCKDOWN_NFT = `${SHARE_DIR}/lockdown.nft`;
export const LOCKDOWN_UNIT = 'qubes-i2p-gateway-lockdown.service';

/** The chains the lockdown and the off table share: nothing routed, nothing from client qubes accepted. */
function cutOffChains(inputWhy: string): string {
  return (
    '\t# Nothing is routed: no client packet reaches the upstream network.\n' +
    '\tchain forward {\n' +
    '\t\ttype filter hook forward priority filter - 20; policy drop;\n' +
    '\t}\n' +
    '\n' +
    `\t# ${inputWhy}\n` +
    '\tchain input {\n' +
    '\t\ttype filter hook input priority filter - 20; policy accept;\n' +
    '\t\tiifgroup 2 drop\n' +
    '\t}\n'
  );
}

export function renderLockdownRuleset(): string {
  return (
    generatedHeader('qubes-i2p-gateway lockdown: client qubes get nothing until the gateway firewall is loaded.') +
    comment([
      '',
      'Installed at boot (qubes-i2p-gateway-lockdown.service) and by the firewall hook before each load;',
      '/usr/share/qubes-i2p-gateway/firewall.nft deletes it in the transaction that installs the real rules.',
    ]) +
    '\n' +
    comment(['Replace, never add to: a second install leaves one copy.']) +
    `table inet ${LOCKDOWN_TABLE}\n` +
    `delete table inet ${LOCKDOWN_TABLE}\n` +
    `table inet ${LOCKDOWN_TABLE} {\n` +
    cutOffChains("Nothing from client qubes reaches the gateway's own services either (a base-chain drop is final).") +
    '\n' +
    "\t# And the qube itself opens nothing to the network: the ruleset's output chain, which lets only Tor and the\n" +
    '\t# router out, is not in yet (a router user may be missing, which is one reason the ruleset did not load).\n' +
    '\t# Loopback, replies on connections that existed before (a reload of qubes-firewall while Tor runs), and the\n' +
    '\t# neighbour discovery the kernel itself sends stay; everything new is refused at once.\n' +
    '\tchain output {\n' +
    '\t\ttype filter hook output priority filter - 20; policy accept;\n' +
    '\t\toif lo accept\n' +
    '\t\tct state established,related accept\n' +
    '\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld2-listener-report } accept\n' +
    '\t\tcounter reject with icmpx admin-prohibited\n' +
    '\t}\n' +
    '}\n'
  );
}

/**
 * /usr/share/qubes-i2p-gateway/off.nft: what the hook loads in a qube that provides network without the gateway's
 * service. Forwards nothing, lets clients reach nothing of the qube, and removes our ruleset if the service was on
 * before (turned off while the qube ran, then qubes-firewall restarted), in one transaction.
 */
export function renderOffRuleset(config: GatewayConfig): string {
  return (
    generatedHeader('qubes-i2p-gateway off: a qube that provides network from this template, without the gateway\'s service.') +
    comment([
      '',
      `Loaded by the firewall hook when /run/qubes-service/${config.qubes.service} is missing in a qube that provides network. This`,
      'template exists to build the gateway: a qube made from it never becomes a clearnet router. Enable the qvm-service',
      `${config.qubes.service} (dom0: qvm-service --enable ${config.qubes.gateway} ${config.qubes.service}) and restart the qube to run the gateway.`,
      '/usr/share/qubes-i2p-gateway/firewall.nft deletes this table when it loads.',
    ]) +
    '\n' +
    comment(['Replace, never add to: a second install leaves one copy.']) +
    `table inet ${OFF_TABLE}\n` +
    `delete table inet ${OFF_TABLE}\n` +
    `table inet ${OFF_TABLE} {\n` +
    cutOffChains("Nothing from client qubes reaches this qube's own services (a gateway daemon still running, say).") +
    '}\n' +
    '\n' +
    comment(['The gateway\'s own rules, if the service was on before, and the boot lockdown, which this replaces.']) +
    `table inet ${TABLE}\n` +
    `delete table inet ${TABLE}\n` +
    `table inet ${LOCKDOWN_TABLE}\n` +
    `delete table inet ${LOCKDOWN_TABLE}\n` +
    comment([`Our accepts inside Qubes' input chain go too (the chain stays, empty, with its jump from custom-input).`]) +
    `table ip qubes {\n\tchain ${INPUT_CHAIN} {\n\t}\n}\n` +
    `flush chain ip qubes ${INPUT_CHAIN}\n`
  );
}

export function renderLockdownUnit(config: GatewayConfig): string {
  return (
    generatedHeader('Cut client qubes off at boot until the gateway firewall is loaded (fail closed).') +
    '\n[Unit]\n' +
    'Description=qubes-i2p-gateway: cut client qubes off until the gateway firewall is loaded\n' +
    'Documentation=man:nft(8)\n' +
    comment([
      'In the gateway qube (its qvm-service), and in any qube built from this template that provides network: one',
      'whose service is off must not forward either (the hook then keeps it so). Never in the template or app qubes.',
    ]) +
    gatewayOrNetworkConditions(config) +
    comment([
      'Before anything can forward (network-pre.target, qubes-network) and before qubes-firewall, whose hook loads',
      'the real ruleset and lifts this: the other order would leave client qubes cut off for good.',
    ]) +
    'Before=network-pre.target qubes-network.service qubes-firewall.service\n' +
    'Wants=network-pre.target\n' +
    '\n[Service]\n' +
    'Type=oneshot\n' +
    'RemainAfterExit=yes\n' +
    comment(['A bare command name: systemd finds it in its own search path, wherever the release puts it.']) +
    `ExecStart=nft -f ${LOCKDOWN_NFT}\n`
  );
}

export function renderLockdown(config: GatewayConfig): readonly RenderedFile[] {
  return [
    textFile(LOCKDOWN_NFT, renderLockdownRuleset()),
    textFile(PATHS.offRuleset, renderOffRuleset(config)),
    textFile(unitPath(LOCKDOWN_UNIT), renderLockdownUnit(config)),
  ];
}

