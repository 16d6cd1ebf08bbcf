/**
 * `npm run test:boot`, part 1: the package under a real systemd, as Qubes runs it.
 *
 * The template: the cached Debian 13 root (minbase + systemd, test/util/chroot.ts) booted with systemd-nspawn,
 * with the Qubes stand-ins (stand-ins/README.md) telling it it is a TemplateVM, the dummy
 * qubes-core-agent-networking, then the rendered install.sls performed state by state inside the running system
 * (lib/template.ts: packages downloaded first in a networked chroot, installed in a template with no network).
 * Debian's postinsts run for real there and try to start their daemons; nothing of the gateway may run, listen
 * or leave state behind. Then a reboot; after the gateways (below), an upgrade to a changed build, remove and
 * purge, each with the same checks.
 *
 * The gateways: qubes booted from that template (lib/gateway.ts) with systemd-nspawn joined to the datapath
 * lab's gateway namespace, so the lab's client probes and up's recorder judge the booted gateway: units and
 * their sandboxes, the order of the firewall at boot, listeners, the data path, leaks, restarts after a kill, an
 * upgrade installed inside the running gateway (the maintainer scripts under the real systemd),
 * the router identity across a reboot and between two gateways, and a gateway whose ruleset fails to load.
 *
 * Not proven here: IPAddressAllow=/IPAddressDeny= (the DNS relay's), which are cgroup BPF programs systemd
 * cannot attach in this container; the test reads them back only. The Java router's variant: its package is
 * not in Debian and its repository is unreachable here, so it is not booted (test/install installs that variant
 * of our package, without the router).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATHS, UNITS } from '../../src/render/gateway/common.ts';
import { CONSOLE_USER } from '../../src/render/gateway/i2pd.ts';
import { LOCKDOWN_UNIT } from '../../src/render/gateway/lockdown.ts';
import { TABLE } from '../../src/render/gateway/firewall.ts';
import { parseUnit } from '../net/lib/units.ts';
import { A, Lab, serverHits, unsanctioned, describe as describeFrames, type Probe } from '../net/lib/lab.ts';
import { run, sleep } from '../net/lib/sh.ts';
import { ensurePristine, makeOverlay, writeAptSources, aptCacheDirs, type Overlay } from '../util/chroot.ts';
import { NOTHING, DISTRO_UNITS, ourUnits, quietReport, type Quiet } from './lib/checks.ts';
import { bootGateway, gatewayServices, LEAK_PROBES, Prober, shutdown, uidIn, type GatewayQube } from './lib/gateway.ts';
import { Machine } from './lib/machine.ts';
import { installCoreAgentStandIns, writeQubesDb } from './lib/qubes.ts';
import { applied, CAP_NET_BIND_SERVICE, DYNAMIC_UIDS, expectedListeners, i2pdTunnelListeners, sandboxDifferences, serviceSettings, sockets } from './lib/running.ts';
import { REAL_KEYRING, text } from '../render/helpers.ts';
import { applyState, buildRelease, downloadFor, installDummy, SALT_ENV, SALT_ROOT, stageFormula } from './lib/template.ts';

/**
 * What the client gets once i2pd's HTTP proxy answers through the gateway: the router has no I2P network here, so its
 * own "Host not found" comes back as the waiting page's "still joining" page (gateway/i2p-wait-page), which only an
 * answer of i2pd's proxy gives (while i2pd is silent, the page says it is starting).
 */
const I2PD_ANSWERED = 'The I2P router is still joining the network';

const log = (msg: string): void => console.log(`[boot] ${msg}`);
const INSTALL = 'i2p-gateway.install';

/** The build users install first, and a changed one to upgrade to: a new version with another tinyproxy port. */
const FIRST = buildRelease({ i2p: { clientDestinations: 'shared' } });
const CHANGED = buildRelease({ package: { version: '0.1.1' }, tinyproxy: { port: 8890 }, i2p: { clientDestinations: 'shared' } });

/** The template, shared by the describes below, which run in order: install, the gateways, then upgrade and purge. */
let pristine = '';
let template: Overlay | undefined;
let tm: Machine | undefined;
const templateMachine = (): Machine => {
  if (tm === undefined) throw new Error('the template is not booted: an earlier step failed');
  return tm;
};
const templateRoot = (): Overlay => {
  if (template === undefined) throw new Error('no template root: an earlier step failed');
  return template;
};
const bootTemplate = async (): Promise<void> => {
  tm = await Machine.boot(templateRoot(), { name: 'qig-template', network: { kind: 'private' }, binds: await aptCacheDirs(), log });
};
/** Power the template off (if it runs) and unmount its root, so its upper dir can be a layer of other roots. */
const stopTemplate = async (): Promise<void> => {
  if (tm !== undefined) {
    const m = tm;
    tm = undefined;
    try {
      await m.poweroff();
    } finally {
      await m.kill();
    }
  }
  await template?.unmount();
};
const units = [...new Set([...ourUnits(FIRST.deb.files), ...ourUnits(CHANGED.deb.files), ...DISTRO_UNITS])];
const quiet = async (): Promise<Quiet> => quietReport(templateMachine(), units);

afterAll(async () => {
  await tm?.kill();
  await template?.dispose();
});

describe('template: install.sls in a booted Debian 13 template', () => {
  beforeAll(async () => {
    pristine = await ensurePristine(log);
    const t = Date.now();
    await downloadFor(pristine, FIRST, INSTALL, log);
    log(`packages downloaded in ${((Date.now() - t) / 1000).toFixed(0)} s`);
    template = await makeOverlay([pristine]);
    await writeAptSources(template.root);
    installCoreAgentStandIns(template.root);
    writeQubesDb(template.root, { type: 'TemplateVM', persistence: 'full', services: [] });
    stageFormula(template.root, FIRST);
    await bootTemplate();
  });

  it('boots clean, as a template: no qvm-service flags, nothing failed', async () => {
    const flags = await templateMachine().must(['sh', '-c', 'ls -A /run/qubes-service; ls /run/qubes']);
    expect(flags.stdout.split('\n').filter((l) => l !== '')).toEqual(['persistent-full', 'this-is-templatevm']);
    expect(await quiet()).toEqual(NOTHING);
  });

  it('install.sls, state by state in its order, with apt inside the running template', async () => {
    await installDummy(templateMachine());
    const runs = await applyState(templateMachine(), FIRST, INSTALL, log);
    const did = runs.filter((r) => r.command !== '').map((r) => r.id);
    expect(did, 'what a fresh template needed').toEqual(['i2p-gateway-hold-i2pd', 'i2p-gateway-hold-tor', 'i2p-gateway-hold-tor-default', 'i2p-gateway-hold-tinyproxy', 'i2p-gateway-dependencies', 'i2p-gateway-package', 'i2p-gateway-disable-tor', 'i2p-gateway-disable-tinyproxy', 'i2p-gateway-disable-i2pd']);
    // Debian's postinsts enabled their daemons; install.sls disabled each one (the package itself does not).
    for (const unit of ['tor.service', 'tinyproxy.service', 'i2pd.service']) {
      expect(runs.find((r) => r.id === `i2p-gateway-disable-${unit.replace('.service', '')}`)?.command, unit).toBe(`systemctl disable ${unit}`);
      expect((await templateMachine().exec(['systemctl', 'is-enabled', unit])).stdout.trim(), unit).toBe('disabled');
    }
    // The version pin finds exactly this build installed; the notice follows the change.
    expect(runs.map((r) => r.id)).toContain('i2p-gateway-package-version');
    expect(runs.find((r) => r.id === 'i2p-gateway-restart-notice')?.stdout).toContain(`qubes-i2p-gateway ${FIRST.version} is installed`);
    const v = await templateMachine().must(['dpkg-query', '-W', '-f', '${Status} ${Version}', 'qubes-i2p-gateway']);
    expect(v.stdout).toBe(`install ok installed ${FIRST.version}`);
  });

  it('nothing of the gateway is active or has run, nothing listens, no identity or Tor state, nothing failed', async () => {
    expect(await quiet()).toEqual(NOTHING);
  });

  it("Debian's postinsts did try: each start was skipped by the condition install.sls put in place first", async () => {
    const held: Array<[string, string]> = [['i2pd.service', '/run/qubes-service/i2p'], ['tinyproxy.service', '/run/qubes-service/tinyproxy'], ['tor.service', '/run/qubes-service/tor']];
    for (const [unit, flag] of held) {
      const skipped = (await templateMachine().journal([`UNIT=${unit}`])).map((e) => String(e['MESSAGE'])).filter((msg) => msg.includes(`skipped, unmet condition check ConditionPathExists=${flag}`));
      expect(skipped.length, `${unit}: a start request held by its condition`).toBeGreaterThan(0);
    }
  });

  it('a second run of install.sls changes nothing', async () => {
    const runs = await applyState(templateMachine(), FIRST, INSTALL, log);
    expect(runs.filter((r) => r.command !== '').map((r) => `${r.id}: ${r.command}`)).toEqual([]);
  });

  it('reboot: nothing of the gateway starts at boot in the template', async () => {
    await stopTemplate();
    await templateRoot().mount();
    await bootTemplate();
    expect(await quiet()).toEqual(NOTHING);
  });
});

/**
 * Debian's i2pd web console, from inside the gateway's namespace: the router's identity hash, once it serves. The
 * console asks for the password the gateway made at i2pd's first start (kept in its state, so under /rw).
 */
async function routerIdent(lab: Lab, rw: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const passFile = join(rw, 'bind-dirs', PATHS.consolePassword);
  while (Date.now() < deadline) {
    const pass = existsSync(passFile) ? readFileSync(passFile, 'utf8').trim() : '';
    const r = await run(['ip', 'netns', 'exec', lab.ns.gw, 'curl', '-s', '-m', '2', '-u', `${CONSOLE_USER}:${pass}`, 'http://127.0.0.1:7070/'], { timeoutMs: 5000 });
    const m = /Router Ident:<\/b>\s*([A-Za-z0-9~=-]{40,})/.exec(r.stdout);
    if (m?.[1] !== undefined) return m[1];
    await sleep(200);
  }
  throw new Error('the router console did not show an identity');
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The addresses of the gateway's client-facing interface, as dnsmasq binds them (bind-dynamic, interface=vif*). */
async function vifAddresses(lab: Lab): Promise<string[]> {
  const r = await run(['ip', '-n', lab.ns.gw, '-j', 'addr', 'show', 'dev', 'vif3.0'], { timeoutMs: 5000 });
  const links = JSON.parse(r.stdout) as Array<{ addr_info: Array<{ local: string }> }>;
  return links.flatMap((l) => l.addr_info.map((a) => a.local));
}

/** The daemons of the default build: its units, and Debian's i2pd with our drop-in. */
const DAEMONS = [UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, UNITS.waitPage, 'i2pd.service'] as const;

describe('gateway: booted from that template, joined to the datapath lab', () => {
  let lab: Lab | undefined;
  let gw: GatewayQube | undefined;
  let mark = 0;
  const service = FIRST.config.qubes.service;
  const L = (): Lab => {
    if (lab === undefined) throw new Error('no lab');
    return lab;
  };
  const G = (): GatewayQube => {
    if (gw === undefined) throw new Error('the gateway is not booted: an earlier step failed');
    return gw;
  };
  const boot = async (name: string, rw: string, edits: ReadonlyArray<readonly [string, string]> = []): Promise<GatewayQube> =>
    bootGateway(L(), { name, lowers: [templateRoot().upper, pristine], rw: join(templateRoot().base, rw), services: gatewayServices(service), edits, log });
  // -t: without the per-client sets' elements, which are state that the probe rounds fill.
  const ruleset = async (): Promise<string> => (await G().machine.must(['nft', '-s', '-t', 'list', 'ruleset'])).stdout;

  beforeAll(async () => {
    await stopTemplate();
    const t = templateRoot();
    // The gateway's daemons run as the template's users; the lab's tag table counts their traffic as the gateway's.
    lab = await Lab.create({ sanctionedUsers: [], sanctionedUids: [uidIn(t.upper, 'debian-tor'), uidIn(t.upper, 'i2pd')], gateway: 'booted' });
    mark = lab.upMark();
    gw = await boot('sys-i2p', 'rw-sys-i2p');
    log(`sys-i2p: ${gw.samples.length} samples of the firewall and ${gw.probeRounds} client probe rounds while it booted`);
  });

  afterAll(async () => {
    await shutdown(gw);
    await lab?.destroy();
  });

  it('the target and every unit it wants are active, nothing failed', async () => {
    const m = G().machine;
    const wants = ((await m.show(UNITS.target, ['Wants'])).get('Wants') ?? '').split(/\s+/).filter((u) => u !== '');
    const target = new TextDecoder().decode(FIRST.deb.files.find((f) => f.path === `/usr/lib/systemd/system/${UNITS.target}`)?.data);
    const packaged = (parseUnit(target).get('Unit') ?? []).filter(([k]) => k === 'Wants').flatMap(([, v]) => v.split(/\s+/));
    expect(wants.sort()).toEqual([...packaged].sort());
    expect(wants).toEqual(expect.arrayContaining([LOCKDOWN_UNIT, ...DAEMONS]));
    for (const u of [UNITS.target, ...wants]) expect((await m.show(u, ['ActiveState'])).get('ActiveState'), u).toBe('active');
    // i2pd.service is disabled in the template (install.sls): the target's Wants= starts it all the same.
    expect((await m.exec(['systemctl', 'is-enabled', 'i2pd.service'])).stdout.trim()).toBe('disabled');
    expect((await m.must(['systemctl', '--failed', '--plain', '--no-legend'])).stdout.trim()).toBe('');
  });

  it("each daemon runs under its unit's sandbox: systemd reads it back, the kernel applied it to the process", async () => {
    const m = G().machine;
    const problems: string[] = [];
    for (const unit of [UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, UNITS.waitPage]) {
      const written = serviceSettings(FIRST.deb.files, `/usr/lib/systemd/system/${unit}`);
      problems.push(...(await sandboxDifferences(m, unit, written)));
      const a = await applied(m, unit);
      const user = written.get('User');
      if (user !== undefined) {
        if (a.uid !== uidIn(templateRoot().upper, user)) problems.push(`${unit}: runs as uid ${a.uid}, not ${user}`);
      } else if (written.get('DynamicUser') === 'yes') {
        if (a.uid < DYNAMIC_UIDS[0] || a.uid > DYNAMIC_UIDS[1]) problems.push(`${unit}: uid ${a.uid} is not a dynamic user's`);
      }
      if (a.uid === 0) problems.push(`${unit}: runs as root`);
      if (written.get('NoNewPrivileges') === 'yes' && !a.noNewPrivs) problems.push(`${unit}: no_new_privs not set`);
      if (written.has('SystemCallFilter') && !a.seccomp) problems.push(`${unit}: no seccomp filter`);
      const bounding = (written.get('CapabilityBoundingSet') ?? '') === '' ? 0n : CAP_NET_BIND_SERVICE;
      if (a.capBnd !== bounding) problems.push(`${unit}: bounding set ${a.capBnd.toString(16)}, expected ${bounding.toString(16)}`);
      if ((a.capEff & ~bounding) !== 0n) problems.push(`${unit}: effective capabilities ${a.capEff.toString(16)} beyond its bounding set`);
      if (written.get('ProtectSystem') === 'strict' && !(a.ownMountNs && a.rootReadOnly)) problems.push(`${unit}: root not read-only in its own mount namespace`);
    }
    // i2pd: Debian's unit (User=i2pd) with our drop-in: foreground, our config, restarted, and our sandbox.
    const dropIn = serviceSettings(FIRST.deb.files, '/usr/lib/systemd/system/i2pd.service.d/50-qubes-i2p-gateway.conf');
    const i2pd = await m.show('i2pd.service', ['User', 'Restart', 'Type', 'ExecStart']);
    if (i2pd.get('User') !== 'i2pd' || i2pd.get('Restart') !== dropIn.get('Restart') || i2pd.get('Type') !== dropIn.get('Type')) problems.push(`i2pd.service: ${JSON.stringify([...i2pd])}`);
    if (dropIn.get('Restart') === undefined) problems.push("i2pd.service: our drop-in sets no Restart= (Debian's unit has none)");
    const started = /^ExecStart=(\S+) (\S+)/.exec(`ExecStart=${dropIn.get('ExecStart') ?? ''}`)?.[2] ?? '(none)';
    if (!(i2pd.get('ExecStart') ?? '').includes(started)) problems.push(`i2pd.service: not started with ${started}`);
    const ai = await applied(m, 'i2pd.service');
    if (ai.uid !== uidIn(templateRoot().upper, 'i2pd')) problems.push('i2pd.service: not running as i2pd');
    problems.push(...(await sandboxDifferences(m, 'i2pd.service', dropIn)));
    if (!ai.noNewPrivs || !ai.seccomp || ai.capBnd !== 0n || ai.capEff !== 0n || !(ai.ownMountNs && ai.rootReadOnly)) problems.push(`i2pd.service: sandbox not applied: ${JSON.stringify(ai, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v))}`);
    if (problems.length > 0) log(`sandbox problems:\n${problems.join('\n')}`);
    expect(problems.join('\n')).toBe('');
    // Not proven here: IPAddressAllow=/IPAddressDeny= are cgroup BPF programs, which this container cannot attach
    // (systemd starts the unit without them); the values above are what systemd would enforce on a real qube.
  });

  it('fails closed at boot: the lockdown before forwarding, the ruleset after the base tables, the daemons after the hook', async () => {
    const m = G().machine;
    const t = async (unit: string, prop: string): Promise<number> => Number((await m.show(unit, [prop])).get(prop) ?? '0');
    const lockdownUp = await t(LOCKDOWN_UNIT, 'ActiveEnterTimestampMonotonic');
    const forwarding = await t('qubes-network.service', 'ExecMainStartTimestampMonotonic');
    const baseTables = await t('qubes-iptables.service', 'ActiveEnterTimestampMonotonic');
    const hookStart = await t('qubes-firewall.service', 'ExecMainStartTimestampMonotonic');
    const hookDone = await t('qubes-firewall.service', 'ActiveEnterTimestampMonotonic');
    for (const v of [lockdownUp, forwarding, baseTables, hookStart, hookDone]) expect(v).toBeGreaterThan(0);
    expect(lockdownUp, 'lockdown in place before forwarding is turned on').toBeLessThan(forwarding);
    expect(baseTables, "Qubes' base tables before the hook runs").toBeLessThan(hookStart);
    for (const d of DAEMONS) expect(await t(d, 'ExecMainStartTimestampMonotonic'), `${d} starts after the hook`).toBeGreaterThan(hookDone);
    const loaded = (await m.journal(['SYSLOG_IDENTIFIER=qubes-i2p-gateway'])).filter((e) => String(e['MESSAGE']).startsWith('firewall loaded from'));
    expect(loaded, 'the hook loaded the ruleset once').toHaveLength(1);
    const loadedAt = Number(loaded[0]?.['__MONOTONIC_TIMESTAMP']);
    expect(loadedAt).toBeGreaterThan(lockdownUp);
    // Every moment the sampler looked: forwarding never on without the lockdown or the ruleset (one transaction
    // replaces the first with the second), and the lockdown never gone before the ruleset was in.
    const samples = G().samples;
    console.log(`[boot] table samples: ${samples.length} kept, ${G().tornSamples()} torn (a table named twice) left out`);
    expect(samples.length, 'the sampler ran through the boot').toBeGreaterThan(5);
    const open = samples.filter((s) => s.forwarding && !s.tables.includes('inet qubes-i2p-gateway-lockdown') && !s.tables.includes('inet qubes-i2p-gateway'));
    expect(open, 'samples with forwarding on and neither table').toEqual([]);
    const after = samples.filter((s) => s.tables.includes('inet qubes-i2p-gateway'));
    expect(after.length, 'the ruleset was seen loaded').toBeGreaterThan(0);
    expect(after.filter((s) => s.tables.includes('inet qubes-i2p-gateway-lockdown')), 'both at once: the lockdown lifted in another transaction').toEqual([]);
    const tables = (await m.must(['nft', 'list', 'tables'])).stdout.split('\n');
    expect(tables).toContain('table inet qubes-i2p-gateway');
    expect(tables).not.toContain('table inet qubes-i2p-gateway-lockdown');
    // Qubes turned forwarding on (qubes-network); the package's no-forward unit turned it off after it.
    const noForward = await t(UNITS.noForward, 'ActiveEnterTimestampMonotonic');
    expect(noForward, 'forwarding off after qubes-network turned it on').toBeGreaterThan(forwarding);
    expect((await m.must(['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('0');
  });

  it('the daemons listen exactly where the configs say, and nothing else listens', async () => {
    const m = G().machine;
    await routerIdent(L(), G().rw); // i2pd opens its proxies once its first reseed attempts are over
    const expected = expectedListeners(FIRST.deb.files, { vifAddrs: await vifAddresses(L()), vif: 'vif3.0', tunnels: i2pdTunnelListeners(templateRoot().upper) });
    const all = await sockets(L().ns.gw);
    const owner = new Map<number, string>();
    for (const d of DAEMONS) {
      const inner = Number((await m.show(d, ['MainPID'])).get('MainPID'));
      const host = m.hostPidOf(inner);
      if (host !== undefined) owner.set(host, d);
    }
    const seen = new Map<string, string[]>();
    const stray: string[] = [];
    for (const s of all) {
      const d = owner.get(s.hostPid);
      if (d === undefined) stray.push(`${s.proto} ${s.local} (host pid ${s.hostPid})`);
      else seen.set(d, [...(seen.get(d) ?? []), `${s.proto} ${s.local}`]);
    }
    expect(stray, 'sockets of no gateway daemon').toEqual([]);
    // i2pd's transports: NTCP2 (TCP) and SSU2 (UDP) on one port i2pd chose (no config sets it), IPv4 only.
    const i2pd = seen.get('i2pd.service') ?? [];
    const transports = i2pd.filter((x) => x.includes('0.0.0.0:'));
    const ports = new Set(transports.map((x) => x.split(':').at(-1)));
    expect(transports.map((x) => x.split(' ')[0]).sort(), "i2pd's NTCP2 and SSU2").toEqual(['tcp', 'udp']);
    expect(ports.size).toBe(1);
    seen.set('i2pd.service', i2pd.filter((x) => !transports.includes(x)));
    // dnsmasq's forwarding sockets: one UDP socket on a random port for each query in flight to the relay (seen in
    // a whole run: `udp 0.0.0.0:58734` before the config bound them), on the source address of its server= line
    // (loopback) and nowhere else; they come and go with the queries, so they are left out of the comparison.
    const source = /^server=\S+@([0-9.]+)$/m.exec(text(FIRST.deb.files, PATHS.dnsmasqConf))?.[1];
    expect(source, "dnsmasq's server= line names its source address").toBe('127.0.0.1');
    const dnsmasq = seen.get(UNITS.dnsmasq) ?? [];
    const prefix = `udp ${source ?? '-'}:`;
    const forwarding = dnsmasq.filter((x) => x.startsWith(prefix) && /^\d+$/.test(x.slice(prefix.length)));
    if (forwarding.length > 0) console.log(`[boot] dnsmasq's forwarding sockets at that moment: ${forwarding.join(', ')}`);
    seen.set(UNITS.dnsmasq, dnsmasq.filter((x) => !forwarding.includes(x)));
    for (const d of DAEMONS) expect((seen.get(d) ?? []).sort(), d).toEqual(expected.get(d));
  });

  it('.i2p is answered for the client, and HTTP to the virtual IP reaches the router', async () => {
    const [a, aaaa] = await L().probe('client', [
      { kind: 'dns', server: A.dns1, name: 'boot-test.i2p', qtype: 'A' },
      { kind: 'dns', server: A.dns2, name: 'boot-test.i2p', qtype: 'AAAA' },
    ]);
    expect(a?.answers).toEqual([{ type: 'A', data: FIRST.config.network.virtualIp }]);
    expect(aaaa?.outcome).toBe('answer');
    expect(aaaa?.answers ?? []).toEqual([]);
    const r = await L().curl('http://boot-test.i2p/page');
    // i2pd's HTTP proxy answers itself (the name is in no addressbook: the router has no I2P network here), and the
    // waiting page answers that for the client.
    expect(r.body).toContain(I2PD_ANSWERED);
  });

  it('HTTPS to a .i2p name is refused at once: 443 and 8443 of the virtual IP get a reset, with forwarding off and our tables loaded', async () => {
    const m = G().machine;
    expect((await m.must(['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), 'no-forward.conf applied').toBe('0');
    expect(await ruleset()).toContain(`table inet ${TABLE}`);
    const started = Date.now();
    const r = await L().probe('client', [
      { kind: 'tcp', host: FIRST.config.network.virtualIp, port: 443, timeout: 3 },
      { kind: 'tcp', host: FIRST.config.network.virtualIp, port: 8443, timeout: 3 },
    ]);
    expect(r.map((x) => x.outcome), JSON.stringify(r)).toEqual(['refused', 'refused']);
    // Two probes of 3 s timeout each: refused within about a second each (margin for a loaded machine), no timeout.
    expect(Date.now() - started).toBeLessThan(5000);
    const tls = await L().curl('https://boot-test.i2p/');
    expect(tls.code, `curl: 7 is a refused connection, 28 a timeout\n${tls.stderr}`).toBe(7);
  });

  it('0 client packets upstream: not while it booted, not since', async () => {
    const events = await L().upSince(mark);
    expect(describeFrames(unsanctioned(events)), 'client packets upstream').toBe('');
    expect(serverHits(events), 'client requests served upstream').toEqual([]);
  });

  it('kill each daemon: systemd brings it back, and the firewall stays closed meanwhile', async () => {
    const m = G().machine;
    const before = await ruleset();
    const service: Probe[] = [
      { kind: 'dns', server: A.dns1, name: 'during-kill.i2p', qtype: 'A', timeout: 0.4 },
      { kind: 'tcp', host: FIRST.config.network.virtualIp, port: 80, send: 'GET / HTTP/1.0\r\nHost: during-kill.i2p\r\n\r\n', timeout: 0.5, readTimeout: 1 },
    ];
    for (const unit of DAEMONS) {
      const s0 = await m.show(unit, ['MainPID', 'NRestarts']);
      const pid = Number(s0.get('MainPID'));
      const restarts = Number(s0.get('NRestarts'));
      expect(pid, `${unit} runs`).toBeGreaterThan(0);
      const since = L().upMark();
      const prober = new Prober(L(), [...LEAK_PROBES, ...service]);
      let back = false;
      try {
        // A kill from outside the unit, as a crash or the OOM killer would end it (the shell's kill builtin).
        await m.must(['sh', '-c', 'kill -KILL "$1"', 'sh', String(pid)]);
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline && !back) {
          const s = await m.show(unit, ['MainPID', 'NRestarts', 'ActiveState']);
          back = s.get('ActiveState') === 'active' && Number(s.get('MainPID')) !== pid && Number(s.get('MainPID')) > 0 && Number(s.get('NRestarts')) === restarts + 1;
          if (!back) await sleep(50);
        }
      } finally {
        await prober.stop();
      }
      expect(back, `${unit} restarted by systemd`).toBe(true);
      expect(await ruleset(), `ruleset unchanged while ${unit} was down`).toBe(before);
      const events = await L().upSince(since);
      expect(describeFrames(unsanctioned(events)), `client packets upstream while ${unit} restarted`).toBe('');
      expect(serverHits(events)).toEqual([]);
      log(`${unit}: killed, back as a new process (NRestarts ${restarts + 1}), ${prober.rounds} probe rounds meanwhile`);
    }
    expect((await m.show(UNITS.target, ['ActiveState'])).get('ActiveState')).toBe('active');
  });

  it('an upgrade inside the running gateway (dpkg -i of a changed build): the new ruleset first, then every running daemon restarted with its new config; nothing upstream meanwhile', async () => {
    const m = G().machine;
    const debBytes = CHANGED.formula.get(`i2p-gateway/files/${CHANGED.deb.fileName}`);
    expect(debBytes, 'the changed build\'s .deb in its formula').toBeDefined();
    writeFileSync(join(G().overlay.root, 'root', CHANGED.deb.fileName), debBytes!);
    const before = new Map<string, number>();
    for (const unit of DAEMONS) before.set(unit, Number((await m.show(unit, ['MainPID'])).get('MainPID')));
    const since = L().upMark();
    const prober = new Prober(L(), LEAK_PROBES);
    let r;
    try {
      // The real maintainer scripts under the real systemd (the gateway has no network: the Depends are there).
      r = await m.exec(['dpkg', '-i', `/root/${CHANGED.deb.fileName}`], { timeoutMs: 180_000 });
    } finally {
      await prober.stop();
    }
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    // The changed build moved tinyproxy to 8890: the loaded ruleset redirects there, and tinyproxy listens there.
    const loaded = await ruleset();
    expect(loaded).toContain('redirect to :8890');
    expect(loaded).not.toContain('redirect to :8888');
    for (const unit of DAEMONS) {
      const s = await m.show(unit, ['MainPID', 'ActiveState']);
      expect(s.get('ActiveState'), unit).toBe('active');
      expect(Number(s.get('MainPID')), `${unit} restarted`).not.toBe(before.get(unit));
    }
    // The client's first page loads again through the new port once i2pd's proxy is back (after its reseed try).
    let page = '';
    for (let i = 0; i < 60 && !page.includes(I2PD_ANSWERED); i++) {
      page = (await L().curl('http://after-upgrade.i2p/')).body;
      if (!page.includes(I2PD_ANSWERED)) await sleep(500);
    }
    expect(page).toContain(I2PD_ANSWERED);
    const events = await L().upSince(since);
    expect(describeFrames(unsanctioned(events)), 'client packets upstream during the upgrade').toBe('');
    expect(serverHits(events)).toEqual([]);
    log(`upgrade inside the gateway: ${prober.rounds} client probe rounds while dpkg ran`);
  });

  it('reboot: the router identity persists (bind-dirs keeps it under /rw)', async () => {
    const rw = G().rw;
    const keys = join(rw, 'bind-dirs/var/lib/i2pd/router.keys');
    const ident = await routerIdent(L(), G().rw);
    expect(existsSync(keys), 'router.keys under /rw').toBe(true);
    const hash = sha256(keys);
    await shutdown(gw);
    gw = undefined;
    expect(existsSync(join(rw, 'bind-dirs', PATHS.torData, 'state')), "Tor's state kept under /rw").toBe(true);
    gw = await boot('sys-i2p', 'rw-sys-i2p');
    expect(await routerIdent(L(), rw)).toBe(ident);
    expect(sha256(keys)).toBe(hash);
  });

  it('a second gateway from the same template gets an identity of its own', async () => {
    const first = await routerIdent(L(), G().rw);
    const firstKeys = sha256(join(G().rw, 'bind-dirs/var/lib/i2pd/router.keys'));
    await shutdown(gw);
    gw = await boot('sys-i2p-2', 'rw-sys-i2p-2');
    const second = await routerIdent(L(), G().rw);
    expect(second).not.toBe(first);
    expect(sha256(join(G().rw, 'bind-dirs/var/lib/i2pd/router.keys'))).not.toBe(firstKeys);
    // What bind-dirs copied on this gateway's first boot came from the template: nothing of a router's.
    expect(existsSync(join(templateRoot().upper, 'var/lib/i2pd/router.keys'))).toBe(false);
  });

  it('a gateway whose ruleset does not load stays cut off: the lockdown stays, nothing reaches upstream', async () => {
    await shutdown(gw);
    gw = undefined;
    const since = L().upMark();
    const broken = new TextDecoder().decode(FIRST.deb.files.find((f) => f.path === PATHS.ruleset)?.data) + '\n# an edit gone wrong\nthis is not an nft statement\n';
    gw = await boot('sys-i2p-broken', 'rw-sys-i2p-broken', [[PATHS.ruleset, broken]]);
    const m = G().machine;
    const tables = (await m.must(['nft', 'list', 'tables'])).stdout.split('\n');
    expect(tables).toContain('table inet qubes-i2p-gateway-lockdown');
    expect(tables).not.toContain('table inet qubes-i2p-gateway');
    const died = (await m.journal(['SYSLOG_IDENTIFIER=qubes-i2p-gateway'])).map((e) => String(e['MESSAGE']));
    expect(died.some((msg) => /client qubes stay cut off/.test(msg)), died.join('\n')).toBe(true);
    const [dns] = await L().probe('client', [{ kind: 'dns', server: A.dns1, name: 'cut-off.i2p', qtype: 'A', timeout: 1 }]);
    expect(dns?.outcome).toBe('timeout');
    expect((await L().curl('http://10.100.100.100/')).status).not.toMatch(/^[1-5]\d\d$/);
    const events = await L().upSince(since);
    expect(describeFrames(unsanctioned(events))).toBe('');
    expect(serverHits(events)).toEqual([]);
  });
});

describe('template again: upgrade, remove, purge', () => {
  beforeAll(async () => {
    await templateRoot().mount();
    await bootTemplate();
  });

  it('upgrade to a changed build through install.sls: the new files in place, still nothing runs', async () => {
    stageFormula(templateRoot().root, CHANGED);
    const runs = await applyState(templateMachine(), CHANGED, INSTALL, log);
    // The holds again (the reboot emptied /run), the new package, and the notice that follows a change.
    expect(runs.filter((r) => r.command !== '').map((r) => r.id)).toEqual(['i2p-gateway-hold-i2pd', 'i2p-gateway-hold-tor', 'i2p-gateway-hold-tor-default', 'i2p-gateway-hold-tinyproxy', 'i2p-gateway-package']);
    expect(runs.find((r) => r.id === 'i2p-gateway-restart-notice')?.stdout).toContain(`qubes-i2p-gateway ${CHANGED.version} is installed`);
    const v = await templateMachine().must(['dpkg-query', '-W', '-f', '${Version}', 'qubes-i2p-gateway']);
    expect(v.stdout).toBe(CHANGED.version);
    expect(CHANGED.version.startsWith('0.1.1+')).toBe(true);
    const conf = await templateMachine().must(['cat', PATHS.tinyproxyConf]);
    expect(conf.stdout).toMatch(/^Port 8890$/m);
    expect(await quiet()).toEqual(NOTHING);
  });

  it("a switch to the Java router whose .deb does not install (dpkg -i fails): the old package and i2pd stay (apt would remove an i2pd build with i2pd), nothing of the new router is purged or installed", async () => {
    const java = buildRelease({ i2p: { router: 'i2p', keyring: 'k.gpg' }, package: { version: '0.1.2' } }, new Uint8Array(readFileSync(REAL_KEYRING)));
    stageFormula(templateRoot().root, java);
    // The formula's file is damaged on its way (a truncated copy): dpkg -i refuses it.
    const debPath = join(templateRoot().root, SALT_ROOT, 'i2p-gateway', 'files', java.deb.fileName);
    writeFileSync(debPath, readFileSync(debPath).subarray(0, 200));
    const m = templateMachine();
    const runs = await applyState(m, java, INSTALL, log, { failures: 'record' });
    const result = (id: string): string | undefined => runs.find((r) => r.id === id)?.result;
    expect(result('i2p-gateway-package')).toBe('failed');
    expect(result('i2p-gateway-package-version')).toBe('skipped');
    expect(result('i2p-gateway-java-router')).toBe('skipped');
    expect(result('i2p-gateway-other-router'), 'the purge of i2pd waits for the new package').toBe('skipped');
    expect((await m.must(['dpkg-query', '-W', '-f', '${Status} ${Version}', 'qubes-i2p-gateway'])).stdout).toBe(`install ok installed ${CHANGED.version}`);
    expect((await m.must(['dpkg-query', '-W', '-f', '${Status}', 'i2pd'])).stdout).toBe('install ok installed');
    expect(await quiet()).toEqual(NOTHING);
  });

  it('remove, then purge: nothing starts, nothing is left running or listening', async () => {
    const m = templateMachine();
    await m.must(['apt-get', '-q', '-y', 'remove', 'qubes-i2p-gateway'], { env: SALT_ENV, timeoutMs: 120_000 });
    expect((await m.must(['dpkg-query', '-W', '-f', '${db:Status-Abbrev}', 'qubes-i2p-gateway'])).stdout.trim()).toBe('rc');
    expect(await quiet()).toEqual(NOTHING);
    await m.must(['apt-get', '-q', '-y', 'purge', 'qubes-i2p-gateway'], { env: SALT_ENV, timeoutMs: 120_000 });
    expect((await m.exec(['dpkg', '-s', 'qubes-i2p-gateway'])).code).not.toBe(0);
    expect(await quiet()).toEqual(NOTHING);
  });

  it("reboot after the purge: no Debian daemon starts (install.sls disabled them; our drop-ins are gone), each still disabled", async () => {
    await stopTemplate();
    await templateRoot().mount();
    await bootTemplate();
    const m = templateMachine();
    for (const unit of ['tor.service', 'tinyproxy.service', 'i2pd.service']) {
      expect((await m.exec(['dpkg-query', '-S', `/usr/lib/systemd/system/${unit}`])).code, `${unit} still installed`).toBe(0);
      expect((await m.exec(['systemctl', 'is-enabled', unit])).stdout.trim(), unit).toBe('disabled');
      expect((await m.show(unit, ['ActiveState'])).get('ActiveState'), unit).toBe('inactive');
    }
    expect(await quiet()).toEqual(NOTHING);
  });
});
