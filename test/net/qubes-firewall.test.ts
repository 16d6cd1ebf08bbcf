/**
 * Our hook and ruleset under Qubes OS 4.3's qubes-firewall.service (the stand-in lib/qubes-firewall.ts, written
 * from QubesOS/qubes-core-agent-linux release4.3): started at boot after our lockdown unit, reloaded (SIGHUP:
 * per-client rules again, no hooks), restarted (hooks again), restarted by systemd after a crash (no cleanup),
 * reloaded because the upstream DNS changed, and started with the qvm-service custom-persist on.
 *
 * After each: the gateway still redirects DNS, HTTP to .i2p and TCP as before, the client reaches nothing
 * upstream (`up` sees nothing of it), our table and input chain are loaded exactly once (the same text as after
 * a plain load), the jump from ip qubes custom-input is there exactly once, and a client connection that was
 * open before still carries data.
 *
 * The gateway forwards nothing (the package's no-forward.conf, the lab's default), as every real gateway; where a test
 * is about our tables alone (qubes-firewall's tables gone) it runs with forwarding on too, and says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { A, describe as describeFrames, serverHits, unsanctioned, type HeldTcp, type Lab } from './lib/lab.ts';
import { DEFAULT_RULES, HOOK_DIR, QubesFirewall43, RW_CONFIG, type HookRun, type QubesRule } from './lib/qubes-firewall.ts';
import { answersOf, expectNoLeakMarkers, expectUpClean, forwardingOffThenOn } from './lib/suite.ts';
import { ROUTER_BANNER, UNIT, World, type WorldState, SHARED_DESTINATION } from './lib/world.ts';

const OUR_HOOK = `${HOOK_DIR}/50-qubes-i2p-gateway`;
const RW_HOOK = `${RW_CONFIG}/qubes-firewall.d/10-lab-marker`;
const USER_SCRIPT = `${RW_CONFIG}/qubes-firewall-user-script`;
const MARKER_LOG = '/rw/lab-hooks-ran.log';
const RECORDERS: WorldState = { tor: 'recorder', router: 'recorder', dnsmasq: true, tinyproxy: true };
/** Every stage of a start that runs executables, in the order 4.3 runs them, each exiting 0. */
const ALL_STAGES = [[OUR_HOOK, 0], [RW_HOOK, 0], [USER_SCRIPT, 0]];

let w: World;
let lab: Lab;
let qf: QubesFirewall43;
/** Our table and our chain in ip qubes, as a plain load of the hook leaves them. */
let OURS = '';
/** The qubes-firewall tables of qubes-base.nft. */
let QF_BASE = '';
let names = 0;

async function nft(args: readonly string[]): Promise<string> {
  const r = await lab.gwRun(['nft', ...args]);
  if (r.code !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Our rules, without counters (-s) and without the per-client sets' elements (-t): those are state, filled by traffic. */
async function ours(): Promise<string> {
  return (await nft(['-s', '-t', 'list', 'table', 'inet', 'qubes-i2p-gateway'])) + (await nft(['-s', 'list', 'chain', 'ip', 'qubes', 'qubes-i2p-gateway-input']));
}

async function qubesFirewallTables(): Promise<string> {
  return (await nft(['-s', 'list', 'table', 'ip', 'qubes-firewall'])) + (await nft(['-s', 'list', 'table', 'ip6', 'qubes-firewall']));
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** Which /rw executables really ran: each appends its own path to the log (in the gateway's /rw). */
async function markers(): Promise<string[]> {
  const r = await lab.gwRun(['cat', MARKER_LOG]);
  if (r.code !== 0) throw new Error(`cannot read ${MARKER_LOG}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

function stages(runs: readonly HookRun[]): Array<[string, number | null]> {
  return runs.map((r) => [r.path, r.code]);
}

/** The netvm booted up to qubes-firewall.service: Qubes' base tables without qubes-firewall's own (it makes them). */
async function netvmBeforeQubesFirewall(): Promise<void> {
  await lab.resetFirewall();
  await qf.stop();
}

/** ...and our lockdown unit, which runs before qubes-firewall.service. */
async function bootToQubesFirewall(): Promise<void> {
  await netvmBeforeQubesFirewall();
  await w.gw.runOneshot(UNIT.lockdown);
}

async function boot(): Promise<HookRun[]> {
  await bootToQubesFirewall();
  return qf.start();
}

/** Our ruleset is in once, exactly as a plain load leaves it; the lockdown is gone; one jump from custom-input. */
async function expectOursOnce(what: string): Promise<void> {
  const all = await nft(['-s', 'list', 'ruleset']);
  expect(count(all, 'table inet qubes-i2p-gateway {'), what).toBe(1);
  expect(count(all, 'chain qubes-i2p-gateway-input {'), what).toBe(1);
  expect(all, what).not.toContain('qubes-i2p-gateway-lockdown');
  expect(await ours(), what).toBe(OURS);
  const custom = await nft(['list', 'chain', 'ip', 'qubes', 'custom-input']);
  expect(custom.match(/jump qubes-i2p-gateway-input/g)?.length, what).toBe(1);
}

/** DNS, HTTP to .i2p and TCP are served as before; UDP, ICMP, IPv6 and private TCP get nothing; up sees nothing. */
async function expectServed(what: string, extraDns: readonly string[] = []): Promise<void> {
  const n = ++names;
  w.clearRecorderLogs();
  const mark = lab.upMark();
  const dnsServers = [A.dns1, A.dns2, ...extraDns];
  const r = await lab.probe('client', [
    ...dnsServers.map((server) => ({ kind: 'dns' as const, server, name: `qf${n}-${server}.i2p`, qtype: 'A' })),
    ...dnsServers.map((server) => ({ kind: 'dns' as const, server, name: `qf${n}-${server}.example`, qtype: 'A' })),
    { kind: 'dns', server: A.upDns, name: `qf${n}-tcp.example`, qtype: 'A', tcp: true },
    { kind: 'tcp', host: A.web, port: 443, send: 'GET / HTTP/1.0\r\n\r\n' },
    { kind: 'tcp', host: A.vip, port: 80, send: `GET /x HTTP/1.1\r\nHost: qf${n}.i2p\r\nConnection: close\r\n\r\n` },
    { kind: 'udp', host: A.web, port: 443 },
    { kind: 'icmp', host: A.web },
    { kind: 'tcp', host: A.web6, port: 80, timeout: 1 },
    { kind: 'tcp', host: A.lan, port: 80, timeout: 1 },
  ]);
  expectNoLeakMarkers(r);
  const d = dnsServers.length;
  expect(r.slice(0, d).map(answersOf), `${what}: .i2p names`).toEqual(dnsServers.map(() => [A.vip]));
  expect(r.slice(d, 2 * d + 1).map(answersOf), `${what}: other names (through Tor's DNSPort)`).toEqual([...dnsServers.map(() => [A.torA]), [A.torA]]);
  const [tcp, http, ...never] = r.slice(2 * d + 1);
  expect(tcp?.data?.trim().split('\n').at(-1), `${what}: clearnet TCP`).toBe(`TOR-RECORDER ${A.web}:443`);
  expect(http?.data ?? http?.outcome, `${what}: HTTP to .i2p`).toContain(ROUTER_BANNER);
  for (const x of never) expect(x.outcome, `${what}: ${JSON.stringify(x.probe)}`).not.toMatch(/^(connected|reply|answer)$/);
  await expectUpClean(lab, mark, what);
}

/** A client connection redirected to Tor's TransPort (the recorder), open before whatever the test does next. */
async function openConnection(name: string): Promise<HeldTcp> {
  const held = await lab.holdTcp(name, A.web, 443);
  expect(held.greeting).toBe(`TOR-RECORDER ${A.web}:443 HOLD`);
  expect(await held.send('before')).toBe('ECHO before');
  return held;
}

beforeAll(async () => {
  w = await World.create(SHARED_DESTINATION);
  lab = w.lab;
  qf = new QubesFirewall43(lab);
  // The private volume's hooks: each appends its path to a log, so a test sees which really ran.
  await qf.writeRw(MARKER_LOG, '', '644');
  for (const path of [RW_HOOK, USER_SCRIPT]) {
    await qf.writeRw(path, `#!/bin/sh\n# lab marker: which /rw/config stage ran\necho "$0" >> ${MARKER_LOG}\n`, '755');
  }
  // A file that is not executable is not run (4.3 runs regular files with the x bit only).
  await qf.writeRw(`${RW_CONFIG}/qubes-firewall.d/20-not-executable`, '#!/bin/sh\nexit 1\n', '644');
  OURS = await ours();
  await lab.resetFirewall();
  QF_BASE = await qubesFirewallTables();
  await w.loadFirewall();
  await w.use(RECORDERS);
});

afterAll(async () => {
  await w?.destroy();
});

describe('Qubes OS 4.3 qubes-firewall.service (stand-in) and our hook', () => {
  it('at boot: the lockdown, then qubes-firewall creates its tables, runs our hook, then /rw/config/qubes-firewall.d and the user script, then the client\'s rules; the client is served and reaches nothing upstream', async () => {
    const before = (await markers()).length;
    const runs = await boot();
    expect(stages(runs), JSON.stringify(runs)).toEqual(ALL_STAGES);
    expect((await markers()).slice(before)).toEqual([RW_HOOK, USER_SCRIPT]);
    await expectOursOnce('after the start');
    // qubes-base.nft (what every other net test starts from) holds exactly what this 4.3 start builds.
    expect(await qubesFirewallTables()).toBe(QF_BASE);
    expect(QF_BASE).toContain('chain qubes-forward {');
    expect(QF_BASE).toContain('set dns-addr {');
    await expectServed('after the 4.3 start');
  });

  it('a reload (SIGHUP) with the client connected and a connection open re-applies the client\'s rules, runs no hook, and leaves our ruleset and the connection as they were', async () => {
    await boot();
    const held = await openConnection('held-reload');
    try {
      // Someone emptied the client's chain: the reload must put it back (so it really re-applies per-client rules).
      await nft(['flush', 'chain', 'ip', 'qubes-firewall', 'qbs-10-137-0-10']);
      expect(await qubesFirewallTables()).not.toBe(QF_BASE);
      const before = (await markers()).length;
      await qf.reload();
      expect((await markers()).slice(before), 'a reload runs no hook').toEqual([]);
      expect(await qubesFirewallTables()).toBe(QF_BASE);
      await expectOursOnce('after a reload');
      expect(await held.send('after reload')).toBe('ECHO after reload');
      await expectServed('after a reload');
    } finally {
      await held.close();
    }
  });

  it('a restart with the client connected and a connection open: while stopped (qubes-firewall\'s tables gone, Qubes\' forward policy accept alone) the client still reaches nothing, forwarding off and on; the start runs every hook again; our ruleset stays single and the connection carries on', async () => {
    await boot();
    const held = await openConnection('held-restart');
    try {
      await qf.stop();
      expect(await nft(['-s', 'list', 'tables'])).not.toContain('qubes-firewall');
      await expectOursOnce('with qubes-firewall stopped');
      await forwardingOffThenOn(lab, (forwarding) => expectServed(`with qubes-firewall stopped, forwarding ${forwarding}`));
      const before = (await markers()).length;
      const runs = await qf.start();
      expect(stages(runs), JSON.stringify(runs)).toEqual(ALL_STAGES);
      expect((await markers()).slice(before)).toEqual([RW_HOOK, USER_SCRIPT]);
      expect(await qubesFirewallTables()).toBe(QF_BASE);
      await expectOursOnce('after a restart');
      expect(await held.send('after restart')).toBe('ECHO after restart');
      await expectServed('after a restart');
      // And once more, as `systemctl restart` in a row would.
      expect(stages(await qf.restart())).toEqual(ALL_STAGES);
      await expectOursOnce('after a second restart');
      expect(await held.send('after second restart')).toBe('ECHO after second restart');
    } finally {
      await held.close();
    }
  });

  it('Restart=on-failure (the service died without its cleanup and systemd starts it over its old tables): the hooks run again, ours stays single', async () => {
    await boot();
    const held = await openConnection('held-crash');
    try {
      const runs = await qf.restartAfterFailure();
      expect(stages(runs), JSON.stringify(runs)).toEqual(ALL_STAGES);
      // Upstream's own rules pile up (its init() adds to tables it did not delete); ours must not.
      const forward = await nft(['list', 'chain', 'ip', 'qubes-firewall', 'forward']);
      expect(count(forward, 'jump qubes-forward')).toBe(2);
      await expectOursOnce('after a restart on failure');
      expect(await held.send('after crash')).toBe('ECHO after crash');
      await expectServed('after a restart on failure');
    } finally {
      await held.close();
    }
  });

  it('the upstream DNS changes (4.3\'s qubes-setup-dnat-to-ns replaces dnat-dns and reloads qubes-firewall): the client\'s DNS is still answered by the gateway, never by the new upstream resolver', async () => {
    await boot();
    try {
      const before = (await markers()).length;
      await qf.upstreamDnsChanged([A.up4]);
      const dnat = await nft(['list', 'chain', 'ip', 'qubes', 'dnat-dns']);
      expect(dnat).toContain(`dnat to ${A.up4}`);
      expect(dnat).not.toContain(A.upDns);
      expect((await markers()).slice(before), 'the reload runs no hook').toEqual([]);
      await expectOursOnce('after the DNS change');
      await expectServed('after the upstream DNS changed', [A.up4]);
    } finally {
      await lab.resetFirewall();
    }
  });

  it('with the qvm-service custom-persist on, our hook in /etc/qubes/qubes-firewall.d still runs and lifts the lockdown; /rw/config/qubes-firewall.d and the user script do not run', async () => {
    lab.setService('custom-persist', true);
    try {
      const before = (await markers()).length;
      const runs = await boot();
      expect(stages(runs), JSON.stringify(runs)).toEqual([[OUR_HOOK, 0]]);
      await expectOursOnce('custom-persist: after the start');
      await expectServed('custom-persist: after the start');
      expect(stages(await qf.restart())).toEqual([[OUR_HOOK, 0]]);
      await expectOursOnce('custom-persist: after a restart');
      expect((await markers()).slice(before), 'no /rw/config executable ran').toEqual([]);
    } finally {
      lab.setService('custom-persist', false);
    }
    // The control: with custom-persist off again, the same start does run them.
    expect(stages(await boot())).toEqual(ALL_STAGES);
  });

  it('with the gateway qvm-service off (another qube from the same template that provides network), the 4.3 start runs our hook, which forwards nothing (issue 12), and leaves Qubes\' own tables as Qubes has them', async () => {
    lab.setService(w.config.qubes.service, false);
    try {
      await netvmBeforeQubesFirewall();
      // The lockdown unit runs in any qube that provides network; the hook replaces it with the off table.
      await w.gw.runOneshot(UNIT.lockdown);
      const runs = await qf.start();
      expect(stages(runs)).toEqual(ALL_STAGES);
      const all = await nft(['-s', 'list', 'ruleset']);
      expect(all).toContain('table inet qubes-i2p-gateway-off');
      expect(all).not.toContain('table inet qubes-i2p-gateway {');
      expect(all).not.toContain('qubes-i2p-gateway-lockdown');
      expect(await qubesFirewallTables()).toBe(QF_BASE);
    } finally {
      lab.setService(w.config.qubes.service, true);
      await boot();
    }
  });

  it('documented limit: the client\'s own qvm-firewall (here: deny everything) restricts only forwarding, and the gateway forwards nothing: what it redirects to Tor still gets there', async () => {
    await boot();
    const defaults = qf.targets;
    try {
      qf.targets = defaults.map((t) => ({ ...t, rules: [] }));
      await qf.reload();
      const chain = await nft(['-s', 'list', 'chain', 'ip', 'qubes-firewall', 'qbs-10-137-0-10']);
      expect(chain.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('reject') || l === 'accept')).toEqual(['reject with icmp admin-prohibited']);
      const mark = lab.upMark();
      const r = await lab.probe('client', [{ kind: 'tcp', host: A.web, port: 443, send: 'GET / HTTP/1.0\r\n\r\n' }]);
      expect(r[0]?.data?.trim().split('\n').at(-1)).toBe(`TOR-RECORDER ${A.web}:443`);
      await expectUpClean(lab, mark, 'client with a deny-all qvm-firewall');
    } finally {
      qf.targets = defaults;
      await qf.reload();
    }
  });
  /**
   * What i2p-gateway.clients gives each client (salt/client-netvm close): one qvm-firewall rule first, drop, its
   * own rules after. Qubes' netvm applies it in the client's per-client chain, on the forward path only.
   */
  const FAIL_CLOSED: readonly QubesRule[] = [{ action: 'drop' }, ...DEFAULT_RULES];

  it("the formula's fail-closed rule (drop first in the client's qvm-firewall) with the package: DNS, .i2p and Tor are served exactly as before, nothing reaches upstream", async () => {
    const defaults = qf.targets;
    try {
      qf.targets = defaults.map((t) => ({ ...t, rules: FAIL_CLOSED }));
      await boot();
      const chain = await nft(['-s', 'list', 'chain', 'ip', 'qubes-firewall', 'qbs-10-137-0-10']);
      // 4.3's qubes-firewall writes action=drop as a reject; the rule comes before the default accept.
      expect(chain.split('\n').map((l) => l.trim()).filter((l) => /^(drop|accept|reject)/.test(l)), 'the client\'s chain refuses first').toEqual(['reject with icmp admin-prohibited', 'accept', 'reject with icmp admin-prohibited']);
      await expectOursOnce('with the fail-closed rule');
      await expectServed('with the fail-closed rule');
    } finally {
      qf.targets = defaults;
      await boot();
    }
  });

  it("without the package (a plain Qubes ProxyVM: Qubes' tables, forwarding on, no table or hook of ours) the fail-closed rule gives the client nothing; the control, Qubes' default rule, routes it to the clear net", async () => {
    const defaults = qf.targets;
    const away = '/root/qig-hook-away';
    const probes = [
      { kind: 'tcp' as const, host: A.web, port: 443, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 2 },
      { kind: 'dns' as const, server: A.dns1, name: 'plain-proxyvm.example', qtype: 'A' },
      { kind: 'udp' as const, host: A.web, port: 443 },
      { kind: 'icmp' as const, host: A.web },
    ];
    const mv = async (from: string, to: string): Promise<void> => {
      const r = await lab.gwRun(['mv', from, to]);
      if (r.code !== 0) throw new Error(`mv ${from} ${to}: ${r.stderr}`);
    };
    await mv(OUR_HOOK, away);
    try {
      // The gateway qube booted from a template without our package: Qubes' base tables, its qubes-firewall
      // (no hook of ours to run), and forwarding on as qubes-network leaves it (no no-forward of ours).
      await lab.resetFirewall();
      await qf.stop();
      await lab.setGwSysctl('net.ipv4.ip_forward', '1');
      await lab.setGwSysctl('net.ipv6.conf.all.forwarding', '1');
      qf.targets = defaults;
      await qf.start();
      expect(await nft(['-s', 'list', 'ruleset'])).not.toContain('qubes-i2p-gateway');

      // Control: the client's default rule (accept): a plain router puts the client on the clear net.
      let mark = lab.upMark();
      await lab.probe('client', probes);
      const leaked = await lab.upSince(mark);
      expect([...unsanctioned(leaked), ...serverHits(leaked)].length, 'the control reaches upstream (else this test proves nothing)').toBeGreaterThan(0);

      // The fail-closed rule first: nothing of the client leaves, not even DNS through Qubes' DNAT.
      qf.targets = defaults.map((t) => ({ ...t, rules: FAIL_CLOSED }));
      await qf.reload();
      mark = lab.upMark();
      const r = await lab.probe('client', probes);
      for (const x of r) expect(x.outcome, JSON.stringify(x.probe)).not.toMatch(/^(connected|reply|answer)$/);
      const ev = await lab.upSince(mark);
      expect(unsanctioned(ev), describeFrames(unsanctioned(ev))).toEqual([]);
      expect(serverHits(ev)).toEqual([]);
    } finally {
      await mv(away, OUR_HOOK);
      qf.targets = defaults;
      // Back to a gateway with our package: its no-forward unit turns forwarding off again.
      await lab.restoreForwarding();
      await boot();
    }
  });
});
