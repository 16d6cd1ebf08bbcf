/**
 * A published service end to end (config `publish`): the gateway as the reverse proxy of a web application in a
 * service qube that has no network at all.
 *
 *   gw: i2pd / Tor ──▶ 127.0.0.1:28080 (the packaged socket unit, Accept=yes, via systemd-socket-activate)
 *         └─▶ per connection, as the unit's dynamic user: qrexec-client-vm --use-stdin-socket webapp qubes.ConnectTCP+8080
 *               (tools/qrexec-client-vm: the stand-in for Qubes' program, where Qubes installs it)
 *   svc (the service qube: loopback only): tools/qrexec-dom0.py, the stand-in for the agent socket, dom0's policy
 *         (our rendered 70-i2p-gateway-publish.policy, then 90-default's deny) and the qube's qubes.ConnectTCP
 *         └─▶ 127.0.0.1:8080, the "web application": netlab.py's recorder, which logs each request head
 *
 * The real i2pd loads the packaged server tunnel and makes the site's keys; without the I2P network that is as far
 * as a router gets. Found out here (i2pd 2.45 and 2.56 read alike, libi2pd/Destination.cpp): i2pd does not connect
 * a client tunnel to one of its own destinations directly; it asks floodfills for the LeaseSet ("Can't request
 * LeaseSet, no floodfills found"), so a local client tunnel cannot reach the site offline. What the http tunnel
 * does to headers is read from i2pd's source (I2PTunnel.cpp) and stated in the packaged tunnels file. The real Tor
 * writes the onion service's hostname with no network at all.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe as suite, expect, it } from 'vitest';
import { PATHS } from '../../src/render/gateway/common.ts';
import { CONSOLE_USER } from '../../src/render/gateway/i2pd.ts';
import { i2pdKeysFile, onionDir, publishSocketUnit } from '../../src/render/gateway/publish.ts';
import { A, type Lab, type UpEvent } from './lib/lab.ts';
import { startServiceQube, type ServiceQube } from './lib/service-qube.ts';
import { expectUpClean, httpStatus, REVEALING_HEADERS } from './lib/suite.ts';
import { World } from './lib/world.ts';

const BACKEND_PORT = 8080;
const LISTEN = 28080;
const CONFIG = {
  publish: [{ name: 'wiki', qube: 'webapp', port: BACKEND_PORT, onion: true }],
  // route_localnet is turned on after the start (beforeAll), the path a client would need to reach a loopback
  // listener (the hook sets it for the per-client proxies; i2p.expose.irc, which set it with shared, is refused now).
  // The published listener must stay out of reach all the same.
  i2p: { clientDestinations: 'shared' },
};

let w: World;
let lab: Lab;
let svc: ServiceQube;

function logPath(name: string): string {
  return join(lab.scratch, 'logs', name);
}

function backendHits(): UpEvent[] {
  return svc.hits();
}

function qrexecCalls(): UpEvent[] {
  return svc.calls();
}

/** An HTTP request from inside the gateway (as `user`) to the published service's listener. */
async function fromGateway(user: string, host: string, extra: readonly string[] = []): Promise<{ code: number | null; body: string; stderr: string }> {
  const r = await lab.gwRun(['curl', '-sS', '--max-time', '5', '-H', `Host: ${host}`, ...extra, `http://127.0.0.1:${LISTEN}/page?q=1`], { user, timeoutMs: 10_000 });
  return { code: r.code, body: r.stdout, stderr: r.stderr };
}

/** The b32 address of an I2P destination's keys file: base32 of the SHA-256 of its public part (I2P's "Destination"). */
function b32Of(keys: Buffer): string {
  // 256 bytes of encryption key, 128 of signing key, then a certificate: type (1 byte), length (2), payload.
  const certLen = keys.readUInt16BE(385);
  const digest = createHash('sha256').update(keys.subarray(0, 387 + certLen)).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

beforeAll(async () => {
  w = await World.create(CONFIG);
  lab = w.lab;
  const on = await lab.gwRun(['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet']);
  if (on.code !== 0) throw new Error(`route_localnet: ${on.stderr}`);
  svc = await startServiceQube(lab, { config: w.config, qube: 'webapp', port: BACKEND_PORT, banner: 'WEBAPP', socket: join(lab.scratch, 'run/qubes/qrexec-agent') });
  await w.use({ tor: 'recorder', router: 'recorder', dnsmasq: true, tinyproxy: true });
});

beforeEach(() => {
  svc.clear();
});

afterAll(async () => {
  await w?.destroy();
});

suite('a published service (webapp:8080 as an I2P site and an onion service)', () => {
  it('the service qube has loopback and nothing else: no link, no route, no netvm', async () => {
    const links = (await lab.nsRun('svc', ['ip', '-o', 'link', 'show'])).stdout.trim().split('\n');
    expect(links.map((l) => l.split(':')[1]?.trim())).toEqual(['lo']);
    expect((await lab.nsRun('svc', ['ip', 'route', 'show'])).stdout.trim()).toBe('');
  });

  it('the packaged listener is on 127.0.0.1 only, and systemd would start it only in the gateway', async () => {
    const listeners = (await lab.nsRun('gw', ['ss', '-Hltn', `sport = :${LISTEN}`])).stdout.trim().split('\n');
    expect(listeners.map((l) => l.split(/\s+/)[3])).toEqual([`127.0.0.1:${LISTEN}`]);
    expect(w.sockets).toEqual([publishSocketUnit('wiki')]);
    lab.setService(w.config.qubes.service, false);
    try {
      expect(await w.gw.conditionsHold(w.gw.unit(publishSocketUnit('wiki')))).toBe(false);
    } finally {
      lab.setService(w.config.qubes.service, true);
    }
  });

  it('a request to the listener reaches the application with the Host the visitor sent, and no header the gateway added', async () => {
    for (const [user, host] of [[w.routerUser, 'zzzz3spdjtgchwp6vmmmm2f2etu5ypcg3rbeqwyh5xxxs4dxoqqa.b32.i2p'], [w.torUser, 'k2yb37jc5fp4xuoxsrt7q6rdico75u5wouaotsz4c7zeosfqlxizg4qd.onion']] as const) {
      const r = await fromGateway(user, host);
      expect([r.code, r.body.trim()], r.stderr).toEqual([0, 'WEBAPP']);
      const hits = backendHits();
      expect(hits.map((h) => h['request'])).toEqual(['GET /page?q=1 HTTP/1.1']);
      const headers = hits[0]!['headers'] as Array<[string, string]>;
      expect(headers.filter(([k]) => k.toLowerCase() === 'host')).toEqual([['Host', host]]);
      expect(headers.map(([k]) => k.toLowerCase()).filter((k) => REVEALING_HEADERS.includes(k))).toEqual([]);
      // The application sees its own qube's loopback as the peer: nothing of the visitor, nothing of the gateway.
      expect(hits[0]!['peer']).toBe('127.0.0.1');
      writeFileSync(logPath('webapp.jsonl'), '');
    }
  });

  it('each connection runs exactly `qrexec-client-vm --use-stdin-socket webapp qubes.ConnectTCP+8080`, as a dynamic user, allowed by the rendered policy', async () => {
    const r = await fromGateway(w.routerUser, 'site.b32.i2p');
    expect(r.body.trim(), r.stderr).toBe('WEBAPP');
    const calls = qrexecCalls();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ argv: ['--use-stdin-socket', 'webapp', 'qubes.ConnectTCP+8080'], source: 'sys-i2p', target: 'webapp', policy: 'allow', result: 'connected', local: '127.0.0.1' });
    const uid = Number(calls[0]!['uid']);
    expect(uid >= 61184 && uid <= 65519, `uid ${uid} is in systemd's DynamicUser range`).toBe(true);
  });

  it('a gateway that tries any other port, qube or service is refused by the policy (exit 126), and the application sees nothing', async () => {
    const layer = w.qrexecLayer();
    for (const argv of [
      ['webapp', 'qubes.ConnectTCP+22'],
      ['webapp', 'qubes.ConnectTCP+80'],
      ['vault', 'qubes.ConnectTCP+8080'],
      ['@default', 'qubes.ConnectTCP+8080'],
      ['webapp', 'qubes.VMShell'],
      ['webapp', 'qubes.ConnectTCP+08080'],
    ]) {
      const r = await lab.gwRun(['sh', '-c', 'exec qrexec-client-vm "$@" < /dev/null', 'sh', ...argv], { override: layer, timeoutMs: 10_000 });
      expect([r.code, r.stderr.trim()], argv.join(' ')).toEqual([126, 'Request refused']);
    }
    // Refused by the policy itself (not only because this lab has no such qube): each one is denied by dom0's rules.
    expect(qrexecCalls().map((c) => [c['policy'], c['result']])).toEqual(Array(6).fill(['deny', 'refused']));
    expect(backendHits()).toEqual([]);
  });

  it('the application\'s port is unreachable from the client and from the gateway\'s own network', async () => {
    const mark = lab.upMark();
    const mac = await lab.gwMac();
    const r = await lab.probe('client', [
      { kind: 'tcp', host: A.gwDown4, port: BACKEND_PORT, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 1 },
      { kind: 'tcp', host: A.vip, port: BACKEND_PORT, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 1 },
      { kind: 'tcp', host: A.web, port: BACKEND_PORT, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 1 },
      { kind: 'l2syn', iface: 'eth0', mac, src: A.client4, dst: '127.0.0.1', port: BACKEND_PORT, timeout: 1 },
    ]);
    for (const x of r) expect(x.data ?? '', JSON.stringify(x.probe)).not.toContain('WEBAPP');
    // Nothing in the gateway listens on the application's port: a frame to its loopback gets no answer at all.
    expect(r[3]!.outcome).not.toBe('reply');
    const gw = await lab.probe('gw', [
      { kind: 'tcp', host: '127.0.0.1', port: BACKEND_PORT, timeout: 1 },
      { kind: 'tcp', host: A.gwDown4, port: BACKEND_PORT, timeout: 1 },
    ]);
    expect(gw.map((x) => x.outcome)).toEqual(['refused', 'refused']);
    expect(backendHits()).toEqual([]);
    await expectUpClean(lab, mark, 'the backend port from the client');
  });

  it('clients cannot reach the listener: not on the gateway\'s address, not on the virtual IP (whose router ports are DNATed to loopback), not as 127.0.0.1', async () => {
    const mark = lab.upMark();
    const mac = await lab.gwMac();
    const route = (await lab.gwRun(['cat', '/proc/sys/net/ipv4/conf/all/route_localnet'])).stdout.trim();
    expect(route, 'route_localnet is on (beforeAll), so a path to loopback is live').toBe('1');
    const r = await lab.probe('client', [
      { kind: 'tcp', host: A.gwDown4, port: LISTEN, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 1 },
      { kind: 'tcp', host: A.vip, port: LISTEN, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 1 },
      // Frames the client addresses to 127.0.0.1 and to the virtual IP itself, straight to the gateway's MAC.
      { kind: 'l2syn', iface: 'eth0', mac, src: A.client4, dst: '127.0.0.1', port: LISTEN, timeout: 1 },
      { kind: 'l2syn', iface: 'eth0', mac, src: A.client4, dst: A.gwDown4, port: LISTEN, timeout: 1 },
    ]);
    for (const x of r) expect(x.data ?? '', JSON.stringify(x.probe)).not.toContain('WEBAPP');
    // The gateway's address and loopback: no connection, no answer at all.
    for (const i of [0, 2, 3]) expect(r[i]!.outcome, JSON.stringify(r[i]!.probe)).not.toMatch(/^(connected|reply)$/);
    // The virtual IP: plain HTTP on any of its ports is tinyproxy's (firewall.nft), which refuses a request with no
    // .i2p host; the port never selects a listener of the gateway.
    if (r[1]!.outcome === 'connected') expect(httpStatus(r[1]!.data), r[1]!.data).toBeGreaterThanOrEqual(400);
    // Through tinyproxy (the only thing clients may reach on the virtual IP's port 80): never to a loopback port.
    const viaProxy = await lab.probe('client', [
      { kind: 'tcp', host: A.vip, port: 80, send: `GET http://127.0.0.1:${LISTEN}/ HTTP/1.1\r\nHost: 127.0.0.1:${LISTEN}\r\n\r\n` },
      { kind: 'tcp', host: A.vip, port: 80, send: `GET / HTTP/1.1\r\nHost: 127.0.0.1:${LISTEN}\r\n\r\n` },
    ]);
    for (const x of viaProxy) expect(x.data ?? '').not.toContain('WEBAPP');
    expect(qrexecCalls()).toEqual([]);
    expect(backendHits()).toEqual([]);
    await expectUpClean(lab, mark, 'the listener from the client');
  });

  it('the real i2pd (Debian\'s unit + our drop-in) loads the packaged server tunnel and makes the site\'s keys in its persistent data directory; a restart keeps the address', async () => {
    await w.use({ tor: 'recorder', router: 'real', dnsmasq: true, tinyproxy: true });
    const keysPath = `/var/lib/i2pd/${i2pdKeysFile('wiki')}`;
    const readKeys = async (): Promise<Buffer> => {
      for (let i = 0; i < 100; i++) {
        const r = await lab.gwRun(['base64', '-w0', keysPath]);
        if (r.code === 0 && r.stdout.length > 500) return Buffer.from(r.stdout, 'base64');
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error(`i2pd made no ${keysPath}`);
    };
    const first = b32Of(await readKeys());
    const owner = (await lab.gwRun(['stat', '-c', '%U %a', keysPath])).stdout.trim();
    expect(owner, 'the site\'s private keys: readable by i2pd alone (our drop-in\'s UMask=0077)').toBe('i2pd 600');
    // The console's tunnels page lists the server tunnel by name with its address and I2P port (inport 80).
    const page = async (): Promise<string> =>
      (
        await lab.gwRun([
          'sh', '-c', 'exec curl -sS --max-time 5 -u "$1:$(cat "$2")" "$3"', 'sh',
          CONSOLE_USER, PATHS.consolePassword, `http://${w.routerConsole.host}:${w.routerConsole.port}/?page=i2p_tunnels`,
        ])
      ).stdout.replace(/<[^>]*>/g, ' ');
    const tunnels = await page();
    const server = tunnels.slice(tunnels.indexOf('Server Tunnels'));
    expect(server.replace(/\s+/g, ' '), tunnels.replace(/\s+/g, ' ').slice(-600)).toMatch(new RegExp(`qubes-i2p-gateway-wiki \\S+ ${first}\\.b32\\.i2p:80\\b`));
    await w.use({ tor: 'recorder', router: 'off', dnsmasq: true, tinyproxy: true });
    await w.use({ tor: 'recorder', router: 'real', dnsmasq: true, tinyproxy: true });
    expect(b32Of(await readKeys())).toBe(first);
    expect(await page()).toContain(first);
    await w.use({ tor: 'recorder', router: 'recorder', dnsmasq: true, tinyproxy: true });
  });

  it('the real Tor (packaged unit, no network) writes the onion service\'s hostname in its persistent state, for its user only', async () => {
    await w.use({ tor: 'real', router: 'recorder', dnsmasq: true, tinyproxy: true });
    const dir = onionDir('wiki');
    let hostname = '';
    for (let i = 0; i < 100 && hostname === ''; i++) {
      hostname = (await lab.gwRun(['cat', `${dir}/hostname`])).stdout;
      if (hostname === '') await new Promise((res) => setTimeout(res, 100));
    }
    expect(hostname).toMatch(/^[a-z2-7]{56}\.onion\n$/);
    expect(dir.startsWith(`${PATHS.torData}/`)).toBe(true);
    expect((await lab.gwRun(['stat', '-c', '%U %a', dir])).stdout.trim()).toBe('debian-tor 700');
    await w.use({ tor: 'recorder', router: 'recorder', dnsmasq: true, tinyproxy: true });
  });

  it('`qubes-i2p-gateway status` (the packaged command, as root) lists the service with the router\'s and Tor\'s addresses and an answering application', async () => {
    // After the two tests above: i2pd has made the site's keys and Tor the onion hostname, in the gateway's state.
    const keys = (await lab.gwRun(['base64', '-w0', `/var/lib/i2pd/${i2pdKeysFile('wiki')}`])).stdout;
    const b32 = `${b32Of(Buffer.from(keys, 'base64'))}.b32.i2p`;
    const onion = (await lab.gwRun(['cat', `${onionDir('wiki')}/hostname`])).stdout.trim();
    expect(onion).toMatch(/^[a-z2-7]{56}\.onion$/);
    const r = await lab.gwRun(['qubes-i2p-gateway', 'status', '--json'], { timeoutMs: 120_000 });
    const report = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string; fix: string | null }> };
    const line = report.checks.find((c) => c.id === 'publish.wiki');
    expect(line, r.stdout).toEqual({ id: 'publish.wiki', group: 'publish', title: 'wiki (webapp:8080)', status: 'ok', summary: `${b32}, ${onion}; the application answers (HTTP 200)`, fix: null, needsRoot: false });
    // Its HEAD went the qrexec path, for the site's own name.
    const head = backendHits().find((h) => String(h['request']).startsWith('HEAD '));
    expect(head?.['headers']).toContainEqual(['Host', b32]);
    expect(qrexecCalls().at(-1)).toMatchObject({ argv: ['--use-stdin-socket', 'webapp', 'qubes.ConnectTCP+8080'], policy: 'allow' });
  });
});
