/**
 * Paths of the ruleset that depend on where a packet goes in the kernel (issues 20.1 and 19.12):
 * - TLS to the virtual IP is refused in the input path, so the reset comes with forwarding off too (every real
 *   gateway runs with no-forward.conf; the rest of this lab leaves forwarding on, as Qubes does).
 * - Tor's and the router's users reach upstream only: never a client qube, the virtual IP or Tor's automap range.
 * The default build, with the packaged dnsmasq and tinyproxy and the Tor and router recorders.
 */
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import { A, type Lab, type Probe } from './lib/lab.ts';
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

suite('20.1: HTTPS to a .i2p name is refused at once with forwarding off', () => {
  it('443 and 8443 of the virtual IP get a reset within a second while net.ipv4.ip_forward is 0', async () => {
    const before = await lab.gwSysctl('net.ipv4.ip_forward');
    await lab.setGwSysctl('net.ipv4.ip_forward', '0');
    try {
      expect(await lab.gwSysctl('net.ipv4.ip_forward')).toBe('0');
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
      await expectUpClean(lab, mark, 'TLS to the virtual IP with forwarding off');
    } finally {
      await lab.setGwSysctl('net.ipv4.ip_forward', before);
    }
  });
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
