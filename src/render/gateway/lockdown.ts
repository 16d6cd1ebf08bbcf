/**
 * Fail closed: the lockdown table that cuts client qubes off while the gateway firewall is not (yet) loaded.
 *
 * A network-providing qube forwards its clients' traffic by default. The lockdown table is installed early
 * at boot by qubes-i2p-gateway-lockdown.service (before the network and qubes-firewall come up) and again by
 * the firewall hook before each load; the ruleset removes it in the same transaction that installs the real
 * rules. So client qubes get nothing until the full ruleset is in, and nothing if it never loads.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayFlag, generatedHeader, SHARE_DIR, unitPath } from './common.ts';
import { LOCKDOWN_TABLE } from './firewall.ts';

export const LOCKDOWN_NFT = `${SHARE_DIR}/lockdown.nft`;
export const LOCKDOWN_UNIT = 'qubes-i2p-gateway-lockdown.service';

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
    '\t# Nothing is routed: no client packet reaches the upstream network.\n' +
    '\tchain forward {\n' +
    '\t\ttype filter hook forward priority filter - 20; policy drop;\n' +
    '\t}\n' +
    '\n' +
    "\t# Nothing from client qubes reaches the gateway's own services either (a base-chain drop is final).\n" +
    '\tchain input {\n' +
    '\t\ttype filter hook input priority filter - 20; policy accept;\n' +
    '\t\tiifgroup 2 drop\n' +
    '\t}\n' +
    '}\n'
  );
}

export function renderLockdownUnit(config: GatewayConfig): string {
  return (
    generatedHeader('Cut client qubes off at boot until the gateway firewall is loaded (fail closed).') +
    '\n[Unit]\n' +
    'Description=qubes-i2p-gateway: cut client qubes off until the gateway firewall is loaded\n' +
    'Documentation=man:nft(8)\n' +
    comment(['Only in the gateway qube (its qvm-service); never in the template or other qubes built from it.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
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
  return [textFile(LOCKDOWN_NFT, renderLockdownRuleset()), textFile(unitPath(LOCKDOWN_UNIT), renderLockdownUnit(config))];
}

