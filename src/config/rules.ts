/**
 * Cross-field rules: each a small pure function from a parsed config to issues. Field-level rules are in
 * schema.ts; these are the ones a JSON Schema cannot say, so each is named and described here.
 */
import { I2P_APPS, I2P_DEFAULTS, type GatewayConfig, type I2pApp } from './schema.ts';
import { AS_NORMALIZED, type ConfigPath, type Written } from './clients.ts';
import { CLIENT_PROXY_PORTS, clientDestinations, ROUTERS, WAIT_PAGE_PORT } from './routers.ts';
import { publishListenPort } from './publish.ts';

export interface ConfigIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly input?: unknown;
}

/** A rule reads the normalized config; `w` says where its client names and grants were written (clients.ts). */
type Rule = (c: GatewayConfig, w: Written) => ConfigIssue[];

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function inCidr(ip: string, cidr: string): boolean {
  const [net, lenText] = cidr.split('/');
  const len = Number(lenText);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === ((ipToInt(net ?? '') & mask) >>> 0);
}

function cidrsOverlap(a: string, b: string): boolean {
  const [na, la] = a.split('/');
  const [nb, lb] = b.split('/');
  return inCidr(na ?? '', `${nb}/${Math.min(Number(la), Number(lb))}`) || inCidr(nb ?? '', `${na}/${Math.min(Number(la), Number(lb))}`);
}

/** Networks the virtual IP must stay out of, and why. */
const FORBIDDEN_VIP_NETS: readonly [string, string][] = [
  ['10.137.0.0/16', "Qubes' qube addresses"],
  ['10.138.0.0/16', "Qubes' disposable qube addresses"],
  ['10.139.0.0/16', "Qubes' virtual DNS addresses"],
  ['10.192.0.0/10', "Tor's VirtualAddrNetworkIPv4"],
  ['127.0.0.0/8', 'loopback'],
  ['0.0.0.0/8', '"this network"'],
  ['169.254.0.0/16', 'link-local addresses'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved and broadcast addresses'],
];

/** The qube names must be distinct where Qubes needs them to be. */
export const distinctQubes: Rule = (c, w) => {
  const issues: ConfigIssue[] = [];
  const q = c.qubes;
  const roles: [keyof typeof q & string, string][] = [
    ['sourceTemplate', q.sourceTemplate],
    ['template', q.template],
    ['gateway', q.gateway],
    ['netvm', q.netvm],
  ];
  for (let i = 0; i < roles.length; i++) {
    for (let j = 0; j < i; j++) {
      const [ki, vi] = roles[i]!;
      const [kj, vj] = roles[j]!;
      if (vi === vj) {
        issues.push({ path: ['qubes', ki], input: vi, message: `is also qubes.${kj}. Fix: give qubes.${ki} a name of its own` });
      }
    }
  }
  const seen = new Map<string, number>();
  q.clients.forEach((name, i) => {
    // A name and an object with the same name, or two objects, are the same qube twice too.
    const before = seen.get(name);
    if (before !== undefined) {
      issues.push({ path: w.client(i), input: name, message: `is listed twice (also at ${w.client(before).join('.')}). Fix: list each client qube once (one entry, { name: ${name}, apps: [...] } to grant it applications)` });
    } else {
      seen.set(name, i);
    }
    for (const [k, v] of roles) {
      if (v === name) issues.push({ path: w.client(i), input: name, message: `is qubes.${k}, which cannot be a client of the gateway. Fix: remove it from qubes.clients` });
    }
  });
  return issues;
};

export const memoryRange: Rule = (c) =>
  c.qubes.maxmem < c.qubes.memory
    ? [{ path: ['qubes', 'maxmem'], input: c.qubes.maxmem, message: `is below qubes.memory (${c.qubes.memory}). Fix: make maxmem at least memory` }]
    : [];

export const virtualIpPlacement: Rule = (c) => {
  const vip = c.network.virtualIp;
  const issues: ConfigIssue[] = [];
  for (const [net, why] of FORBIDDEN_VIP_NETS) {
    if (inCidr(vip, net)) {
      issues.push({ path: ['network', 'virtualIp'], input: vip, message: `is inside ${net} (${why}). Fix: choose an address outside it, e.g. 10.100.100.100` });
    }
  }
  c.network.clientRanges.forEach((range) => {
    if (inCidr(vip, range)) {
      issues.push({ path: ['network', 'virtualIp'], input: vip, message: `is inside the client range ${range}. Fix: choose an address outside network.clientRanges` });
    }
  });
  return issues;
};

export const clientRangesPlacement: Rule = (c) => {
  const issues: ConfigIssue[] = [];
  c.network.clientRanges.forEach((range, i) => {
    for (const net of ['127.0.0.0/8', '10.192.0.0/10', '0.0.0.0/8', '224.0.0.0/4']) {
      if (cidrsOverlap(range, net)) issues.push({ path: ['network', 'clientRanges', i], input: range, message: `overlaps ${net}. Fix: list only the networks your client qubes use (10.137.0.0/16, 10.138.0.0/16)` });
    }
  });
  return issues;
};

/**
 * No two listeners of the gateway on one port: dnsmasq 53, tinyproxy, Tor's two ports, the router's ports, and
 * the loopback listener of each published service (publish.ts: 28080 + its place in the list).
 */
export const distinctPorts: Rule = (c) => {
  const router = ROUTERS[c.i2p.router];
  const taken = new Map<number, string>([[53, 'dnsmasq (DNS)']]);
  for (const p of router.listens) taken.set(p, `the ${c.i2p.router} router`);
  if (c.i2p.router === 'i2pd') taken.set(WAIT_PAGE_PORT, "the waiting page's relay (127.0.0.1, in front of i2pd's HTTP proxy)");
  const issues: ConfigIssue[] = [];
  c.publish.forEach((_s, i) => {
    const listen = publishListenPort(i);
    const holder = taken.get(listen);
    if (holder !== undefined) {
      issues.push({ path: ['publish', i], message: `would listen on 127.0.0.1:${listen}, which ${holder} uses. Fix: publish fewer services` });
    } else {
      taken.set(listen, `the gateway's listener for publish.${i} (127.0.0.1:${listen}, from its place in the list)`);
    }
  });
  const ours: [readonly (string | number)[], number][] = [[['tinyproxy', 'port'], c.tinyproxy.port]];
  if (c.tor.enabled) {
    ours.push([['tor', 'transPort'], c.tor.transPort], [['tor', 'dnsPort'], c.tor.dnsPort]);
  }
  for (const [path, port] of ours) {
    const holder = taken.get(port);
    if (holder !== undefined) {
      issues.push({ path, input: port, message: `is already used by ${holder}. Fix: choose another port` });
    } else {
      taken.set(port, path.join('.'));
    }
  }
  return issues;
};

export const keyringOnlyForJavaRouter: Rule = (c) =>
  c.i2p.keyring !== undefined && !ROUTERS[c.i2p.router].fromI2pRepo
    ? [{ path: ['i2p', 'keyring'], input: c.i2p.keyring, message: 'is only used with router i2p (i2pd comes from Debian). Fix: remove i2p.keyring or set i2p.router: i2p' }]
    : [];

/**
 * The router console is never exposed to client qubes. It lists every client's I2P streams (local destinations,
 * remote b32 addresses) with a button to close each, and stops the router for everyone; with one password for all
 * (i2pd's, made in the gateway) any client the user browses from would see the others and could cut them off. The
 * Java router's console has no password this build could set at all. The console stays on the gateway's loopback.
 */
export const noExposedConsole: Rule = (c) =>
  c.i2p.expose.console
    ? [
        {
          path: ['i2p', 'expose', 'console'],
          input: true,
          message:
            "cannot be exposed to client qubes: the router console shows every client's I2P streams (local destinations, remote addresses) and can close them or stop the router for all, with one password for all clients. Fix: remove i2p.expose.console (or set it to false); to look at the router, run `qubes-i2p-gateway status` in the gateway, or from a root shell there `curl` http://127.0.0.1:7070/ (i2pd) with the console's user and password",
        },
      ]
    : [];

/**
 * The distro's own tor and tinyproxy units start only where the qvm-service of their own name is on (our drop-ins);
 * naming the gateway's service after one of them would start that daemon in the gateway beside ours.
 */
export const serviceNotADistroDaemon: Rule = (c) =>
  ['tor', 'tinyproxy'].includes(c.qubes.service)
    ? [{ path: ['qubes', 'service'], input: c.qubes.service, message: `would also start the distribution's own ${c.qubes.service} in the gateway. Fix: choose another service name, e.g. i2p` }]
    : [];

/**
 * qvm-services that Qubes OS 4.3 turns on without anyone ticking them: the gateway's service must be one that is
 * on only in the gateway, or the gateway would run in the template, in every app qube or in every netvm.
 *
 * From QubesOS/qubes-core-agent-linux, branch release4.3 (commit 35a5720b480026778884397e0eb81f607d3d7365),
 * vm-systemd/qubes-sysinit.sh: DEFAULT_ENABLED_NETVM, _PROXYVM, _APPVM, _TEMPLATEVM and DEFAULT_ENABLED (touched
 * under /run/qubes-service/ when qubesdb does not say otherwise). From QubesOS/qubes-core-admin, branch release4.3
 * (commit 68fc8b6bb9176dafac77471efa8599f6dc04da70), qubes/app.py: `clocksync`, set on the clock qube when it is
 * chosen. (core-admin's ext/services.py only exports the features a user set, and resets meminfo-writer.)
 */
export const QUBES_DEFAULT_SERVICES: readonly string[] = [
  'network-manager',
  'qubes-network',
  'qubes-update-check',
  'qubes-updates-proxy',
  'meminfo-writer',
  'qubes-firewall',
  'software-rendering',
  'tracker',
  'evolution-data-server',
  'updates-proxy-setup',
  'clocksync',
];

export const serviceNotOnByDefault: Rule = (c) =>
  QUBES_DEFAULT_SERVICES.includes(c.qubes.service)
    ? [
        {
          path: ['qubes', 'service'],
          input: c.qubes.service,
          message: `is a service Qubes OS turns on by default in some qubes (${QUBES_DEFAULT_SERVICES.join(', ')}): the gateway would run in the template, app qubes or other netvms too. Fix: choose a name of its own, e.g. i2p`,
        },
      ]
    : [];

/**
 * Published services: names unique (they name units, tunnels and onion directories); each qube a service qube,
 * not one of the gateway's own, and not a client (publish.sls gives it no netvm: an application that can reach a
 * network, even through the gateway, may give away the operator's address); one entry per qube and port (a second would add the same qrexec permission
 * again under another name); something to publish; an onion only with Tor; an I2P site only with i2pd.
 */
export const publishPlacement: Rule = (c) => {
  const issues: ConfigIssue[] = [];
  const q = c.qubes;
  const roles: [string, string][] = [
    ['gateway', q.gateway],
    ['netvm', q.netvm],
    ['template', q.template],
    ['sourceTemplate', q.sourceTemplate],
  ];
  const names = new Map<string, number>();
  const backends = new Map<string, number>();
  c.publish.forEach((s, i) => {
    const at = (key: string): (string | number)[] => ['publish', i, key];
    const sameName = names.get(s.name);
    if (sameName !== undefined) issues.push({ path: at('name'), input: s.name, message: `is also publish.${sameName}.name. Fix: give each published service a name of its own` });
    names.set(s.name, i);
    const client = q.clients.indexOf(s.qube);
    if (client >= 0) {
      issues.push({
        path: at('qube'),
        input: s.qube,
        message: `is also qubes.clients.${client}: a service qube has no netvm (i2p-gateway.publish sets it to none), so it cannot be a client of the gateway, and an application that may reach any network can reveal the operator's address. Fix: remove ${s.qube} from qubes.clients, or run the application in another qube`,
      });
    }
    for (const [role, name] of roles) {
      if (s.qube === name) {
        issues.push({
          path: at('qube'),
          input: s.qube,
          message: `is qubes.${role}: the gateway publishes services of other qubes, never its own or its upstream's. Fix: run the application in a qube of its own and name that qube here`,
        });
      }
    }
    const backend = `${s.qube}:${s.port}`;
    const sameBackend = backends.get(backend);
    if (sameBackend !== undefined) issues.push({ path: at('port'), input: s.port, message: `of qube ${s.qube} is already published as publish.${sameBackend}. Fix: publish each qube's port once (one entry can be both i2p and onion)` });
    backends.set(backend, i);
    if (!s.i2p && !s.onion) issues.push({ path: at('i2p'), input: s.i2p, message: 'is false, and so is onion: nothing would be published. Fix: set i2p: true or onion: true, or remove the entry' });
    if (s.onion && !c.tor.enabled) issues.push({ path: at('onion'), input: s.onion, message: 'needs Tor, which tor.enabled turns off. Fix: set tor.enabled: true, or onion: false' });
    if (s.i2p && c.i2p.router !== 'i2pd') {
      issues.push({
        path: at('i2p'),
        input: s.i2p,
        message: 'is not supported with router i2p yet (the Java router\'s tunnels are not generated). Fix: set i2p.router: i2pd, or i2p: false with onion: true to publish it as an onion service only',
      });
    }
  });
  return issues;
};

/** Per-client destinations are i2pd tunnels: the Java router's tunnels are not generated (its own config, its own user). */
export const clientDestinationsRouter: Rule = (c) =>
  c.i2p.router === 'i2p' && c.i2p.clientDestinations === 'per-client'
    ? [{ path: ['i2p', 'clientDestinations'], input: 'per-client', message: 'needs router i2pd: the Java router\'s tunnels are not generated, so its clients share one destination. Fix: set i2p.router: i2pd, or remove i2p.clientDestinations (or write shared)' }]
    : [];

/** The per-client proxies' loopback ports (CLIENT_PROXY_PORTS) are the gateway's: no configured port may be among them. */
export const clientProxyPorts: Rule = (c) => {
  if (clientDestinations(c) !== 'per-client') return [];
  const { first, count } = CLIENT_PROXY_PORTS;
  const ours: [readonly (string | number)[], number][] = [[['tinyproxy', 'port'], c.tinyproxy.port]];
  if (c.tor.enabled) ours.push([['tor', 'transPort'], c.tor.transPort], [['tor', 'dnsPort'], c.tor.dnsPort]);
  return ours
    .filter(([, p]) => p >= first && p < first + count)
    .map(([path, p]) => ({ path, input: p, message: `is among ${first}-${first + count - 1}, the loopback ports of the client qubes' own I2P proxies. Fix: choose a port outside that range` }));
};

/**
 * No floodfill. A floodfill stores and answers the network database for the whole I2P network: it must be reachable
 * from outside (a gateway behind Qubes' NAT and sys-firewall is "Firewalled", and i2pd drops the floodfill cap of
 * an unreachable router), it carries far more traffic and stays up for days, and its role is public in the
 * network database: it would mark the user's address as a long-lived I2P router to anyone who looks.
 */
export const noFloodfill: Rule = (c) =>
  c.i2p.floodfill
    ? [
        {
          path: ['i2p', 'floodfill'],
          input: true,
          message:
            "cannot be turned on: a floodfill serves the I2P network database to every router, must be reachable from the internet (a gateway behind Qubes' NAT is not), carries much more traffic, and is listed publicly as one. Fix: remove i2p.floodfill (or set it to false)",
        },
      ]
    : [];

/** Each subscription once: i2pd would fetch the same list twice. */
export const distinctSubscriptions: Rule = (c) => {
  const seen = new Map<string, number>();
  const issues: ConfigIssue[] = [];
  c.i2p.subscriptions.forEach((url, i) => {
    const key = url.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) issues.push({ path: ['i2p', 'subscriptions', i], input: url, message: `is also i2p.subscriptions.${first}. Fix: list each URL once` });
    else seen.set(key, i);
  });
  return issues;
};

/**
 * The Java router keeps its settings in its own config directory, which it writes itself as its user (router.config,
 * addressbook/subscriptions.txt): this build renders them for i2pd only, so a changed value with router i2p would
 * silently do nothing. Refused, with the way to set it in the Java router (README, "The router's settings").
 */
export const routerSettingsOnlyForI2pd: Rule = (c) => {
  if (c.i2p.router === 'i2pd') return [];
  const issues: ConfigIssue[] = [];
  const keys = ['bandwidth', 'share', 'transitTunnels', 'subscriptions'] as const;
  for (const key of keys) {
    const value = c.i2p[key];
    const dflt = I2P_DEFAULTS[key];
    const same = Array.isArray(value) ? JSON.stringify(value) === JSON.stringify(dflt) : value === dflt;
    if (!same) {
      issues.push({
        path: ['i2p', key],
        input: value,
        message: `is only rendered for router i2pd: the Java router (i2p.router: i2p) keeps its settings in its own config directory, which it writes itself. Fix: remove i2p.${key}, and set it in the Java router's console in the gateway (README, "The router's settings")`,
      });
    }
  }
  return issues;
};

/**
 * I2P applications for chosen client qubes (i2p.apps). i2pd's SAM bridge and I2CP have no authentication, and SAM
 * finds a session by its ID across all its clients: a second client that learns (or guesses) a session ID can send
 * and receive on the first client's destination. So each goes to one client qube at most, and never to all at once
 * (the former i2p.expose.i2cp). The gateway knows clients only by address: dom0's clients.sls writes the granted
 * qube's address into the gateway's qubesdb (a vm-config feature), which is done for the qubes of qubes.clients.
 */
export const APP_REASON = {
  sam: "i2pd's SAM bridge has no authentication and finds sessions by their ID across all its clients, so a second client that learns a session ID can use the first client's I2P destination",
  i2cp: "i2pd's I2CP has no authentication: every client that reaches it could open sessions with the router in the name of the others",
} as const;

export const grantedApps: Rule = (c, w) => {
  const issues: ConfigIssue[] = [];
  if (c.i2p.expose.i2cp) {
    issues.push({
      path: ['i2p', 'expose', 'i2cp'],
      input: true,
      message: `would open I2CP to every client qube at once: ${APP_REASON.i2cp}. Fix: remove i2p.expose.i2cp and grant I2CP to one client qube, e.g. i2p.apps.i2cp: [torrents] (a qube of qubes.clients)`,
    });
  }
  /** Where the user wrote the i-th grant of an app, as a place to remove it from: i2p.apps.sam, or "sam" from qubes.clients.2.apps. */
  const from = (app: I2pApp, i: number): string => {
    const path = w.grant(app, i);
    return path[0] === 'i2p' ? `i2p.apps.${app}` : `"${app}" from ${path.slice(0, -1).join('.')}`;
  };
  /** Every place that grants an app, for a fix that removes them all. */
  const allFrom = (app: I2pApp): string => [...new Set(c.i2p.apps[app].map((_q, i) => from(app, i)))].join(' and ');
  /** The path of the app's grants as one: i2p.apps.<app> when the user listed it there (as before client objects), else its first grant. */
  const grantsAt = (app: I2pApp): ConfigPath => (w.listed(app) ? ['i2p', 'apps', app] : w.grant(app, 0));
  /** Each app's grants: each qube once (both spellings, i2p.apps and a client's apps, count), and each a client. */
  const firstGrant = new Map<I2pApp, string[]>();
  for (const app of I2P_APPS) {
    const seen = new Map<string, number>();
    c.i2p.apps[app].forEach((name, i) => {
      const before = seen.get(name);
      if (before !== undefined) {
        issues.push({ path: w.grant(app, i), input: name, message: `is listed twice for ${app.toUpperCase()} (also at ${w.grant(app, before).join('.')}). Fix: grant it once: remove ${from(app, i)}` });
      } else {
        seen.set(name, i);
      }
      if (!c.qubes.clients.includes(name)) {
        issues.push({ path: w.grant(app, i), input: name, message: `is not in qubes.clients: the gateway learns a granted qube's address from dom0, which writes it for the gateway's configured clients only. Fix: add ${name} to qubes.clients` });
      }
    });
    firstGrant.set(app, [...seen.keys()]);
  }
  for (const app of ['sam', 'i2cp'] as const) {
    const list = c.i2p.apps[app];
    if (list.length === 0) continue;
    const qubes = firstGrant.get(app) ?? [];
    if (qubes.length > 1) {
      const i = list.indexOf(qubes[1]!);
      issues.push({ path: w.grant(app, i), input: list[i], message: `is a second qube for ${app.toUpperCase()} (the first, ${qubes[0]}, at ${w.grant(app, 0).join('.')}): ${APP_REASON[app]}. Fix: list one qube only for ${app.toUpperCase()}: remove ${from(app, i)}; use a second gateway for another qube` });
    }
    if (c.i2p.router !== 'i2pd' || clientDestinations(c) !== 'per-client') {
      issues.push({ path: grantsAt(app), input: list[0], message: `needs router i2pd with i2p.clientDestinations: per-client (the gateway's program that lets only the granted qube reach it runs only then). Fix: set i2p.router: i2pd and remove i2p.clientDestinations, or remove ${allFrom(app)}` });
    }
  }
  if (c.i2p.expose.irc) {
    issues.push({
      path: ['i2p', 'expose', 'irc'],
      input: true,
      message:
        "would open the router's one IRC tunnel to every client qube at once: one I2P identity for all of them, so an IRC server could link every client's chats. Fix: remove i2p.expose.irc and grant IRC to the client qubes that need it, e.g. i2p.apps.irc: [chat] (qubes of qubes.clients): each gets a tunnel of its own, on its own destination",
    });
  }
  // SOCKS and IRC: a tunnel of each granted client's own, on the keys of its HTTP proxy.
  const what = { socks: "each qube's SOCKS proxy is a tunnel on its own destination", irc: "each qube's IRC tunnel is on its own destination" } as const;
  for (const app of ['socks', 'irc'] as const) {
    const list = c.i2p.apps[app];
    if (list.length > 0 && (c.i2p.router !== 'i2pd' || clientDestinations(c) !== 'per-client')) {
      issues.push({ path: grantsAt(app), input: list[0], message: `needs router i2pd with i2p.clientDestinations: per-client (${what[app]}). Fix: set i2p.router: i2pd and remove i2p.clientDestinations, or remove ${allFrom(app)}` });
    }
  }
  return issues;
};

export const RULES: readonly Rule[] = [distinctQubes, memoryRange, virtualIpPlacement, clientRangesPlacement, distinctPorts, keyringOnlyForJavaRouter, noExposedConsole, serviceNotADistroDaemon, serviceNotOnByDefault, publishPlacement, clientDestinationsRouter, clientProxyPorts, noFloodfill, distinctSubscriptions, routerSettingsOnlyForI2pd, grantedApps];

export function checkRules(c: GatewayConfig, w: Written = AS_NORMALIZED): ConfigIssue[] {
  return RULES.flatMap((rule) => rule(c, w));
}
