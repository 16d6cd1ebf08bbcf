/**
 * The second layer: the kernel forwards nothing, whatever happens to the nftables rules. The gateway routes
 * nothing by design (every client packet it serves is redirected to a local daemon), so forwarding off costs
 * nothing, and with every table flushed (`nft flush ruleset`, a tool that resets the firewall) a client's packets
 * still go nowhere but the gateway's own sockets.
 *
 * Where Qubes turns forwarding on (qubes-core-agent-linux release4.3): qubes-network.service
 * (ConditionPathExists=/run/qubes-service/qubes-network, After=qubes-iptables) runs network-proxy-setup.sh, which
 * writes 1 to /proc/sys/net/ipv4/ip_forward (and net.ipv6.conf.all.forwarding with IPv6); its ExecStop writes 0.
 * qubes-firewall.service runs Before= it, so our firewall hook cannot be the one to turn it off. vif-route-qubes
 * (a client attaching) sets proxy_arp and proxy_ndp on the vif, not forwarding.
 *
 * So: a oneshot unit ordered After= qubes-network.service and PartOf= it (a restart of qubes-network restarts it
 * too), pulled in by qubes-network.service itself (a static .wants link) and by our target; and a udev rule that
 * applies the same settings again whenever a client's vif appears. Both run systemd-sysctl on one file.
 *
 * Writing 0 to net.ipv4.conf.all.forwarding sets it on every interface and on `default` (so for interfaces made
 * later); IPv6 forwarding has only the global switch. A Linux host with forwarding off accepts ICMP redirects and
 * IPv6 router advertisements, which a client qube must not send the gateway: those are turned off on vif*.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { symlink, textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayOrNetworkConditions, generatedHeader, PATHS, SYSTEMD_SYSCTL, UNIT_DIR, UNITS, unitPath } from './common.ts';

/** Qubes' unit that turns forwarding on (see above). */
export const QUBES_NETWORK_UNIT = 'qubes-network.service';

export function renderNoForwardSysctl(): string {
  return (
    generatedHeader('qubes-i2p-gateway: no forwarding (sysctl.d format, applied by systemd-sysctl).') +
    comment([
      '',
      'Applied by qubes-i2p-gateway-no-forward.service after qubes-network.service turned forwarding on, and by',
      `${PATHS.udevRules} for each client interface (vif*) as it appears. Not in /etc/sysctl.d: the template and`,
      'qubes that provide no network keep their settings. A leading "-": no error where IPv6 is off in the kernel.',
    ]) +
    '\n' +
    comment(['The gateway routes nothing: every client packet it serves is redirected to a local daemon. On every interface.']) +
    'net.ipv4.conf.all.forwarding = 0\n' +
    '-net.ipv6.conf.all.forwarding = 0\n' +
    '\n' +
    comment(['A host (forwarding off) would accept redirects and router advertisements: not from client qubes.']) +
    'net.ipv4.conf.all.accept_redirects = 0\n' +
    'net.ipv4.conf.default.accept_redirects = 0\n' +
    'net.ipv4.conf.vif*.accept_redirects = 0\n' +
    '-net.ipv6.conf.default.accept_redirects = 0\n' +
    '-net.ipv6.conf.vif*.accept_redirects = 0\n' +
    '-net.ipv6.conf.default.accept_ra = 0\n' +
    '-net.ipv6.conf.vif*.accept_ra = 0\n'
  );
}

export function renderNoForwardUnit(config: GatewayConfig): string {
  return (
    generatedHeader('Forwarding off in any qube that provides network from this template.') +
    '\n[Unit]\n' +
    'Description=qubes-i2p-gateway: the kernel forwards nothing for client qubes\n' +
    'Documentation=man:systemd-sysctl(8)\n' +
    comment(['In the gateway qube and in any qube built from this template that provides network; never in the template.']) +
    gatewayOrNetworkConditions(config) +
    comment([
      `After ${QUBES_NETWORK_UNIT}, which turns forwarding on; PartOf= it, so its restart runs this again after it.`,
      'Before network.target, as that unit is: the daemons and clients come later.',
    ]) +
    `After=${QUBES_NETWORK_UNIT}\n` +
    `PartOf=${QUBES_NETWORK_UNIT}\n` +
    'Before=network.target\n' +
    '\n[Service]\n' +
    'Type=oneshot\n' +
    'RemainAfterExit=yes\n' +
    comment(['systemd\'s own sysctl tool (not in PATH), as Qubes\' vif-route-qubes calls it.']) +
    `ExecStart=${SYSTEMD_SYSCTL} ${PATHS.noForwardSysctl}\n`
  );
}

export function renderNoForwardUdev(): string {
  return (
    generatedHeader('qubes-i2p-gateway: forwarding off again whenever a client qube attaches.') +
    comment([
      'A vif* interface appears only in a qube that provides network, when a client qube starts. systemd-sysctl',
      'applies the whole file: forwarding off everywhere (again, should anything have turned it on) and no redirects',
      'or router advertisements accepted on client interfaces, the new one included.',
    ]) +
    `ACTION=="add", SUBSYSTEM=="net", KERNEL=="vif*", RUN+="${SYSTEMD_SYSCTL} ${PATHS.noForwardSysctl}"\n`
  );
}

export function renderNoForward(config: GatewayConfig): readonly RenderedFile[] {
  return [
    textFile(PATHS.noForwardSysctl, renderNoForwardSysctl()),
    textFile(unitPath(UNITS.noForward), renderNoForwardUnit(config)),
    // Started whenever qubes-network.service is (in every qube that provides network), not only with our target.
    symlink(`${UNIT_DIR}/${QUBES_NETWORK_UNIT}.wants/${UNITS.noForward}`, `../${UNITS.noForward}`),
    textFile(PATHS.udevRules, renderNoForwardUdev()),
  ];
}
