/**
 * `qubes-i2p-gateway status`, the packaged command, run in the lab's gateway machine against the packaged units,
 * firewall and real daemons (dnsmasq, tinyproxy, the DNS relay; Tor and i2pd where the lab can run them).
 *
 * What the lab cannot have is stood in for, each stand-in saying what it stands for (test/net/tools/):
 * - systemd's answers (`systemctl show`): the lab starts units itself; fake-systemctl reports a unit active while
 *   the process the lab started for it lives;
 * - qubesdb (`qubesdb-read`): fake-qubesdb-read answers what dom0 would write for this lab's gateway;
 * - a Tor that has bootstrapped: the Tor recorder (netlab.py tor) where the torrc makes Tor listen, with a
 *   control socket where the torrc puts it, cookie authentication, and a bootstrap reply of 100 %;
 * - a router that has integrated: the router recorder (netlab.py http-proxy) on the router's ports, serving the
 *   i2pd console pages of test/fixtures/i2pd-console (captured from i2pd 2.56.0, tunnels written in).
 * The real Tor (no network in the lab: bootstrapping) and the real i2pd (no network: no tunnels) then show the
 * WAIT states. Goldens under test/golden/status/ (UPDATE_GOLDEN=1 rewrites them) are what a user reads.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATHS, UNITS } from '../../src/render/gateway/common.ts';
import { SYSTEMD_PATH } from './lib/gateway.ts';
import { A, type Lab } from './lib/lab.ts';
import type { Proc } from './lib/sh.ts';
import { expectUpClean } from './lib/suite.ts';
import { ROUTER_BANNER, UNIT, World, SHARED_DESTINATION } from './lib/world.ts';

const GOLDEN = join(import.meta.dirname, '..', 'golden', 'status');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const update = process.env['UPDATE_GOLDEN'] === '1';

let w: World;
let lab: Lab;
/** The layer with the stand-ins for systemctl and qubesdb-read, over the machine's /usr and /etc per command. */
let layer = '';
let fakesLog = '';
/** Replaces one of the stand-ins' state files (with the log). */
let writeState: (file: 'units.json' | 'qubesdb.json', value: object) => void = () => {};
let tor: Proc | undefined;
let router: Proc | undefined;

interface Status {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly lines: Map<string, string>;
}

/** What fails with each daemon, besides its own line (the checks that need it). */
const DEPENDANTS: Readonly<Record<string, readonly string[]>> = {
  Tor: ['dns.clearnet', 'dns.onion', 'dns.tcp', 'tor.bootstrap'],
  'DNS relay': ['dns.clearnet', 'dns.onion', 'dns.tcp'],
  dnsmasq: ['dns.clearnet', 'dns.i2p', 'dns.onion', 'dns.tcp'],
  tinyproxy: ['http.i2p'],
  i2pd: ['http.i2p', 'router.network'],
};

interface JsonCheck {
  readonly id: string;
  readonly title: string;
  readonly status: string;
  readonly summary: string;
  readonly fix: string | null;
  readonly needsRoot: boolean;
}

beforeAll(async () => {
  w = await World.create(SHARED_DESTINATION);
  lab = w.lab;
  // The stand-ins' files where every machine user can read them (the lab's scratch dir is shared into the machine).
  const fx = join(lab.scratch, 'status-fixtures');
  mkdirSync(fx, { mode: 0o755 });
  for (const f of ['i2pd-console/main-2.56.0-integrated.html', 'i2pd-console/tunnels-2.56.0-integrated.html', 'tor-control/bootstrap-done.txt']) {
    copyFileSync(join(FIXTURES, f), join(fx, f.split('/')[1] ?? f));
    chmodSync(join(fx, f.split('/')[1] ?? f), 0o644);
  }
  const standIns = lab.statusStandIns('status-layer');
  layer = standIns.layer;
  fakesLog = standIns.log;
  writeState = standIns.write;
  // What dom0 writes into a network-providing qube's qubesdb, for this lab: its own address on the client side,
  // the one client, and its netvm (up).
  writeState('qubesdb.json', { keys: { '/qubes-netvm-network': A.gwDown4, '/connected-ips': A.client4, '/qubes-gateway': A.up4 } });
  await healthy();
});

afterAll(async () => {
  if (tor) await lab?.stop(tor);
  if (router) await lab?.stop(router);
  await w?.destroy();
});


async function startTorStandIn(): Promise<void> {
  if (tor) return;
  const t = w.transPort;
  const d = w.dnsPort;
  if (t === undefined || d === undefined) throw new Error('this build has no Tor');
  // The runtime directory the unit's RuntimeDirectory= makes for Tor's user, a stale socket of a stopped one gone.
  const mk = await lab.gwRun(['sh', '-c', 'install -d -o debian-tor -g debian-tor -m 0700 "$1" && rm -f "$2" "$3"', 'sh', PATHS.torRuntime, PATHS.torControl, PATHS.torCookie]);
  expect(mk.code, mk.stderr).toBe(0);
  tor = (
    await lab.startStandIn(
      'tor-status',
      ['tor', '--trans', `${t.host}:${t.port}`, '--dns', `${d.host}:${d.port}`, '--control', PATHS.torControl, '--cookie', PATHS.torCookie,
        '--bootstrap', join(lab.scratch, 'status-fixtures', 'bootstrap-done.txt')],
      w.torUser,
    )
  ).proc;
}

async function startRouterStandIn(): Promise<void> {
  if (router) return;
  const h = w.routerHttp;
  const c = w.routerConsole;
  const fx = join(lab.scratch, 'status-fixtures');
  router = (
    await lab.startStandIn(
      'router-status',
      ['http-proxy', '--listen', `${h.host}:${h.port}`, '--listen', `${c.host}:${c.port}`, '--banner', ROUTER_BANNER,
        '--page', `${c.port}:/=${join(fx, 'main-2.56.0-integrated.html')}`, '--page', `${c.port}:/?page=tunnels=${join(fx, 'tunnels-2.56.0-integrated.html')}`],
      w.routerUser,
    )
  ).proc;
}

async function stopTorStandIn(): Promise<void> {
  if (tor) await lab.stop(tor);
  tor = undefined;
}

async function stopRouterStandIn(): Promise<void> {
  if (router) await lab.stop(router);
  router = undefined;
}

/** The healthy gateway: the packaged dnsmasq, tinyproxy and relay, the bootstrapped Tor and integrated router stand-ins. */
async function healthy(): Promise<void> {
  await w.use({ tor: 'off', router: 'off', dnsmasq: true, tinyproxy: true });
  if (!w.gw.isRunning(UNITS.dnsRelay)) {
    await w.gw.start(UNITS.dnsRelay, [['tcp', w.dnsPort?.port ?? 5353]]);
  }
  await startTorStandIn();
  await startRouterStandIn();
}

/** Which process stands for each unit now (for the systemctl stand-in). */
function unitPids(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const u of [UNIT.tor, UNITS.dnsRelay, UNIT.dnsmasq, UNIT.tinyproxy, UNIT.i2pd]) {
    const pid = w.gw.get(u)?.pid;
    if (pid !== undefined) out[u] = pid;
  }
  if (tor) out[UNIT.tor] = tor.pid;
  if (router) out[UNIT.i2pd] = router.pid;
  return out;
}

/** `qubes-i2p-gateway status` as root (or `user`) in the gateway machine, with the systemctl and qubesdb stand-ins. */
async function status(opts: { user?: string; json?: boolean } = {}): Promise<Status> {
  writeState('units.json', { units: unitPids() });
  const r = await lab.gwRun([PATHS.command, 'status', ...(opts.json ? ['--json'] : [])], {
    override: layer,
    timeoutMs: 40_000,
    env: { PATH: SYSTEMD_PATH, LANG: 'C.UTF-8', TERM: 'xterm' },
    ...(opts.user === undefined ? {} : { user: opts.user }),
  });
  const lines = new Map<string, string>();
  for (const m of r.stdout.matchAll(/^ {2}\[(.{4})\] (.+?) {2}/gm)) lines.set((m[2] ?? '').trim(), (m[1] ?? '').trim());
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, lines };
}

async function statusJson(user?: string): Promise<{ code: number | null; checks: Map<string, JsonCheck>; verdict: string }> {
  const r = await status({ json: true, ...(user === undefined ? {} : { user }) });
  expect(r.stderr).toBe('');
  const doc = JSON.parse(r.stdout) as { verdict: string; checks: JsonCheck[] };
  return { code: r.code, verdict: doc.verdict, checks: new Map(doc.checks.map((c) => [c.id, c])) };
}

function notOk(checks: Map<string, JsonCheck>): Array<[string, string]> {
  return [...checks.values()].filter((c) => c.status !== 'ok').map((c) => [c.id, c.status]);
}

function golden(name: string, text: string): void {
  const f = join(GOLDEN, name);
  if (update) {
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, text);
  }
  expect(existsSync(f), `${f} is missing: run with UPDATE_GOLDEN=1 and review`).toBe(true);
  expect(text).toBe(readFileSync(f, 'utf8'));
}

describe('qubes-i2p-gateway status in the lab\'s gateway', () => {
  it('healthy gateway, as root: every line OK, exit 0, and the self-tests send nothing out of the gateway', async () => {
    await healthy();
    const mark = lab.upMark();
    const r = await status();
    expect(r.stderr).toBe('');
    expect([...r.lines.values()].every((s) => s === 'OK'), r.stdout).toBe(true);
    expect(r.lines.size).toBe(19);
    expect(r.code, r.stdout).toBe(0);
    // Not a terminal: no colour.
    expect(r.stdout).not.toContain('\u001b[');
    golden('healthy.txt', r.stdout);
    // The leak probe (nobody to the netvm) was refused inside the gateway: up saw nothing at all.
    await expectUpClean(lab, mark, 'a status run');
    // The stand-ins were asked what the real ones would be: Tor's control socket with its cookie, then GETINFO.
    const asked = lab.readLog('tor-status.jsonl').filter((e) => e.ev === 'tor-control').map((e) => [e['command'], e['authenticated']]);
    expect(asked).toEqual([['AUTHENTICATE', false], ['GETINFO', true], ['QUIT', true]]);
    const fakes = lab.readLog(basename(fakesLog)).map((e) => (e['argv'] as string[])[0]);
    expect(fakes).toContain('show');
  });

  it('healthy gateway, --json: the same verdict for scripts, also once client traffic has filled the per-client limits\' sets', async () => {
    await healthy();
    // A client's DNS query and HTTP to the virtual IP put its address into the dynamic sets of the per-client limits:
    // the ruleset line compares rules, not those elements (nft -t), so it stays OK.
    await lab.probe('client', [
      { kind: 'dns', server: A.dns1, name: 'fill.i2p', qtype: 'A', timeout: 1 },
      { kind: 'tcp', host: A.vip, port: 80, send: 'GET / HTTP/1.0\r\nHost: fill.i2p\r\n\r\n', timeout: 1 },
    ]);
    const sets = await lab.nft(['list', 'table', 'inet', 'qubes-i2p-gateway']);
    expect(sets.stdout, 'a per-client set holds the client').toMatch(new RegExp(`elements = \\{ ${A.client4.replace(/\./g, '\\.')}`));
    const j = await statusJson();
    expect([j.code, j.verdict, notOk(j.checks)]).toEqual([0, 'ok', []]);
    expect(j.checks.get('router.network')?.summary).toContain('3 tunnels through peers');
    expect(j.checks.get('leak.output')?.summary).toBe(`nobody -> ${A.up4}:9 (the netvm) refused by the gateway's output chain`);
  });

  it('healthy gateway, as an ordinary user: the firewall and Tor lines say they need root, exit 3', async () => {
    await healthy();
    const r = await status({ user: 'nobody' });
    expect(r.code, r.stdout).toBe(3);
    expect([...r.lines.entries()].filter(([, s]) => s !== 'OK')).toEqual([['lockdown', '??'], ['ruleset', '??'], ['input jump', '??'], ['Tor network', '??']]);
    expect(r.stdout).toContain("4 checks need root: sudo qubes-i2p-gateway status here, or in dom0: qvm-run -p --no-gui -u root sys-i2p 'qubes-i2p-gateway status'");
    golden('unprivileged.txt', r.stdout);
  });

  describe('each daemon stopped in turn: its line FAILs with the fix, exit 2', () => {
    const cases: Array<[string, string, () => Promise<void>]> = [
      ['Tor', UNIT.tor, stopTorStandIn],
      ['DNS relay', UNITS.dnsRelay, () => w.gw.stop(UNITS.dnsRelay)],
      ['dnsmasq', UNIT.dnsmasq, () => w.use({ tor: 'off', router: 'off', dnsmasq: false, tinyproxy: true })],
      ['tinyproxy', UNIT.tinyproxy, () => w.use({ tor: 'off', router: 'off', dnsmasq: true, tinyproxy: false })],
      ['i2pd', UNIT.i2pd, stopRouterStandIn],
    ];
    for (const [title, unit, stop] of cases) {
      it(`${title} (${unit})`, async () => {
        await healthy();
        await stop();
        try {
          const r = await status();
          expect(r.code, r.stdout).toBe(2);
          expect(r.lines.get(title), r.stdout).toBe('FAIL');
          if (title === 'i2pd') golden('broken.txt', r.stdout);
          const j = await statusJson();
          expect(j.code).toBe(2);
          const short = unit.replace(/\.service$/, '');
          const own = [...j.checks.values()].find((c) => c.title === title);
          expect(own?.fix).toBe(`sudo systemctl restart ${short} (journalctl -b -u ${short} says why it stopped)`);
          expect(own?.summary).toBe(`${unit} is inactive (dead)`);
          // Lines that depend on it point at it rather than guess; nothing else fails.
          const others = [...j.checks.values()].filter((c) => c.status === 'fail' && c !== own);
          for (const c of others) expect(c.fix, c.id).toBe(`fix the ${title} line above first`);
          expect(others.map((c) => c.id).sort()).toEqual(DEPENDANTS[title]);
        } finally {
          await healthy();
        }
      });
    }
  });

  it('router up but no tunnels (the real i2pd, which has no network here): still integrating, WAIT, exit 1', async () => {
    await healthy();
    await stopRouterStandIn();
    try {
      await w.use({ tor: 'off', router: 'real', dnsmasq: true, tinyproxy: true });
      const j = await statusJson();
      // The waiting page's relay (packaged unit, real program) answers tinyproxy's request in front of the real
      // i2pd: the .i2p line waits too.
      expect(notOk(j.checks)).toEqual([['router.network', 'wait'], ['http.i2p', 'wait']]);
      expect(j.checks.get('router.network')?.summary).toMatch(/^still integrating: network \w+.*, \d+ routers known, 0 tunnels through peers \(\d+ zero-hop\), 0 participating, up \d+ s$/);
      expect(j.code).toBe(1);
      // The real console asks for its password (made at i2pd's start): root read it; another user cannot.
      const nobody = await statusJson('nobody');
      expect(nobody.checks.get('router.network')).toMatchObject({ status: 'unknown', needsRoot: true });
      expect(nobody.checks.get('router.network')?.summary).toBe('the console asks for a password: needs root to read /var/lib/i2pd/qubes-i2p-gateway-console.pass');
      // ...and tinyproxy reaches the real i2pd's HTTP proxy through the relay: i2pd's own error page for the unknown
      // name, which the relay answers with its waiting page while the router has no tunnels.
      expect(j.checks.get('http.i2p')?.summary).toMatch(/answers with the gateway's waiting page: the router is not ready yet \(HTTP 503\)$/);
    } finally {
      await w.use({ tor: 'off', router: 'off', dnsmasq: true, tinyproxy: true });
      await healthy();
    }
  });

  it('the real Tor from its packaged unit: bootstrap read from its control socket (WAIT, exit 1); no one else gets in, and clients reach no control port', async () => {
    await healthy();
    await stopTorStandIn();
    try {
      await w.use({ tor: 'real', router: 'off', dnsmasq: true, tinyproxy: true });
      const j = await statusJson();
      const boot = j.checks.get('tor.bootstrap');
      expect(boot?.status, JSON.stringify(boot)).toBe('wait');
      expect(boot?.summary).toMatch(/^bootstrapped \d{1,2}% \(.+\)/);
      // A .onion name is mapped by Tor itself, bootstrapped or not; a public name waits for Tor.
      expect(j.checks.get('dns.onion')?.status).toBe('ok');
      expect(j.checks.get('dns.tcp')?.status).toBe('ok');
      expect(j.checks.get('dns.clearnet')?.status).toBe('wait');
      expect(j.code).toBe(1);
      // The socket's directory is Tor's alone: nobody can neither reach the socket nor read the cookie.
      const ls = await lab.gwRun(['stat', '-c', '%U:%G %a', PATHS.torRuntime]);
      expect(ls.stdout.trim()).toBe('debian-tor:debian-tor 700');
      const probe = 'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1]); print("connected")\nexcept OSError as e: print(e.errno)\n';
      const nobody = await lab.gwRun(['python3', '-c', probe, PATHS.torControl], { user: 'nobody' });
      expect(nobody.stdout.trim()).toBe('13'); // EACCES
      const unprivileged = await statusJson('nobody');
      expect(unprivileged.checks.get('tor.bootstrap')).toMatchObject({ status: 'unknown', needsRoot: true });
      // Tor listens on TCP for TransPort only: no control port on any address, so none a client could reach.
      const ss = await lab.gwRun(['ss', '-Hltnp']);
      const torTcp = ss.stdout.split('\n').filter((l) => l.includes('"tor"')).map((l) => l.split(/\s+/)[3]);
      expect(torTcp).toEqual([`0.0.0.0:${w.transPort?.port}`]);
      const mark = lab.upMark();
      // (TCP to the virtual IP lands at tinyproxy whatever the port: it answers the control protocol with HTTP.)
      const ask = 'PROTOCOLINFO 1\r\n';
      const r = await lab.probe('client', [9051, 9151, 9050].flatMap((port) => [
        { kind: 'tcp' as const, host: A.gwDown4, port, send: ask, timeout: 1 },
        { kind: 'tcp' as const, host: A.vip, port, send: ask, timeout: 1 },
      ]));
      for (const x of r) {
        if (x.probe['host'] === A.gwDown4) expect(x.outcome, JSON.stringify(x.probe)).not.toBe('connected');
        expect(x.data ?? '', JSON.stringify(x.probe)).not.toMatch(/^250|PROTOCOLINFO|AUTH METHODS/m);
      }
      await expectUpClean(lab, mark, 'control ports from the client');
    } finally {
      await w.use({ tor: 'off', router: 'off', dnsmasq: true, tinyproxy: true });
      await healthy();
    }
  });

  it('ruleset missing (the lockdown unit ran, the hook never did): lockdown reported, exit 2', async () => {
    await healthy();
    try {
      await lab.resetFirewall();
      await w.gw.runOneshot(UNIT.lockdown);
      const r = await status();
      expect(r.code).toBe(2);
      // The lockdown cuts the clients off and refuses the gateway's own new connections too: the leak test holds.
      expect([...r.lines.entries()].filter(([, s]) => s !== 'OK')).toEqual([['lockdown', 'FAIL'], ['ruleset', 'FAIL'], ['input jump', 'FAIL']]);
      golden('lockdown.txt', r.stdout);
      const j = await statusJson();
      expect(j.checks.get('firewall.lockdown')?.summary).toBe('still in place: client qubes are cut off because the gateway\'s ruleset never loaded');
      // The same after a hook that failed on a broken ruleset.
      const hook = await w.gw.runHook({ override: w.brokenRulesetLayer() });
      expect(hook.code).not.toBe(0);
      expect((await statusJson()).checks.get('firewall.lockdown')?.status).toBe('fail');
    } finally {
      await w.loadFirewall();
    }
  });

  it('a hand edit to the loaded table: the ruleset line FAILs with the line that differs', async () => {
    await healthy();
    try {
      await lab.nft(['add', 'rule', 'inet', 'qubes-i2p-gateway', 'forward', 'meta', 'l4proto', 'udp', 'counter']);
      const j = await statusJson();
      expect(notOk(j.checks)).toEqual([['firewall.ruleset', 'fail']]);
      expect(j.checks.get('firewall.ruleset')?.summary).toContain("loaded 'meta l4proto udp counter' where it ships '}'");
      expect(j.code).toBe(2);
    } finally {
      await w.loadFirewall();
    }
  });

  it('the gateway\'s own output unfiltered (our table gone): the leak self-test FAILs, and up did see its one SYN', async () => {
    await healthy();
    try {
      await lab.nft(['delete', 'table', 'inet', 'qubes-i2p-gateway']);
      const mark = lab.upMark();
      const j = await statusJson();
      expect(j.checks.get('leak.output')).toMatchObject({ status: 'fail' });
      expect(j.checks.get('leak.output')?.summary).toMatch(/^nobody -> 172\.31\.0\.1:9 \(the netvm\): ECONNREFUSED \(connection refused\), where the gateway's output chain refuses at once$/);
      expect(j.checks.get('firewall.ruleset')?.status).toBe('fail');
      // The control: the probe really left the gateway this time, one connection attempt to port 9, no data.
      const ev = await lab.upSince(mark);
      const frames = ev.filter((e) => e.ev === 'frame' && e['dport'] === 9);
      expect(frames.length).toBeGreaterThan(0);
      expect(ev.filter((e) => e.ev === 'up-tcp')).toEqual([]);
    } finally {
      await w.loadFirewall();
    }
  });

  it('service flag absent: this qube is not the gateway, nothing else is checked, exit 2', async () => {
    await healthy();
    try {
      lab.setService(w.config.qubes.service, false);
      const r = await status();
      expect(r.code).toBe(2);
      expect([...r.lines.entries()]).toEqual([['service flag', 'FAIL'], ['provides network', 'OK'], ['client qubes', 'OK']]);
      expect(r.stdout).toContain('fix: in dom0: qvm-service --enable sys-i2p i2p, then restart sys-i2p');
    } finally {
      lab.setService(w.config.qubes.service, true);
    }
  });
});
