/**
 * Paths of the ruleset that depend on where a packet goes in the kernel (issues 20.1 and 19.12), and the kernel
 * setting under them (issue 21.4):
 * - The lab's gateway runs with the package's no-forward.conf applied, as every real gateway does (lib/lab.ts).
 * - TLS to the virtual IP is refused in the input path, so the reset comes with forwarding off (every real gateway)
 *   and with forwarding on (a user who turned it on) alike.
 * - Tor's and the router's users reach upstream only: never a client qube, the virtual IP or Tor's automap range.
 * The default build, with the packaged dnsmasq and tinyproxy and the Tor and router recorders.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import { renderNoForwardSysctl } from '../../src/render/gateway/no-forward.ts';
import { A, NO_FORWARD_CONF, type Lab, type Probe } from './lib/lab.ts';
import { expectUpClean } from './lib/suite.ts';
import { World, SHARED_DESTINATION } from './lib/world.ts';

let w: World;
let lab: Lab;

beforeAll(async () => {
  w = await World.create(SHARED_DESTINATION);
  lab = w.lab;
  await w.use({ tor: 'recorder', router: 'recorder', dnsmasq: true, tinyproxy: true });
});

afterAll(async () => {
  await w?.destroy();
});

/** sysctl.d lines: `[-]key = value` (a leading "-": failures ignored); comments and blank lines skipped. */
function sysctlSettings(text: string): Array<{ key: string; value: string }> {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'))
    .map((l) => {
      const eq = l.indexOf('=');
      return { key: l.slice(0, eq).trim().replace(/^-/, ''), value: l.slice(eq + 1).trim() };
    });
}

suite('21.4: the lab\'s gateway forwards nothing, as real gateways do', () => {
  it('every setting of the packaged no-forward.conf holds in the gateway\'s namespace, and its forwarding values are the off ones', async () => {
    const file = readFileSync(join(lab.pkgRoot, NO_FORWARD_CONF), 'utf8');
    expect(file, 'the .deb\'s file is the renderer\'s').toBe(renderNoForwardSysctl());
    const settings = sysctlSettings(file);
    expect(settings.filter((x) => x.key.endsWith('.forwarding')), 'the file turns IPv4 and IPv6 forwarding off').toEqual([
      { key: 'net.ipv4.conf.all.forwarding', value: '0' },
      { key: 'net.ipv6.conf.all.forwarding', value: '0' },
    ]);
    let checked = 0;
    for (const { key, value } of settings) {
      // net.<family>.conf.<interface or glob>.<name>: a glob (vif*) stands for every interface of gw it matches.
      const [net, family, conf, iface, ...rest] = key.split('.');
      expect([net, conf, rest.length], key).toEqual(['net', 'conf', 1]);
      const ifaces = (await lab.nsRun('gw', ['ls', `/proc/sys/net/${family}/conf`])).stdout.split('\n').filter((x) => x !== '');
      const pattern = (iface ?? '').split('*').map((part) => part.replace(/[.+?^$()|[\]\\{}]/g, '\\$&')).join('.*');
      const glob = new RegExp(`^${pattern}$`);
      const matched = ifaces.filter((i) => glob.test(i));
      expect(matched.length, `${key}: no interface of gw matches (the client's vif3.0 must)`).toBeGreaterThan(0);
      for (const i of matched) {
        expect(await lab.gwSysctl(`net/${family}/conf/${i}/${rest[0]}`), `${key} on ${i}`).toBe(value);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(settings.length);
    // What it means for routing: no interface of gw forwards, IPv4 or IPv6.
    expect(await lab.gwSysctl('net.ipv4.ip_forward')).toBe('0');
    for (const family of ['ipv4', 'ipv6']) {
      const ifaces = (await lab.nsRun('gw', ['ls', `/proc/sys/net/${family}/conf`])).stdout.split('\n').filter((x) => x !== '');
      expect(ifaces).toEqual(expect.arrayContaining(['all', 'eth0', 'vif3.0']));
      for (const i of ifaces) expect(await lab.gwSysctl(`net/${family}/conf/${i}/forwarding`), `${family} ${i}`).toBe('0');
    }
    // The gateway machine's own sysctl applied that file (it prints each key it set).
    expect(lab.noForwardApplied).toContain('net.ipv4.conf.all.forwarding = 0');
  });
});

suite('20.1: HTTPS to a .i2p name is refused at once, with forwarding off (every real gateway) and on (turned on by a user)', () => {
  for (const forwarding of ['off', 'on'] as const) {
    it(`443 and 8443 of the virtual IP get a reset within a second, forwarding ${forwarding}`, async () => {
      if (forwarding === 'on') await lab.forwardingOn();
      try {
        expect(await lab.gwSysctl('net.ipv4.ip_forward')).toBe(forwarding === 'on' ? '1' : '0');
        const mark = lab.upMark();
        const started = Date.now();
        const r = await lab.probe('client', [
          { kind: 'tcp', host: A.vip, port: 443, timeout: 3 },
          { kind: 'tcp', host: A.vip, port: 8443, timeout: 3 },
        ]);
        expect(r.map((x) => x.outcome), JSON.stringify(r)).toEqual(['refused', 'refused']);
        // Two probes with a 3 s timeout each: a refusal must not be a timeout in disguise.
        expect(Date.now() - started, 'both refused at once').toBeLessThan(5000);
        const tls = await lab.curl('https://site.i2p/');
        expect(tls.code, tls.stderr).toBe(7); // curl: "Failed to connect" (a reset), not 28 (a timeout)
        expect(w.torEvents(), 'TLS to the virtual IP went to Tor').toEqual([]);
        await expectUpClean(lab, mark, `TLS to the virtual IP with forwarding ${forwarding}`);
      } finally {
        await lab.restoreForwarding();
      }
    });
  }
});

suite("19.12: Tor's and the router's users reach upstream only", () => {
  it('as debian-tor and as the router user: a client qube, the virtual IP and the automap range are refused; upstream works', async () => {
    const inside: Probe[] = [
      { kind: 'tcp', host: A.client4, port: 22, timeout: 2 },
      { kind: 'tcp', host: A.vip, port: 80, timeout: 2 },
      { kind: 'tcp', host: A.torA, port: 80, timeout: 2 },
    ];
    for (const user of [w.torUser, w.routerUser]) {
      const r = await lab.probe('gw', [...inside, { kind: 'tcp', host: A.web, port: 80, send: 'GET / HTTP/1.0\r\n\r\n', timeout: 2 }], user);
      // The firewall's own refusal (icmp admin-prohibited to the local socket): EHOSTUNREACH or EACCES/EPERM,
      // never the client's reset ("refused"), a connection, or a reply.
      expect(r.slice(0, inside.length).map((x) => x.outcome), `${user}: ${JSON.stringify(r)}`).toEqual(['unreachable', 'unreachable', 'unreachable']);
      expect(r[inside.length]?.data ?? r[inside.length]?.outcome, `${user} upstream`).toContain('UP-LEAKED');
    }
  });
});
