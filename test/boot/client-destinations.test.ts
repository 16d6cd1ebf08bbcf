/**
 * `npm run test:boot` (issue 22): router i2pd's default, each client qube its own I2P destination, in a gateway booted
 * under the real systemd with the package as install.sls puts it into the template, joined to the lab's private I2P
 * network (test/net/lib/i2pnet.ts) as test/boot/privnet.test.ts joins it. The client qube fetches the eepsite, which
 * records X-I2P-DestB32: the same destination over many requests and after the gateway's reboot (its keys in the
 * qube's /rw through bind-dirs), and `qubes-i2p-gateway status` shows it. The emulated gateway's proof with more
 * clients is test/net/client-destinations.test.ts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATHS, UNITS } from '../../src/render/gateway/common.ts';
import { CLIENT_PROXY_PORTS } from '../../src/config/routers.ts';
import { EEPSITE_MARKER, gatewayI2pdDropIn, gatewaySeedFiles, I2pNet } from '../net/lib/i2pnet.ts';
import { A, Lab } from '../net/lib/lab.ts';
import { aptCacheDirs, ensurePristine, makeOverlay, writeAptSources, type Overlay } from '../util/chroot.ts';
import { bootGateway, gatewayServices, shutdown, uidIn, type GatewayQube } from './lib/gateway.ts';
import { Machine } from './lib/machine.ts';
import { installCoreAgentStandIns, writeQubesDb } from './lib/qubes.ts';
import { applyState, buildRelease, downloadFor, installDummy, stageFormula } from './lib/template.ts';

const log = (msg: string): void => console.log(`[boot] ${msg}`);
const RELEASE = buildRelease({});
const INSTALL = 'i2p-gateway.install';

let pristine = '';
let template: Overlay | undefined;
let lab: Lab | undefined;
let i2p: I2pNet | undefined;
let gw: GatewayQube | undefined;
let rw = '';
let edits: Array<readonly [string, string | Uint8Array]> = [];

beforeAll(async () => {
  pristine = await ensurePristine(log);
  await downloadFor(pristine, RELEASE, INSTALL, log);
  template = await makeOverlay([pristine]);
  await writeAptSources(template.root);
  installCoreAgentStandIns(template.root);
  writeQubesDb(template.root, { type: 'TemplateVM', persistence: 'full', services: [] });
  stageFormula(template.root, RELEASE);
  const tm = await Machine.boot(template, { name: 'qig-template-clientdest', network: { kind: 'private' }, binds: await aptCacheDirs(), log });
  try {
    await installDummy(tm);
    await applyState(tm, RELEASE, INSTALL, log);
    await tm.poweroff();
  } finally {
    await tm.kill();
  }
  await template.unmount();
  const t = template;
  lab = await Lab.create({ sanctionedUsers: [], sanctionedUids: [uidIn(t.upper, 'debian-tor'), uidIn(t.upper, 'i2pd')], gateway: 'booted' });
  i2p = await I2pNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 90_000 });
  edits = [['/etc/systemd/system/i2pd.service.d/zz-lab-privnet.conf', gatewayI2pdDropIn(PATHS.i2pdRuntimeConf, true)], ...gatewaySeedFiles(i2p)];
  rw = join(t.base, 'rw-sys-i2p');
  gw = await boot();
}, 900_000);

afterAll(async () => {
  await shutdown(gw);
  await i2p?.stop();
  await lab?.destroy();
  await template?.dispose();
});

async function boot(): Promise<GatewayQube> {
  const t = template as Overlay;
  return bootGateway(lab as Lab, { name: 'sys-i2p', lowers: [t.upper, pristine], rw, services: gatewayServices(RELEASE.config.qubes.service), edits, log });
}

let seq = 0;
/** The client fetches the eepsite by its b32 (DNS through the gateway) until it is served; the destination the site saw. */
async function visit(ms: number): Promise<string> {
  const net = i2p as I2pNet;
  const t0 = Date.now();
  let last = { status: '', body: '', stderr: '' };
  while (Date.now() - t0 < ms) {
    const path = `/boot-v${++seq}`;
    last = await (lab as Lab).curl(`http://${net.b32}${path}`, ['-m', '7']);
    if (last.status === '200' && last.body.includes(EEPSITE_MARKER)) {
      const b32 = net.siteVisitors().find((v) => v.path === path)?.b32;
      expect(b32, `no X-I2P-DestB32 recorded for ${path}`).toMatch(/^[a-z2-7]{52}\.b32\.i2p$/);
      return b32 as string;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`the eepsite was not served within ${ms} ms: ${last.status} ${last.stderr} ${last.body.slice(0, 400)}`);
}

const seen: string[] = [];

describe('the booted gateway gives its client qube a destination of its own, kept across a reboot', () => {
  it('the client program runs under systemd and the client\'s proxy tunnel is in i2pd\'s tunnels directory', async () => {
    const g = gw as GatewayQube;
    let out = '';
    for (let i = 0; i < 30 && !out.includes('60-qubes-i2p-gateway-client-10.137.0.10.conf'); i++) {
      out = (await g.machine.exec(['ls', '/etc/i2pd/tunnels.d/'])).stdout;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const active = await g.machine.exec(['systemctl', 'is-active', 'qubes-i2p-gateway-client-proxies.service']);
    expect(active.stdout.trim()).toBe('active');
    expect(out).toContain('60-qubes-i2p-gateway-client-10.137.0.10.conf');
  }, 60_000);

  it('under the real systemd, the client\'s HTTP front is the template\'s instance for its port: active, its own dynamic user (not i2pd, not root), the cgroup\'s address filter and sandbox applied, listening on 127.0.0.4', async () => {
    const g = gw as GatewayQube;
    const unit = UNITS.httpFront.replace('@.service', `@${CLIENT_PROXY_PORTS.first}.service`);
    let show = '';
    for (let i = 0; i < 30 && !show.includes('ActiveState=active'); i++) {
      show = (await g.machine.exec(['systemctl', 'show', '-p', 'ActiveState,MainPID,DynamicUser,User,IPAddressAllow,IPAddressDeny,MemoryMax', unit])).stdout;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(show).toContain('ActiveState=active');
    expect(show).toContain('DynamicUser=yes');
    expect(show).toContain(`User=qig-http-${CLIENT_PROXY_PORTS.first}`);
    const words = (key: string): string[] => (new RegExp(`^${key}=(.*)$`, 'm').exec(show)?.[1] ?? '').split(' ').sort();
    expect(words('IPAddressDeny')).toEqual(['0.0.0.0/0', '::/0']);
    expect(words('IPAddressAllow')).toEqual(['10.137.0.0/16', '10.138.0.0/16', '127.0.0.0/8', '::1/128']);
    expect(show).toContain('MemoryMax=67108864');
    const pid = /^MainPID=(\d+)$/m.exec(show)?.[1];
    const status = (await g.machine.exec(['cat', `/proc/${pid}/status`])).stdout;
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    expect(uid).toBeGreaterThanOrEqual(61184);
    expect(uid).toBeLessThanOrEqual(65519);
    expect(/^NoNewPrivs:\s+1$/m.test(status), status).toBe(true);
    // /proc/net/tcp: a socket listening (0A) on 127.0.0.4 at the port, owned by that uid.
    const local = `0400007F:${CLIENT_PROXY_PORTS.first.toString(16).toUpperCase().padStart(4, '0')}`;
    const tcp = (await g.machine.exec(['cat', '/proc/net/tcp'])).stdout.split('\n').map((l) => l.trim().split(/\s+/));
    expect(tcp.filter((f) => f[1] === local && f[3] === '0A').map((f) => Number(f[7])), tcp.map((f) => f.join(' ')).join('\n')).toEqual([uid]);
    log(`the client's HTTP front under systemd: ${unit}, uid ${uid}`);
  }, 60_000);

  it('the client fetches the eepsite with its own destination, the same over many requests', async () => {
    const t0 = Date.now();
    seen.push(await visit(240_000));
    log(`client's own destination: first page ${Date.now() - t0} ms after the boot settled`);
    for (let i = 0; i < 5; i++) seen.push(await visit(60_000));
    expect(new Set(seen).size, seen.join(' ')).toBe(1);
  }, 420_000);

  it('`qubes-i2p-gateway status` as root shows the client with that destination', async () => {
    const r = await (gw as GatewayQube).machine.exec(['qubes-i2p-gateway', 'status', '--json'], { timeoutMs: 90_000 });
    const doc = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string }> };
    const line = doc.checks.find((c) => c.id === `clients.${A.client4}`);
    expect(line, r.stdout).toMatchObject({ status: 'ok' });
    expect(line?.summary).toContain(seen[0]);
  }, 120_000);

  it('the keys are in the qube\'s /rw (bind-dirs), and after a reboot the client has the same destination', async () => {
    expect(existsSync(join(rw, 'bind-dirs/var/lib/i2pd/qubes-i2p-gateway-client-10.137.0.10.dat'))).toBe(true);
    await shutdown(gw);
    gw = undefined;
    gw = await boot();
    expect(await visit(240_000)).toBe(seen[0]);
  }, 600_000);
});
