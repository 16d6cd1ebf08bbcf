/**
 * The build with the Tor switch off (tor.enabled: false): I2P only. Clearnet must fail, not fall back to the
 * clear, and nothing may reach up; .i2p keeps working. The router is the recorder here (the real i2pd is
 * covered by the default build's suite); dnsmasq and tinyproxy are the packaged ones.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe as suite, expect, it } from 'vitest';
import { A, type Lab } from './lib/lab.ts';
import { answersOf, expectNoLeakMarkers, expectUpClean, forwardingOffThenOn, httpStatus, normalisedRequestLine } from './lib/suite.ts';
import { ROUTER_BANNER, World } from './lib/world.ts';

let w: World;
let lab: Lab;

beforeAll(async () => {
  w = await World.create({ tor: { enabled: false }, i2p: { clientDestinations: 'shared' } });
  lab = w.lab;
  await w.use({ tor: 'off', router: 'recorder', dnsmasq: true, tinyproxy: true });
});

beforeEach(() => {
  w.clearRecorderLogs();
});

afterAll(async () => {
  await w?.destroy();
});

suite('Tor switched off (I2P only)', () => {
  it('the package ships no Tor: no torrc, no Tor unit', () => {
    expect(existsSync(join(lab.pkgRoot, 'usr/share/qubes-i2p-gateway/torrc'))).toBe(false);
    expect(existsSync(join(lab.pkgRoot, 'usr/lib/systemd/system/qubes-i2p-gateway-tor.service'))).toBe(false);
    expect(w.transPort).toBeUndefined();
  });

  it('.i2p still resolves to the virtual IP and http://foo.i2p/x still reaches the router', async () => {
    const mark = lab.upMark();
    const r = await lab.probe('client', [{ kind: 'dns', server: A.dns1, name: 'foo.i2p', qtype: 'A' }]);
    expect(answersOf(r[0])).toEqual([A.vip]);
    const c = await lab.curl('http://foo.i2p/x');
    expect([c.status, c.body.trim()], c.stderr).toEqual(['200', ROUTER_BANNER]);
    expect(w.routerEvents().map((e) => normalisedRequestLine(String(e['request'])))).toEqual(['GET http://foo.i2p/x HTTP/1.1']);
    await expectUpClean(lab, mark, '.i2p with Tor off');
  });

  it('clearnet names get no address (answered by the gateway, UDP and TCP, to any server), never by up', async () => {
    const mark = lab.upMark();
    const r = await lab.probe('client', [
      { kind: 'dns', server: A.dns1, name: 'clear.example', qtype: 'A' },
      { kind: 'dns', server: A.dns2, name: 'clear.example', qtype: 'AAAA' },
      { kind: 'dns', server: A.upDns, name: 'clear2.example', qtype: 'A' },
      { kind: 'dns', server: A.dns1, name: 'clear3.example', qtype: 'A', tcp: true },
    ]);
    expectNoLeakMarkers(r);
    expect(r.map((x) => [x.outcome, answersOf(x)])).toEqual(r.map(() => ['answer', []]));
    await expectUpClean(lab, mark, 'clearnet DNS with Tor off');
  });

  it('clearnet TCP on any port fails and nothing reaches up; nothing listens on a TransPort (forwarding off, and on: the forward chain alone)', async () => {
    expect(await lab.listening('tcp', 9040)).toBe(false);
    await forwardingOffThenOn(lab, async (forwarding) => {
      const mark = lab.upMark();
      const r = await lab.probe('client', [80, 443, 22, 8080, 9001, 5555].map((port) => ({ kind: 'tcp' as const, host: A.web, port, send: 'x', timeout: 1 })));
      for (const x of r) expect(['timeout', 'refused', 'unreachable'], `forwarding ${forwarding}: ${JSON.stringify(x)}`).toContain(x.outcome);
      await expectUpClean(lab, mark, `clearnet TCP with Tor off, forwarding ${forwarding}`);
    });
  });

  it('UDP, ICMP and IPv6 from the client never reach up (forwarding off, and on: the forward chain alone)', async () => {
    await forwardingOffThenOn(lab, async (forwarding) => {
      const mark = lab.upMark();
      const r = await lab.probe('client', [
        { kind: 'udp', host: A.web, port: 443 },
        { kind: 'udp', host: A.web, port: 123 },
        { kind: 'icmp', host: A.web },
        { kind: 'tcp', host: A.web6, port: 443, timeout: 1 },
        { kind: 'icmp', host: A.web6 },
      ]);
      for (const x of r) expect(['noreply', 'timeout', 'error', 'refused', 'unreachable'], `forwarding ${forwarding}: ${JSON.stringify(x)}`).toContain(x.outcome);
      await expectUpClean(lab, mark, `UDP, ICMP, IPv6 with Tor off, forwarding ${forwarding}`);
    });
  });

  it('tinyproxy still refuses non-.i2p hosts', async () => {
    const mark = lab.upMark();
    const r = await lab.probe('client', [
      { kind: 'tcp', host: A.vip, port: 80, send: 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n' },
      { kind: 'tcp', host: A.vip, port: 80, send: `GET http://${A.web}/ HTTP/1.1\r\nHost: ${A.web}\r\n\r\n` },
    ]);
    expect(r.map((x) => httpStatus(x.data))).toEqual([403, 403]);
    expect(w.routerEvents()).toEqual([]);
    await expectUpClean(lab, mark, 'tinyproxy with Tor off');
  });

  it('the gateway\'s own output is rejected for every user but the router, Tor\'s user included', async () => {
    const mark = lab.upMark();
    for (const user of ['root', 'debian-tor', 'nobody', 'tinyproxy', 'dnsmasq']) {
      const r = await lab.probe('gw', [{ kind: 'tcp', host: A.web, port: 80, timeout: 1 }, { kind: 'udp', host: A.web, port: 123 }], user);
      for (const x of r) expect(x.outcome, `${user}: ${JSON.stringify(x.probe)}`).not.toMatch(/^(connected|reply)$/);
    }
    await expectUpClean(lab, mark, 'own output with Tor off');
  });

  it('running the hook twice leaves the same ruleset', async () => {
    await lab.resetFirewall();
    expect((await w.gw.runHook()).code).toBe(0);
    const once = await lab.ruleset();
    expect((await w.gw.runHook()).code).toBe(0);
    expect(await lab.ruleset()).toBe(once);
  });
});
