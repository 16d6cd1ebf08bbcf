/**
 * The rendered daemon configs against the real daemons of Debian 13 (tor 0.4.9.15, dnsmasq 2.91, tinyproxy 1.11.2,
 * i2pd 2.56, python3 3.13 for our relay; from the oracles root), run the way their units run them (ExecStart, User=),
 * with paths pointed at temp copies: tor --verify-config and a start; dnsmasq --test and answers to a client in
 * a second network namespace; tinyproxy serving .i2p through a stand-in router proxy and refusing the rest;
 * i2pd's listeners. Every namespace here is private and has no route out: nothing leaves the machine.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROUTERS } from '../../src/config/routers.ts';
import { PATHS, UNITS, dropInPath, unitPath } from '../../src/render/gateway/common.ts';
import { renderGateway } from '../../src/render/gateway/index.ts';
import { Trixie } from '../util/trixie.ts';
import { asUser, configOf, must, PROGRAMS, run, Scratch, sleep, text, waitForOutput, waitListening } from './helpers.ts';

const scratch = new Scratch();
afterAll(async () => {
  await scratch.cleanup();
});

/** Debian 13's daemons and tools (test/util/trixie.ts): each command a fresh machine over the oracles root. */
const trixie = await Trixie.open(scratch.dir('machines'));
const T = (): string[] => trixie.prefix();

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
  const r = run(['ip', 'netns', 'exec', client, ...T(), 'dig', '+time=2', '+tries=1', '+noall', '+comments', '+answer', '@10.137.0.1', name, type]);
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `no answer (${r.stdout}${r.stderr})`;
  const answers = r.stdout
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith(';'))
    .map((l) => l.split(/\s+/).slice(3).join(' '));
  return { status, answers };
}

describe('tor', () => {
  const config = configOf();
  const files = renderGateway(config, { programs: PROGRAMS });
  const unit = text(files, unitPath(UNITS.tor));

  /** The torrc with its data and runtime directories in a temp dir, made as the unit's StateDirectory= and
   * RuntimeDirectory= (+Mode) would make them for Tor's user. */
  function prepare(): { torrc: string; argv: string[]; runtime: string } {
    const dir = scratch.dir('tor');
    const data = join(dir, 'data');
    const runtime = join(dir, 'run');
    mkdirSync(data, { mode: 0o700 });
    mkdirSync(runtime, { mode: Number.parseInt(unitKey(unit, 'RuntimeDirectoryMode') ?? '0755', 8) });
    const tor = trixie.account('debian-tor');
    chownSync(data, tor.uid, tor.gid);
    chownSync(runtime, tor.uid, tor.gid);
    const torrc = join(dir, 'torrc');
    writeFileSync(
      torrc,
      text(files, PATHS.torrc).replace(`DataDirectory ${PATHS.torData}`, `DataDirectory ${data}`).replaceAll(`${PATHS.torRuntime}/`, `${runtime}/`),
    );
    chmodSync(torrc, 0o644);
    const argv = execStart(unit).map((a) => (a === PATHS.torrc ? torrc : a));
    return { torrc, argv: [...asUser(unitKey(unit, 'User') ?? '', unitKey(unit, 'Group')), ...argv], runtime };
  }

  it('runs as debian-tor with the rendered torrc and no defaults file', () => {
    expect(unitKey(unit, 'User')).toBe('debian-tor');
    expect(execStart(unit)).toEqual(['tor', '--defaults-torrc', '/dev/null', '-f', PATHS.torrc]);
  });

  it('passes tor --verify-config as the unit runs it', () => {
    const { argv } = prepare();
    const r = run([...T(), ...argv, '--verify-config']);
    expect(r.stdout + r.stderr).toContain('Configuration was valid');
    expect(r.code).toBe(0);
  });

  it('opens TransPort on all addresses and DNSPort on loopback only, nothing else', async () => {
    const { argv } = prepare();
    const ns = scratch.netns();
    const child = scratch.spawn(['ip', 'netns', 'exec', ns, ...T(), ...argv]);
    await waitListening(ns, 'tcp', /0\.0\.0\.0:9040\b/);
    await waitListening(ns, 'udp', /127\.0\.0\.1:5353\b/);
    const tcp = must(['ip', 'netns', 'exec', ns, 'ss', '-Hltn']).stdout;
    const udp = must(['ip', 'netns', 'exec', ns, 'ss', '-Hlun']).stdout;
    expect(tcp).toMatch(/0\.0\.0\.0:9040\b/);
    expect(udp).toMatch(/127\.0\.0\.1:5353\b/);
    expect(tcp).not.toMatch(/:9050\b|:9051\b/);
    child.kill('SIGINT');
  });

  it('opens a control socket with cookie authentication for root and Tor\'s user only, and no TCP control port', async () => {
    const settings = text(files, PATHS.torrc).split('\n').filter((l) => /^(Control|Cookie)/.test(l));
    expect(settings).toEqual(['ControlPort 0', `ControlSocket ${PATHS.torControl}`, 'CookieAuthentication 1', `CookieAuthFile ${PATHS.torCookie}`]);
    expect(PATHS.torControl.startsWith(`/run/${unitKey(unit, 'RuntimeDirectory')}/`)).toBe(true);
    expect(unitKey(unit, 'RuntimeDirectoryMode')).toBe('0700');
    const { argv, runtime } = prepare();
    const ns = scratch.netns();
    const child = scratch.spawn(['ip', 'netns', 'exec', ns, ...T(), ...argv]);
    await waitListening(ns, 'tcp', /0\.0\.0\.0:9040\b/);
    const socket = join(runtime, 'control');
    // Tor answers the cookie on its socket (the status command's question), as root...
    const ask =
      'import socket,sys\ns=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); f=s.makefile("rwb")\n' +
      'c=open(sys.argv[2],"rb").read().hex()\nfor q in ["AUTHENTICATE "+c, "GETINFO status/bootstrap-phase"]:\n' +
      '  f.write(q.encode()+b"\\r\\n"); f.flush(); print(f.readline().decode().strip())\n';
    const cookie = join(runtime, 'control.authcookie');
    const root = run(['ip', 'netns', 'exec', ns, ...T(), 'python3', '-c', ask, socket, cookie]);
    expect(root.stdout.split('\n')[0], root.stderr).toBe('250 OK');
    expect(root.stdout.split('\n')[1]).toMatch(/^250-status\/bootstrap-phase=\w+ BOOTSTRAP PROGRESS=\d+ /);
    // ...but no other user gets in: nobody can neither open the socket nor read the cookie.
    const nobody = run(['ip', 'netns', 'exec', ns, ...T(), ...asUser('nobody', 'nogroup'), 'python3', '-c', ask, socket, cookie]);
    expect(nobody.code).not.toBe(0);
    expect(nobody.stderr).toContain('PermissionError');
    // No TCP listener but TransPort: a control port on any address would show here.
    const tcp = must(['ip', 'netns', 'exec', ns, 'ss', '-Hltn']).stdout.trim().split('\n');
    expect(tcp.map((l) => l.split(/\s+/)[3])).toEqual(['0.0.0.0:9040']);
    child.kill('SIGINT');
  });

  it('is not rendered at all with Tor off', () => {
    const off = renderGateway(configOf({ tor: { enabled: false } }), { programs: PROGRAMS }).map((f) => f.path);
    expect(off.filter((p) => /tor/.test(p.replace('qubes-i2p-gateway', '')))).toEqual([]);
  });

  it('keeps the distribution\'s tor units to qubes with the service "tor"', () => {
    for (const u of ['tor.service', 'tor@default.service']) expect(text(files, dropInPath(u))).toContain('ConditionPathExists=/run/qubes-service/tor\n');
  });
});

/** dnsmasq's command line as its unit runs it (User=, CAP_NET_BIND_SERVICE), the config in a temp copy. */
function prepareDnsmasq(torOn: boolean): { conf: string; argv: string[]; unit: string } {
  const files = renderGateway(configOf({ tor: { enabled: torOn } }), { programs: PROGRAMS });
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

describe('dnsmasq', () => {
  const prepare = prepareDnsmasq;

  it('passes dnsmasq --test, Tor on and off', () => {
    for (const on of [true, false]) {
      const { conf } = prepare(on);
      const r = run([...T(), 'dnsmasq', '--test', `--conf-file=${conf}`]);
      expect(r.stderr).toContain('syntax check OK');
      expect(r.code).toBe(0);
    }
  });

  it('answers client qubes on vif* (appearing after it starts), .i2p locally, the rest through the relay to Tor\'s DNSPort', async () => {
    const { argv, unit } = prepare(true);
    expect(unitKey(unit, 'User')).toBe('dnsmasq');
    const { gw, client, link } = clientAndGateway({ linkNow: false });
    // A stand-in for the relay in front of Tor's DNSPort (127.0.0.2:5353, the relay's own test is below): answers
    // every name with an address in Tor's automap range.
    const tor = scratch.spawn(['ip', 'netns', 'exec', gw, ...T(), 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--listen-address=127.0.0.2', '--bind-interfaces', '--port=5353', '--address=/#/10.192.0.99', '--log-facility=-', '--user=dnsmasq', '--pid-file=']);
    await waitForOutput(tor, /started/);
    const dns = scratch.spawn(['ip', 'netns', 'exec', gw, ...T(), ...argv]);
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
    expect(Number(must(['ps', '-o', 'uid=', '-p', String(dns.pid)]).stdout.trim())).toBe(trixie.account('dnsmasq').uid);
  });

  it('with Tor off answers every other name NXDOMAIN at once', async () => {
    const { argv } = prepare(false);
    const { gw, client } = clientAndGateway({ linkNow: true });
    const dns = scratch.spawn(['ip', 'netns', 'exec', gw, ...T(), ...argv]);
    await waitForOutput(dns, /started/);
    await sleep(200);
    expect(dig(client, 'foo.i2p')).toEqual({ status: 'NOERROR', answers: ['A 10.100.100.100'] });
    expect(dig(client, 'example.com').status).toBe('NXDOMAIN');
  });
});

describe('the DNS relay (dnsmasq to Tor, each client from its own address)', () => {
  /**
   * A stand-in for Tor's DNSPort, UDP only like Tor's: every A query gets 10.192.0.99, except names starting
   * "silent" (no answer at all), "slow" (answered after 3 s, the server's only thread sleeping) and "stray" (first
   * a response with another ID, which the relay must skip). It
   * prints each name it is asked with the address it came from and whether the query had anything after its
   * question (EDNS), so a test sees what reached "Tor" and from where.
   */
  const UDP_DNS = String.raw`
import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", int(sys.argv[1])))
print("READY", flush=True)
while True:
    q, peer = u.recvfrom(65535)
    i, labels = 12, []
    try:
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode())
            i += 1 + q[i]
        name, end = ".".join(labels), i + 5
    except Exception:
        print("Q unparsable", flush=True)
        continue
    print("Q %s %s %s" % (name, peer[0], "extra" if len(q) > end or q[10:12] != b"\0\0" else "bare"), flush=True)
    if name.startswith("silent"):
        continue
    if name.startswith("slow"):
        time.sleep(3)
    a = q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:end] + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([10, 192, 0, 99])
    if name.startswith("stray"):
        u.sendto(bytes([q[0] ^ 0xFF, q[1]]) + a[2:], peer)
    u.sendto(a, peer)
`;

  /**
   * A client of the relay, as dnsmasq is one: each query carries the asking client's address in an EDNS
   * client-subnet option (dnsmasq's add-subnet=32). `ask PORT CLIENT NAME...` over one TCP connection (per answer,
   * whether its ID matches, its rcode and address; null when the relay closed instead); `udp PORT CLIENT NAME...`
   * (one datagram each, answers or null after 3 s); `burst PORT CLIENT NAME...` (all at once, then the number
   * of answers in 2 s); CLIENT is an IPv4 address, "none" (no option), "two:A,B" (two
   * options), "v6" (an IPv6 one) or "p24:A" (prefix 24). `raw PORT HEX`, `idle PORT`: what came back and how the
   * connection ended (a close or a reset) after how many seconds; `hold PORT N`: N idle connections, then one
   * more, then a query once one of the N is closed.
   */
  const CLIENT = String.raw`
import json, os, socket, struct, sys, time
def conn(port):
    return socket.create_connection(("127.0.0.2", port), timeout=8)
def ecs(addr, prefix=32):
    if addr == "v6":
        return struct.pack("!HHHBB", 8, 20, 2, 128, 0) + socket.inet_pton(socket.AF_INET6, "fd09::a")
    return struct.pack("!HHHBB", 8, 8, 1, prefix, 0) + socket.inet_aton(addr)
def query(name, client):
    qid = os.urandom(2)
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split("."))
    if client == "none":
        opts = b""
    elif client.startswith("two:"):
        opts = b"".join(ecs(a) for a in client[4:].split(","))
    elif client.startswith("p24:"):
        opts = ecs(client[4:], 24)
    else:
        opts = ecs(client)
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00" + struct.pack("!H", len(opts)) + opts if opts else b""
    q = qid + b"\x01\x00\x00\x01\x00\x00\x00\x00" + (b"\x00\x01" if opt else b"\x00\x00") + labels + b"\x00\x00\x01\x00\x01" + opt
    return qid, q
def read(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b
def until_closed(s):
    t, got, end = time.monotonic(), b"", "closed"
    try:
        while True:
            c = s.recv(65535)
            if not c:
                break
            got += c
    except ConnectionResetError:
        end = "reset"
    except OSError as e:
        end = type(e).__name__
    return {"data": got.hex(), "end": end, "seconds": round(time.monotonic() - t, 2)}
def parsed(a, qid):
    return {"id": a[:2] == qid, "rcode": a[3] & 15, "ip": ".".join(map(str, a[-4:])) if struct.unpack("!H", a[6:8])[0] else None}
def ask(s, name, client):
    qid, q = query(name, client)
    s.sendall(struct.pack("!H", len(q)) + q)
    n = read(s, 2)
    a = n and read(s, struct.unpack("!H", n)[0])
    return parsed(a, qid) if a else None
def udp(port, client, name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    qid, q = query(name, client)
    s.sendto(q, ("127.0.0.2", port))
    try:
        return parsed(s.recv(65535), qid)
    except OSError:
        return None
cmd, port = sys.argv[1], int(sys.argv[2])
if cmd == "ask":
    s = conn(port)
    print(json.dumps([ask(s, name, sys.argv[3]) for name in sys.argv[4:]]))
elif cmd == "udp":
    print(json.dumps([udp(port, sys.argv[3], name) for name in sys.argv[4:]]))
elif cmd == "burst":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for name in sys.argv[4:]:
        s.sendto(query(name, sys.argv[3])[1], ("127.0.0.2", port))
    s.settimeout(2)
    got = 0
    try:
        while True:
            s.recv(65535)
            got += 1
    except OSError:
        pass
    print(json.dumps(got))
elif cmd == "fuzz":
    import random
    rnd = random.Random(int(sys.argv[3]))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    base = query("fuzz.example", "10.137.0.10")[1]
    for i in range(int(sys.argv[4])):
        if i % 2:
            m = bytearray(base)
            for _ in range(rnd.randint(1, 6)):
                m[rnd.randrange(len(m))] = rnd.randrange(256)
            m = bytes(m[:rnd.randint(0, len(m))] if rnd.random() < 0.3 else m)
        else:
            m = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 300)))
        s.sendto(m, ("127.0.0.2", port))
        c = socket.create_connection(("127.0.0.2", port), timeout=2) if i % 50 == 0 else None
        if c:
            c.sendall(struct.pack("!H", len(m)) + m)
            c.close()
    print(json.dumps(int(sys.argv[4])))
elif cmd == "raw":
    s = conn(port)
    s.sendall(bytes.fromhex(sys.argv[3]))
    print(json.dumps(until_closed(s)))
elif cmd == "idle":
    print(json.dumps(until_closed(conn(port))))
elif cmd == "hold":
    held = [conn(port) for _ in range(int(sys.argv[3]))]
    time.sleep(0.3)
    extra = until_closed(conn(port))
    held[0].close()
    time.sleep(0.3)
    print(json.dumps({"extra": extra, "after": ask(conn(port), "after.example", "10.137.0.10")}))
`;

  const files = renderGateway(configOf(), { programs: PROGRAMS });
  const unit = text(files, unitPath(UNITS.dnsRelay));

  /** All a child has written so far (stdout and stderr), collected from its start. */
  function output(child: ChildProcess): () => string {
    let seen = '';
    child.stdout?.on('data', (c: string) => (seen += c));
    child.stderr?.on('data', (c: string) => (seen += c));
    return () => seen;
  }

  interface Relay {
    readonly ns: string;
    /** What the UDP server was asked, in order, as "NAME SOURCE extra|bare" (after a moment: the clients run synchronously). */
    readonly asked: () => Promise<string[]>;
    /** The relay's output so far. */
    readonly log: () => Promise<string>;
  }

  /**
   * The UDP-only server on 127.0.0.1:5353 and the relay as its unit runs it, in a fresh namespace, both as a
   * user other than root (systemd gives the relay a dynamic one); `extra` overrides limits (argparse: the last
   * value wins). `ns`: start in that namespace instead (next to a dnsmasq).
   */
  async function start(extra: readonly string[] = [], ns = scratch.netns()): Promise<Relay> {
    const root = scratch.tree(files);
    const tor = scratch.spawn(['ip', 'netns', 'exec', ns, ...T(), ...asUser('nobody', 'nogroup'), 'python3', '-c', UDP_DNS, '5353']);
    const torOut = output(tor);
    await waitForOutput(tor, /READY/);
    const argv = execStart(unit).map((a) => (a === PATHS.dnsRelay ? join(root, PATHS.dnsRelay) : a));
    const relay = scratch.spawn(['ip', 'netns', 'exec', ns, ...T(), ...asUser('nobody', 'nogroup'), ...argv, ...extra]);
    const relayOut = output(relay);
    await waitForOutput(relay, /listening on UDP and TCP 127\.0\.0\.2:5353, relaying to UDP 127\.0\.0\.1:5353/);
    // The clients run with spawnSync, which holds Node's event loop: let the children's output arrive first.
    const asked = async (): Promise<string[]> => {
      await sleep(100);
      return torOut().split('\n').filter((l) => l.startsWith('Q ')).map((l) => l.slice(2));
    };
    const log = async (): Promise<string> => {
      await sleep(100);
      return relayOut();
    };
    return { ns, asked, log };
  }

  function client<T>(ns: string, ...args: string[]): T {
    const r = must(['ip', 'netns', 'exec', ns, ...T(), 'python3', '-c', CLIENT, ...args], { timeoutMs: 60_000 });
    return JSON.parse(r.stdout) as T;
  }

  interface Closed {
    readonly data: string;
    /** 'closed' (FIN) or 'reset' (the relay closed with the client's bytes unread) */
    readonly end: string;
    readonly seconds: number;
  }

  /** A length prefix in hex. */
  const prefix = (n: number): string => n.toString(16).padStart(4, '0');
  const answer = { id: true, rcode: 0, ip: '10.192.0.99' };
  const refused = { id: true, rcode: 5, ip: null };
  const A10 = '10.137.0.10';

  it('runs as a dynamic user on its own loopback address at DNSPort\'s port, to Tor\'s DNSPort, with every limit on its command line', () => {
    expect(unitKey(unit, 'DynamicUser')).toBe('yes');
    expect(unitKey(unit, 'User')).toBeUndefined();
    expect(execStart(unit)).toEqual([
      PATHS.dnsRelay, '--listen', '127.0.0.2:5353', '--upstream', '127.0.0.1:5353',
      '--max-connections', '64', '--max-query', '4096', '--idle-timeout', '10', '--answer-timeout', '10', '--max-waiting', '256', '--max-clients', '1024',
    ]);
    expect(text(files, PATHS.torrc)).toContain('\nDNSPort 127.0.0.1:5353\n');
    const conf = text(files, PATHS.dnsmasqConf);
    expect(conf).toContain('\nserver=127.0.0.2#5353@127.0.0.1\n');
    expect(conf).toContain('\nstrip-subnet\nadd-subnet=32,128\n');
    expect(files.find((f) => f.path === PATHS.dnsRelay)?.mode).toBe(0o755);
    const other = renderGateway(configOf({ tor: { dnsPort: 5400 } }), { programs: PROGRAMS });
    expect(execStart(text(other, unitPath(UNITS.dnsRelay))).slice(1, 5)).toEqual(['--listen', '127.0.0.2:5400', '--upstream', '127.0.0.1:5400']);
    expect(text(other, PATHS.dnsmasqConf)).toContain('\nserver=127.0.0.2#5400@127.0.0.1\n');
  });

  it('is not rendered with Tor off', () => {
    const paths = renderGateway(configOf({ tor: { enabled: false } }), { programs: PROGRAMS }).map((f) => f.path);
    expect(paths).not.toContain(PATHS.dnsRelay);
    expect(paths).not.toContain(unitPath(UNITS.dnsRelay));
  });

  it('refuses bad command lines', () => {
    const script = join(scratch.tree(files), PATHS.dnsRelay);
    const base = ['--listen', '127.0.0.2:5353', '--upstream', '127.0.0.1:5353', '--max-connections', '1', '--max-query', '512', '--idle-timeout', '1', '--answer-timeout', '1', '--max-waiting', '1', '--max-clients', '1'];
    for (const [key, bad] of [['--listen', 'localhost:53'], ['--upstream', '127.0.0.1:70000'], ['--max-query', '65536'], ['--idle-timeout', 'inf'], ['--max-connections', '0'], ['--max-waiting', '0'], ['--max-clients', 'x']] as const) {
      const argv = [...base, key, bad];
      const r = run([...T(), 'python3', script, ...argv]);
      expect(r.code, `${key} ${bad}: ${r.stderr}`).toBe(2);
    }
  });

  it('sends each client\'s queries from its own loopback address (10.B.C.D → 127.B.C.D), UDP and TCP, with the question only; logs no names or addresses', async () => {
    const { ns, asked, log } = await start();
    // dig with the option dnsmasq adds (+subnet), over TCP.
    const d = run(['ip', 'netns', 'exec', ns, ...T(), 'dig', '+tcp', '+subnet=10.137.0.10/32', '+time=3', '+tries=1', '+noall', '+answer', '-p', '5353', '@127.0.0.2', 'one.example', 'A']);
    expect(d.stdout).toMatch(/^one\.example\.\s+60\s+IN\s+A\s+10\.192\.0\.99$/m);
    // stray.example: the server first sends a response with another ID, which the relay skips.
    expect(client(ns, 'ask', '5353', A10, 'two.example', 'stray.example')).toEqual([answer, answer]);
    expect(client(ns, 'udp', '5353', '10.137.0.11', 'three.example', 'stray2.example')).toEqual([answer, answer]);
    expect(client(ns, 'udp', '5353', '10.138.5.7', 'four.example')).toEqual([answer]);
    expect(client(ns, 'udp', '5353', A10, 'five.example')).toEqual([answer]);
    expect(await asked()).toEqual([
      'one.example 127.137.0.10 bare',
      'two.example 127.137.0.10 bare',
      'stray.example 127.137.0.10 bare',
      'three.example 127.137.0.11 bare',
      'stray2.example 127.137.0.11 bare',
      'four.example 127.138.5.7 bare',
      'five.example 127.137.0.10 bare',
    ]);
    const out = await log();
    expect(out).not.toMatch(/example|137|138/);
  });

  it('refuses (REFUSED, nothing sent to Tor) a query it cannot place: no client address, two, IPv6, a prefix, outside 10.0.0.0/8', async () => {
    const { ns, asked } = await start();
    for (const who of ['none', `two:${A10},10.137.0.11`, 'v6', `p24:${A10}`, '192.168.1.5']) {
      expect(client(ns, 'udp', '5353', who, 'refused.example'), who).toEqual([refused]);
      expect(client(ns, 'ask', '5353', who, 'refused.example'), who).toEqual([refused]);
    }
    expect(await asked()).toEqual([]);
    expect(client(ns, 'udp', '5353', A10, 'fine.example')).toEqual([answer]);
  });

  it('one client\'s unanswered queries fill only its own allowance (--max-waiting): another client is answered meanwhile', async () => {
    const { ns, asked, log } = await start(['--max-waiting', '4', '--answer-timeout', '30']);
    const silent = Array.from({ length: 6 }, (_, i) => `silent${i}.example`);
    // All at once: the first 4 wait on "Tor" (which never answers them), the last 2 are dropped by the relay.
    expect(client(ns, 'burst', '5353', A10, ...silent)).toBe(0);
    // The same client's next query is dropped too while its 4 wait; another client's is answered.
    expect(client(ns, 'udp', '5353', A10, 'more.example')).toEqual([null]);
    expect(client(ns, 'udp', '5353', '10.137.0.11', 'other.example')).toEqual([answer]);
    const seen = await asked();
    expect(seen.filter((l) => l.startsWith('silent')).map((l) => l.split(' ')[1])).toEqual(Array(4).fill('127.137.0.10'));
    expect(seen.filter((l) => !l.startsWith('silent'))).toEqual(['other.example 127.137.0.11 bare']);
    expect(await log()).toContain('a client has 4 queries waiting on Tor: dropping its new ones');
  }, 60_000);

  it('survives 1000 malformed and mutated queries (UDP, some over TCP): still answers, logs no unexpected error', async () => {
    const { ns, log, asked } = await start();
    // 1000: what the stand-in prints of them stays within a pipe's 64 KiB while spawnSync holds Node's event loop.
    expect(client(ns, 'fuzz', '5353', '22', '1000')).toBe(1000);
    const after = client(ns, 'udp', '5353', A10, 'after-fuzz.example');
    expect(after, `${await log()}\n${(await asked()).slice(-30).join('\n')}`).toEqual([answer]);
    expect(client(ns, 'ask', '5353', '10.137.0.11', 'after-fuzz-tcp.example')).toEqual([answer]);
    expect(await log()).not.toMatch(/unexpected|Traceback/);
  }, 60_000);

  it('closes a TCP connection on garbage (too short, a response, oversize) without asking the server', async () => {
    const { ns, asked } = await start();
    const response = '1234' + '8180' + '0001' + '0000'.repeat(3) + '0161' + '00' + '00010001';
    const cases = [prefix(0), prefix(5) + '0102030405', prefix(response.length / 2) + response, prefix(4097)];
    for (const hex of cases) {
      const r = client<Closed>(ns, 'raw', '5353', hex);
      expect(r.data, hex).toBe('');
      expect(['closed', 'reset'], hex).toContain(r.end);
      // Refused at once: the oversize length alone is enough, the relay waits for no body.
      expect(r.seconds, hex).toBeLessThan(1);
    }
    expect(await asked()).toEqual([]);
    // The relay itself is still there.
    expect(client(ns, 'ask', '5353', A10, 'still.example')).toEqual([answer]);
  });

  it('bounds the wait: no answer closes the connection after the answer timeout, silence after the idle timeout', async () => {
    const { ns, asked } = await start(['--idle-timeout', '1', '--answer-timeout', '1']);
    const t0 = Date.now();
    expect(client(ns, 'ask', '5353', A10, 'silent.example')).toEqual([null]);
    const waited = (Date.now() - t0) / 1000;
    expect(waited).toBeGreaterThan(0.8);
    expect(waited).toBeLessThan(3);
    expect(await asked()).toEqual(['silent.example 127.137.0.10 bare']);
    const idle = client<Closed>(ns, 'idle', '5353');
    expect([idle.data, idle.end]).toEqual(['', 'closed']);
    expect(idle.seconds).toBeGreaterThan(0.8);
    expect(idle.seconds).toBeLessThan(2.5);
  });

  it('serves at most --max-connections at once: one more is closed at once, and served once a slot frees', async () => {
    const { ns, log } = await start(['--max-connections', '2']);
    const r = client<{ extra: Closed; after: unknown }>(ns, 'hold', '5353', '2');
    expect([r.extra.data, r.extra.end]).toEqual(['', 'closed']);
    expect(r.extra.seconds).toBeLessThan(1);
    expect(r.after).toEqual(answer);
    expect(await log()).toContain('2 connections open: refusing new ones');
  });

  it('behind the rendered dnsmasq: each client\'s query (UDP and TCP) reaches "Tor" from that client\'s own address, whatever client-subnet option the client sent', async () => {
    const { argv } = prepareDnsmasq(true);
    const { gw, client: app } = clientAndGateway({ linkNow: true });
    // A second client qube's address on the same link (dnsmasq tells clients apart by address only).
    must(['ip', '-n', app, 'addr', 'add', '10.137.0.11/32', 'dev', 'eth0', 'nodad']);
    const { asked } = await start([], gw);
    const dns = scratch.spawn(['ip', 'netns', 'exec', gw, ...T(), ...argv]);
    await waitForOutput(dns, /started/);
    await waitListening(gw, 'tcp', /10\.137\.0\.1:53\b/);
    const digFrom = (from: string, ...args: string[]): string =>
      run(['ip', 'netns', 'exec', app, ...T(), 'dig', '-b', from, '+time=3', '+tries=1', '+noall', '+answer', ...args, '@10.137.0.1']).stdout;
    expect(digFrom(A10, '+tcp', 'over-tcp.example', 'A')).toMatch(/^over-tcp\.example\.\s+\d+\s+IN\s+A\s+10\.192\.0\.99$/m);
    expect(digFrom(A10, 'over-udp.example', 'A')).toMatch(/^over-udp\.example\.\s+\d+\s+IN\s+A\s+10\.192\.0\.99$/m);
    expect(digFrom('10.137.0.11', 'second.example', 'A')).toMatch(/^second\.example\.\s+\d+\s+IN\s+A\s+10\.192\.0\.99$/m);
    // A client that claims another client's address in its own client-subnet option (dnsmasq's add-subnet alone
    // would keep it): strip-subnet drops it, the query still goes from the asker's own address.
    expect(digFrom('10.137.0.11', '+subnet=10.137.0.10/32', 'spoof.example', 'A')).toMatch(/^spoof\.example\.\s+\d+\s+IN\s+A\s+10\.192\.0\.99$/m);
    expect(digFrom('10.137.0.11', '+tcp', '+subnet=10.137.0.10/32', 'spoof-tcp.example', 'A')).toMatch(/^spoof-tcp\.example\.\s+\d+\s+IN\s+A\s+10\.192\.0\.99$/m);
    expect(await asked()).toEqual([
      'over-tcp.example 127.137.0.10 bare',
      'over-udp.example 127.137.0.10 bare',
      'second.example 127.137.0.11 bare',
      'spoof.example 127.137.0.11 bare',
      'spoof-tcp.example 127.137.0.11 bare',
    ]);
  });

  it('a documented limit (SECURITY.md): a second client asking the same name while the first\'s query is in flight gets the first\'s answer; only one query reaches "Tor"', async () => {
    const { argv } = prepareDnsmasq(true);
    const { gw, client: app } = clientAndGateway({ linkNow: true });
    must(['ip', '-n', app, 'addr', 'add', '10.137.0.11/32', 'dev', 'eth0', 'nodad']);
    const { asked } = await start([], gw);
    const dns = scratch.spawn(['ip', 'netns', 'exec', gw, ...T(), ...argv]);
    await waitForOutput(dns, /started/);
    await waitListening(gw, 'tcp', /10\.137\.0\.1:53\b/);
    // Both at once from the two addresses (dig's -b), the name answered after 3 s.
    const both = run(['ip', 'netns', 'exec', app, ...T(), 'sh', '-c',
      'dig -b 10.137.0.10 +time=8 +tries=1 +short @10.137.0.1 slow-same.example A & dig -b 10.137.0.11 +time=8 +tries=1 +short @10.137.0.1 slow-same.example A; wait']);
    expect(both.stdout.trim().split('\n')).toEqual(['10.192.0.99', '10.192.0.99']);
    const seen = await asked();
    expect(seen.filter((l) => l.startsWith('slow-same.example'))).toHaveLength(1);
  });
});

describe('tinyproxy', () => {
  /** A stand-in for what tinyproxy's `upstream` names (with i2pd: the waiting page's relay, which passes it on). */
  const STAND_IN = (port: number): string =>
    [
      "const http = require('http');",
      'http.createServer((req, res) => {',
      "  res.setHeader('content-type', 'application/json');",
      '  res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));',
      `}).listen(${port}, '127.0.0.1', () => console.log('READY'));`,
    ].join('\n');

  async function start(): Promise<{ gw: string; client: string }> {
    const files = renderGateway(configOf(), { programs: PROGRAMS });
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
    const upstream = Number(/^upstream http 127\.0\.0\.1:(\d+) "\.i2p"$/m.exec(text(files, PATHS.tinyproxyConf))?.[1]);
    const up = scratch.spawn(['ip', 'netns', 'exec', gw, ...asUser('nobody', 'nogroup'), process.execPath, '-e', STAND_IN(upstream)]);
    await waitForOutput(up, /READY/);
    const argv = execStart(unit).map((a) => (a === PATHS.tinyproxyConf ? conf : a));
    scratch.spawn(['ip', 'netns', 'exec', gw, ...T(), ...asUser('tinyproxy'), ...argv]);
    await waitListening(gw, 'tcp', /0\.0\.0\.0:8888\b/);
    return { gw, client };
  }

  function get(client: string, host: string, from?: string): { status: string; body: string } {
    const r = run(['ip', 'netns', 'exec', client, ...T(), 'curl', '-s', '-m', '5', ...(from === undefined ? [] : ['--interface', from]), '-H', `Host: ${host}`, '-w', '\n%{http_code}', 'http://10.137.0.1:8888/some/path?q=1']);
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
  it('runs in the foreground with our config plus the console password made at its start; its listeners are on loopback, SOCKS and SAM off', async () => {
    const files = renderGateway(configOf(), { programs: PROGRAMS });
    const dropIn = text(files, dropInPath('i2pd.service'));
    expect(dropIn).toContain('Type=simple\nPIDFile=\n');
    expect(dropIn).toContain('\nExecStart=\nExecStart=i2pd ');
    expect(dropIn).toContain('\nRestart=always\nRestartSec=5\n');
    const dir = scratch.dir('i2pd');
    chmodSync(dir, 0o755);
    const conf = join(dir, 'i2pd.conf');
    writeFileSync(conf, text(files, PATHS.i2pdConf));
    chmodSync(conf, 0o644);
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o700 });
    chownSync(data, trixie.account('i2pd').uid, trixie.account('i2pd').gid);
    // i2pd's runtime directory (RuntimeDirectory=i2pd: the unit's user's, 0700).
    const runDir = join(dir, 'run');
    mkdirSync(runDir, { mode: 0o700 });
    chownSync(runDir, trixie.account('i2pd').uid, trixie.account('i2pd').gid);
    // The packaged program, run as the unit's ExecStartPre= runs it (no "+": as User=i2pd, in Debian 13), with the
    // paths moved into the scratch dir.
    const program = join(dir, 'i2pd-console-auth');
    writeFileSync(program, text(files, PATHS.i2pdConsoleAuth));
    chmodSync(program, 0o755);
    const pre = dropIn.split('\n').filter((l) => l.startsWith('ExecStartPre=') && l !== 'ExecStartPre=');
    expect(pre).toEqual([`ExecStartPre=${PATHS.i2pdConsoleAuth} ${PATHS.i2pdConf} ${PATHS.i2pdRuntimeConf} ${PATHS.consolePassword} i2pd ${PATHS.i2pdData}`]);
    const runtime = join(runDir, 'runtime.conf');
    const passFile = join(data, 'console.pass');
    const asI2pd = [...T(), ...asUser('i2pd'), program, conf, runtime, passFile, 'i2pd', data];
    must(asI2pd);
    const pass = readFileSync(passFile, 'utf8');
    expect(pass).toMatch(/^[A-Za-z0-9]{32}$/);
    must(asI2pd);
    expect(readFileSync(passFile, 'utf8'), 'a second start keeps the password').toBe(pass);
    for (const f of [runtime, passFile]) expect(must([...T(), 'stat', '-c', '%U %a', f]).stdout.trim()).toBe('i2pd 600');
    expect(readFileSync(runtime, 'utf8')).toContain(`\n[http]\nauth = true\nuser = i2pd\npass = ${pass}\n`);
    expect(text(files, PATHS.i2pdConf)).not.toContain('pass =');
    writeFileSync(passFile, 'x y');
    expect(run(asI2pd).code, 'a password file it did not make is refused').not.toBe(0);
    writeFileSync(passFile, pass);
    // Never as root (it writes in i2pd's own directories, where i2pd's user can plant links).
    const asRoot = run([...T(), program, conf, runtime, passFile, 'i2pd', data]);
    expect(asRoot.code).not.toBe(0);
    expect(asRoot.stderr).toContain('refusing to run as root');

    // The package's main tunnels file (no tunnel, in place of Debian's tunnels.conf with its IRC tunnel on 6668).
    const tunconf = join(dir, 'i2pd-main-tunnels.conf');
    writeFileSync(tunconf, text(files, PATHS.i2pdMainTunnels));
    chmodSync(tunconf, 0o644);
    const argv = execStart(dropIn).map((a) => (a === `--conf=${PATHS.i2pdRuntimeConf}` ? `--conf=${runtime}` : a.startsWith('--datadir=') ? `--datadir=${data}` : a === `--tunconf=${PATHS.i2pdMainTunnels}` ? `--tunconf=${tunconf}` : a));
    expect(argv).toContain(`--conf=${runtime}`);
    expect(argv).toContain(`--tunconf=${tunconf}`);
    const ns = scratch.netns();
    // Debian's unit runs i2pd as User=i2pd; the namespace has no route, so nothing it tries leaves.
    scratch.spawn(['ip', 'netns', 'exec', ns, ...T(), ...asUser('i2pd'), ...argv]);
    let tcp = '';
    for (let i = 0; i < 50 && !(/127\.0\.0\.1:7070\b/.test(tcp) && /127\.0\.0\.1:4444\b/.test(tcp)); i++) {
      await sleep(100);
      tcp = must(['ip', 'netns', 'exec', ns, 'ss', '-Hltn']).stdout;
    }
    expect(tcp).toMatch(/127\.0\.0\.1:7070\b/);
    expect(tcp).toMatch(/127\.0\.0\.1:4444\b/);
    // No IRC tunnel of Debian's (6668): clients granted IRC get their own (i2p.apps.irc).
    for (const off of [4447, 7656, 7654, 2827, 7650, 6668]) expect(tcp, `port ${off}`).not.toMatch(new RegExp(`:${off}\\b`));
    // The console answers only with the password, and only for a local name (never exposed: no hostname line).
    const status = (host: string, auth: readonly string[]): string =>
      run(['ip', 'netns', 'exec', ns, ...T(), 'curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', ...auth, '-H', `Host: ${host}`, 'http://127.0.0.1:7070/']).stdout;
    expect(text(files, PATHS.i2pdConf)).not.toMatch(/^hostname/m);
    expect(status('127.0.0.1:7070', [])).toBe('401');
    expect(status('127.0.0.1:7070', ['-u', 'i2pd:wrong'])).toBe('401');
    expect(status('127.0.0.1:7070', ['-u', `i2pd:${pass}`])).toBe('200');
    expect(status('forum.i2p:7070', ['-u', `i2pd:${pass}`])).toBe('403');
    expect(status('10.100.100.100:7070', ['-u', `i2pd:${pass}`]), 'the virtual IP: no client reaches the console by it').toBe('403');
  });
});

/**
 * i2pd 2.56 started as the unit starts it (the console password program first, as i2pd's user, then i2pd with the
 * config it made) in a namespace with no route, with a data directory laid out as Debian's package lays it out
 * (subscriptions.txt a link to /etc/i2pd/subscriptions.txt). Returns its output so far and a console fetcher.
 */
async function startI2pd(config: ReturnType<typeof configOf>, opts: { tunnelsDir?: string } = {}): Promise<{ out: () => string; page: (query: string) => string; conf: string; ns: string; data: string; files: ReturnType<typeof renderGateway> }> {
  const files = renderGateway(config, { programs: PROGRAMS });
  const dropIn = text(files, dropInPath('i2pd.service'));
  const dir = scratch.dir('i2pd-settings');
  chmodSync(dir, 0o755);
  const conf = join(dir, 'i2pd.conf');
  writeFileSync(conf, text(files, PATHS.i2pdConf));
  chmodSync(conf, 0o644);
  const i2pd = trixie.account('i2pd');
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o755 });
  chownSync(data, i2pd.uid, i2pd.gid);
  symlinkSync('/etc/i2pd/subscriptions.txt', join(data, 'subscriptions.txt'));
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { mode: 0o700 });
  chownSync(runDir, i2pd.uid, i2pd.gid);
  const program = join(dir, 'i2pd-console-auth');
  writeFileSync(program, text(files, PATHS.i2pdConsoleAuth));
  chmodSync(program, 0o755);
  const runtime = join(runDir, 'runtime.conf');
  const passFile = join(data, 'console.pass');
  // The drop-in's ExecStartPre=, with its paths moved into the scratch dir.
  const pre = dropIn.split('\n').find((l) => l.startsWith('ExecStartPre=') && l !== 'ExecStartPre=')!.slice('ExecStartPre='.length).split(' ');
  const moved: Record<string, string> = { [PATHS.i2pdConsoleAuth]: program, [PATHS.i2pdConf]: conf, [PATHS.i2pdRuntimeConf]: runtime, [PATHS.consolePassword]: passFile, [PATHS.i2pdData]: data };
  must([...T(), ...asUser('i2pd'), ...pre.map((a) => moved[a] ?? a)]);
  const pass = readFileSync(passFile, 'utf8');
  const argv = execStart(dropIn).map((a) => (a === `--conf=${PATHS.i2pdRuntimeConf}` ? `--conf=${runtime}` : a.startsWith('--datadir=') ? `--datadir=${data}` : opts.tunnelsDir !== undefined && a.startsWith('--tunnelsdir=') ? `--tunnelsdir=${opts.tunnelsDir}` : a));
  const ns = scratch.netns();
  // --loglevel=info on the command line (it wins over the config's warn): the address book says what it loaded.
  const child = scratch.spawn(['ip', 'netns', 'exec', ns, ...T(), ...asUser('i2pd'), ...argv, '--loglevel=info']);
  let out = '';
  child.stdout?.on('data', (c: string) => (out += c));
  child.stderr?.on('data', (c: string) => (out += c));
  let tcp = '';
  for (let i = 0; i < 100 && !/127\.0\.0\.1:7070\b/.test(tcp); i++) {
    await sleep(100);
    tcp = must(['ip', 'netns', 'exec', ns, 'ss', '-Hltn']).stdout;
  }
  expect(tcp, out).toMatch(/127\.0\.0\.1:7070\b/);
  const page = (query: string): string =>
    must(['ip', 'netns', 'exec', ns, ...T(), 'curl', '-s', '-m', '5', '-u', `i2pd:${pass}`, `http://127.0.0.1:7070/${query}`]).stdout;
  return { out: () => out, page, conf: text(files, PATHS.i2pdConf), ns, data, files };
}

describe('i2pd router settings', () => {
  it('i2pd 2.56 runs with a bandwidth class, a share, a transit limit and our subscriptions, not Debian\'s subscriptions.txt', async () => {
    const subscriptions = ['http://hosts.lab.i2p/hosts.txt', `http://${'a'.repeat(52)}.b32.i2p:8080/cgi-bin/newhosts.txt?since=1`];
    const r = await startI2pd(configOf({ i2p: { bandwidth: 'P', share: 50, transitTunnels: 321, subscriptions } }));
    expect(r.conf).toContain('\nbandwidth = P\nshare = 50\nnotransit = false\n');
    expect(r.conf).toContain(`\n[addressbook]\n`);
    // The config's subscriptions are the ones loaded: Debian's link (4 URLs) was moved aside before i2pd started.
    for (let i = 0; i < 50 && !/subscriptions urls loaded/.test(r.out()); i++) await sleep(100);
    expect(r.out()).toMatch(/Addressbook: 2 subscriptions urls loaded/);
    expect(r.out()).not.toMatch(/subscriptions\.txt usage is deprecated/);
    expect(r.out()).not.toMatch(/\b(error|unknown option)\b/i);
    const main = r.page('');
    // Class P: the router's caps carry P (extra bandwidth), never f (floodfill).
    const caps = /Router Caps:<\/b> (\w+)/.exec(main)?.[1];
    expect(caps, main.slice(0, 2000)).toMatch(/P/);
    expect(caps).not.toMatch(/f/);
    const commands = r.page('?page=commands');
    expect(commands).toContain('value="321"');
    expect(commands).toContain('Decline transit tunnels');
  });

  it('i2pd 2.56 accepts a rate in KB/s and transit none (it then declines transit tunnels)', async () => {
    const r = await startI2pd(configOf({ i2p: { bandwidth: 3000, transitTunnels: 'none' } }));
    expect(r.conf).toContain('\nbandwidth = 3000\n');
    expect(r.conf).toContain('\nnotransit = true\n');
    expect(r.conf).not.toContain('[limits]');
    const caps = /Router Caps:<\/b> (\w+)/.exec(r.page(''))?.[1];
    // More than 2000 KB/s is class X: i2pd sets both the high and the extra bandwidth flags (X, shown as O and P or X).
    expect(caps).toMatch(/X|OP|PO/);
    expect(r.page('?page=commands')).toContain('Accept transit tunnels');
    for (let i = 0; i < 50 && !/subscriptions urls loaded/.test(r.out()); i++) await sleep(100);
    expect(r.out()).toMatch(/Addressbook: 4 subscriptions urls loaded/);
    expect(r.out()).not.toMatch(/subscriptions\.txt usage is deprecated/);
  });
});

describe('the waiting page in front of i2pd 2.56', () => {
  it('answers i2pd\'s own error for a request while the router has no network with its page (the same for every request)', async () => {
    const r = await startI2pd(configOf());
    const unit = text(r.files, unitPath(UNITS.waitPage));
    expect(unitKey(unit, 'User')).toBe('i2pd');
    const dir = scratch.dir('wait-page');
    chmodSync(dir, 0o755);
    const program = join(dir, 'i2p-wait-page');
    writeFileSync(program, text(r.files, PATHS.waitPage));
    chmodSync(program, 0o755);
    const moved: Record<string, string> = { [PATHS.waitPage]: program, [PATHS.consolePassword]: join(r.data, 'console.pass'), [`${PATHS.i2pdData}/addressbook`]: join(r.data, 'addressbook') };
    const argv = execStart(unit).map((a) => moved[a] ?? a);
    const relay = scratch.spawn(['ip', 'netns', 'exec', r.ns, ...T(), ...asUser('i2pd'), ...argv]);
    let errs = '';
    relay.stderr?.on('data', (c: string) => (errs += c));
    const listen = /--listen 127\.0\.0\.1:(\d+)/.exec(unit)?.[1];
    await waitListening(r.ns, 'tcp', new RegExp(`127\\.0\\.0\\.1:${listen}\\b`));
    const ask = (host: string): { status: string; body: string } => {
      const c = run(['ip', 'netns', 'exec', r.ns, ...T(), 'curl', '-s', '-m', '30', '-x', `http://127.0.0.1:${listen}`, '-w', '\n%{http_code}', `http://${host}/`]);
      const at = c.stdout.lastIndexOf('\n');
      return { status: c.stdout.slice(at + 1), body: c.stdout.slice(0, at) };
    };
    // i2pd opens its proxy after its reseed attempts (a few seconds without network): until then "starting".
    let got = ask('unknown-name.i2p');
    for (let i = 0; i < 60 && !got.body.includes('still joining'); i++) {
      await sleep(500);
      got = ask('unknown-name.i2p');
    }
    expect(got.status, `${got.body.slice(0, 500)}\n${errs}\n${r.out().slice(-2000)}`).toBe('503');
    expect(got.body).toContain('<meta name="qubes-i2p-gateway" content="router-not-ready">');
    expect(got.body).toContain('The I2P router is still joining the network');
    expect(got.body).toMatch(/<tr><th>Routers known<\/th><td>[01]<\/td><\/tr>/);
    expect(got.body).toContain('<tr><th>Tunnels through other routers</th><td>0</td></tr>');
    expect(got.body).not.toContain('unknown-name');
    // The same page for another name (nothing of the request in it), but for the figures of the moment.
    expect(ask('other.i2p').body.replace(/<td>[^<]*<\/td>/g, '')).toBe(got.body.replace(/<td>[^<]*<\/td>/g, ''));
    // Without the relay, the same request gets i2pd's own "Host not found" (what the relay recognises).
    const direct = run(['ip', 'netns', 'exec', r.ns, ...T(), 'curl', '-s', '-m', '30', '-x', `http://127.0.0.1:${ROUTERS.i2pd.httpProxyPort}`, '-w', '\n%{http_code}', 'http://unknown-name.i2p/']);
    expect(direct.stdout).toContain('<h1>Proxy error: Host not found</h1>');
    expect(direct.stdout.endsWith('\n500')).toBe(true);
  });
});


describe('i2pd 2.56 reloading its tunnels (the client proxies\' `systemctl reload`, SIGHUP)', () => {
  it('keeps one local destination per client tunnel plus the shared one across reloads: a removed tunnel\'s is freed, none pile up', async () => {
    const tunnels = scratch.dir('tunnels');
    // The files i2pd-client-proxies writes (its tunnel_text), for two client addresses.
    const file = (addr: string): string => join(tunnels, `qubes-i2p-gateway-client-${addr}.conf`);
    const tunnel = (addr: string, port: number): string =>
      `[qubes-i2p-gateway-client-${addr}]\ntype = httpproxy\naddress = 127.0.0.1\nport = ${port}\nkeys = qubes-i2p-gateway-client-${addr}.dat\noutproxy =\naddresshelper = false\n`;
    writeFileSync(file('10.137.0.10'), tunnel('10.137.0.10', 14500));
    const r = await startI2pd(configOf(), { tunnelsDir: tunnels });
    const ss = (): string => must(['ip', 'netns', 'exec', r.ns, 'ss', '-Hltn']).stdout;
    for (let i = 0; i < 150 && !/127\.0\.0\.1:4444\b/.test(ss()); i++) await sleep(200);
    expect(ss(), r.out().slice(-2000)).toMatch(/127\.0\.0\.1:14500\b/);
    /** The console's local destinations (what the status command reads), as b32 addresses. */
    const local = (): string[] => [...r.page('?page=local_destinations').matchAll(/[?&]page=local_destination&b32=([a-z2-7]{52})/g)].map((m) => m[1] as string);
    const pid = /pid=(\d+)/.exec(must(['ip', 'netns', 'exec', r.ns, 'ss', '-Hltnp', 'sport = :7070']).stdout)?.[1];
    expect(pid).toMatch(/^\d+$/);
    /** SIGHUP (Debian's ExecReload=), then the destinations once i2pd has reloaded: the shared one is new each time. */
    const reload = async (): Promise<string[]> => {
      const before = local();
      must(['kill', '-HUP', pid as string]);
      let now = local();
      for (let i = 0; i < 100 && now.every((d) => before.includes(d)); i++) {
        await sleep(100);
        now = local();
      }
      expect(now.some((d) => !before.includes(d)), `no new destination after SIGHUP: ${now.join(' ')}\n${r.out().slice(-2000)}`).toBe(true);
      return now;
    };
    const counts: number[] = [];
    const start = local();
    counts.push(start.length);
    const seen = new Set(start);
    let client: string[] = start;
    let last = start;
    for (let i = 0; i < 4; i++) {
      last = await reload();
      counts.push(last.length);
      for (const d of last) seen.add(d);
      client = client.filter((d) => last.includes(d));
    }
    console.log(`local destinations at the start and after 4 reloads: ${counts.join(', ')} (${seen.size} seen in all)`);
    // The client's own destination (its keys) and the shared one, renewed at each reload and the old one freed.
    // i2pd's default keys for its HTTP proxy (transient-proxy) made one more at its start and one more at each reload.
    expect(counts).toEqual([2, 2, 2, 2, 2]);
    expect(client, 'the client\'s destination is the same across reloads').toHaveLength(1);
    // A second client comes (one destination more), a connection open to its proxy, then goes.
    writeFileSync(file('10.137.0.11'), tunnel('10.137.0.11', 14501));
    const withSecond = await reload();
    expect(withSecond).toHaveLength(3);
    expect(withSecond).toContain(client[0]);
    expect(ss()).toMatch(/127\.0\.0\.1:14501\b/);
    const held = scratch.spawn(['ip', 'netns', 'exec', r.ns, ...T(), 'python3', '-c', 'import socket,time; s=socket.create_connection(("127.0.0.1",14501)); s.sendall(b"GET http://x"); print("open", flush=True); time.sleep(60)']);
    let heldOut = '';
    held.stdout?.on('data', (c: string) => (heldOut += c));
    for (let i = 0; i < 100 && !heldOut.includes('open'); i++) await sleep(100);
    expect(heldOut).toContain('open');
    rmSync(file('10.137.0.11'));
    const gone = await reload();
    console.log(`with a second client: ${withSecond.length}; after its file is removed and a reload (a connection to it open): ${gone.length}`);
    expect(gone).toHaveLength(2);
    expect(gone).toContain(client[0]);
    // The other one is the new shared destination: the second client's and the shared one before are gone.
    expect(gone.filter((d) => d !== client[0] && withSecond.includes(d))).toEqual([]);
    expect(ss()).not.toMatch(/127\.0\.0\.1:14501\b/);
    // The shared proxy still answers, on the shared destination: i2pd's own page for a name it does not know.
    const direct = run(['ip', 'netns', 'exec', r.ns, ...T(), 'curl', '-s', '-m', '30', '-x', `http://127.0.0.1:${ROUTERS.i2pd.httpProxyPort}`, '-w', '\n%{http_code}', 'http://unknown-name.i2p/']);
    expect(direct.stdout).toContain('<h1>Proxy error: Host not found</h1>');
    expect(r.conf).toMatch(/^\[httpproxy\]\n(?:[^[]*\n)?keys =\n/m);
    // With `shared` (no client proxies, no reloads) the shared proxy keeps i2pd's default, its own transient keys.
    const shared = text(renderGateway(configOf({ i2p: { clientDestinations: 'shared' } }), { programs: PROGRAMS }), PATHS.i2pdConf);
    expect(shared).toContain('\n[httpproxy]\n');
    expect(shared).not.toMatch(/^keys =/m);
  }, 180_000);
});
