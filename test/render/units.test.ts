/**
 * The units and drop-ins against Debian 13's systemd-analyze verify (systemd 257, in a machine over the oracles
 * root, test/util/trixie.ts, with the rendered tree layered on it as if the package were installed): each of our
 * units, and the distribution's units our drop-ins change (Debian 13's i2pd.service, tor.service, ...). Units it
 * cannot find (qubes-firewall, Qubes' own) only order ours, so verify may mention them; nothing may be said about
 * our files.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROUTERS, WAIT_PAGE_PORT } from '../../src/config/routers.ts';
import type { RenderedFile } from '../../src/files.ts';
import { PATHS, UNIT_DIR, UNITS } from '../../src/render/gateway/common.ts';
import { renderGateway } from '../../src/render/gateway/index.ts';
import { LOCKDOWN_UNIT } from '../../src/render/gateway/lockdown.ts';
import { targetWants } from '../../src/render/gateway/target.ts';
import { Trixie } from '../util/trixie.ts';
import { configOf, PROGRAMS, run, Scratch, text } from './helpers.ts';

const scratch = new Scratch();
afterAll(async () => {
  await scratch.cleanup();
});

const trixie = await Trixie.open(scratch.dir('machines'));

function verify(files: readonly RenderedFile[], units: readonly string[]): { code: number | null; output: string } {
  // The package "installed": the rendered tree over the Debian 13 root, so verify finds our programs, Debian's
  // binaries where Debian 13 puts them, and Debian 13's units our drop-ins extend.
  const tree = scratch.tree(files);
  const ours = units.map((u) => (existsSync(join(tree, UNIT_DIR, u)) ? `${UNIT_DIR}/${u}` : u));
  const r = run(['env', 'SYSTEMD_LOG_COLOR=0', ...trixie.prefix([tree]), 'systemd-analyze', 'verify', ...ours]);
  return { code: r.code, output: r.stdout + r.stderr };
}

describe('systemd-analyze verify', () => {
  it('accepts the units and drop-ins of the default gateway (i2pd, Tor on)', () => {
    const config = configOf();
    const files = renderGateway(config, { programs: PROGRAMS });
    const units = [UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, UNITS.target, LOCKDOWN_UNIT, UNITS.noForward, 'i2pd.service', 'tor.service', 'tor@default.service', 'tinyproxy.service'];
    const r = verify(files, units);
    expect(r.output).not.toMatch(/qubes-i2p-gateway|50-qubes-i2p-gateway|i2pd\.service|tinyproxy\.service|tor(@default)?\.service/);
    expect(r.code).toBe(0);
  });

  it('fails a drop-in that names Debian 12\'s i2pd path (/usr/sbin/i2pd): Debian 13 has only /usr/bin/i2pd', () => {
    const files = renderGateway(configOf(), { programs: PROGRAMS }).map((f) =>
      f.path.endsWith('i2pd.service.d/50-qubes-i2p-gateway.conf') ? { ...f, data: new TextEncoder().encode(new TextDecoder().decode(f.data).replace('ExecStart=i2pd ', 'ExecStart=/usr/sbin/i2pd ')) } : f,
    );
    const r = verify(files, ['i2pd.service']);
    expect(r.output).toMatch(/\/usr\/sbin\/i2pd/);
    expect(r.code).not.toBe(0);
  });

  it('accepts the units without Tor', () => {
    const files = renderGateway(configOf({ tor: { enabled: false } }), { programs: PROGRAMS });
    const r = verify(files, [UNITS.dnsmasq, UNITS.tinyproxy, UNITS.target, LOCKDOWN_UNIT, 'i2pd.service']);
    expect(r.output).not.toMatch(/qubes-i2p-gateway|i2pd\.service/);
    expect(r.code).toBe(0);
  });
});

describe('the units', () => {
  const config = configOf();
  const files = renderGateway(config, { programs: PROGRAMS });
  const unit = (name: string): string => text(files, `${UNIT_DIR}/${name}`);

  it('run only in the gateway qube', () => {
    for (const u of [UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, UNITS.target, 'i2pd.service.d/50-qubes-i2p-gateway.conf']) {
      expect(unit(u), u).toContain('ConditionPathExists=/run/qubes-service/i2p\n');
    }
  });

  it('the lockdown and no-forward units run in the gateway and in any qube that provides network, never in the template', () => {
    for (const u of [LOCKDOWN_UNIT, UNITS.noForward]) {
      const conds = unit(u).split('\n').filter((l) => l.startsWith('ConditionPathExists='));
      expect(conds, u).toEqual([
        'ConditionPathExists=|/run/qubes-service/i2p',
        'ConditionPathExists=|/run/qubes/this-is-netvm',
        'ConditionPathExists=|/run/qubes/this-is-proxyvm',
        'ConditionPathExists=|/run/qubes-service/qubes-network',
      ]);
    }
    expect(unit(UNITS.noForward)).toContain('\nAfter=qubes-network.service\nPartOf=qubes-network.service\n');
    const link = files.find((f) => f.path === `${UNIT_DIR}/qubes-network.service.wants/${UNITS.noForward}`);
    expect(link).toMatchObject({ kind: 'symlink', target: `../${UNITS.noForward}` });
  });

  it('the router this build does not run never starts in the gateway', () => {
    expect(unit('i2p.service.d/50-qubes-i2p-gateway.conf')).toContain('\nConditionPathExists=!/run/qubes-service/i2p\n');
  });

  it('use plain ExecStart lines (no specifiers, no shell): our programs by absolute path, the distribution\'s by bare name', () => {
    for (const u of [UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, LOCKDOWN_UNIT, 'i2pd.service.d/50-qubes-i2p-gateway.conf']) {
      const lines = unit(u).split('\n').filter((l) => l.startsWith('ExecStart=') && l !== 'ExecStart=');
      expect(lines, u).toHaveLength(1);
      expect(lines[0], u).toMatch(/^ExecStart=[^%$;|&'"]*$/);
      // A distribution's binary moves between releases (i2pd: /usr/sbin on Debian 12, /usr/bin on 13): name it bare
      // and let systemd search. Our own programs have one place, so they are named by it.
      const cmd = lines[0]!.slice('ExecStart='.length).split(' ')[0]!;
      if (cmd.startsWith('/')) expect(cmd, u).toMatch(/^\/usr\/libexec\/qubes-i2p-gateway\//);
      else expect(['tor', 'dnsmasq', 'tinyproxy', 'nft', 'i2pd'], u).toContain(cmd);
      expect(lines[0], u).not.toMatch(/\bsh -c\b/);
    }
  });

  it('the target wants every part of the gateway and is enabled by a shipped link', () => {
    expect(targetWants(config)).toEqual([LOCKDOWN_UNIT, UNITS.noForward, UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, UNITS.waitPage, ROUTERS.i2pd.unit, UNITS.clientProxies]);
    expect(targetWants(configOf({ i2p: { clientDestinations: 'shared' } }))).not.toContain(UNITS.clientProxies);
    expect(targetWants(configOf({ i2p: { router: 'i2p' } }))).not.toContain(UNITS.clientProxies);
    expect(unit(UNITS.target)).toContain(`Wants=${targetWants(config).join(' ')}\n`);
    const link = files.find((f) => f.path === `${UNIT_DIR}/multi-user.target.wants/${UNITS.target}`);
    expect(link).toMatchObject({ kind: 'symlink', target: `../${UNITS.target}` });
  });

  it('wants the DNS TCP relay only with Tor, and starts dnsmasq after it', () => {
    expect(targetWants(configOf({ tor: { enabled: false } }))).not.toContain(UNITS.dnsRelay);
    expect(unit(UNITS.dnsmasq)).toMatch(new RegExp(`^After=.* ${UNITS.dnsRelay.replace(/\./g, '\\.')}$`, 'm'));
  });

  it('wants the Java router\'s unit for router i2p', () => {
    expect(targetWants(configOf({ i2p: { router: 'i2p' } }))).toContain('i2p.service');
  });

  it('wants the waiting page\'s relay with i2pd only, as i2pd\'s user on loopback, and tinyproxy goes through it', () => {
    expect(targetWants(configOf({ i2p: { router: 'i2p' } }))).not.toContain(UNITS.waitPage);
    const relay = unit(UNITS.waitPage);
    expect(relay).toContain('\nUser=i2pd\n');
    expect(relay).toContain('\nIPAddressDeny=any\n');
    expect(relay).toContain(`--listen 127.0.0.1:${WAIT_PAGE_PORT} --upstream 127.0.0.1:${ROUTERS.i2pd.httpProxyPort} `);
    expect(text(files, PATHS.tinyproxyConf)).toContain(`\nupstream http 127.0.0.1:${WAIT_PAGE_PORT} ".i2p"\n`);
  });

  it('with a destination per client (the default): each client an HTTP front of its own (a template, its instance the port, its own dynamic user, the client ranges and loopback), the router\'s figures written for them by the relay, which client qubes no longer reach; shared: no front, no figures file', () => {
    const relay = unit(UNITS.waitPage);
    expect(relay).toContain('\nIPAddressAllow=localhost\n');
    expect(relay).toContain(` --facts-out ${PATHS.routerFacts}\n`);
    expect(relay).toContain('\nRuntimeDirectory=qubes-i2p-gateway-router\nRuntimeDirectoryMode=0755\n');
    expect(relay).not.toContain('--client-tunnels');
    const front = unit(UNITS.httpFront);
    expect(front).toContain('\nDynamicUser=yes\nUser=qig-http-%i\n');
    expect(front).toContain('\nIPAddressAllow=localhost 10.137.0.0/16 10.138.0.0/16\nIPAddressDeny=any\n');
    expect(front).toContain(`\nExecStart=${PATHS.waitPage} --front --listen 127.0.0.4:%i --upstream 127.0.0.1:%i --facts ${PATHS.routerFacts} --max-connections 64\n`);
    expect(front).toContain("\nConditionPathExists=/run/qubes-service/i2p\n");
    expect(front).toContain(`\nPartOf=${UNITS.target}\n`);
    expect(targetWants(config)).not.toContain(UNITS.httpFront);
    const shared = renderGateway(configOf({ i2p: { clientDestinations: 'shared' } }), { programs: PROGRAMS });
    const sharedText = text(shared, `${UNIT_DIR}/${UNITS.waitPage}`);
    expect(sharedText).toContain('\nIPAddressAllow=localhost\n');
    expect(sharedText).not.toContain('--facts-out');
    expect(shared.some((f) => f.path === `${UNIT_DIR}/${UNITS.httpFront}`)).toBe(false);
  });

  it('Debian 13\'s systemd-analyze verify accepts the relay, the client proxies\' unit and an instance of the front', () => {
    const instance = UNITS.httpFront.replace('@.service', '@31000.service');
    const r = verify(files, [UNITS.waitPage, UNITS.clientProxies, instance]);
    expect(r.output).not.toMatch(/qubes-i2p-gateway/);
    expect(r.code).toBe(0);
  });
});
