/**
 * The qubes-firewall hook /usr/libexec/qubes-i2p-gateway/firewall-hook, run through its link
 * /etc/qubes/qubes-firewall.d/50-qubes-i2p-gateway. qubes-firewall.service (Qubes 4.3,
 * qubesagent/firewall.py) runs every executable in that folder, from the template, at each start of the
 * service, before the user's hooks in /rw/config, and ignores its exit status: so the hook itself must leave
 * the gateway safe when it fails, and must be idempotent.
 *
 * Steps: nothing in the template or an app qube; in a qube that provides network without the gateway's
 * qvm-service, the "off" table (forward nothing, see lockdown.ts) and a journal line saying how to turn the gateway
 * on; in the gateway: lockdown (see lockdown.ts); a check that every user the ruleset names exists (else nft
 * cannot load it, and the journal names the missing package and the fix); route_localnet when router ports
 * are exposed; the one jump from Qubes' custom-input into our chain, only if missing (custom-input belongs to
 * the user and is never flushed); then the ruleset with one `nft -f`, which lifts the lockdown in the same
 * transaction. Any failure: logged to the journal (logger -t qubes-i2p-gateway), lockdown left in place,
 * exit 1.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { symlink, textFile, type RenderedFile } from '../../files.ts';
import { ROUTERS } from '../../config/routers.ts';
import { gatewayFlag, generatedHeader, PATHS, PROVIDES_NETWORK_FLAGS } from './common.ts';
import { exposedPorts, INPUT_CHAIN, LOCKDOWN_TABLE, OFF_TABLE } from './firewall.ts';
import { TOR_USER } from './tor.ts';
import { userName } from './values.ts';
import { LOCKDOWN_NFT } from './lockdown.ts';

export function renderHook(config: GatewayConfig): string {
  const exposed = exposedPorts(config);
  const localnet =
    exposed.length > 0
      ? [
          '# Exposed router ports are DNATed to 127.0.0.1, which the kernel routes from another interface only with',
          '# route_localnet. The ruleset drops 127.0.0.0/8 arriving on any interface but loopback before that DNAT.',
          'echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet || die "cannot set net.ipv4.conf.all.route_localnet=1"',
          '',
        ]
      : [];
  const c = config.qubes;
  const install = `sudo qubesctl --show-output --skip-dom0 --targets=${c.template} state.sls i2p-gateway.install`;
  const router = ROUTERS[config.i2p.router];
  // Every user the ruleset names (meta skuid), with the package that creates it.
  const users: Array<[string, string]> = [...(config.tor.enabled ? ([[TOR_USER, 'tor']] as Array<[string, string]>) : []), [router.user, router.package]];
  return [
    '#!/bin/sh',
    ...generatedHeader('qubes-i2p-gateway firewall hook, run by qubes-firewall.service at every start.').trimEnd().split('\n'),
    '#',
    '# Loads /usr/share/qubes-i2p-gateway/firewall.nft in one transaction. Fails closed: client qubes stay cut off by the',
    `# table inet ${LOCKDOWN_TABLE} until that load succeeds. Running it again leaves the same ruleset.`,
    'set -eu',
    '',
    `FLAG=${gatewayFlag(config)}`,
    `RULESET=${PATHS.ruleset}`,
    `LOCKDOWN=${LOCKDOWN_NFT}`,
    `OFF=${PATHS.offRuleset}`,
    '',
    'log() {',
    '\tlogger -t qubes-i2p-gateway -p "daemon.$1" -- "$2" 2>/dev/null || true',
    '\techo "qubes-i2p-gateway: $2" >&2',
    '}',
    'die() {',
    '\tlog err "$1; client qubes stay cut off (lockdown)"',
    '\texit 1',
    '}',
    '',
    '# What qubes-sysinit leaves in a qube that provides network (a ProxyVM or NetVM), and in no other qube.',
    'provides_network() {',
    `\t${PROVIDES_NETWORK_FLAGS.map((f) => `[ -e ${f} ]`).join(' || ')}`,
    '}',
    '',
    'if [ ! -e "$FLAG" ]; then',
    '\t# The template, or an app qube built from it: nothing to do.',
    '\tprovides_network || exit 0',
    '\t# A qube that provides network from this template without the gateway\'s service (unticked in its settings, or',
    '\t# named otherwise): Qubes\' own tables would make it a clearnet router for its clients. Forward nothing instead.',
    `\tnft -f "$OFF" || die "the gateway's service ${c.service} is off, and $OFF did not load"`,
    `\tlog warning "this qube provides network but its qvm-service ${c.service} is off: it forwards nothing (table inet ${OFF_TABLE}). To run the gateway, in dom0: qvm-service --enable ${c.gateway} ${c.service} (or sudo qubesctl state.sls i2p-gateway.create), then restart the qube"`,
    '\texit 0',
    'fi',
    '',
    '# 1. Lockdown first: until the whole ruleset is in, client qubes get nothing (forward and their input dropped).',
    'nft -f "$LOCKDOWN" || die "cannot install the lockdown table from $LOCKDOWN"',
    '',
    '# 2. Every user the ruleset lets out (meta skuid) must exist, or nft refuses the whole ruleset: say which package.',
    ...users.map(
      ([u, pkg]) =>
        `getent passwd ${userName(u)} >/dev/null || die "user ${userName(u)} is missing, so ${PATHS.ruleset} cannot load: package ${pkg} is not installed in the template ${c.template}. Fix: in dom0, ${install}; then restart this qube"`,
    ),
    '',
    ...localnet,
    "# 3. Qubes' input chain drops what its custom-input chain does not accept: jump from there to our chain, once.",
    '#    custom-input is the user\'s, so it is never flushed; our chain is emptied and refilled by the ruleset.',
    `if ! nft list chain ip qubes custom-input | grep -q 'jump ${INPUT_CHAIN}\$'; then`,
    `\tprintf 'table ip qubes {\\n\\tchain ${INPUT_CHAIN} {\\n\\t}\\n}\\nadd rule ip qubes custom-input jump ${INPUT_CHAIN}\\n' | nft -f - ||`,
    '\t\tdie "cannot add the jump to our input chain in ip qubes custom-input"',
    'fi',
    '',
    '# 4. The ruleset, in one transaction that also removes the lockdown table; if it fails, nothing changes.',
    '[ -r "$RULESET" ] || die "$RULESET is missing"',
    'nft -f "$RULESET" || die "loading $RULESET failed"',
    'log info "firewall loaded from $RULESET"',
    '',
  ].join('\n');
}

export function renderFirewallHook(config: GatewayConfig): readonly RenderedFile[] {
  return [textFile(PATHS.hookProgram, renderHook(config), 0o755), symlink(PATHS.hook, PATHS.hookProgram)];
}
