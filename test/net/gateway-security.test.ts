/**
 * The holes of issue 12, each proved closed in the lab (each of these tests failed on the renderers before the
 * fix; the commit that added them says how): a gateway qube whose qvm-service is off, addressbook poisoning,
 * a DNS cache shared by the clients, the router console (no longer exposed, issue 19), a missing router user, a second
 * router, ports of the virtual IP other than 80, and forwarding with our tables gone.
 *
 * One build: the default (i2pd, Tor on) with shared destinations and route_localnet turned on after the start (as
 * the hook does for per-client proxies, and did for an exposed router port before i2p.expose.irc was refused), so a
 * client has the path it would need to reach the console, were it exposed. The real i2pd runs where a test needs
 * its behaviour.
 *
 * The gateway forwards nothing (the package's no-forward.conf, the lab's default). The tests of what our tables do
 * when something else fails run with forwarding on too (the lockdown and the "off" table alone), named so.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import { PATHS, UNITS } from '../../src/render/gateway/common.ts';
import { buildGatewayDeb, Gateway } from './lib/gateway.ts';
import { A, Lab, type Probe, type ProbeResult } from './lib/lab.ts';
import { answersOf, expectNoLeakMarkers, expectUpClean, forwardingOffThenOn, freshOnion, httpStatus } from './lib/suite.ts';
import { parseUnit } from './lib/units.ts';
import { ROUTER_BANNER, UNIT, World, type WorldState } from './lib/world.ts';

// The real I2P repository keyring (the Java build needs one): the fixture, origin in test/fixtures/README.md.
const KEYRING = join(import.meta.dirname, '..', 'fixtures', 'i2p-archive-keyring.gpg');

let w: World;
let lab: Lab;

const RECORDERS: WorldState = { tor: 'recorder', router: 'recorder', dnsmasq: true, tinyproxy: true };
const CONSOLE = 7070;

beforeAll(async () => {
  w = await World.create({ i2p: { clientDestinations: 'shared' } });
  lab = w.lab;
  const on = await lab.gwRun(['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet']);
  if (on.code !== 0) throw new Error(`route_localnet: ${on.stderr}`);
});

afterAll(async () => {
  await w?.destroy();
});

/** What a client would try: clearnet TCP, DNS to Qubes' resolvers and upstream, UDP, ICMP, IPv6. */
const LEAK_PROBES: readonly Probe[] = [
  { kind: 'tcp', host: A.web, port: 80, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 1 },
  { kind: 'tcp', host: A.web, port: 443, timeout: 1 },
  { kind: 'dns', server: A.dns1, name: 'leak.example', qtype: 'A', timeout: 1 },
  { kind: 'dns', server: A.upDns, name: 'leak2.example', qtype: 'A', timeout: 1 },
  { kind: 'dns', server: A.dns2, name: 'leak3.example', qtype: 'A', tcp: true, timeout: 1 },
  { kind: 'udp', host: A.web, port: 443 },
  { kind: 'icmp', host: A.web },
  { kind: 'tcp', host: A.web6, port: 80, timeout: 1 },
];

function expectNothingReached(r: readonly ProbeResult[]): void {
  expectNoLeakMarkers(r);
  for (const x of r) expect(x.outcome, JSON.stringify(x)).not.toMatch(/^(connected|reply|answer)$/);
}

/** The hook's journal lines go to logger and stderr; stderr is what the lab sees. */
async function hook(): Promise<{ code: number | null; stderr: string }> {
  return w.gw.runHook();
}

suite('1. a qube that provides network but lacks the qvm-service forwards nothing', () => {
  it('at boot, with forwarding on (as qubes-network turns it on): the lockdown unit runs, and the hook leaves a table that drops forwarding and says how to turn the gateway on', async () => {
    const service = w.config.qubes.service;
    await w.use({ tor: 'off', router: 'off', dnsmasq: false, tinyproxy: false });
    lab.setService(service, false);
    try {
      await lab.resetFirewall();
      // The layer above the kernel: forwarding on, as Qubes' qubes-network leaves it before our no-forward unit
      // (which runs in this qube too, service or not) turns it off. The control: Qubes' tables alone forward.
      await lab.forwardingOn();
      let mark = lab.upMark();
      const before = await lab.probe('client', [LEAK_PROBES[0] as Probe]);
      expect(before[0]?.data).toContain('UP-LEAKED');
      await lab.upSince(mark);

      await w.gw.runOneshot(UNIT.lockdown);
      const r = await hook();
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`qvm-service ${service} is off`);
      expect(r.stderr).toContain(`qvm-service --enable ${w.config.qubes.gateway} ${service}`);
      const rules = await lab.ruleset();
      expect(rules).toContain('table inet qubes-i2p-gateway-off');
      expect(rules).not.toContain('table inet qubes-i2p-gateway {');
      mark = lab.upMark();
      expectNothingReached(await lab.probe('client', LEAK_PROBES));
      await expectUpClean(lab, mark, 'service off at boot');
    } finally {
      lab.setService(service, true);
      await lab.restoreForwarding();
      await w.loadFirewall();
    }
  });

  it('turned off while the gateway runs: the next qubes-firewall start removes our rules and forwards nothing (forwarding off, and on: the "off" table alone)', async () => {
    const service = w.config.qubes.service;
    await w.use(RECORDERS);
    lab.setService(service, false);
    try {
      const r = await hook();
      expect(r.code, r.stderr).toBe(0);
      const rules = await lab.ruleset();
      expect(rules).toContain('table inet qubes-i2p-gateway-off');
      expect(rules).not.toContain('table inet qubes-i2p-gateway {');
      await forwardingOffThenOn(lab, async (forwarding) => {
        const mark = lab.upMark();
        const res = await lab.probe('client', [
          ...LEAK_PROBES,
          { kind: 'tcp', host: A.vip, port: 80, send: 'GET / HTTP/1.1\r\nHost: foo.i2p\r\n\r\n', timeout: 1 },
          { kind: 'dns', server: A.gwDown4, name: 'self.i2p', qtype: 'A', timeout: 1 },
        ]);
        expectNothingReached(res);
        expect(w.torEvents()).toEqual([]);
        expect(w.routerEvents()).toEqual([]);
        await expectUpClean(lab, mark, `service turned off while running, forwarding ${forwarding}`);
      });
      // Turned on again: the next start loads the gateway and removes the table.
      lab.setService(service, true);
      const again = await hook();
      expect(again.code, again.stderr).toBe(0);
      expect(await lab.ruleset()).not.toContain('qubes-i2p-gateway-off');
    } finally {
      lab.setService(service, true);
      await w.loadFirewall();
    }
  });
});

/** A syntactically valid I2P destination (random keys, null certificate), in I2P's base64. */
function fakeDestination(): string {
  const bytes = new Uint8Array(387);
  for (let i = 0; i < 384; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Buffer.from(bytes).toString('base64').replace(/\+/g, '-').replace(/\//g, '~');
}

async function addressbook(): Promise<string> {
  const r = await lab.gwRun(['sh', '-c', 'cd /var/lib/i2pd && find addressbook -type f 2>/dev/null | sort | xargs -r sha256sum']);
  return r.stdout;
}

suite('2. no client can write the shared addressbook', () => {
  it('a request with ?i2paddresshelper= (and &update=true) is refused and the addressbook stays as it was', async () => {
    await w.use({ ...RECORDERS, router: 'real' });
    const before = await addressbook();
    const mark = lab.upMark();
    const dest = fakeDestination();
    const first = await lab.curl(`http://poisoned.i2p/?i2paddresshelper=${dest}`);
    const update = await lab.curl(`http://poisoned.i2p/?i2paddresshelper=${dest}&update=true`);
    for (const c of [first, update]) {
      expect(c.body, c.stderr).toContain('I2Pd HTTP proxy');
      expect(c.body).not.toContain('added to router');
      expect(c.body).toMatch(/addresshelper is not supported/i);
    }
    // Another client's request for the name still finds nothing: i2pd's "Host not found", which the waiting page
    // answers here (the router has no network in this lab); i2pd itself, asked past the relay, says so.
    const later = await lab.curl('http://poisoned.i2p/');
    expect(later.body).toContain('The I2P router is still joining the network');
    const direct = await lab.gwRun(['curl', '-s', '-m', '5', '-x', 'http://127.0.0.1:4444', 'http://poisoned.i2p/']);
    expect(direct.stdout).toContain('Host not found');
    expect(await addressbook()).toBe(before);
    await expectUpClean(lab, mark, 'addresshelper');
  });
});

suite('3. no DNS answer is shared between clients', () => {
  it('a name one client asked is asked upstream again for the next client (dnsmasq keeps no cache)', async () => {
    await w.use(RECORDERS);
    const second = await lab.addClient();
    const mark = lab.upMark();
    const name = freshOnion();
    const q: Probe = { kind: 'dns', server: A.dns1, name, qtype: 'A' };
    const a = await lab.probe('client', [q]);
    const b = await second.probe([q]);
    const c = await second.probe([{ ...q, name: 'other.example' }]);
    for (const x of [a, b, c]) expect(x[0]?.outcome, JSON.stringify(x)).toBe('answer');
    const asked = w.torEvents().map((e) => e['name']);
    expect(asked.filter((n) => n === name), 'the second client got the first client\'s cached answer').toHaveLength(2);
    await expectUpClean(lab, mark, 'two clients');
  });

  it('each client\'s names reach Tor\'s DNSPort from a loopback address of its own (Tor isolates by it), UDP and TCP, whatever client-subnet option it sends', async () => {
    await w.use(RECORDERS);
    const second = await lab.addClient();
    const mark = lab.upMark();
    const stand = (addr: string): string => addr.replace(/^10\./, '127.');
    const n = Array.from({ length: 5 }, () => freshOnion());
    const q = (name: string, extra: Record<string, unknown> = {}): Probe => ({ kind: 'dns', server: A.dns1, name, qtype: 'A', ...extra });
    const a = await lab.probe('client', [q(n[0] as string), q(n[1] as string, { tcp: true })]);
    // The second client claims the first's address in a client-subnet option of its own: dnsmasq strips it.
    const b = await second.probe([q(n[2] as string), q(n[3] as string, { ecs: A.client4 }), q(n[4] as string, { ecs: A.client4, tcp: true })]);
    for (const x of [...a, ...b]) expect(x.outcome, JSON.stringify(x)).toBe('answer');
    const peers = new Map(w.torEvents().map((e) => [e['name'], e['peer']]));
    expect(n.map((x) => peers.get(x))).toEqual([A.client4, A.client4, second.addr, second.addr, second.addr].map(stand));
    expect(stand(A.client4)).not.toBe(stand(second.addr));
    await expectUpClean(lab, mark, 'two clients, their own DNS sources');
  });
});

suite('4. the console is not exposed to clients; on loopback it needs the password made in the gateway', () => {
  it('a client reaches no console on the virtual IP and cannot stop the router; in the gateway, 401 without credentials and in with the password from the gateway\'s state', async () => {
    await w.use({ ...RECORDERS, router: 'real' });
    await lab.waitListening('tcp', CONSOLE, 20_000, 'i2pd console');
    const base = `http://${A.vip}:${CONSOLE}/`;
    // The console's port of the virtual IP is plain HTTP to tinyproxy like any other port: its filter refuses it.
    const anon = await lab.curl(base);
    expect(anon.status, anon.body.slice(0, 200)).toBe('403');
    expect(anon.body).not.toMatch(/i2pd/i);
    const kill = await lab.curl(`${base}?cmd=terminate&token=1`);
    expect(kill.status).toBe('403');
    const pid = w.gw.get(UNIT.i2pd)?.pid ?? 0;
    expect(pid).toBeGreaterThan(0);
    expect((await lab.gwRun(['kill', '-0', String(pid)])).code, 'i2pd died').toBe(0);
    const local = `http://127.0.0.1:${CONSOLE}/`;
    expect((await lab.gwRun(['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', local])).stdout).toBe('401');

    const file = await lab.gwRun(['stat', '-c', '%U %a', PATHS.consolePassword]);
    expect(file.stdout.trim(), file.stderr).toBe('i2pd 600');
    const pass = (await lab.gwRun(['cat', PATHS.consolePassword])).stdout.trim();
    expect(pass).toMatch(/^[A-Za-z0-9]{24,}$/);
    const authed = await lab.gwRun(['curl', '-s', '-m', '5', '-u', `i2pd:${pass}`, local]);
    expect(authed.stdout).toContain('i2pd');
    expect((await lab.curl(base, ['-u', `i2pd:${pass}`])).status, 'the password does not open it to a client either').toBe('403');
    // Never in the package (so never in the template): the password is made at the router's first start.
    expect(JSON.stringify(listTree(lab.pkgRoot))).not.toContain(PATHS.consolePassword.split('/').at(-1));
    const packaged = readFileSync(join(lab.pkgRoot, PATHS.i2pdConf), 'utf8');
    expect(packaged).not.toContain(pass);
  });

  it('the password survives a restart of the router (the same file is kept)', async () => {
    await w.use({ ...RECORDERS, router: 'real' });
    const pass = (await lab.gwRun(['cat', PATHS.consolePassword])).stdout.trim();
    expect(pass).not.toBe('');
    await w.use(RECORDERS);
    await w.use({ ...RECORDERS, router: 'real' });
    expect((await lab.gwRun(['cat', PATHS.consolePassword])).stdout.trim()).toBe(pass);
  });

  it('i2pd is restarted when it dies, whatever its exit status (cmd=terminate exits 0)', () => {
    const unit = w.gw.unit(UNIT.i2pd);
    expect(unit.get('Service', 'Restart')).toBe('always');
    expect(Number(unit.get('Service', 'RestartSec')?.replace(/s$/, ''))).toBeGreaterThan(0);
  });
});

suite('5. a missing router user fails closed, and says which package and what to do', () => {
  it('without the user i2pd the hook leaves the lockdown and names package i2pd and the fix (forwarding off, and on: the lockdown alone)', async () => {
    await w.use(RECORDERS);
    const layer = join(lab.scratch, 'override-no-i2pd-user');
    // The gateway machine's own accounts (the Debian 13 root with tor, i2pd and tinyproxy installed), less i2pd:
    // never the host's, which need not have any of those users.
    for (const f of ['passwd', 'group']) {
      const path = join(layer, 'etc', f);
      mkdirSync(dirname(path), { recursive: true });
      const own = await lab.readGwFile(`/etc/${f}`);
      if (own === undefined) throw new Error(`the gateway machine has no /etc/${f}`);
      expect(own, `/etc/${f}`).toMatch(/^i2pd:/m);
      writeFileSync(path, own.split('\n').filter((l) => !l.startsWith('i2pd:')).join('\n'));
    }
    try {
      await lab.resetFirewall();
      const r = await w.gw.runHook({ override: layer });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('user i2pd');
      expect(r.stderr).toContain('package i2pd');
      expect(r.stderr).toContain(`state.sls i2p-gateway.install`);
      expect(await lab.ruleset()).toContain('table inet qubes-i2p-gateway-lockdown');
      await forwardingOffThenOn(lab, async (forwarding) => {
        const mark = lab.upMark();
        expectNothingReached(await lab.probe('client', LEAK_PROBES));
        await expectUpClean(lab, mark, `router user missing, forwarding ${forwarding}`);
      });
    } finally {
      await w.loadFirewall();
    }
  });
});

suite('6. exactly one router can start in the gateway', () => {
  it('the i2pd build keeps the Java router\'s i2p.service from starting in the gateway', () => {
    const dropIn = parseUnit(readFileSync(join(lab.pkgRoot, 'usr/lib/systemd/system/i2p.service.d/50-qubes-i2p-gateway.conf'), 'utf8'));
    const conds = dropIn.get('Unit')?.filter(([k]) => k === 'ConditionPathExists').map(([, v]) => v);
    expect(conds).toEqual([`!/run/qubes-service/${w.config.qubes.service}`]);
  });

  it('the Java router build keeps Debian\'s i2pd.service (left from an i2pd build) from starting in the gateway', async () => {
    const built = buildGatewayDeb({ i2p: { router: 'i2p', keyring: KEYRING } });
    const java = await Lab.create({ sanctionedUsers: [], deb: built.debPath });
    try {
      const gw = new Gateway(java, built.config);
      java.setProvidesNetwork(true);
      java.setService(built.config.qubes.service, true);
      // Debian's i2pd.service from the Debian 13 root, with the Java build's drop-in layered on it.
      expect(await gw.conditionsHold(gw.unit(UNIT.i2pd))).toBe(false);
      java.setService(built.config.qubes.service, false);
      expect(await gw.conditionsHold(gw.unit(UNIT.i2pd)), 'other qubes built from the template keep Debian\'s behaviour').toBe(true);
    } finally {
      await java.destroy();
      rmSync(dirname(built.debPath), { recursive: true, force: true });
    }
  });
});

suite('7. any port of the virtual IP but the exposed ones is HTTP through tinyproxy; HTTPS is refused at once', () => {
  it('http://site.i2p:8080/ reaches the router as that URL; 443 and 8443 get a reset; a request that is not HTTP gets tinyproxy\'s 400', async () => {
    await w.use(RECORDERS);
    const mark = lab.upMark();
    const c = await lab.curl('http://site.i2p:8080/x');
    expect([c.status, c.body.trim()], c.stderr).toEqual(['200', ROUTER_BANNER]);
    const reqs = w.routerEvents().filter((e) => e.ev === 'proxy').map((e) => String(e['request']));
    expect(reqs).toEqual(['GET http://site.i2p:8080/x HTTP/1.1']);
    const started = Date.now();
    const tls = await lab.curl('https://site.i2p/');
    expect(Date.now() - started, 'HTTPS must be refused at once, not time out').toBeLessThan(1500);
    expect(tls.status).toBe('000');
    const r = await lab.probe('client', [
      { kind: 'tcp', host: A.vip, port: 443, timeout: 1 },
      { kind: 'tcp', host: A.vip, port: 8443, timeout: 1 },
      { kind: 'tcp', host: A.vip, port: 22, send: 'SSH-2.0-OpenSSH_9.2\r\n\r\n', readTimeout: 2 },
      { kind: 'tcp', host: A.vip, port: 9040, send: 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n' },
    ]);
    expect(r.map((x) => x.outcome)).toEqual(['refused', 'refused', 'connected', 'connected']);
    expect(httpStatus(r[2]?.data)).toBe(400);
    expect(httpStatus(r[3]?.data)).toBe(403);
    expect(w.torEvents()).toEqual([]);
    await expectUpClean(lab, mark, 'virtual IP ports');
  });
});

suite('8. with our tables gone, the kernel still routes nothing', () => {
  it('no forwarding after the unit ran: deleting our table, flushing every table, a new client, Qubes turning forwarding on again', async () => {
    await w.use({ tor: 'recorder', router: 'off', dnsmasq: false, tinyproxy: false });
    try {
      await lab.resetFirewall();
      // Qubes' qubes-network has turned forwarding on (the lab's gateway starts with it off, as our unit leaves it).
      await lab.forwardingOn();
      // The control: with forwarding on and only Qubes' tables (our table deleted), the client gets out.
      let mark = lab.upMark();
      const control = await lab.probe('client', [LEAK_PROBES[0] as Probe]);
      expect(control[0]?.data).toContain('UP-LEAKED');
      await lab.upSince(mark);

      await w.loadFirewall();
      await w.gw.runOneshot(UNITS.noForward);
      expect(await lab.gwSysctl('net.ipv4.ip_forward')).toBe('0');
      expect(await lab.gwSysctl('net.ipv6.conf.all.forwarding')).toBe('0');

      await lab.nft(['delete', 'table', 'inet', 'qubes-i2p-gateway']);
      expect(await lab.ruleset()).not.toContain('table inet qubes-i2p-gateway {');
      mark = lab.upMark();
      expectNothingReached(await lab.probe('client', LEAK_PROBES));
      await expectUpClean(lab, mark, 'our table deleted');

      await lab.bareFirewall(); // nft flush ruleset (the lab's tag table, which only tags, comes back)
      mark = lab.upMark();
      expectNothingReached(await lab.probe('client', LEAK_PROBES));
      await expectUpClean(lab, mark, 'whole ruleset flushed');

      // A client attaches now: udev runs our rule for its vif, as it runs Qubes' vif-route-qubes.
      const second = await lab.addClient();
      await runUdevRule(second.vif);
      for (const k of ['ipv4/conf/%s/forwarding', 'ipv4/conf/%s/accept_redirects', 'ipv6/conf/%s/accept_ra']) {
        expect(await lab.gwSysctl(`net/${k.replace('%s', second.vif)}`), k).toBe('0');
      }
      mark = lab.upMark();
      expectNothingReached(await second.probe(LEAK_PROBES.filter((p) => p.host !== A.web6)));
      await expectUpClean(lab, mark, 'a new client with the ruleset flushed');

      // qubes-network.service (re)started: network-proxy-setup.sh writes ip_forward=1; systemd then starts our
      // unit again (it is PartOf= and After= that unit).
      await lab.setGwSysctl('net.ipv4.ip_forward', '1');
      const unit = w.gw.unit(UNITS.noForward);
      expect(unit.list('Unit', 'PartOf')).toContain('qubes-network.service');
      expect(unit.list('Unit', 'After')).toContain('qubes-network.service');
      await w.gw.runOneshot(UNITS.noForward);
      mark = lab.upMark();
      expectNothingReached(await lab.probe('client', LEAK_PROBES));
      await expectUpClean(lab, mark, 'after qubes-network started again');
    } finally {
      await lab.restoreForwarding();
      await w.loadFirewall();
    }
  });
});

/** Stand-in for udevd: the packaged rule's RUN+= for an added net device named `iface`, run as root. */
async function runUdevRule(iface: string): Promise<void> {
  const rules = readFileSync(join(lab.pkgRoot, PATHS.udevRules.slice(1)), 'utf8');
  const runs = rules.split('\n').filter((l) => !l.trim().startsWith('#') && l.includes('RUN+='));
  expect(runs.length).toBeGreaterThan(0);
  for (const line of runs) {
    expect(line).toMatch(/KERNEL=="vif\*"/);
    const cmd = /RUN\+="([^"]+)"/.exec(line)?.[1] ?? '';
    const argv = cmd.replace(/\$name|%k/g, iface).split(/\s+/);
    const r = await lab.gwRun(argv);
    expect(r.code, r.stderr).toBe(0);
  }
}

function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push(p.slice(root.length));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

suite('issue 23: the waiting page\'s relay (router i2pd) is for tinyproxy, not for clients', () => {
  it('listens on the gateway\'s loopback only, as i2pd\'s user; a client reaches it neither at the gateway\'s address nor at 127.0.0.1', async () => {
    await w.use(RECORDERS);
    const ss = await lab.gwRun(['ss', '-Hltn', 'sport = :4446']);
    expect(ss.stdout.trim().split('\n').map((l) => l.split(/\s+/)[3]), ss.stdout).toEqual(['127.0.0.1:4446']);
    expect(w.gw.unit(UNITS.waitPage).get('Service', 'User')).toBe('i2pd');
    const r = await lab.probe('client', [
      { kind: 'tcp', host: A.gwDown4, port: 4446, timeout: 2 },
      { kind: 'tcp', host: '127.0.0.1', port: 4446, timeout: 2 },
    ]);
    for (const x of r) expect(x.outcome, JSON.stringify(x)).not.toBe('connected');
  });
});

