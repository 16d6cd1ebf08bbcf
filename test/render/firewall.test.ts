/**
 * The ruleset and the qubes-firewall hook against real nft, in throwaway network namespaces loaded with a
 * Qubes-like base ruleset (test/fixtures/base-qubes.nft). The hook runs as installed: its fixed paths are
 * served by overlays of the rendered tree on /etc and /usr/share, and /run is a private tmpfs holding the
 * qvm-service flag, all inside a private mount namespace (the host's /etc and /run are never touched).
 */
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROUTERS } from '../../src/config/routers.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import { PATHS, unitPath } from '../../src/render/gateway/common.ts';
import { INPUT_CHAIN, LOCKDOWN_TABLE, TABLE } from '../../src/render/gateway/firewall.ts';
import { renderGateway } from '../../src/render/gateway/index.ts';
import { LOCKDOWN_NFT, LOCKDOWN_UNIT } from '../../src/render/gateway/lockdown.ts';
import { Trixie } from '../util/trixie.ts';
import { BASE_QUBES_NFT, configOf, must, PROGRAMS, REAL_KEYRING, run, Scratch, text, type RunResult } from './helpers.ts';

const scratch = new Scratch();
afterAll(async () => {
  await scratch.cleanup();
});

/**
 * Runs a command "on the gateway": a fresh Debian 13 machine (test/util/trixie.ts) with the rendered tree over its
 * root as if the package were installed, its own /run (with the flag file when `flag`), and for router i2p the
 * Java router's user (i2psvc), which the I2P package would have created, added to the machine's /etc/passwd so
 * nft can resolve `meta skuid i2psvc`. Every nft here is Debian 13's (1.1.3).
 */
const RUNNER = `#!/bin/sh
set -eu
flag=$1 extra_user=$2
shift 2
mkdir -p /run/qubes-service
[ "$flag" = - ] || : > "/run/qubes-service/$flag"
[ "$extra_user" = - ] || echo "$extra_user:x:64999:64999::/var/lib/i2p:/usr/sbin/nologin" >> /etc/passwd
exec "$@"
`;

const trixie = await Trixie.open(scratch.dir('machines'));

interface Gateway {
  readonly ns: string;
  readonly root: string;
  /** Run argv on the gateway (see RUNNER). */
  on(argv: readonly string[], opts?: { flag?: boolean }): RunResult;
  hook(opts?: { flag?: boolean }): RunResult;
  /** Debian 13's nft in the gateway's namespace; its output. */
  nft(args: readonly string[]): string;
  ruleset(stateless?: boolean): string;
}

function gateway(config: GatewayConfig, opts: { base?: boolean; keyring?: Uint8Array } = {}): Gateway {
  const files = renderGateway(config, opts.keyring === undefined ? { programs: PROGRAMS } : { programs: PROGRAMS, keyring: opts.keyring });
  const root = scratch.tree(files);
  const tools = scratch.dir('runner');
  const runner = join(tools, 'runner.sh');
  writeFileSync(runner, RUNNER, { mode: 0o755 });
  const ns = scratch.netns();
  const nft = (args: readonly string[]): RunResult => must(['ip', 'netns', 'exec', ns, ...trixie.prefix(), 'nft', ...args]);
  const base = join(tools, 'base-qubes.nft');
  copyFileSync(BASE_QUBES_NFT, base);
  if (opts.base !== false) nft(['-f', base]);
  const extraUser = config.i2p.router === 'i2p' ? 'i2psvc' : '-';
  const on = (argv: readonly string[], o: { flag?: boolean } = {}): RunResult => {
    const flag = o.flag === false ? '-' : config.qubes.service;
    return run(['ip', 'netns', 'exec', ns, ...trixie.prefix([root]), 'sh', runner, flag, extraUser, ...argv]);
  };
  return {
    ns,
    root,
    on,
    hook: (o = {}) => on([PATHS.hook], o),
    nft: (args) => nft(args).stdout,
    ruleset: (stateless = false) => nft([...(stateless ? ['-s'] : []), 'list', 'ruleset']).stdout,
  };
}

function hasTable(ruleset: string, name: string): boolean {
  return ruleset.includes(`table inet ${name} {`);
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

const VARIANTS: ReadonlyArray<[string, unknown]> = [
  ['default (Tor on, i2pd)', {}],
  ['Tor off', { tor: { enabled: false } }],
  ['every router port a client may reach: IRC and SOCKS for chosen clients, SAM and I2CP granted to one client', { qubes: { clients: ['work', 'torrents'] }, i2p: { apps: { irc: ['work', 'torrents'], socks: ['work'], sam: ['torrents'], i2cp: ['work'] } } }],
  ['other ports and addresses', { network: { virtualIp: '10.99.0.7', clientRanges: ['10.137.0.0/16'] }, tinyproxy: { port: 8118 }, tor: { transPort: 9140, dnsPort: 5400 }, qubes: { service: 'i2p-gw' } }],
];

describe('the ruleset', () => {
  for (const [name, value] of VARIANTS) {
    it(`passes nft -c against the Qubes base: ${name}`, () => {
      const gw = gateway(configOf(value));
      const r = gw.on(['nft', '-c', '-f', PATHS.ruleset]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });
  }

  it('passes nft -c for the Java router (its user i2psvc)', () => {
    const gw = gateway(configOf({ i2p: { router: 'i2p' } }), { keyring: new Uint8Array(readFileSync(REAL_KEYRING)) });
    const r = gw.on(['nft', '-c', '-f', PATHS.ruleset]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(text(renderGateway(configOf({ i2p: { router: 'i2p' } }), { programs: PROGRAMS, keyring: new Uint8Array(readFileSync(REAL_KEYRING)) }), PATHS.ruleset)).toContain('meta skuid i2psvc accept');
  });

  it('accepts DNS from client qubes redirected or not (a query to the gateway\'s own address carries no dnat status), every other port only when redirected', () => {
    const config = configOf({ i2p: { clientDestinations: 'shared' } });
    const gw = gateway(config);
    const hook = gw.hook();
    expect(hook.code, hook.stderr).toBe(0);
    const chain = gw.nft(['list', 'chain', 'ip', 'qubes', INPUT_CHAIN]);
    const rules = chain.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('iifgroup'));
    expect(rules.filter((r) => !r.includes('ct status dnat'))).toEqual(['iifgroup 2 udp dport 53 accept', 'iifgroup 2 tcp dport 53 accept']);
    const redirectedOnly = rules.filter((r) => r.includes('ct status dnat') && r.endsWith(' accept')).map((r) => /dport (\d+) accept$/.exec(r)?.[1]);
    expect(redirectedOnly).toEqual([config.tinyproxy.port, config.tor.transPort].map(String));
    // TLS to the virtual IP, redirected to the gateway with its port kept, is refused here (the input path).
    expect(rules.filter((r) => r.includes('reject'))).toEqual([`iifgroup 2 ct status dnat ct original ip daddr ${config.network.virtualIp} tcp dport { 443, 8443 } counter packets 0 bytes 0 reject with tcp reset`]);
  });

  it('with a destination per client (the default): the virtual IP\'s TCP of a client with a front goes to its own HTTP front (127.0.0.4, its port from the map), never tinyproxy, never straight to a proxy port, never another client\'s front', () => {
    const config = configOf();
    const gw = gateway(config);
    expect(gw.hook().code).toBe(0);
    const chain = gw.nft(['list', 'chain', 'ip', 'qubes', INPUT_CHAIN]);
    const rules = chain.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('iifgroup') && l.endsWith(' accept'));
    expect(rules).toContain('iifgroup 2 ct status dnat ip daddr 127.0.0.4 tcp dport 31000-32023 accept');
    expect(rules.some((r) => r.includes('4446'))).toBe(false);
    expect(rules.some((r) => r.includes('127.0.0.1 tcp dport 31000'))).toBe(false);
    expect(rules.some((r) => r.includes(`dport ${config.tinyproxy.port} `))).toBe(false);
    const nat = gw.nft(['list', 'chain', 'inet', 'qubes-i2p-gateway', 'prerouting-nat']);
    expect(nat).toContain(`ip daddr ${config.network.virtualIp} meta l4proto tcp dnat ip to ip saddr map @client-proxy`);
    expect(nat).not.toContain('4446');
    expect(nat).not.toContain(`redirect to :${config.tinyproxy.port}`);
    // A client reaches its own front's port and no other: the pairs the program fills, checked in our own table.
    const ruleset = text(renderGateway(config, { programs: PROGRAMS }), PATHS.ruleset);
    expect(ruleset).toContain('\t\tip daddr 127.0.0.4 tcp dport 31000-32023 ip saddr . tcp dport != @client-proxy-pairs counter drop\n');
  });

  it('SAM and I2CP granted to one client (i2p.apps): DNAT to the router on loopback only from the set dom0\'s address fills, every other client redirected to a reset; none of it without a grant', () => {
    const config = configOf({ qubes: { clients: ['work', 'torrents'] }, i2p: { apps: { sam: ['torrents'], i2cp: ['work'] } } });
    const gw = gateway(config);
    expect(gw.hook().code).toBe(0);
    const vip = config.network.virtualIp;
    const nat = gw.nft(['list', 'chain', 'inet', 'qubes-i2p-gateway', 'prerouting-nat']).split('\n').map((l) => l.trim());
    const at = (re: RegExp): number => nat.findIndex((l) => re.test(l));
    const sam = at(new RegExp(`^ip daddr ${vip} tcp dport 7656 ip saddr @app-sam dnat ip to 127\\.0\\.0\\.1:7656$`));
    const i2cp = at(new RegExp(`^ip daddr ${vip} tcp dport 7654 ip saddr @app-i2cp dnat ip to 127\\.0\\.0\\.1:7654$`));
    const others = at(new RegExp(`^ip daddr ${vip} tcp dport \\{ 7654, 7656 \\} redirect$`));
    const perClient = at(/dnat ip to ip saddr map @client-proxy$/);
    expect([sam, i2cp, others, perClient].every((i) => i >= 0), nat.join('\n')).toBe(true);
    expect(sam < others && i2cp < others && others < perClient).toBe(true);
    expect(gw.nft(['list', 'set', 'inet', 'qubes-i2p-gateway', 'app-sam'])).toMatch(/type ipv4_addr\s*\n\s*}/);
    const input = gw.nft(['list', 'chain', 'ip', 'qubes', INPUT_CHAIN]).split('\n').map((l) => l.trim());
    const accept = input.indexOf('iifgroup 2 ct status dnat ip daddr 127.0.0.1 tcp dport 7656 accept');
    const reset = input.findIndex((l) => l.startsWith(`iifgroup 2 ct status dnat ct original ip daddr ${vip} tcp dport { 7654, 7656 } counter`) && l.endsWith('reject with tcp reset'));
    expect(accept, input.join('\n')).toBeGreaterThanOrEqual(0);
    expect(reset).toBeGreaterThan(accept);
    // SAM's UDP socket (a DATAGRAM session's HOST= is the client's choice) never sends upstream; the router otherwise does.
    // (the hook above loaded it with the real nft.)
    const ruleset = text(renderGateway(config, { programs: PROGRAMS }), PATHS.ruleset);
    const samUdp = ruleset.indexOf('\t\toifgroup 1 meta skuid i2pd udp sport 7655 counter reject with icmpx admin-prohibited\n');
    expect(samUdp).toBeGreaterThanOrEqual(0);
    expect(samUdp).toBeLessThan(ruleset.indexOf('\t\toifgroup 1 meta skuid i2pd accept\n'));
    const conf = text(renderGateway(config, { programs: PROGRAMS }), PATHS.i2pdConf);
    expect(conf).toMatch(/\[sam\]\n(#.*\n)*enabled = true\naddress = 127\.0\.0\.1\nport = 7656\nportudp = 7655\n/);
    expect(conf).toMatch(/\[i2cp\]\n(#.*\n)*enabled = true\naddress = 127\.0\.0\.1\nport = 7654\n/);
    const facts = JSON.parse(text(renderGateway(config, { programs: PROGRAMS }), PATHS.clientProxiesConf)) as { apps: unknown };
    expect(facts.apps).toEqual([
      { name: 'sam', set: 'app-sam', qubesdb: '/vm-config/qubes-i2p-gateway-sam', max: 1 },
      { name: 'i2cp', set: 'app-i2cp', qubesdb: '/vm-config/qubes-i2p-gateway-i2cp', max: 1 },
    ]);
    // Without a grant: no SAM, no I2CP, no rules for them.
    const plain = renderGateway(configOf({ qubes: { clients: ['work'] } }), { programs: PROGRAMS });
    expect(text(plain, PATHS.ruleset)).not.toMatch(/7656|7654|app-sam/);
    expect(text(plain, PATHS.i2pdConf)).toMatch(/\[sam\]\nenabled = false\n/);
    expect(text(plain, PATHS.i2pdConf)).toMatch(/\[i2cp\]\nenabled = false\n/);
  });

  it('SOCKS for chosen clients (i2p.apps.socks): the virtual IP\'s 4447 to each granted client\'s own SOCKS proxy on 127.0.0.2 (its HTTP proxy\'s port), every other client a reset; nothing of it without a grant', () => {
    const config = configOf({ qubes: { clients: ['work', 'chat'] }, i2p: { apps: { socks: ['work', 'chat'] } } });
    const gw = gateway(config);
    expect(gw.hook().code).toBe(0);
    const vip = config.network.virtualIp;
    const nat = gw.nft(['list', 'chain', 'inet', 'qubes-i2p-gateway', 'prerouting-nat']).split('\n').map((l) => l.trim());
    const own = nat.indexOf(`ip daddr ${vip} tcp dport 4447 dnat ip to ip saddr map @client-socks`);
    const others = nat.indexOf(`ip daddr ${vip} tcp dport 4447 redirect`);
    const http = nat.findIndex((l) => l.endsWith('dnat ip to ip saddr map @client-proxy'));
    expect(own, nat.join('\n')).toBeGreaterThanOrEqual(0);
    expect(own < others && others < http).toBe(true);
    const input = gw.nft(['list', 'chain', 'ip', 'qubes', INPUT_CHAIN]);
    expect(input).toContain('iifgroup 2 ct status dnat ip daddr 127.0.0.2 tcp dport 31000-32023 accept');
    expect(input).toMatch(new RegExp(`iifgroup 2 ct status dnat ct original ip daddr ${vip.replace(/\./g, '\\.')} tcp dport 4447 counter packets 0 bytes 0 reject with tcp reset`));
    expect(gw.nft(['list', 'chain', 'inet', 'qubes-i2p-gateway', 'input-limits'])).toContain('ip daddr 127.0.0.2 tcp dport 31000-32023 ip saddr . tcp dport != @client-proxy-pairs counter packets 0 bytes 0 drop');
    const facts = JSON.parse(text(renderGateway(config, { programs: PROGRAMS }), PATHS.clientProxiesConf)) as { socks: unknown };
    expect(facts.socks).toEqual({ qubesdb: '/vm-config/qubes-i2p-gateway-socks', max: 2, map: 'client-socks', address: '127.0.0.2', filePrefix: '61-qubes-i2p-gateway-socks-' });
    const plain = renderGateway(configOf({ qubes: { clients: ['work'] } }), { programs: PROGRAMS });
    expect(text(plain, PATHS.ruleset)).not.toMatch(/4447|client-socks|127\.0\.0\.2/);
  });

  it('IRC for chosen clients (i2p.apps.irc): the virtual IP\'s 6668 to each granted client\'s own IRC tunnel on 127.0.0.3 (its HTTP proxy\'s port), every other client a reset; nothing of it without a grant', () => {
    const config = configOf({ qubes: { clients: ['work', 'chat'] }, i2p: { apps: { irc: ['chat'], socks: ['work'] }, ircServer: `${'b'.repeat(52)}.b32.i2p:6697` } });
    const gw = gateway(config);
    expect(gw.hook().code).toBe(0);
    const vip = config.network.virtualIp;
    const nat = gw.nft(['list', 'chain', 'inet', 'qubes-i2p-gateway', 'prerouting-nat']).split('\n').map((l) => l.trim());
    const own = nat.indexOf(`ip daddr ${vip} tcp dport 6668 dnat ip to ip saddr map @client-irc`);
    const others = nat.indexOf(`ip daddr ${vip} tcp dport 6668 redirect`);
    const http = nat.findIndex((l) => l.endsWith('dnat ip to ip saddr map @client-proxy'));
    expect(own, nat.join('\n')).toBeGreaterThanOrEqual(0);
    expect(own < others && others < http, nat.join('\n')).toBe(true);
    const input = gw.nft(['list', 'chain', 'ip', 'qubes', INPUT_CHAIN]);
    expect(input).toContain('iifgroup 2 ct status dnat ip daddr 127.0.0.3 tcp dport 31000-32023 accept');
    expect(input).toMatch(new RegExp(`iifgroup 2 ct status dnat ct original ip daddr ${vip.replace(/\./g, '\\.')} tcp dport 6668 counter packets 0 bytes 0 reject with tcp reset`));
    expect(gw.nft(['list', 'chain', 'inet', 'qubes-i2p-gateway', 'input-limits'])).toContain('ip daddr 127.0.0.3 tcp dport 31000-32023 ip saddr . tcp dport != @client-proxy-pairs counter packets 0 bytes 0 drop');
    const facts = JSON.parse(text(renderGateway(config, { programs: PROGRAMS }), PATHS.clientProxiesConf)) as { irc: unknown };
    expect(facts.irc).toEqual({ qubesdb: '/vm-config/qubes-i2p-gateway-irc', max: 1, map: 'client-irc', address: '127.0.0.3', filePrefix: '62-qubes-i2p-gateway-irc-', destination: `${'b'.repeat(52)}.b32.i2p`, destinationPort: 6697 });
    const plain = renderGateway(configOf({ qubes: { clients: ['work'] } }), { programs: PROGRAMS });
    expect(text(plain, PATHS.ruleset)).not.toMatch(/6668|client-irc|127\.0\.0\.3/);
    expect(JSON.parse(text(plain, PATHS.clientProxiesConf))).not.toHaveProperty('irc');
  });

  it('i2pd reads no tunnel of Debian\'s tunnels.conf (its IRC tunnel on 6668 would be one IRC identity for all): its main tunnels file is ours, with none', () => {
    const tree = renderGateway(configOf(), { programs: PROGRAMS });
    const dropIn = text(tree, '/usr/lib/systemd/system/i2pd.service.d/50-qubes-i2p-gateway.conf');
    expect(dropIn).toContain(` --tunconf=${PATHS.i2pdMainTunnels} `);
    expect(dropIn).not.toContain('/etc/i2pd/tunnels.conf ');
    expect(text(tree, PATHS.i2pdMainTunnels).split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'))).toEqual([]);
  });

  it('has no Tor rules with Tor off', () => {
    const r = text(renderGateway(configOf({ tor: { enabled: false } }), { programs: PROGRAMS }), PATHS.ruleset);
    expect(r).not.toMatch(/9040|debian-tor|10\.192\.0\.0/);
  });
});

describe('the hook', () => {
  it('loads the ruleset; a second run leaves the identical ruleset', () => {
    const gw = gateway(configOf());
    const first = gw.hook();
    expect(first.stderr).toContain('firewall loaded');
    expect(first.code).toBe(0);
    const after1 = gw.ruleset();
    const after1s = gw.ruleset(true);
    const second = gw.hook();
    expect(second.code).toBe(0);
    expect(gw.ruleset()).toBe(after1);
    expect(gw.ruleset(true)).toBe(after1s);
    expect(hasTable(after1, TABLE)).toBe(true);
    expect(hasTable(after1, LOCKDOWN_TABLE)).toBe(false);
    expect(count(after1, `jump ${INPUT_CHAIN}`)).toBe(1);
    expect(count(after1, `chain ${INPUT_CHAIN} {`)).toBe(1);
  });

  it('keeps the user\'s own custom-input rules, in order, and jumps to ours once', () => {
    const gw = gateway(configOf());
    gw.nft(['add', 'rule', 'ip', 'qubes', 'custom-input', 'tcp', 'dport', '22', 'accept']);
    expect(gw.hook().code).toBe(0);
    gw.nft(['add', 'rule', 'ip', 'qubes', 'custom-input', 'udp', 'dport', '123', 'drop']);
    const before = gw.ruleset();
    expect(gw.hook().code).toBe(0);
    const after = gw.ruleset();
    expect(after).toBe(before);
    const custom = gw.nft(['list', 'chain', 'ip', 'qubes', 'custom-input']);
    expect(custom.replace(/\s+/g, ' ')).toContain(`tcp dport 22 accept jump ${INPUT_CHAIN} udp dport 123 drop`);
  });

  it('does nothing outside the gateway qube (no qvm-service flag)', () => {
    const gw = gateway(configOf());
    const before = gw.ruleset();
    const r = gw.hook({ flag: false });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(gw.ruleset()).toBe(before);
  });

  it('leaves the lockdown and fails when the ruleset does not load', () => {
    const gw = gateway(configOf());
    appendFileSync(join(gw.root, PATHS.ruleset), 'this is not nft\n');
    const r = gw.hook();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`loading ${PATHS.ruleset} failed; client qubes stay cut off (lockdown)`);
    const rs = gw.ruleset();
    expect(hasTable(rs, LOCKDOWN_TABLE)).toBe(true);
    expect(hasTable(rs, TABLE)).toBe(false);
    expect(rs).toMatch(/chain forward \{\s+type filter hook forward priority (filter - 20|-20); policy drop;/);
  });

  it('fails closed without its own config: a missing firewall-hook.conf, an unknown key, a missing value', () => {
    const conf = (gw: Gateway): string => join(gw.root, PATHS.hookConf);
    const cases: Array<[string, (gw: Gateway) => void, string]> = [
      ['missing', (gw) => rmSync(conf(gw)), `${PATHS.hookConf} is missing`],
      ['unknown key', (gw) => appendFileSync(conf(gw), 'EXTRA=1\n'), `${PATHS.hookConf}: unknown key EXTRA`],
      ['no ruleset', (gw) => writeFileSync(conf(gw), readFileSync(conf(gw), 'utf8').replace(/^RULESET=.*\n/m, '')), `${PATHS.hookConf}: RULESET is not set`],
    ];
    for (const [what, breakIt, message] of cases) {
      const gw = gateway(configOf());
      breakIt(gw);
      const r = gw.hook();
      expect(r.code, what).toBe(1);
      expect(r.stderr, what).toContain(`${message}; client qubes stay cut off (lockdown)`);
      const rs = gw.ruleset();
      expect(hasTable(rs, LOCKDOWN_TABLE), what).toBe(true);
      expect(hasTable(rs, TABLE), what).toBe(false);
    }
  });

  it('fails closed on a reload too: a good ruleset, then a broken one, leaves the lockdown in place', () => {
    const gw = gateway(configOf());
    expect(gw.hook().code).toBe(0);
    writeFileSync(join(gw.root, PATHS.ruleset), readFileSync(join(gw.root, PATHS.ruleset), 'utf8').replace('policy drop;', 'policy maybe;'));
    expect(gw.hook().code).toBe(1);
    expect(hasTable(gw.ruleset(), LOCKDOWN_TABLE)).toBe(true);
  });

  it('fails closed without Qubes\' tables (custom-input missing)', () => {
    const gw = gateway(configOf(), { base: false });
    const r = gw.hook();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot add the jump to our input chain');
    expect(hasTable(gw.ruleset(), LOCKDOWN_TABLE)).toBe(true);
  });

  it('sets route_localnet only when client qubes have proxies of their own (on loopback; no router port is exposed to every client any more)', () => {
    const localnet = (gw: Gateway): string => must(['ip', 'netns', 'exec', gw.ns, 'cat', '/proc/sys/net/ipv4/conf/all/route_localnet']).stdout.trim();
    const own = gateway(configOf());
    expect(own.hook().code).toBe(0);
    expect(localnet(own)).toBe('1');
    const plain = gateway(configOf({ i2p: { clientDestinations: 'shared' } }));
    expect(plain.hook().code).toBe(0);
    expect(localnet(plain)).toBe('0');
    expect(plain.ruleset()).not.toContain('6668');
  });
});

describe('the boot-time lockdown', () => {
  it('loads (twice, one copy) and is lifted by the hook', () => {
    const config = configOf();
    const gw = gateway(config);
    const unit = text(renderGateway(config, { programs: PROGRAMS }), unitPath(LOCKDOWN_UNIT));
    expect(unit).toContain(`ExecStart=nft -f ${LOCKDOWN_NFT}\n`);
    expect(gw.on(['nft', '-f', LOCKDOWN_NFT]).code).toBe(0);
    expect(gw.on(['nft', '-f', LOCKDOWN_NFT]).code).toBe(0);
    expect(count(gw.ruleset(), `table inet ${LOCKDOWN_TABLE} {`)).toBe(1);
    expect(gw.hook().code).toBe(0);
    expect(hasTable(gw.ruleset(), LOCKDOWN_TABLE)).toBe(false);
  });
});
