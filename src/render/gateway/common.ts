/**
 * Names and paths every gateway renderer shares, and the two helpers that keep generated files uniform: a
 * header saying where the file came from, and the `ConditionPathExists=` that switches a unit on only in the
 * gateway qube.
 *
 * Everything here is a constant or derives from validated config (see values.ts): no renderer interpolates a
 * raw string.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { serviceName } from './values.ts';

export const PACKAGE = 'qubes-i2p-gateway';

/**
 * The generated configuration: the package's own data, not conffiles. Every upgrade replaces it whole, so a new
 * build's torrc, dnsmasq, tinyproxy and i2pd configs and firewall ruleset always arrive together and agree with
 * each other (a conffile an admin once edited would be kept by dpkg --force-confold, which Salt uses, and could
 * disagree with the new ruleset: a TransPort the firewall no longer redirects to). Changes belong in the YAML
 * config; local additions in the override places below, which the package never touches.
 */
export const SHARE_DIR = '/usr/share/qubes-i2p-gateway';
/** Our programs (not commands for users). */
export const LIBEXEC_DIR = '/usr/libexec/qubes-i2p-gateway';
/** The admin's own additions, read after ours (the package ships the directories empty and never writes there). */
export const ETC_DIR = '/etc/qubes-i2p-gateway';
export const UNIT_DIR = '/usr/lib/systemd/system';
/** Persistent state (bind-mounted from /rw in the gateway qube, see persistence.ts). */
export const STATE_DIR = '/var/lib/qubes-i2p-gateway';

/** Tor's runtime directory under /run: systemd creates it for Tor's user when the unit starts, removes it at stop. */
export const TOR_RUNTIME_NAME = 'qubes-i2p-gateway-tor';

/** The waiting page's relay's RuntimeDirectory= (i2pd's user's, mode 0755): the router's figures for the fronts. */
export const WAIT_PAGE_RUNTIME = 'qubes-i2p-gateway-router';

export const PATHS = {
  torrc: `${SHARE_DIR}/torrc`,
  /** Extra torrc lines of the admin's (bridges, say): `%include`d by our torrc, after its own lines. */
  torrcD: `${ETC_DIR}/torrc.d`,
  torData: `${STATE_DIR}/tor`,
  dnsmasqConf: `${SHARE_DIR}/dnsmasq.conf`,
  tinyproxyConf: `${SHARE_DIR}/tinyproxy.conf`,
  tinyproxyFilter: `${SHARE_DIR}/tinyproxy.filter`,
  i2pdConf: `${SHARE_DIR}/i2pd.conf`,
  /** i2pd's data directory (Debian's, our drop-in's --datadir): `keys =` of a tunnel is relative to it. */
  i2pdData: '/var/lib/i2pd',
  /** The published services' i2pd server tunnels (publish.ts), linked into i2pd's tunnels directory. */
  i2pdTunnels: `${SHARE_DIR}/i2pd-tunnels.conf`,
  /**
   * i2pd's main tunnels file (--tunconf) in place of Debian's /etc/i2pd/tunnels.conf, whose IRC tunnel (127.0.0.1:6668
   * to irc.ilita.i2p) would be one IRC identity of the gateway's: no tunnel, comments only.
   */
  i2pdMainTunnels: `${SHARE_DIR}/i2pd-main-tunnels.conf`,
  ruleset: `${SHARE_DIR}/firewall.nft`,
  /** The firewall hook itself; qubes-firewall runs it through the link below. */
  hookProgram: `${LIBEXEC_DIR}/firewall-hook`,
  /** The hook's facts of this gateway (KEY=value lines, read, never executed). */
  hookConf: `${SHARE_DIR}/firewall-hook.conf`,
  /**
   * qubes-firewall.service runs every executable here (from the template) before the user's own hooks. A
   * symbolic link to hookProgram, so the hook is package data too (dpkg never treats a link as a conffile).
   */
  hook: '/etc/qubes/qubes-firewall.d/50-qubes-i2p-gateway',
  /**
   * The Java router's repository key: a conffile next to the apt source that names it (also a conffile), so the two
   * share one lifetime: `apt-get remove` keeps both (apt keeps working, the source still signed), purge removes
   * both. A name of our own: the I2P project's i2p-keyring package installs /usr/share/keyrings/i2p-archive-keyring.gpg,
   * which dpkg would refuse to overwrite with ours (and the other way round).
   */
  keyring: '/etc/apt/keyrings/qubes-i2p-gateway-i2p-archive-keyring.gpg',
  aptSources: '/etc/apt/sources.list.d/i2p.sources',
  /** Our own program (Tor on): DNS over TCP from dnsmasq to Tor's UDP-only DNSPort. Not a command for users. */
  dnsRelay: `${LIBEXEC_DIR}/dns-relay`,
  /**
   * The i2pd web console's password: made at i2pd's first start in the gateway (never in the template or this
   * package), kept with i2pd's state (bind-dirs), readable by root and the router user only. User name: i2pd.
   */
  consolePassword: '/var/lib/i2pd/qubes-i2p-gateway-console.pass',
  /** The table that stops forwarding in a qube that provides network without the gateway's service. */
  offRuleset: `${SHARE_DIR}/off.nft`,
  /** Kernel settings (sysctl.d format) that turn forwarding off: applied by the no-forward unit and udev rule. */
  noForwardSysctl: `${SHARE_DIR}/no-forward.conf`,
  /** Generates i2pd's console password at its first start and i2pd's configuration with it (i2pd.ts). */
  i2pdConsoleAuth: `${LIBEXEC_DIR}/i2pd-console-auth`,
  /** Router i2pd, per-client destinations: the program that gives each client qube its own HTTP proxy (client-proxies.ts). */
  clientProxies: `${LIBEXEC_DIR}/i2pd-client-proxies`,
  /** Its facts of this gateway (JSON, read, never executed). */
  clientProxiesConf: `${SHARE_DIR}/client-proxies.json`,
  /** i2pd's configuration as it runs: the packaged i2pd.conf plus the console's credentials (mode 0600, i2pd). */
  i2pdRuntimeConf: '/run/i2pd/qubes-i2p-gateway.conf',
  /** udev rule: forwarding off for each client interface as it appears (see no-forward.ts). */
  udevRules: '/usr/lib/udev/rules.d/90-qubes-i2p-gateway.rules',
  /** The waiting page's relay between tinyproxy and i2pd's HTTP proxy, and each client's HTTP front (wait-page.ts). */
  waitPage: `${LIBEXEC_DIR}/i2p-wait-page`,
  /**
   * Router i2pd, per-client destinations: the router's figures for the fronts' waiting page, written by the waiting
   * page's relay (i2pd's user: it reads the console's password) in its RuntimeDirectory, read by the fronts.
   */
  routerFacts: `/run/${WAIT_PAGE_RUNTIME}/router-facts.json`,
  /** The gateway's one command for users: `qubes-i2p-gateway status` (gateway/qubes-i2p-gateway in the repository). */
  command: '/usr/bin/qubes-i2p-gateway',
  /** Its manual page (gateway/qubes-i2p-gateway.1, gzipped): lintian wants one for every program in /usr/bin. */
  commandManPage: '/usr/share/man/man1/qubes-i2p-gateway.1.gz',
  /** What `status` checks against (ports, users, units, the router), rendered from the config as data. */
  statusFacts: `${SHARE_DIR}/status.json`,
  /** Tor's runtime directory (the unit's RuntimeDirectory=, Tor's user's, mode 0700) with its control socket. */
  torRuntime: `/run/${TOR_RUNTIME_NAME}`,
  torControl: `/run/${TOR_RUNTIME_NAME}/control`,
  torCookie: `/run/${TOR_RUNTIME_NAME}/control.authcookie`,
  /** Read by Qubes' bind-dirs.sh; /usr/lib is the place for packaged (not admin) snippets. */
  bindDirs: '/usr/lib/qubes-bind-dirs.d/50_qubes-i2p-gateway.conf',
  /** Read by the postinst: daemons and state it undoes outside the qube they belong to (template-guard.ts). */
  templateGuard: `${SHARE_DIR}/template-guard`,
} as const;

export const UNITS = {
  tor: 'qubes-i2p-gateway-tor.service',
  dnsRelay: 'qubes-i2p-gateway-dns-relay.service',
  dnsmasq: 'qubes-i2p-gateway-dnsmasq.service',
  tinyproxy: 'qubes-i2p-gateway-tinyproxy.service',
  /** Router i2pd only: the waiting page's relay (wait-page.ts). */
  waitPage: 'qubes-i2p-gateway-wait-page.service',
  /**
   * Router i2pd, per-client destinations: one client qube's HTTP front, a template: the instance is the port of the
   * client's proxy in i2pd (wait-page.ts); started and stopped by i2pd-client-proxies.
   */
  httpFront: 'qubes-i2p-gateway-http@.service',
  target: 'qubes-i2p-gateway.target',
  /** Forwarding off in every qube from this template that provides network (see no-forward.ts). */
  noForward: 'qubes-i2p-gateway-no-forward.service',
  /** Router i2pd, per-client destinations: each client qube its own HTTP proxy in i2pd (client-proxies.ts). */
  clientProxies: 'qubes-i2p-gateway-client-proxies.service',
} as const;

/** Every drop-in we add to someone else's unit has this name, so `systemctl cat` shows whose it is. */
export const DROPIN = '50-qubes-i2p-gateway.conf';

export function dropInPath(unit: string): string {
  return `${UNIT_DIR}/${unit}.d/${DROPIN}`;
}

export function unitPath(unit: string): string {
  return `${UNIT_DIR}/${unit}`;
}

/** The file the Qubes agent creates in a qube whose qvm-service `<name>` is enabled. */
export function qubesServiceFlag(name: string): string {
  return `/run/qubes-service/${serviceName(name)}`;
}

/**
 * What a qube that provides network has and other qubes have not (qubes-core-agent-linux release4.3,
 * vm-systemd/qubes-sysinit.sh): Qubes writes /qubes-vm-type ProxyVM (or NetVM, without a netvm) into qubesdb for
 * a qube with provides_network, and qubes-sysinit then touches /run/qubes/this-is-proxyvm (this-is-netvm) and
 * enables the services qubes-network and qubes-firewall by default. qubes-network.service, which turns forwarding
 * on, runs only with /run/qubes-service/qubes-network. The template and app qubes have none of the three; any one
 * of them is enough (a user may switch the service qubes-network off, not the qube's type).
 */
export const PROVIDES_NETWORK_FLAGS: readonly string[] = ['/run/qubes/this-is-netvm', '/run/qubes/this-is-proxyvm', qubesServiceFlag('qubes-network')];

/** `ConditionPathExists=` lines that hold in the gateway qube or in any qube that provides network. */
export function gatewayOrNetworkConditions(config: GatewayConfig): string {
  return [gatewayFlag(config), ...PROVIDES_NETWORK_FLAGS].map((f) => `ConditionPathExists=|${f}\n`).join('');
}

/** systemd's own sysctl tool (Qubes' vif-route-qubes calls it by this path; not in PATH). */
export const SYSTEMD_SYSCTL = '/usr/lib/systemd/systemd-sysctl';

/** The flag that marks the gateway qube: `qubes.service` of the config. */
export function gatewayFlag(config: GatewayConfig): string {
  return qubesServiceFlag(config.qubes.service);
}

/**
 * A comment block: `prefix` before each line ('# ' for most formats). Blank lines in `lines` stay bare
 * comment markers so the block reads as one paragraph per idea.
 */
export function comment(lines: readonly string[], prefix = '# '): string {
  return lines.map((l) => (l === '' ? prefix.trimEnd() : `${prefix}${l}`)).join('\n') + '\n';
}

/** The first lines of every generated file: what it is, where it came from, where to change it. */
export function generatedHeader(what: string, prefix = '# '): string {
  return comment(
    [
      `${what}`,
      `Generated by ${PACKAGE} from its YAML config: change the config and rebuild rather than editing here.`,
    ],
    prefix,
  );
}
