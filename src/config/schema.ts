/**
 * The config model: one zod schema gives the TypeScript type, the defaults, the field validation and the JSON
 * Schema for editors. Cross-field rules (ports that collide, names that must differ) live in rules.ts.
 *
 * The config file is hostile input: every string that can reach a shell script, nft ruleset, torrc, unit file
 * or Salt state is constrained here to a character set that needs no quoting anywhere it is used.
 */
import { z } from 'zod';

/** Qubes' own rule for qube names (qubesadmin: letter first; letters, digits, `-`, `_`, `.`; at most 31). */
export const QUBE_NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,30}$/;
/** Names Qubes reserves or that mean something else to qvm-prefs. */
export const RESERVED_QUBE_NAMES = ['dom0', 'none', 'default', 'Domain-0', 'domain-0', 'qubes'] as const;

export const QubeName = z
  .string()
  .max(31, { error: 'is longer than 31 characters. Fix: use a qube name of at most 31 characters' })
  .regex(QUBE_NAME_RE, {
    error: 'is not a valid qube name. Fix: start with a letter and use only letters, digits, "-", "_" and "."',
  })
  .refine((s) => !(RESERVED_QUBE_NAMES as readonly string[]).includes(s), {
    error: 'is a name Qubes reserves. Fix: choose another name (not dom0, none, default)',
  })
  .refine((s) => !s.endsWith('-dm'), {
    error: 'ends in "-dm", which Qubes reserves for device-model stub domains. Fix: choose another name',
  });

/** qvm-service names become /run/qubes-service/<name> and a systemd condition: keep them plain. */
export const ServiceName = z.string().regex(/^[a-z][a-z0-9_-]{0,30}$/, {
  error: 'is not a valid service name. Fix: start with a lower-case letter; use a-z, 0-9, "-" and "_"; at most 31',
});

export const QUBE_LABELS = ['red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black'] as const;

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export const IPv4 = z.string().regex(IPV4_RE, {
  error: 'is not an IPv4 address. Fix: write four numbers 0-255 separated by dots, e.g. 10.100.100.100',
});

export const Cidr = z.string().refine(
  (s) => {
    const [ip, len, ...rest] = s.split('/');
    return rest.length === 0 && ip !== undefined && IPV4_RE.test(ip) && len !== undefined && /^(3[0-2]|[12]?\d)$/.test(len);
  },
  { error: 'is not an IPv4 network. Fix: write ADDRESS/PREFIX, e.g. 10.137.0.0/16' },
);

export const Port = z
  .int({ error: 'is not a whole number. Fix: give a TCP/UDP port number from 1 to 65535' })
  .min(1, { error: 'is below 1. Fix: give a port number from 1 to 65535' })
  .max(65535, { error: 'is above 65535. Fix: give a port number from 1 to 65535' });

/** A Debian and RPM version at once: no hyphen (that would be a revision/release), no epoch. */
export const PackageVersion = z.string().regex(/^[0-9][A-Za-z0-9.+~]{0,63}$/, {
  error: 'is not a package version. Fix: start with a digit; use letters, digits, ".", "+" and "~" (e.g. 0.1.0)',
});

export const Maintainer = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9 .,()-]{0,63} <[A-Za-z0-9._+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+>$/, {
    error: 'is not "Full Name <address@example.org>". Fix: a name of letters, digits, spaces, ".,()-", then an e-mail address in <>',
  });

/** A path to a local file, read by the build (never copied into a script): refuse control characters. */
const LocalPath = z
  .string()
  .min(1, { error: 'is empty. Fix: give the path of the file, or leave the key out' })
  .max(4096, { error: 'is longer than 4096 characters. Fix: give a shorter path' })
  .regex(/^[^\u0000-\u001f\u007f]+$/, { error: 'contains control characters. Fix: give a plain file path' });

/**
 * A published service's short id. It becomes part of unit names (qubes-i2p-gateway-publish-<name>.socket), an i2pd
 * tunnel section header and key file, a torrc HiddenServiceDir and the qrexec policy's comments: letters, digits
 * and "-" need no quoting or escaping in any of them (no "@" or "\\" for systemd, no "]" for the ini, no space
 * for torrc, no "/" for a path).
 */
export const PublishName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/, {
  error: 'is not a valid service name. Fix: use letters, digits and "-" (not first), at most 32, e.g. wiki',
});

/** How many services one gateway publishes at most (each has a loopback listener of its own, see publish.ts). */
export const MAX_PUBLISHED = 32;

/** Debian codenames a template may have. The first is the one Qubes OS 4.3 supports today (see warnings.ts). */
/**
 * The router's settings (router i2pd: rendered into its i2pd.conf, see src/render/gateway/i2pd.ts). The defaults are
 * what the gateway ran with before they could be set: i2pd 2.56's own (bandwidth L, share 100, 10000 transit
 * tunnels, no floodfill) and the address book subscriptions Debian's i2pd package ships (/etc/i2pd/subscriptions.txt).
 */
/** i2pd's bandwidth classes (2.56 Daemon.cpp: one letter K-P or X): K 12, L 48, M 64, N 128, O 256, P 2048 KB/s, X unlimited. */
export const BANDWIDTH_CLASSES = ['K', 'L', 'M', 'N', 'O', 'P', 'X'] as const;
/** A rate below class K's 12 KB/s is not a class I2P knows; above 1000000 KB/s (1 GB/s) is class X, i2pd's cap. */
export const MIN_RATE_KBPS = 12;
export const MAX_RATE_KBPS = 1000000;
/** i2pd's console caps its transit tunnel limit here (2.56 HTTPServer.h TRANSIT_TUNNELS_LIMIT). */
export const MAX_TRANSIT_TUNNELS = 1000000;
export const MAX_SUBSCRIPTIONS = 16;
export const DEFAULT_SUBSCRIPTIONS: readonly string[] = [
  'http://reg.i2p/hosts.txt',
  'http://identiguy.i2p/hosts.txt',
  'http://stats.i2p/cgi-bin/newhosts.txt',
  'http://i2p-projekt.i2p/hosts.txt',
];
export const I2P_DEFAULTS = { bandwidth: 'L', share: 100, transitTunnels: 10000, floodfill: false, subscriptions: DEFAULT_SUBSCRIPTIONS } as const;

/**
 * An address book subscription: plain http to a host in .i2p (DNS labels then "i2p", a b32 address too), an optional
 * port and a path. i2pd separates the list with "," and its config is an ini file: no ",", ";", "#", space,
 * quote or control character can pass.
 */
export const SUBSCRIPTION_RE = /^http:\/\/([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+i2p(:([1-9][0-9]{0,4}))?\/[A-Za-z0-9._~\/?=&%+-]*$/;
const Subscription = z
  .string({ error: 'is not text. Fix: write a URL such as http://reg.i2p/hosts.txt' })
  .max(255, { error: 'is longer than 255 characters. Fix: give a shorter URL' })
  .regex(SUBSCRIPTION_RE, {
    error:
      'is not an http URL of a .i2p host. Fix: write http://HOST.i2p/PATH (plain http: I2P encrypts it end to end; letters, digits and "._~/?=&%+-" in the path), e.g. http://reg.i2p/hosts.txt',
  });

/**
 * The IRC server the client qubes granted IRC reach (i2p.ircServer): a .i2p host name (DNS labels then "i2p", known
 * to the router's address book) or a b32 address (52 characters; 56 or more for an encrypted LeaseSet), then ":"
 * and a port. It goes into i2pd's tunnel file as `destination` and `destinationport`: no character of an ini
 * file's syntax can pass. The default is the server of Debian 13's i2pd tunnels.conf ([IRC-ILITA]).
 */
export const DEFAULT_IRC_SERVER = 'irc.ilita.i2p:6667';
export const IRC_SERVER_RE = /^(?:[a-z2-7]{52}\.b32\.i2p|[a-z2-7]{56,64}\.b32\.i2p|(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+i2p):([1-9][0-9]{0,4})$/;
const IRC_SERVER_FIX = 'Fix: write HOST.i2p:PORT or a b32 address with its port, in lower case, e.g. irc.ilita.i2p:6667 (the default) or irc.postman.i2p:6667';
const IrcServer = z
  .string({ error: `is not text. ${IRC_SERVER_FIX}` })
  .max(255, { error: `is longer than 255 characters. ${IRC_SERVER_FIX}` })
  .regex(IRC_SERVER_RE, { error: `is not a .i2p host or b32 address with a port. ${IRC_SERVER_FIX}` })
  // The two checks below only for a value of the right form (its own error said the rest).
  .refine((s) => !IRC_SERVER_RE.test(s) || !/\.b32\.i2p:/.test(s) || /^[a-z2-7]{52}\.b32\.i2p:|^[a-z2-7]{56,64}\.b32\.i2p:/.test(s), { error: `names a .b32.i2p host that is not a b32 address (52 characters of a-z and 2-7). ${IRC_SERVER_FIX}` })
  .refine((s) => !IRC_SERVER_RE.test(s) || Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, { error: `has a port above 65535. ${IRC_SERVER_FIX}` });

export const DEBIAN_RELEASES = ['trixie', 'bookworm'] as const;
export const I2P_ROUTERS = ['i2pd', 'i2p'] as const;

/**
 * I2P applications a client qube may be granted (i2p.apps.<APP>: a list of qubes). A client's entry in qubes.clients
 * may grant the same with `apps: [APP, ...]`; load.ts merges both spellings into these lists (src/config/clients.ts).
 */
export const I2pAppsSchema = z.strictObject({
  sam: z.array(QubeName, { error: 'is not a list of qube names. Fix: write a list with one qube, e.g. [torrents]' }).default([]).describe('The one client qube (of qubes.clients) that may use i2pd\'s SAM bridge (TCP 7656 on the virtual IP), e.g. for qBittorrent; at most one: SAM has no authentication and finds sessions by ID across all its clients.'),
  i2cp: z.array(QubeName, { error: 'is not a list of qube names. Fix: write a list with one qube, e.g. [biglybt]' }).default([]).describe('The one client qube (of qubes.clients) that may use i2pd\'s I2CP (TCP 7654 on the virtual IP), e.g. for BiglyBT; at most one: I2CP has no authentication.'),
  socks: z.array(QubeName, { error: 'is not a list of qube names. Fix: write a list, e.g. [work, chat]' }).max(500, { error: 'lists more than 500 qubes. Fix: list at most 500' }).default([]).describe('Client qubes (of qubes.clients) that each get an I2P SOCKS proxy of their own (TCP 4447 on the virtual IP; .i2p destinations only), on their own destination (the one of their HTTP proxy).'),
  irc: z.array(QubeName, { error: 'is not a list of qube names. Fix: write a list, e.g. [chat]' }).max(500, { error: 'lists more than 500 qubes. Fix: list at most 500' }).default([]).describe('Client qubes (of qubes.clients) that each get an IRC tunnel of their own to i2p.ircServer (TCP 6668 on the virtual IP, plain IRC, no TLS), on their own destination (the one of their HTTP proxy).'),
});
export type I2pApp = keyof z.output<typeof I2pAppsSchema>;
/** The applications' names, from the schema's keys (a new application is one more key above). */
export const I2P_APPS = Object.keys(I2pAppsSchema.shape) as [I2pApp, ...I2pApp[]];

/**
 * One entry of qubes.clients: a qube's name, or `{ name, apps }` for a client with settings of its own. `apps` grants
 * it I2P applications, the same as listing it under i2p.apps.<APP>.
 */
export const ClientEntry = z.union([
  QubeName,
  z
    .strictObject({
      name: QubeName.describe('The client qube.'),
      apps: z
        .array(z.enum(I2P_APPS, { error: `is not an I2P application the gateway offers. Fix: use one of ${I2P_APPS.join(', ')}` }), {
          error: `is not a list of applications. Fix: write a list, e.g. [${I2P_APPS[0]}]`,
        })
        .max(I2P_APPS.length, { error: `lists more than ${I2P_APPS.length} applications. Fix: list each of ${I2P_APPS.join(', ')} at most once` })
        .default([])
        .describe(`I2P applications for this qube (${I2P_APPS.join(', ')}): the same as listing it under i2p.apps.<APP>.`),
    })
    .describe('A client qube with settings of its own.'),
]);

export const GatewayConfigSchema = z
  .strictObject({
    qubes: z
      .strictObject({
        sourceTemplate: QubeName.default('debian-13-minimal').describe('The Debian template to clone (installed with qvm-template if missing).'),
        template: QubeName.default('debian-13-i2p').describe('The clone that receives the gateway package.'),
        gateway: QubeName.default('sys-i2p').describe('The network-providing gateway qube.'),
        label: z.enum(QUBE_LABELS, { error: `is not a Qubes label. Fix: use one of ${QUBE_LABELS.join(', ')}` }).default('purple').describe('The gateway qube\'s label.'),
        memory: z.int({ error: 'is not a whole number of MiB. Fix: e.g. 400' }).min(256, { error: 'is below 256 MiB. Fix: give at least 256' }).max(65536, { error: 'is above 65536 MiB. Fix: give at most 65536' }).default(400).describe('Initial memory of the gateway qube, MiB.'),
        maxmem: z.int({ error: 'is not a whole number of MiB. Fix: e.g. 1000' }).min(256, { error: 'is below 256 MiB. Fix: give at least 256' }).max(65536, { error: 'is above 65536 MiB. Fix: give at most 65536' }).default(1000).describe('Maximum memory of the gateway qube, MiB (must be at least memory).'),
        vcpus: z.int({ error: 'is not a whole number. Fix: e.g. 2' }).min(1, { error: 'is below 1. Fix: give 1 to 64' }).max(64, { error: 'is above 64. Fix: give 1 to 64' }).default(2).describe('Virtual CPUs of the gateway qube.'),
        autostart: z.boolean({ error: 'is not true or false. Fix: write true or false' }).default(false).describe('Start the gateway qube when Qubes starts.'),
        netvm: QubeName.default('sys-firewall').describe('The gateway qube\'s own network qube (its upstream).'),
        clients: z.array(ClientEntry).max(500, { error: 'lists more than 500 qubes. Fix: list at most 500' }).default([]).describe('App qubes whose netvm is set to the gateway: each a name, or { name, apps } to grant it I2P applications (the same as i2p.apps).'),
        service: ServiceName.default('i2p').describe('The qvm-service that switches the gateway on inside the gateway qube.'),
      })
      .prefault({}),
    debian: z
      .strictObject({
        release: z.enum(DEBIAN_RELEASES, { error: `is not a supported Debian release. Fix: use one of ${DEBIAN_RELEASES.join(', ')}` }).default('trixie').describe('Debian codename of the template (trixie: Debian 13; bookworm, Debian 12, is accepted with a warning: Qubes no longer supports it).'),
      })
      .prefault({}),
    network: z
      .strictObject({
        virtualIp: IPv4.default('10.100.100.100').describe('The one address every .i2p name resolves to.'),
        clientRanges: z.array(Cidr).min(1, { error: 'is empty. Fix: list at least one network, e.g. 10.137.0.0/16' }).max(16, { error: 'lists more than 16 networks. Fix: list at most 16' }).default(['10.137.0.0/16', '10.138.0.0/16']).describe('Networks the client qubes use; tinyproxy allows only these.'),
      })
      .prefault({}),
    tinyproxy: z
      .strictObject({
        port: Port.default(8888).describe('Port of the gateway\'s tinyproxy (HTTP to the virtual IP is redirected here).'),
      })
      .prefault({}),
    tor: z
      .strictObject({
        enabled: z.boolean({ error: 'is not true or false. Fix: write true or false' }).default(true).describe('Send non-I2P TCP and DNS through Tor; false = I2P only, everything else dropped.'),
        transPort: Port.default(9040).describe('Tor TransPort.'),
        dnsPort: Port.default(5353).describe('Tor DNSPort.'),
      })
      .prefault({}),
    i2p: z
      .strictObject({
        router: z.enum(I2P_ROUTERS, { error: 'is not a known I2P router. Fix: use i2pd (Debian) or i2p (the Java router from the I2P repository)' }).default('i2pd').describe('i2pd from Debian main, or i2p, the Java router from the official I2P apt repository.'),
        keyring: LocalPath.optional().describe('For router i2p: the I2P repository keyring file (binary OpenPGP); relative to this file.'),
        clientDestinations: z
          .enum(['per-client', 'shared'], { error: 'is not per-client or shared. Fix: write per-client (each client qube its own I2P destination; router i2pd) or shared (one for all)' })
          .optional()
          .describe('per-client (the default with router i2pd): each client qube its own I2P destination, its own HTTP proxy in i2pd; shared (the only choice with router i2p): one destination for all clients, through tinyproxy.'),
        expose: z
          .strictObject({
            console: z.boolean({ error: 'is not true or false. Fix: write true or false' }).default(false).describe('Refused when true: the router console stays on the gateway\'s loopback (it shows every client\'s I2P streams and can stop the router for all).'),
            irc: z.boolean({ error: 'is not true or false. Fix: write true or false' }).default(false).describe('Refused when true: the router\'s one IRC tunnel for every client qube at once (one I2P identity for all). Grant IRC per client qube with i2p.apps.irc.'),
            i2cp: z.boolean({ error: 'is not true or false. Fix: write true or false' }).default(false).describe('Refused when true: I2CP to every client qube at once (it has no authentication). Grant it to one qube with i2p.apps.i2cp.'),
          })
          .prefault({}),
        bandwidth: z
          .union([z.enum(BANDWIDTH_CLASSES), z.int().min(MIN_RATE_KBPS, { error: `is below ${MIN_RATE_KBPS} KB/s, class K, the lowest I2P knows. Fix: give a rate from ${MIN_RATE_KBPS} to ${MAX_RATE_KBPS} KB/s, or a class letter (K L M N O P X)` }).max(MAX_RATE_KBPS, { error: `is above ${MAX_RATE_KBPS} KB/s (1 GB/s, i2pd's class X). Fix: give a rate from ${MIN_RATE_KBPS} to ${MAX_RATE_KBPS} KB/s, or X for unlimited` })], {
            error: `is not a bandwidth class or a rate. Fix: write one of ${BANDWIDTH_CLASSES.join(' ')} (K 12, L 48, M 64, N 128, O 256, P 2048 KB/s, X unlimited), or a whole number of KB/s from ${MIN_RATE_KBPS} to ${MAX_RATE_KBPS}`,
          })
          .default(I2P_DEFAULTS.bandwidth)
          .describe('The router\'s bandwidth: a class letter (K 12, L 48, M 64, N 128, O 256, P 2048 KB/s, X unlimited) or a rate in KB/s. Router i2pd only.'),
        share: z
          .int({ error: 'is not a whole number of percent. Fix: give 0 to 100, e.g. 80' })
          .min(0, { error: 'is below 0. Fix: give 0 to 100 (percent of the bandwidth the router lends to other routers\' tunnels)' })
          .max(100, { error: 'is above 100. Fix: give 0 to 100 (percent of the bandwidth the router lends to other routers\' tunnels)' })
          .default(I2P_DEFAULTS.share)
          .describe('Percent of the bandwidth the router lends to transit tunnels (other routers\' traffic). Router i2pd only.'),
        transitTunnels: z
          .union([z.literal('none'), z.int().min(1, { error: 'is below 1. Fix: give at least 1 transit tunnel, or none to take part in no other router\'s tunnels' }).max(MAX_TRANSIT_TUNNELS, { error: `is above ${MAX_TRANSIT_TUNNELS}, i2pd's own limit. Fix: give at most ${MAX_TRANSIT_TUNNELS}, or none` })], {
            error: `is not a number of tunnels or none. Fix: give a whole number from 1 to ${MAX_TRANSIT_TUNNELS}, or none to take part in no other router's tunnels`,
          })
          .default(I2P_DEFAULTS.transitTunnels)
          .describe('At most this many transit tunnels (other routers\' tunnels through this one), or none. Router i2pd only.'),
        floodfill: z
          .boolean({ error: 'is not true or false. Fix: write false (or leave it out)' })
          .default(I2P_DEFAULTS.floodfill)
          .describe('Refused when true: a gateway behind Qubes\' NAT is no floodfill (see README).'),
        subscriptions: z
          .array(Subscription, { error: 'is not a list. Fix: list URLs, e.g. [http://reg.i2p/hosts.txt]' })
          .max(MAX_SUBSCRIPTIONS, { error: `lists more than ${MAX_SUBSCRIPTIONS} URLs. Fix: list at most ${MAX_SUBSCRIPTIONS}` })
          .default([...DEFAULT_SUBSCRIPTIONS])
          .describe('Address book subscriptions: hosts.txt files of .i2p sites the router fetches names from (the address helper is off). Router i2pd only.'),
        apps: I2pAppsSchema
          .prefault({})
          .describe('I2P applications granted to chosen client qubes (router i2pd, per-client destinations); every other client gets nothing on their ports.'),
        ircServer: IrcServer.default(DEFAULT_IRC_SERVER).describe('The IRC server (HOST.i2p:PORT or a b32 address with its port) that the IRC tunnels of i2p.apps.irc lead to. A host name must be in the router\'s address book (i2p.subscriptions); a b32 address always works.'),
      })
      .prefault({}),
    publish: z
      .array(
        z.strictObject({
          name: PublishName.describe('Short id of the service (letters, digits, "-"): names its units, tunnel, onion directory.'),
          qube: QubeName.describe('The qube the web application runs in (it needs no netvm); not the gateway, its netvm or its templates.'),
          port: Port.describe('The port the application listens on inside its own qube, on 127.0.0.1.'),
          i2p: z.boolean({ error: 'is not true or false. Fix: write true or false' }).default(true).describe('Publish it as an I2P site (an i2pd server tunnel of type http).'),
          onion: z.boolean({ error: 'is not true or false. Fix: write true or false' }).default(false).describe('Also publish it as a Tor onion service (needs tor.enabled).'),
        }),
      )
      .max(MAX_PUBLISHED, { error: `lists more than ${MAX_PUBLISHED} services. Fix: publish at most ${MAX_PUBLISHED} from one gateway` })
      .default([])
      .describe('Web applications in service qubes, published through the gateway as I2P sites and onion services (qrexec qubes.ConnectTCP, no network for the service qube).'),
    package: z
      .strictObject({
        version: PackageVersion.default('0.1.0').describe('Version of the .deb and the .rpm.'),
        release: z.int({ error: 'is not a whole number. Fix: e.g. 1' }).min(1, { error: 'is below 1. Fix: give 1 or more' }).max(9999, { error: 'is above 9999. Fix: give at most 9999' }).default(1).describe('RPM release number.'),
        maintainer: Maintainer.default('qubes-i2p-gateway maintainers <maintainers@qubes-i2p-gateway.org>').describe('Maintainer of both packages.'),
      })
      .prefault({}),
  })
  .describe('qubes-i2p-gateway configuration');

/** The config as written and validated field by field: qubes.clients may hold objects. */
export type WrittenConfig = z.output<typeof GatewayConfigSchema>;
/**
 * The config every rule and renderer sees (clients.ts normalizes a WrittenConfig into it): qubes.clients is names,
 * and each client object's apps are in i2p.apps.<APP>.
 */
export type GatewayConfig = Omit<WrittenConfig, 'qubes'> & { readonly qubes: Omit<WrittenConfig['qubes'], 'clients'> & { readonly clients: string[] } };
export type GatewayConfigInput = z.input<typeof GatewayConfigSchema>;
