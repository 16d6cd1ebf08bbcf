/**
 * Router i2pd (Debian's): /usr/share/qubes-i2p-gateway/i2pd.conf and a drop-in that runs Debian's i2pd.service only
 * in the gateway qube, in the foreground, with that config.
 *
 * Debian's unit (/usr/lib/systemd/system/i2pd.service; the same shape in Debian 13's 2.56 and 12's 2.45):
 * Type=forking, `ExecStart=<i2pd> $DAEMON_OPTS` with --daemon, a pid file and a log file under /var/log/i2pd,
 * User=i2pd, RuntimeDirectory=i2pd, no Restart=, and no condition, so it starts in every qube built from the
 * template. The binary moved: Debian 13 ships only /usr/bin/i2pd, Debian 12 started /usr/sbin/i2pd. Our
 * ExecStart= names it bare, so systemd's own search finds it on either (a fixed path fails with 203/EXEC).
 *
 * The web console always has a password (http.auth): made by i2pd-console-auth at i2pd's first start in the
 * gateway, kept with i2pd's state (bind-dirs), never in the template or this package. i2pd reads one config file,
 * so that program writes the one i2pd runs with, under i2pd's runtime directory (0700): the packaged i2pd.conf
 * plus the credentials. A command line option would show the password in /proc to every local user. It runs as
 * i2pd's user, never as root: both files are in directories that user owns, where it could plant a symbolic link
 * under any name the program writes (as root, that would truncate and hand over any file of the system).
 */

/** The console's user name (i2pd's own default, written out). */
export const CONSOLE_USER = 'i2pd';
/** Seconds between a router's death and its restart. */
export const ROUTER_RESTART_SEC = 5;
import type { GatewayConfig } from '../../config/schema.ts';
import { clientDestinations, ROUTERS } from '../../config/routers.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { comment, dropInPath, gatewayFlag, generatedHeader, PATHS, UNITS } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { renderOtherRouterDropIn } from './java-router.ts';
import { port } from './values.ts';

const I2PD = ROUTERS.i2pd;
/** i2pd's SAM bridge: TCP (sessions, streams) and UDP (datagrams). */
export const SAM_PORT = 7656;
export const SAM_UDP_PORT = 7655;

export function renderI2pdConf(config: GatewayConfig): string {
  const apps = config.i2p.apps;
  return (
    generatedHeader('i2pd for qubes-i2p-gateway: the I2P router.') +
    comment([
      '',
      'Every listener is on loopback: tinyproxy and the client proxies\' relay reach the proxies there, and the',
      'firewall DNATs a granted qube\'s application ports to it. Nothing here binds an address client qubes or the',
      'upstream network could reach directly.',
    ]) +
    '\n' +
    comment(['stdout is the journal (journalctl -u i2pd).']) +
    'log = stdout\nloglevel = warn\n' +
    comment(['IPv4 only: the firewall drops client IPv6, and Qubes gives qubes IPv6 only when asked to.']) +
    'ipv4 = true\nipv6 = false\n' +
    renderRouterSettings(config) +
    '\n[http]\n' +
    comment([
      'The web console. Its password is not here: i2pd runs with a copy of this file that adds it, made at its start',
      `by ${PATHS.i2pdConsoleAuth} (the password itself: ${PATHS.consolePassword}, made in the gateway).`,
    ]) +
    comment([
      'On loopback only, never exposed to client qubes (the config refuses i2p.expose.console): it shows every',
      'client\'s I2P streams and stops the router for all. i2pd answers only requests for a local host name, so a',
      '.i2p page cannot reach it by name either.',
    ]) +
    `enabled = true\naddress = 127.0.0.1\nport = ${port(I2PD.exposable.console)}\n` +
    '\n[httpproxy]\n' +
    comment(['tinyproxy forwards .i2p requests here.']) +
    `enabled = true\naddress = 127.0.0.1\nport = ${port(I2PD.httpProxyPort)}\n` +
    comment(['No outproxy: this proxy serves .i2p only; clearnet goes through Tor or nowhere.']) +
    'outproxy =\n' +
    comment([
      'No address helper: a request with ?i2paddresshelper= would write the addressbook every client qube shares (and',
      'bind-dirs keeps): one client could send all others to its own site for a name. Refused with an error page.',
    ]) +
    'addresshelper = false\n' +
    (clientDestinations(config) === 'per-client'
      ? comment([
          'No keys of its own: the router\'s shared local destination (no client\'s HTTP comes here: each has its own',
          'proxy). i2pd 2.56\'s default (transient-proxy) makes a new destination for this proxy at every reload and',
          'never frees the old one (it counts it twice); i2pd-client-proxies reloads i2pd whenever a client comes or',
          'goes, and each reload left one more destination building tunnels through other routers until i2pd stopped',
          '(test/render/daemons.test.ts). The shared one, transient too, is renewed at each reload and the old one freed.',
        ]) + 'keys =\n'
      : '') +
    '\n[socksproxy]\n' +
    comment(['Off: nothing in the gateway uses SOCKS into I2P.']) +
    'enabled = false\n' +
    '\n[sam]\n' +
    (apps.sam.length > 0
      ? comment([
          `For client qube ${apps.sam[0]} only (i2p.apps.sam): the firewall DNATs the virtual IP's port ${SAM_PORT} to it from that`,
          'qube\'s address alone (dom0 writes it into the gateway\'s qubesdb). SAM has no authentication and finds sessions',
          `by ID across all its clients: one qube. UDP (datagrams, ${SAM_UDP_PORT}) stays on loopback, out of clients' reach.`,
        ]) + `enabled = true\naddress = 127.0.0.1\nport = ${port(SAM_PORT)}\nportudp = ${port(SAM_UDP_PORT)}\n`
      : 'enabled = false\n') +
    '\n[bob]\nenabled = false\n' +
    '\n[i2pcontrol]\nenabled = false\n' +
    '\n[i2cp]\n' +
    (apps.i2cp.length > 0
      ? comment([`For client qube ${apps.i2cp[0]} only (i2p.apps.i2cp): the firewall DNATs the virtual IP's port ${I2PD.exposable.i2cp} to it from that qube's address alone. No authentication: one qube.`]) + `enabled = true\naddress = 127.0.0.1\nport = ${port(I2PD.exposable.i2cp)}\n`
      : 'enabled = false\n') +
    '\n[upnp]\n' +
    comment(['Never ask a router upstream to open ports: the gateway sits behind Qubes\' NAT on purpose.']) +
    'enabled = false\n' +
    '\n[reseed]\n' +
    comment(['Check the signatures of reseed bundles (su3, against the certificates Debian\'s i2pd ships): always on.']) +
    'verify = true\n' +
    '\n[addressbook]\n' +
    comment([
      'Where names come from (i2p.subscriptions): the address helper is off, so these lists are how names such as',
      'stats.i2p become known. i2pd fetches one list at a time, through its own tunnels: 3 minutes after its start',
      '(reg.i2p\'s list while its address book is empty), then 12 hours after each list that brought names.',
      'A subscriptions.txt in the data directory would override this line (Debian ships one as a',
      `link): ${PATHS.i2pdConsoleAuth} moves it aside at each start.`,
    ]) +
    `subscriptions = ${config.i2p.subscriptions.join(',')}\n` +
    (config.i2p.transitTunnels === 'none'
      ? ''
      : '\n[limits]\n' + comment(['At most this many transit tunnels (i2p.transitTunnels).']) + `transittunnels = ${config.i2p.transitTunnels}\n`)
  );
}

/** The router settings of the config that i2pd reads before its first section (bandwidth, share, transit, floodfill). */
function renderRouterSettings(config: GatewayConfig): string {
  const i2p = config.i2p;
  return (
    comment([
      '',
      'Router settings (i2p.bandwidth, .share, .transitTunnels). Bandwidth: a class letter (K 12, L 48, M 64, N 128,',
      'O 256, P 2048 KB/s, X unlimited) or KB/s; share: percent of it lent to other routers\' tunnels.',
    ]) +
    `bandwidth = ${i2p.bandwidth}\nshare = ${i2p.share}\n` +
    (i2p.transitTunnels === 'none'
      ? comment(['i2p.transitTunnels: none. This router takes part in no other router\'s tunnels.']) + 'notransit = true\n'
      : 'notransit = false\n') +
    comment(['Never a floodfill (the config refuses it): behind Qubes\' NAT, and a public role (README).']) +
    'floodfill = false\n'
  );
}

export function renderI2pdDropIn(config: GatewayConfig): string {
  return (
    comment([
      'qubes-i2p-gateway: i2pd runs only in the gateway qube (its qvm-service), never in the template or other qubes',
      'built from it, and there with /usr/share/qubes-i2p-gateway/i2pd.conf.',
    ]) +
    '[Unit]\n' +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    comment(['After the firewall hook has restricted the gateway\'s own traffic.']) +
    'After=qubes-firewall.service\n' +
    `PartOf=${UNITS.target}\n` +
    '\n[Service]\n' +
    comment([
      'Debian\'s unit forks (--daemon) with a pid file and a log file: run in the foreground instead, logging to the',
      'journal. A bare command name: Debian 13 has i2pd in /usr/bin, Debian 12 in /usr/sbin; systemd\'s own search',
      'finds either. The data directory and the tunnels directory stay Debian\'s; the main tunnels file is',
      `${PATHS.i2pdMainTunnels}, not Debian's tunnels.conf, whose IRC tunnel (6668, to`,
      'irc.ilita.i2p) would be one IRC identity for every user of the gateway: a client qube granted IRC (i2p.apps.irc)',
      'gets a tunnel of its own, on its own destination.',
    ]) +
    'Type=simple\n' +
    'PIDFile=\n' +
    comment([
      'Before i2pd, as i2pd\'s user (no "+": never root, the two files are in that user\'s own directories): the console',
      `password (made once, kept in i2pd's state) and the config i2pd runs with, ${PATHS.i2pdRuntimeConf} (i2pd's`,
      'runtime directory, which systemd makes before this and removes after); it also moves a subscriptions.txt of the',
      'data directory aside, which would override the config\'s address book subscriptions.',
    ]) +
    'ExecStartPre=\n' +
    `ExecStartPre=${PATHS.i2pdConsoleAuth} ${PATHS.i2pdConf} ${PATHS.i2pdRuntimeConf} ${PATHS.consolePassword} ${CONSOLE_USER} ${PATHS.i2pdData}\n` +
    'ExecStart=\n' +
    `ExecStart=i2pd --conf=${PATHS.i2pdRuntimeConf} --tunconf=${PATHS.i2pdMainTunnels} --tunnelsdir=/etc/i2pd/tunnels.conf.d --datadir=/var/lib/i2pd\n` +
    comment([
      'Debian\'s unit has no Restart=. Always: a crash and the console\'s "terminate" (exit status 0) alike would leave',
      'every client qube without I2P until the gateway restarts.',
    ]) +
    'Restart=always\n' +
    `RestartSec=${ROUTER_RESTART_SEC}\n` +
    comment([
      'Files i2pd creates are its own: the router\'s keys, and a published site\'s (its address and identity). Debian\'s',
      '/var/lib/i2pd is 0755 and its unit sets no UMask=, so the default 0022 would leave every key readable by',
      'every user of the gateway.',
    ]) +
    'UMask=0077\n' +
    comment([
      'Debian\'s unit has no sandbox at all (systemd-analyze security: 9.2, "UNSAFE"). The one our other daemons run',
      'under, checked with Debian 13\'s i2pd 2.56 under a booted systemd (test/boot/daemons.test.ts). It writes only',
      'its state directory (keys, netDb, addressbook, a published site\'s keys); its runtime and log directories are',
      'Debian\'s unit\'s RuntimeDirectory= and LogsDirectory=, writable by those. No capabilities: every port it',
      'opens is above 1024. The ExecStartPre= program above runs as i2pd\'s user inside this same sandbox.',
    ]) +
    I2PD_SANDBOX.join('\n') +
    '\n'
  );
}

/** SANDBOX for i2pd (UMask= is set above), with what i2pd itself needs and no more. */
const I2PD_SANDBOX: readonly string[] = [
  ...SANDBOX.filter((l) => !l.startsWith('UMask=')),
  `ReadWritePaths=${PATHS.i2pdData}`,
  'CapabilityBoundingSet=',
  'ProtectProc=invisible',
];

/**
 * i2pd's main tunnels file (the drop-in's --tunconf): no tunnel. Debian's /etc/i2pd/tunnels.conf has one, [IRC-ILITA],
 * a client tunnel on 127.0.0.1:6668 to irc.ilita.i2p with keys irc-keys.dat: one IRC identity that nothing of the
 * gateway uses (no client reaches the gateway's loopback) and that would still build tunnels in the router all
 * clients share. Each client qube granted IRC has a tunnel of its own (i2p.apps.irc, gateway/i2pd-client-proxies).
 */
export function renderI2pdMainTunnels(): string {
  return comment([
    'qubes-i2p-gateway: i2pd\'s main tunnels file (--tunconf), in place of Debian\'s /etc/i2pd/tunnels.conf: no tunnel.',
    'Debian\'s file has an IRC tunnel to irc.ilita.i2p on 127.0.0.1:6668, one I2P identity that nothing here would use.',
    'IRC is a tunnel of each granted client qube\'s own (i2p.apps.irc, on its own destination), written by',
    'i2pd-client-proxies in /etc/i2pd/tunnels.conf.d; put tunnels of your own there too, in a file of your own.',
  ]);
}

/** `consoleAuth`: gateway/i2pd-console-auth, the program that makes the console's password (see its header). */
export function renderI2pd(config: GatewayConfig, consoleAuth: string): readonly RenderedFile[] {
  return [
    textFile(PATHS.i2pdConf, renderI2pdConf(config)),
    textFile(dropInPath(I2PD.unit), renderI2pdDropIn(config)),
    textFile(PATHS.i2pdMainTunnels, renderI2pdMainTunnels()),
    textFile(PATHS.i2pdConsoleAuth, consoleAuth, 0o755),
    // The Java router, should a former build have installed it, never starts in the gateway beside i2pd.
    textFile(dropInPath(ROUTERS.i2p.unit), renderOtherRouterDropIn(config, ROUTERS.i2p.unit)),
  ];
}
