/**
 * The rendered daemon configs against the real daemons, run the way their units run them (ExecStart, User=),
 * with paths pointed at temp copies: tor --verify-config and a start; dnsmasq --test and answers to a client in
 * a second network namespace; tinyproxy serving .i2p through a stand-in router proxy and refusing the rest;
 * i2pd's listeners. Every namespace here is private and has no route out: nothing leaves the machine.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PATHS, UNITS, dropInPath, unitPath } from '../../src/render/gateway/common.ts';
import { renderGateway } from '../../src/render/gateway/index.ts';
import { asUser, configOf, must, run, Scratch, sleep, text, waitForOutput, waitListening } from './helpers.ts';

const scratch = new Scratch();
afterAll(async () => {
  await scratch.cleanup();
});

/** The ExecStart= of a unit or drop-in (the last non-empty one), split on spaces: our units use no quoting. */
function execStart(unit: string): string[] {
  const lines = unit.split('\n').filter((l) => l.startsWith('ExecStart=') && l !== 'ExecStart=');
  const last = lines[lines.length - 1];
  if (last === undefined) throw new Error(`no ExecStart in\n${unit}`);
  return last.slice('ExecStart='.length).split(' ');
}

function unitKey(unit: string, key: string): string | undefined {
  return unit.split('\n').find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
}

/** Two namespaces: gw with vif1.0 (group 2, like a Qubes downstream interface) and client behind it. */
function clientAndGateway(opts: { linkNow: boolean }): { gw: string; client: string; link: () => void } {
  const gw = scratch.netns();
  const client = scratch.netns();
  const link = (): void => {
    must(['ip', '-n', gw, 'link', 'add', 'vif1.0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client]);
    must(['ip', '-n', gw, 'link', 'set', 'vif1.0', 'group', '2']);
    must(['ip', '-n', gw, 'addr', 'add', '10.137.0.1/24', 'dev', 'vif1.0', 'nodad']);
    must(['ip', '-n', client, 'addr', 'add', '10.137.0.10/24', 'dev', 'eth0', 'nodad']);
    must(['ip', '-n', gw, 'link', 'set', 'vif1.0', 'up']);
    must(['ip', '-n', client, 'link', 'set', 'eth0', 'up']);
  };
  if (opts.linkNow) link();
  return { gw, client, link };
}

function dig(client: string, name: string, type = 'A'): { status: string; answers: string[] } {
  const r = run(['ip', 'netns', 'exec', client, 'dig', '+time=2', '+tries=1', '+noall', '+comments', '+answer', '@10.137.0.1', name, type]);
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `no answer (${r.stdout}${r.stderr})`;
  const answers = r.stdout
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith(';'))
    .map((l) => l.split(/\s+/).slice(3).join(' '));
  return { status, answers };
}

describe('tor', () => {
  const config = configOf();
  const files = renderGateway(config);
  const unit = text(files, unitPath(UNITS.tor));

  function prepare(): { torrc: string; argv: string[] } {
    const dir = scratch.dir('tor');
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o700 });
    scratch.chown(data, 'debian-tor');
    const torrc = join(dir, 'torrc');
    writeFileSync(torrc, text(files, PATHS.torrc).replace(`DataDirectory ${PATHS.torData}`, `DataDirectory ${data}`));
    chmodSync(torrc, 0o644);
    const argv = execStart(unit).map((a) => (a === PATHS.torrc ? torrc : a));
    return { torrc, argv: [...asUser(unitKey(unit, 'User') ?? '', unitKey(unit, 'Group')), ...argv] };
  }

  it('runs as debian-tor with the rendered torrc and no defaults file', () => {
    expect(unitKey(unit, 'User')).toBe('debian-tor');
    expect(execStart(unit)).toEqual(['/usr/bin/tor', '--defaults-torrc', '/dev/null', '-f', PATHS.torrc]);
  });

  it('passes tor --verify-config as the unit runs it', () => {
    const { argv } = prepare();
    const r = run([...argv, '--verify-config']);
    expect(r.stdout + r.stderr).toContain('Configuration was valid');
    expect(r.code).toBe(0);
  });

  it('opens TransPort on all addresses and DNSPort on loopback only, nothing else', async () => {
    const { argv } = prepare();
    const ns = scratch.netns();
    const child = scratch.spawn(['ip', 'netns', 'exec', ns, ...argv]);
    await waitListening(ns, 'tcp', /0\.0\.0\.0:9040\b/);
    await waitListening(ns, 'udp', /127\.0\.0\.1:5353\b/);
    const tcp = must(['ip', 'netns', 'exec', ns, 'ss', '-Hltn']).stdout;
    const udp = must(['ip', 'netns', 'exec', ns, 'ss', '-Hlun']).stdout;
    expect(tcp).toMatch(/0\.0\.0\.0:9040\b/);
    expect(udp).toMatch(/127\.0\.0\.1:5353\b/);
    expect(tcp).not.toMatch(/:9050\b|:9051\b/);
    child.kill('SIGINT');
  });

  it('is not rendered at all with Tor off', () => {
    const off = renderGateway(configOf({ tor: { enabled: false } })).map((f) => f.path);
    expect(off.filter((p) => /tor/.test(p.replace('qubes-i2p-gateway', '')))).toEqual([]);
  });

  it('keeps the distribution\'s tor units to qubes with the service "tor"', () => {
    for (const u of ['tor.service', 'tor@default.service']) expect(text(files, dropInPath(u))).toContain('ConditionPathExists=/run/qubes-service/tor\n');
  });
});

describe('dnsmasq', () => {
  function prepare(torOn: boolean): { conf: string; argv: string[]; unit: string } {
    const files = renderGateway(configOf({ tor: { enabled: torOn } }));
    const unit = text(files, unitPath(UNITS.dnsmasq));
    const dir = scratch.dir('dnsmasq');
    const conf = join(dir, 'dnsmasq.conf');
    writeFileSync(conf, text(files, PATHS.dnsmasqConf));
    chmodSync(conf, 0o644);
    // User= plus AmbientCapabilities=CAP_NET_BIND_SERVICE, as in the unit.
    const user = unitKey(unit, 'User') ?? '';
    const creds = ['setpriv', `--reuid=${user}`, '--regid=nogroup', '--init-groups', '--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service', '--bounding-set=-all,+net_bind_service'];
    return { conf, unit, argv: [...creds, ...execStart(unit).map((a) => (a === `--conf-file=${PATHS.dnsmasqConf}` ? `--conf-file=${conf}` : a))] };
  }

  it('passes dnsmasq --test, Tor on and off', () => {
    for (const on of [true, false]) {
      const { conf } = prepare(on);
      const r = run(['dnsmasq', '--test', `--conf-file=${conf}`]);
      expect(r.stderr).toContain('syntax check OK');
      expect(r.code).toBe(0);
    }
  });

  it('answers client qubes on vif* (appearing after it starts), .i2p locally, the rest through Tor\'s DNSPort', async () => {
    const { argv, unit } = prepare(true);
    expect(unitKey(unit, 'User')).toBe('dnsmasq');
    const { gw, client, link } = clientAndGateway({ linkNow: false });
    // A stand-in for Tor's DNSPort on 127.0.0.1:5353: answers every name with an address in Tor's automap range.
    const tor = scratch.spawn(['ip', 'netns', 'exec', gw, 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--listen-address=127.0.0.1', '--bind-interfaces', '--port=5353', '--address=/#/10.192.0.99', '--log-facility=-', '--user=dnsmasq', '--pid-file=']);
    await waitForOutput(tor, /started/);
    const dns = scratch.spawn(['ip', 'netns', 'exec', gw, ...argv]);
    await waitForOutput(dns, /started/);
    link(); // the client qube starts after the gateway: bind-dynamic must pick up its vif
    let a = dig(client, 'foo.i2p');
    for (let i = 0; i < 20 && a.answers.length === 0; i++) {
      await sleep(100);
      a = dig(client, 'foo.i2p');
    }
    expect(a).toEqual({ status: 'NOERROR', answers: ['A 10.100.100.100'] });
    expect(dig(client, 'www.site.b32.i2p')).toEqual({ status: 'NOERROR', answers: ['A 10.100.100.100'] });
    expect(dig(client, 'foo.i2p', 'AAAA')).toEqual({ status: 'NOERROR', answers: [] });
    expect(dig(client, 'example.com')).toEqual({ status: 'NOERROR', answers: ['A 10.192.0.99'] });
    expect(dig(client, 'nodots').status).toBe('NXDOMAIN');
    const udp = must(['ip', 'netns', 'exec', gw, 'ss', '-Hlun', 'sport = :53']).stdout;
    expect(udp).toMatch(/10\.137\.0\.1:53\b/);
    expect(udp).not.toMatch(/127\.0\.0\.1:53\b|0\.0\.0\.0:53\b/);
    // ip netns exec and setpriv exec into dnsmasq: the pid we spawned is dnsmasq, as its unit's user.
    expect(must(['ps', '-o', 'user=', '-p', String(dns.pid)]).stdout.trim()).toBe('dnsmasq');
  });

  it('with Tor off answers every other name NXDOMAIN at once', async () => {
    const { argv } = prepare(false);
    const { gw, client } = clientAndGateway({ linkNow: true });
    const dns = scratch.spawn(['ip', 'netns', 'exec', gw, ...argv]);
    await waitForOutput(dns, /started/);
    await sleep(200);
    expect(dig(client, 'foo.i2p')).toEqual({ status: 'NOERROR', answers: ['A 10.100.100.100'] });
    expect(dig(client, 'example.com').status).toBe('NXDOMAIN');
  });
});

describe('tinyproxy', () => {
  const STAND_IN = [
    "const http = require('http');",
    'http.createServer((req, res) => {',
    "  res.setHeader('content-type', 'application/json');",
    '  res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));',
    "}).listen(4444, '127.0.0.1', () => console.log('READY'));",
  ].join('\n');

  async function start(): Promise<{ gw: string; client: string }> {
    const files = renderGateway(configOf());
    const unit = text(files, unitPath(UNITS.tinyproxy));
    expect(unitKey(unit, 'User')).toBe('tinyproxy');
    const dir = scratch.dir('tinyproxy');
    const filter = join(dir, 'tinyproxy.filter');
    const conf = join(dir, 'tinyproxy.conf');
    writeFileSync(filter, text(files, PATHS.tinyproxyFilter));
    writeFileSync(conf, text(files, PATHS.tinyproxyConf).replace(PATHS.tinyproxyFilter, filter));
    chmodSync(filter, 0o644);
    chmodSync(conf, 0o644);
    const { gw, client } = clientAndGateway({ linkNow: true });
    const up = scratch.spawn(['ip', 'netns', 'exec', gw, ...asUser('nobody', 'nogroup'), process.execPath, '-e', STAND_IN]);
    await waitForOutput(up, /READY/);
    const argv = execStart(unit).map((a) => (a === PATHS.tinyproxyConf ? conf : a));
    scratch.spawn(['ip', 'netns', 'exec', gw, ...asUser('tinyproxy'), ...argv]);
    await waitListening(gw, 'tcp', /0\.0\.0\.0:8888\b/);
    return { gw, client };
  }

  function get(client: string, host: string, from?: string): { status: string; body: string } {
    const r = run(['ip', 'netns', 'exec', client, 'curl', '-s', '-m', '5', ...(from === undefined ? [] : ['--interface', from]), '-H', `Host: ${host}`, '-w', '\n%{http_code}', 'http://10.137.0.1:8888/some/path?q=1']);
    const at = r.stdout.lastIndexOf('\n');
    return { status: r.stdout.slice(at + 1), body: r.stdout.slice(0, at) };
  }

  it('passes .i2p requests to the router proxy as absolute URLs, without Via or X-Tinyproxy', async () => {
    const { client } = await start();
    const r = get(client, 'forum.i2p');
    expect(r.status).toBe('200');
    const seen = JSON.parse(r.body) as { method: string; url: string; headers: Record<string, string> };
    expect(seen.method).toBe('GET');
    expect(seen.url).toBe('http://forum.i2p:80/some/path?q=1');
    expect(seen.headers['via']).toBeUndefined();
    expect(seen.headers['x-tinyproxy']).toBeUndefined();

    // Anything else, the statistics page included, is refused by the filter.
    for (const host of ['example.com', 'tinyproxy.stats', 'i2p', 'i2p.example.com']) {
      const refused = get(client, host);
      expect(refused.status, host).toBe('403');
      expect(refused.body).toContain('Filtered');
    }
  });

  it('refuses clients outside network.clientRanges', async () => {
    const { gw, client } = await start();
    must(['ip', '-n', client, 'addr', 'add', '10.140.0.10/32', 'dev', 'eth0', 'nodad']);
    must(['ip', '-n', client, 'route', 'replace', '10.137.0.1/32', 'dev', 'eth0', 'src', '10.140.0.10']);
    must(['ip', '-n', gw, 'route', 'add', '10.140.0.10/32', 'dev', 'vif1.0']);
    const r = get(client, 'forum.i2p');
    expect(r.status).toBe('403');
    expect(r.body).toContain('Access denied');
  });
});

describe('i2pd', () => {
  it('runs in the foreground with our config; its listeners are on loopback, SOCKS and SAM off', async () => {
    const files = renderGateway(configOf({ i2p: { expose: { console: true } } }));
    const dropIn = text(files, dropInPath('i2pd.service'));
    expect(dropIn).toContain('Type=simple\nPIDFile=\nExecStart=\nExecStart=/usr/sbin/i2pd ');
    const dir = scratch.dir('i2pd');
    const conf = join(dir, 'i2pd.conf');
    writeFileSync(conf, text(files, PATHS.i2pdConf));
    chmodSync(conf, 0o644);
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o700 });
    scratch.chown(data, 'i2pd');
    const argv = execStart(dropIn).map((a) => (a === `--conf=${PATHS.i2pdConf}` ? `--conf=${conf}` : a.startsWith('--datadir=') ? `--datadir=${data}` : a));
    const ns = scratch.netns();
    // Debian's unit runs i2pd as User=i2pd; the namespace has no route, so nothing it tries leaves.
    scratch.spawn(['ip', 'netns', 'exec', ns, ...asUser('i2pd'), ...argv]);
    let tcp = '';
    for (let i = 0; i < 50 && !(/127\.0\.0\.1:7070\b/.test(tcp) && /127\.0\.0\.1:4444\b/.test(tcp)); i++) {
      await sleep(100);
      tcp = must(['ip', 'netns', 'exec', ns, 'ss', '-Hltn']).stdout;
    }
    expect(tcp).toMatch(/127\.0\.0\.1:7070\b/);
    expect(tcp).toMatch(/127\.0\.0\.1:4444\b/);
    for (const off of [4447, 7656, 7654, 2827, 7650]) expect(tcp, `port ${off}`).not.toMatch(new RegExp(`:${off}\\b`));
    // The console answers for the virtual IP (how exposed clients reach it), not for other names.
    const status = (host: string): string =>
      run(['ip', 'netns', 'exec', ns, 'curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Host: ${host}`, 'http://127.0.0.1:7070/']).stdout;
    expect(status('10.100.100.100:7070')).toBe('200');
    expect(status('forum.i2p:7070')).toBe('403');
  });
});
