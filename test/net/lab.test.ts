/**
 * The lab proves itself before it proves the gateway: with only Qubes' base tables (no package, as a
 * network-providing qube is before our hook runs) the client's traffic DOES reach `up`, and the recorder,
 * the markers and the stand-ins see it. Every "nothing reached up" elsewhere in this suite is therefore a
 * statement about the gateway, not a blind recorder.
 *
 * This lab has no package, so it runs with forwarding on (`forwarding: 'on'`), as qubes-network leaves a qube that
 * provides network; every lab with the package runs with its no-forward.conf applied (lib/lab.ts).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import { packageVersions } from '../util/chroot.ts';
import { A, describe, Lab, onIface, PYTHON, removeLeftovers, SANCTIONED_DSCP, serverHits, unsanctioned } from './lib/lab.ts';
import { must } from './lib/sh.ts';

let lab: Lab;

beforeAll(async () => {
  lab = await Lab.create({ sanctionedUsers: ['debian-tor'], forwarding: 'on' });
});

afterAll(async () => {
  await lab?.destroy();
});

suite('lab machines are Debian 13', () => {
  it('the gateway and the app qube run the Debian 13 root\'s programs, not the host\'s', async () => {
    const versions = await packageVersions(lab.root, ['tor', 'i2pd', 'tinyproxy', 'dnsmasq-base', 'nftables', 'python3', 'curl']);
    for (const view of [lab.gwView(), lab.clientView()]) {
      const os = await must([...view, 'cat', '/etc/os-release']);
      expect(os.stdout).toMatch(/^VERSION_CODENAME=trixie$/m);
    }
    // What each command resolves to inside the gateway machine is the package of that root, at its version.
    const tor = await must([...lab.gwView(), 'tor', '--version']);
    expect(tor.stdout).toContain(`Tor version ${(versions.get('tor') ?? '?').replace(/-.*$/, '')}.`);
    const nft = await must([...lab.gwView(), 'nft', '--version']);
    expect(nft.stdout).toContain(`v${versions.get('nftables')}`.replace(/-\d+$/, ''));
    const dnsmasq = await must([...lab.gwView(), 'dnsmasq', '--version']);
    expect(dnsmasq.stdout).toContain(`Dnsmasq version ${(versions.get('dnsmasq-base') ?? '?').replace(/-.*$/, '')} `);
    const py = await must([...lab.clientView(), 'python3', '--version']);
    expect(py.stdout.trim()).toBe(`Python ${(versions.get('python3') ?? '?').replace(/-.*$/, '')}`);
    const curl = await must([...lab.clientView(), 'curl', '--version']);
    expect(curl.stdout).toContain(`curl ${(versions.get('curl') ?? '?').replace(/-.*$/, '')} `);
    // ...and the very files of that root, not the host's (which may have none, or Debian 12's): the command each
    // machine resolves is byte for byte the root's.
    const sum = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    for (const [view, cmd] of [[lab.gwView(), 'tor'], [lab.gwView(), 'nft'], [lab.clientView(), 'python3']] as const) {
      const path = (await must([...view, 'sh', '-c', `readlink -f "$(command -v ${cmd})"`])).stdout.trim();
      const inside = await must([...view, 'sha256sum', path]);
      expect(inside.stdout.split(' ')[0], cmd).toBe(sum(readFileSync(join(lab.root, path))));
    }
  });
});

suite('lab (no gateway package: Qubes base tables only)', () => {
  it('forwards and masquerades clearnet TCP, UDP, ICMP and IPv6 from the client to up, and up records it', async () => {
    const mark = lab.upMark();
    const r = await lab.probe('client', [
      { kind: 'tcp', host: A.web, port: 80, send: 'GET / HTTP/1.0\r\n\r\n' },
      { kind: 'udp', host: A.web, port: 443 },
      { kind: 'icmp', host: A.web },
      { kind: 'tcp', host: A.web6, port: 443, send: 'x' },
    ]);
    expect(r.map((x) => x.outcome)).toEqual(['connected', 'reply', 'reply', 'connected']);
    expect(r[0]?.data).toContain('UP-LEAKED');
    const ev = await lab.upSince(mark);
    const leaks = unsanctioned(ev);
    // forwarded packets: masqueraded to the gateway's upstream address, TTL decremented once
    expect(leaks.some((f) => f.l3 === 'ip4' && f.src === A.gwUp4 && f.dst === A.web && f.dport === 80 && f.ttl === 63)).toBe(true);
    expect(leaks.some((f) => f.l3 === 'ip4' && f.proto === 17 && f.dport === 443)).toBe(true);
    expect(leaks.some((f) => f.l3 === 'ip4' && f.proto === 1 && f.icmptype === 8)).toBe(true);
    expect(leaks.some((f) => f.l3 === 'ip6' && f.dst === A.web6 && f.dport === 443)).toBe(true);
    expect(serverHits(ev).map((e) => e.ev)).toEqual(expect.arrayContaining(['up-tcp', 'up-udp']));
  });

  it("rewrites the client's DNS to 10.139.1.1/.2 to up's DNS (Qubes' dnat-dns), which answers the leak marker", async () => {
    const mark = lab.upMark();
    const r = await lab.probe('client', [
      { kind: 'dns', server: A.dns1, name: 'smoke.example', qtype: 'A' },
      { kind: 'dns', server: A.dns2, name: 'smoke2.example', qtype: 'A', tcp: true },
    ]);
    expect(r.map((x) => x.answers?.[0]?.data)).toEqual([A.leakA, A.leakA]);
    const hits = serverHits(await lab.upSince(mark));
    expect(hits.map((h) => [h['name'], h['via']])).toEqual(expect.arrayContaining([['smoke.example', 'udp'], ['smoke2.example', 'tcp']]));
  });

  it('the raw probes work: a lone ACK and a fragmented DNS query get through a gateway that has only Qubes tables', async () => {
    const mark = lab.upMark();
    const r = await lab.probe('client', [
      { kind: 'tcpraw', host: A.web, port: 80, flags: 'A' },
      { kind: 'frag', server: A.dns1, name: 'fragmented.example', qtype: 'A' },
    ]);
    expect(r.map((x) => x.outcome)).toEqual(['reply', 'reply']);
    expect(r[1]?.answers?.[0]?.data).toBe(A.leakA);
    const ev = await lab.upSince(mark);
    expect(serverHits(ev).map((e) => e['name'])).toContain('fragmented.example');
    expect(unsanctioned(ev).some((f) => f.dport === 80 && f['tcpflags'] === 0x10)).toBe(true);
  });

  it('the l2syn probe reaches a loopback listener in gw when route_localnet is on and nothing filters 127.0.0.0/8', async () => {
    const p = await lab.startStandIn('loopback-smoke', ['http-proxy', '--listen', '127.0.0.1:4444', '--banner', 'x'], 'nobody');
    try {
      execFileSync('ip', ['netns', 'exec', lab.ns.gw, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet']);
      await lab.nft(['add', 'rule', 'ip', 'qubes', 'custom-input', 'ip', 'daddr', '127.0.0.1', 'accept']);
      const probe = { kind: 'l2syn' as const, iface: 'eth0', mac: await lab.gwMac(), src: A.client4, dst: '127.0.0.1', port: 4444 };
      const r = await lab.probe('client', [probe, { ...probe, port: 4445 }]);
      expect(r.map((x) => [x.outcome, x['tcpflags']])).toEqual([['reply', 0x12], ['reply', 0x14]]);
    } finally {
      await lab.stop(p.proc);
      await lab.resetFirewall();
    }
  });

  it("tags the gateway's own output from sanctioned users only: debian-tor's is not counted, nobody's is", async () => {
    let mark = lab.upMark();
    const asTor = await lab.probe('gw', [{ kind: 'tcp', host: A.web, port: 8080, send: 'x' }], 'debian-tor');
    expect(asTor[0]?.outcome).toBe('connected');
    let ev = await lab.upSince(mark);
    expect(ev.some((e) => e.ev === 'frame' && e['dport'] === 8080 && e['dscp'] === 8 && e['ttl'] === 64)).toBe(true);
    expect(unsanctioned(ev), describe(unsanctioned(ev))).toEqual([]);

    mark = lab.upMark();
    const asNobody = await lab.probe('gw', [{ kind: 'tcp', host: A.web, port: 8080, send: 'x' }], 'nobody');
    expect(asNobody[0]?.outcome).toBe('connected');
    ev = await lab.upSince(mark);
    expect(unsanctioned(ev).some((f) => f.dport === 8080 && f.ttl === 64)).toBe(true);
  });

  it("records an added gateway's upstream too: each frame with up's interface (eth0, eth1), a marker on each, the tag table in the new namespace", async () => {
    const other = await Lab.create({ sanctionedUsers: ['debian-tor'], forwarding: 'on' });
    try {
      const g = await other.addGateway();
      expect(g.upIface).toBe('eth1');
      await g.freshBoot();
      const mark = other.upMark();
      // The first gateway's client, forwarded out of gw's eth0.
      expect((await other.probe('client', [{ kind: 'tcp', host: A.web, port: 80, send: 'x' }]))[0]?.outcome).toBe('connected');
      // A client's SYN on the second gateway's eth0 below its netfilter (it has no machine: its namespace only).
      const upMac = (JSON.parse((await must(['ip', '-n', other.ns.up, '-j', 'link', 'show', g.upIface])).stdout) as Array<{ address: string }>)[0]?.address ?? '';
      const syn = [{ kind: 'l2syn', iface: 'eth0', mac: upMac, src: A.client4, dst: A.web, port: 8080, timeout: 0.5 }];
      await must(['ip', 'netns', 'exec', g.ns.gw, PYTHON, join(other.scratch, 'tools/netlab.py'), 'probe', JSON.stringify(syn)]);
      // debian-tor of the root in the second gateway's namespace: tagged by the table freshBoot loaded there.
      const tor = other.account('debian-tor');
      const send = `import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("${A.web}", 443))`;
      await must(['ip', 'netns', 'exec', g.ns.gw, 'chroot', other.root, 'setpriv', `--reuid=${tor.uid}`, `--regid=${tor.gid}`, '--clear-groups', 'python3', '-c', send]);
      const ev = await other.upSince(mark);
      expect(unsanctioned(onIface(ev, 'eth0')).some((f) => f.dport === 80 && f.src === A.gwUp4), describe(ev)).toBe(true);
      expect(unsanctioned(onIface(ev, 'eth0')).some((f) => f.dport === 8080), describe(ev)).toBe(false);
      expect(unsanctioned(onIface(ev, 'eth1')).some((f) => f.dport === 8080 && f.src === A.client4), describe(ev)).toBe(true);
      expect(onIface(ev, 'eth1').some((f) => f.dport === 443 && f.dscp === SANCTIONED_DSCP && f.src === g.gwUp4), describe(ev)).toBe(true);
      expect(unsanctioned(onIface(ev, 'eth1')).some((f) => f.dport === 443), describe(ev)).toBe(false);
    } finally {
      await other.destroy();
    }
  });

  it('sees nothing when nothing is sent (the sync marker alone)', async () => {
    const mark = lab.upMark();
    const ev = await lab.upSince(mark);
    expect(unsanctioned(ev), describe(ev)).toEqual([]);
  });

  it('the Tor stand-in records the original destination of redirected TCP and the names asked on its DNSPort', async () => {
    const tor = await lab.startStandIn('tor-smoke', ['tor', '--trans', '0.0.0.0:9040', '--dns', '127.0.0.1:5353'], 'debian-tor');
    try {
      // A lab-made redirect (not the package's): only to show that SO_ORIGINAL_DST survives an nft redirect.
      await lab.nft(['-f', '-'], 'table ip qig-smoke { chain pre { type nat hook prerouting priority dstnat - 10; iifgroup 2 tcp dport 5000 redirect to :9040; }; }\n');
      await lab.nft(['add', 'rule', 'ip', 'qubes', 'custom-input', 'tcp', 'dport', '9040', 'accept']);
      const mark = lab.upMark();
      const r = await lab.probe('client', [{ kind: 'tcp', host: A.web, port: 5000, send: 'GET / HTTP/1.0\r\n\r\n' }]);
      expect(r[0]?.data).toContain(`TOR-RECORDER ${A.web}:5000`);
      const dns = await lab.probe('gw', [{ kind: 'dns', server: '127.0.0.1', port: 5353, name: 'stand.in', qtype: 'A' }]);
      expect(dns[0]?.answers?.[0]?.data).toBe(A.torA);
      expect(lab.readLog(tor.log).map((e) => e['orig'] ?? e['name'])).toEqual([`${A.web}:5000`, 'stand.in']);
      expect(unsanctioned(await lab.upSince(mark))).toEqual([]);
    } finally {
      await lab.stop(tor.proc);
      await lab.resetFirewall();
    }
  });

  it('the HTTP-proxy stand-in records the exact request line and headers', async () => {
    const p = await lab.startStandIn('proxy-smoke', ['http-proxy', '--listen', '127.0.0.1:4444', '--banner', 'I2P-RECORDER'], 'i2pd');
    try {
      const r = await lab.probe('gw', [{ kind: 'tcp', host: '127.0.0.1', port: 4444, send: 'GET http://foo.i2p/x HTTP/1.1\r\nHost: foo.i2p\r\n\r\n' }]);
      expect(r[0]?.data).toContain('I2P-RECORDER');
      const ev = lab.readLog(p.log);
      expect(ev).toMatchObject([{ ev: 'proxy', request: 'GET http://foo.i2p/x HTTP/1.1', headers: [['Host', 'foo.i2p']] }]);
    } finally {
      await lab.stop(p.proc);
    }
  });

  it('destroy() ends every process it started (by pid) and removes its namespaces and scratch directory', async () => {
    const other = await Lab.create({ sanctionedUsers: [], forwarding: 'on' });
    const p = await other.startStandIn('doomed', ['http-proxy', '--listen', '127.0.0.1:4444', '--banner', 'x'], 'nobody');
    const pid = p.proc.pid;
    await other.destroy();
    const list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    for (const n of Object.values(other.ns)) expect(list).not.toContain(n);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(existsSync(other.scratch)).toBe(false);
  });

  it("a lab without the package cannot forward nothing by default: it must say forwarding 'on', and leaves nothing behind", async () => {
    // This process's namespaces and scratch directories (other runs on the machine make and remove their own).
    const ours = (): string[] => [
      ...execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`qignet-${process.pid}-`)),
      ...readdirSync(tmpdir()).filter((d) => d.startsWith(`qignet-${process.pid}-`)),
    ].sort();
    const before = ours();
    await expect(Lab.create({ sanctionedUsers: [] })).rejects.toThrow(/no-forward\.conf.*forwarding: 'on'/);
    expect(ours()).toEqual(before);
  });

  it('removes the namespaces of a crashed run (dead pid in the name) and keeps live ones', async () => {
    const dead = 'qignet-999999999-dead1-gw';
    execFileSync('ip', ['netns', 'add', dead]);
    const removed = await removeLeftovers();
    expect(removed).toContain(dead);
    const list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    expect(list).not.toContain(dead);
    expect(list).toContain(lab.ns.gw);
  });
});
