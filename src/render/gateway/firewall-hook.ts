/**
 * The qubes-firewall hook: the program gateway/firewall-hook (a source file of its own, placed here unchanged) at
 * /usr/libexec/qubes-i2p-gateway/firewall-hook, its link /etc/qubes/qubes-firewall.d/50-qubes-i2p-gateway (where
 * qubes-firewall.service looks, Qubes 4.3 qubesagent/firewall.py), and the facts it needs from the config in
 * /usr/share/qubes-i2p-gateway/firewall-hook.conf: KEY=value lines the program reads without executing anything.
 * Every value is checked here to need no quoting (values.ts, the schema's rules for names).
 *
 * The program's steps (see its header): nothing in the template or an app qube; the "off" table in a qube that
 * provides network without the gateway's service; in the gateway the lockdown, the router users' check,
 * route_localnet when clients have proxies of their own, the jump from custom-input, and the ruleset in one transaction.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { QubeName } from '../../config/schema.ts';
import { symlink, textFile, type RenderedFile } from '../../files.ts';
import { ROUTERS } from '../../config/routers.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, PROVIDES_NETWORK_FLAGS } from './common.ts';
import { INPUT_CHAIN, OFF_TABLE, perClientProxies } from './firewall.ts';
import { LOCKDOWN_NFT } from './lockdown.ts';
import { TOR_USER } from './tor.ts';
import { serviceName, userName } from './values.ts';

function qubeName(value: string): string {
  if (!QubeName.safeParse(value).success) throw new Error(`render: qube name ${JSON.stringify(value)} is not valid here`);
  return value;
}

/** A path the program reads: absolute, plain characters only (they are ours or Qubes', never the config's). */
function plainPath(value: string): string {
  if (!/^\/[A-Za-z0-9._/-]+$/.test(value)) throw new Error(`render: path ${JSON.stringify(value)} is not valid here`);
  return value;
}

export function renderHookConf(config: GatewayConfig): string {
  const router = ROUTERS[config.i2p.router];
  const users: Array<[string, string]> = [...(config.tor.enabled ? ([[TOR_USER, 'tor']] as Array<[string, string]>) : []), [router.user, router.package]];
  const lines = [
    `FLAG=${plainPath(gatewayFlag(config))}`,
    `SERVICE=${serviceName(config.qubes.service)}`,
    `GATEWAY=${qubeName(config.qubes.gateway)}`,
    `TEMPLATE=${qubeName(config.qubes.template)}`,
    `RULESET=${plainPath(PATHS.ruleset)}`,
    `LOCKDOWN=${plainPath(LOCKDOWN_NFT)}`,
    `OFF=${plainPath(PATHS.offRuleset)}`,
    `OFF_TABLE=${userName(OFF_TABLE)}`,
    `INPUT_CHAIN=${userName(INPUT_CHAIN)}`,
    `ROUTE_LOCALNET=${perClientProxies(config) ? 'yes' : 'no'}`,
    ...users.map(([u, pkg]) => `USER=${userName(u)}:${userName(pkg)}`),
    ...PROVIDES_NETWORK_FLAGS.map((f) => `NETWORK_FLAG=${plainPath(f)}`),
  ];
  return (
    generatedHeader('What the firewall hook (/usr/libexec/qubes-i2p-gateway/firewall-hook) needs to know of this gateway.') +
    comment([
      'KEY=value, read line by line, never executed. USER: a user the ruleset names and the package that creates it.',
      'NETWORK_FLAG: a file that exists only in a qube that provides network. ROUTE_LOCALNET: client qubes have proxies (and granted applications) of their own, on loopback.',
    ]) +
    `${lines.join('\n')}\n`
  );
}

export function renderFirewallHook(config: GatewayConfig, program: string): readonly RenderedFile[] {
  return [
    textFile(PATHS.hookProgram, program, 0o755),
    symlink(PATHS.hook, PATHS.hookProgram),
    textFile(PATHS.hookConf, renderHookConf(config)),
  ];
}
