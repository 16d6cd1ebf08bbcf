/**
 * Published services (config `publish`) in the template package: the listener socket and its per-connection
 * template, the i2pd server tunnels and their link into i2pd's tunnels directory, the onion lines of torrc, the
 * target, the Depends. Checked as text (what a reviewer must see), against Debian 13's systemd-analyze verify
 * (systemd 257) and tor 0.4.9 (--verify-config, and a start with no network that writes the onion service's
 * hostname), each in a machine over the oracles root (test/util/trixie.ts), and against hostile values handed to
 * the renderers without the loader.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publishedServices, PUBLISH_LISTEN_BASE } from '../../src/config/publish.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import { debDepends } from '../../src/render/deb/package.ts';
import { PATHS, UNIT_DIR, UNITS, unitPath } from '../../src/render/gateway/common.ts';
import { renderGateway } from '../../src/render/gateway/index.ts';
import {
  I2PD_TUNNELS_LINK,
  onionDir,
  publishConnectionUnit,
  publishSocketUnit,
  renderI2pdTunnels,
  renderPublish,
  renderPublishConnection,
  renderPublishSocket,
} from '../../src/render/gateway/publish.ts';
import { renderTorrc } from '../../src/render/gateway/tor.ts';
import { targetWants } from '../../src/render/gateway/target.ts';
import { Trixie } from '../util/trixie.ts';
import { asUser, configOf, PROGRAMS, run, Scratch, sleep, text } from './helpers.ts';

const scratch = new Scratch();
afterAll(async () => {
  await scratch.cleanup();
});

const trixie = await Trixie.open(scratch.dir('machines'));

const WIKI = { name: 'wiki', qube: 'webapp', port: 8080, onion: true };
const BLOG = { name: 'blog', qube: 'blogvm', port: 80 };
const config = configOf({ publish: [WIKI, BLOG] });
const files = renderGateway(config, { programs: PROGRAMS });
const unit = (name: string): string => text(files, `${UNIT_DIR}/${name}`);

/** Every `Key=value` of a unit, in order. */
function settings(unitText: string): [string, string][] {
  return unitText
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

describe('nothing to publish', () => {
  it('adds no file, no onion line, no wanted unit and no dependency', () => {
    const plain = configOf();
    const tree = renderGateway(plain, { programs: PROGRAMS }).map((f) => f.path);
    expect(tree.filter((p) => /publish|i2pd-tunnels|tunnels\.d/.test(p))).toEqual([]);
    expect(renderTorrc(plain)).not.toContain('HiddenService');
    expect(targetWants(plain).some((u) => u.includes('publish'))).toBe(false);
    expect(debDepends(plain)).not.toContain('qubes-core-qrexec');
  });
});

describe('the listener and its connections', () => {
  it('one socket per service on 127.0.0.1, at 28080 + its place in the list, one connection unit each', () => {
    expect(settings(unit(publishSocketUnit('wiki'))).filter(([k]) => k === 'ListenStream')).toEqual([['ListenStream', `127.0.0.1:${PUBLISH_LISTEN_BASE}`]]);
    expect(settings(unit(publishSocketUnit('blog'))).filter(([k]) => k === 'ListenStream')).toEqual([['ListenStream', `127.0.0.1:${PUBLISH_LISTEN_BASE + 1}`]]);
    for (const name of ['wiki', 'blog']) {
      const s = new Map(settings(unit(publishSocketUnit(name))));
      expect(s.get('Accept'), name).toBe('yes');
      expect(s.get('ConditionPathExists'), name).toBe('/run/qubes-service/i2p');
      expect(s.get('IPAddressDeny'), name).toBe('any');
      expect(s.get('IPAddressAllow'), name).toBe('localhost');
    }
  });

  it('a flood slows a service down and never switches it off: no trigger limit, a poll limit, at most 64 connections at once', () => {
    for (const name of ['wiki', 'blog']) {
      const s = new Map(settings(unit(publishSocketUnit(name))));
      // systemd's default trigger limit (200 in 2 s) puts the socket in the failed state until it is restarted.
      expect(s.get('TriggerLimitIntervalSec'), name).toBe('0');
      expect([s.get('PollLimitIntervalSec'), s.get('PollLimitBurst')], name).toEqual(['2s', '150']);
      expect(s.get('MaxConnections'), name).toBe('64');
      // Every visitor comes from 127.0.0.1: a per-source limit would be a limit for all of them.
      expect(s.has('MaxConnectionsPerSource'), name).toBe(false);
    }
  });

  it('each connection is exactly `qrexec-client-vm --use-stdin-socket <qube> qubes.ConnectTCP+<port>` on the socket, as a dynamic user in group qubes', () => {
    const wiki = new Map(settings(unit(publishConnectionUnit('wiki'))));
    expect(wiki.get('ExecStart')).toBe('qrexec-client-vm --use-stdin-socket webapp qubes.ConnectTCP+8080');
    expect(new Map(settings(unit(publishConnectionUnit('blog')))).get('ExecStart')).toBe('qrexec-client-vm --use-stdin-socket blogvm qubes.ConnectTCP+80');
    expect(wiki.get('StandardInput')).toBe('socket');
    expect(wiki.get('DynamicUser')).toBe('yes');
    expect(wiki.get('SupplementaryGroups')).toBe('qubes');
    expect(wiki.get('CapabilityBoundingSet')).toBe('');
    // qrexec-client-vm opens the vchan devices itself: a private /dev would break every connection.
    expect(wiki.has('PrivateDevices')).toBe(false);
  });

  it('the target wants the sockets (not the per-connection template), and the package depends on qubes-core-qrexec', () => {
    expect(targetWants(config).slice(-2)).toEqual([publishSocketUnit('wiki'), publishSocketUnit('blog')]);
    expect(unit(UNITS.target)).toContain(`Wants=${targetWants(config).join(' ')}\n`);
    expect(debDepends(config)).toContain('qubes-core-qrexec');
  });

  it('Debian 13\'s systemd-analyze verify accepts the sockets and a connection instance (a stand-in qrexec-client-vm where Qubes puts it)', () => {
    const tree = scratch.tree(files);
    // verify wants ExecStart's program to exist: qubes-core-qrexec's /usr/bin/qrexec-client-vm, here a stand-in layer.
    const bin = scratch.dir('qrexec-bin');
    mkdirSync(join(bin, 'usr/bin'), { recursive: true, mode: 0o755 });
    writeFileSync(join(bin, 'usr/bin/qrexec-client-vm'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'usr/bin/qrexec-client-vm'), 0o755);
    const instance = publishConnectionUnit('wiki').replace('@.service', '@1.service');
    const r = run(['env', 'SYSTEMD_LOG_COLOR=0', ...trixie.prefix([tree, bin]), 'systemd-analyze', 'verify', `${UNIT_DIR}/${publishSocketUnit('wiki')}`, `${UNIT_DIR}/${publishSocketUnit('blog')}`, instance]);
    expect(r.stdout + r.stderr).not.toMatch(/publish/);
    expect(r.code).toBe(0);
  });

  it('verify would catch a connection unit whose program is missing (the check above can fail)', () => {
    const tree = scratch.tree(files);
    const instance = publishConnectionUnit('wiki').replace('@.service', '@1.service');
    const r = run(['env', 'SYSTEMD_LOG_COLOR=0', ...trixie.prefix([tree]), 'systemd-analyze', 'verify', instance]);
    expect(r.stdout + r.stderr).toMatch(/qrexec-client-vm/);
    expect(r.code).not.toBe(0);
  });
});

describe('the I2P sites (i2pd server tunnels)', () => {
  const tunnels = text(files, PATHS.i2pdTunnels);

  it('are one http server tunnel per service with i2p, to the listener, keys in i2pd\'s data directory, no hostoverride', () => {
    const sections = tunnels.split('\n').filter((l) => l.startsWith('['));
    expect(sections).toEqual(['[qubes-i2p-gateway-wiki]', '[qubes-i2p-gateway-blog]']);
    const wiki = tunnels.slice(tunnels.indexOf('[qubes-i2p-gateway-wiki]'), tunnels.indexOf('[qubes-i2p-gateway-blog]'));
    const keys = wiki.split('\n').filter((l) => /^[a-z]+ = /.test(l));
    expect(keys).toEqual(['type = http', 'host = 127.0.0.1', 'port = 28080', 'inport = 80', 'keys = qubes-i2p-gateway-wiki.dat', 'enableuniquelocal = false']);
    expect(tunnels).not.toMatch(/^hostoverride/m);
  });

  it('leave out a service published as an onion only', () => {
    const c = configOf({ publish: [WIKI, { ...BLOG, i2p: false, onion: true }] });
    const t = text(renderGateway(c, { programs: PROGRAMS }), PATHS.i2pdTunnels);
    expect(t).toContain('[qubes-i2p-gateway-wiki]');
    expect(t).not.toContain('blog');
    const onionOnly = renderGateway(configOf({ publish: [{ ...BLOG, i2p: false, onion: true }] }), { programs: PROGRAMS }).map((f) => f.path);
    expect(onionOnly).not.toContain(PATHS.i2pdTunnels);
    expect(onionOnly).not.toContain(I2PD_TUNNELS_LINK);
  });

  it('reach i2pd through a link in its tunnels directory (package data, never a conffile)', () => {
    expect(files.find((f) => f.path === I2PD_TUNNELS_LINK)).toMatchObject({ kind: 'symlink', target: PATHS.i2pdTunnels });
    expect(files.find((f) => f.path === PATHS.i2pdTunnels)?.kind).toBe('file');
    // The drop-in points i2pd at /etc/i2pd/tunnels.conf.d, which Debian 12 and 13 make a link to tunnels.d.
    expect(text(files, '/usr/lib/systemd/system/i2pd.service.d/50-qubes-i2p-gateway.conf')).toContain('--tunnelsdir=/etc/i2pd/tunnels.conf.d ');
    // So the link goes into the directory itself (dpkg would not replace Debian's link with a directory of ours):
    // Debian 13's i2pd 2.56.0 package, as installed in the oracles root.
    expect(readlinkSync(join(trixie.root, 'etc/i2pd/tunnels.conf.d'))).toBe('tunnels.d');
    expect(statSync(join(trixie.root, 'etc/i2pd/tunnels.d')).isDirectory()).toBe(true);
    expect(I2PD_TUNNELS_LINK.startsWith('/etc/i2pd/tunnels.d/')).toBe(true);
  });

  it('make the per-client proxies\' program restart i2pd, never reload it, to read a new client\'s tunnel (a reload leaves the site taking no stream)', () => {
    const facts = (c: GatewayConfig): Record<string, unknown> => JSON.parse(text(renderGateway(c, { programs: PROGRAMS }), PATHS.clientProxiesConf)) as Record<string, unknown>;
    expect(facts(config)['routerReload']).toBe('try-restart');
    // Without an I2P site a reload keeps every client's open streams: an onion-only service, or nothing published.
    expect(facts(configOf({ publish: [{ ...BLOG, i2p: false, onion: true }] }))['routerReload']).toBe('reload');
    expect(facts(configOf({}))['routerReload']).toBe('reload');
  });

  it('can only be written for i2pd: the renderer refuses the Java router even without the loader', () => {
    const java = { ...configOf({ i2p: { router: 'i2p' } }), publish: [{ ...WIKI, i2p: true }] } as GatewayConfig;
    expect(() => renderPublish(java)).toThrow(/router i2pd/);
  });
});

describe('the onion services (torrc)', () => {
  const torrc = text(files, PATHS.torrc);

  it('one HiddenServiceDir in Tor\'s persistent DataDirectory and port 80 to the listener, for each service with onion, before the admin\'s %include', () => {
    const lines = torrc.split('\n').filter((l) => l.startsWith('HiddenService'));
    expect(lines.slice(0, 2)).toEqual([`HiddenServiceDir ${PATHS.torData}/onion-wiki`, 'HiddenServicePort 80 127.0.0.1:28080']);
    expect(torrc.indexOf('HiddenServiceDir')).toBeLessThan(torrc.indexOf('%include'));
    expect(onionDir('wiki').startsWith(`${PATHS.torData}/`)).toBe(true);
  });

  function prepare(): { data: string; argv: string[] } {
    const dir = scratch.dir('tor-onion');
    const data = join(dir, 'data');
    // The data and runtime (control socket) directories, as the unit's StateDirectory= and RuntimeDirectory= make them.
    const runtime = join(dir, 'run');
    mkdirSync(data, { mode: 0o700 });
    mkdirSync(runtime, { mode: 0o700 });
    const tor = trixie.account('debian-tor');
    chownSync(data, tor.uid, tor.gid);
    chownSync(runtime, tor.uid, tor.gid);
    const torrcPath = join(dir, 'torrc');
    writeFileSync(torrcPath, torrc.split(PATHS.torData).join(data).replaceAll(`${PATHS.torRuntime}/`, `${runtime}/`));
    chmodSync(torrcPath, 0o644);
    return { data, argv: [...trixie.prefix(), ...asUser('debian-tor'), 'tor', '--defaults-torrc', '/dev/null', '-f', torrcPath] };
  }

  it("carry Tor's onion-service defences after each HiddenServiceDir: streams per circuit bounded (the circuit closed beyond), introductions rate-limited, proof of work", () => {
    const lines = torrc.split('\n').filter((l) => l.startsWith('HiddenService'));
    expect(lines.slice(2)).toEqual([
      'HiddenServiceMaxStreams 16',
      'HiddenServiceMaxStreamsCloseCircuit 1',
      'HiddenServiceEnableIntroDoSDefense 1',
      'HiddenServicePoWDefensesEnabled 1',
    ]);
  });

  it('pass tor --verify-config', () => {
    const r = run([...prepare().argv, '--verify-config']);
    expect(r.stdout + r.stderr).toContain('Configuration was valid');
    expect(r.code).toBe(0);
  });

  it('make the real tor write the onion address with no network at all, and keep it across a restart', async () => {
    const { data, argv } = prepare();
    const hostname = join(data, 'onion-wiki', 'hostname');
    const startOnce = async (): Promise<string> => {
      // A namespace with loopback only, and DisableNetwork on top: Tor makes the keys at startup, offline.
      const ns = scratch.netns();
      const child = scratch.spawn(['ip', 'netns', 'exec', ns, ...argv, '--DisableNetwork', '1']);
      let output = '';
      child.stdout?.on('data', (d: string) => (output += d));
      child.stderr?.on('data', (d: string) => (output += d));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // Bounded by time, not by a count of polls: a loaded machine starts a machine and tor more slowly.
      const deadline = Date.now() + 30_000;
      while (!existsSync(hostname) && child.exitCode === null && child.signalCode === null && Date.now() < deadline) await sleep(50);
      child.kill('SIGINT');
      await Promise.race([exited, sleep(10_000)]);
      if (!existsSync(hostname)) throw new Error(`tor wrote no ${hostname}; its output:\n${output}`);
      return readFileSync(hostname, 'utf8');
    };
    const first = await startOnce();
    expect(first).toMatch(/^[a-z2-7]{56}\.onion\n$/);
    const st = statSync(join(data, 'onion-wiki'));
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(trixie.account('debian-tor').uid);
    expect(await startOnce()).toBe(first);
  });
});

describe('hostile values reaching the renderers without the loader', () => {
  const base = publishedServices(config)[0]!;
  it.each([
    ['name', { ...base, name: 'wiki@x' }],
    ['name', { ...base, name: 'wiki]\n[evil' }],
    ['name', { ...base, name: '../x' }],
    ['qube', { ...base, qube: 'webapp qubes.VMShell' }],
    ['qube', { ...base, qube: '@anyvm' }],
    ['port', { ...base, port: 0 }],
    ['port', { ...base, port: 8080.5 }],
  ] as const)('a bad %s is refused by every renderer', (_what, s) => {
    expect(() => renderPublishSocket(config, s)).toThrow(/render:/);
    expect(() => renderPublishConnection(s)).toThrow(/render:/);
    expect(() => renderI2pdTunnels([s])).toThrow(/render:/);
    expect(() => renderTorrc({ ...config, publish: [s] })).toThrow(/render:/);
  });

  it('renders the tree with no two files at one path (mergeTrees) and every unit path from the name', () => {
    expect(files.map((f) => f.path)).toContain(unitPath(publishSocketUnit('wiki')));
    expect(files.map((f) => f.path)).toContain(unitPath(publishConnectionUnit('blog')));
  });
});
