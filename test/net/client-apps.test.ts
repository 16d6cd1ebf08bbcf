/**
 * I2P applications for one chosen client qube (issue 23: i2p.apps.sam, i2p.apps.i2cp), on the lab's real private
 * I2P network (lib/i2pnet.ts), with the packaged i2pd (SAM and I2CP on its loopback) and the packaged
 * i2pd-client-proxies, which reads the granted qube's address from qubesdb (what dom0's clients.sls writes, the
 * gateway's feature vm-config.qubes-i2p-gateway-APP; here through the lab's qubesdb-read stand-in) and puts it into
 * the firewall's set for that application.
 *
 * The granted qube is the lab's first client (10.137.0.10); the second client, added with addClient, is granted
 * nothing. A SAM v3 client of this test's own (the protocol's text lines: HELLO VERSION, SESSION CREATE
 * STYLE=STREAM, STREAM CONNECT to the eepsite's b32) reaches the eepsite from the granted qube; from the second
 * client the same gets no connection, on SAM's and I2CP's ports alike.
 *
 * IRC (i2p.apps.irc, issue 23): an IRC server of this test's (IRC_SERVER, raw sockets) on one of the network's nodes,
 * published behind an i2pd server tunnel of type irc (which writes the visitor's b32 into the USER line it passes
 * on); the granted qube's IRC client (IRC_CLIENT, raw sockets) talks to it through the virtual IP's 6668, its own
 * client tunnel on the destination of its own HTTP proxy. The server's address is known only once the network runs,
 * so the program's facts (client-proxies.json) are rendered again with it as i2p.ircServer (the package's renderer,
 * the config validated as a user's would be) and given to the program in place of the built ones.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseConfigValue } from '../../src/config/load.ts';
import { clientProxiesFacts } from '../../src/render/gateway/client-proxies.ts';
import { PATHS } from '../../src/render/gateway/common.ts';
import { EEPSITE_MARKER, gatewayI2pdDropIn, I2pNet, netDbPath } from './lib/i2pnet.ts';
import { A, PYTHON, type Lab, type LabClient } from './lib/lab.ts';
import { run } from './lib/sh.ts';
import { UNIT, World } from './lib/world.ts';

let w: World | undefined;
let lab: Lab;
let i2p: I2pNet | undefined;
let second: LabClient;

const SAM_PORT = 7656;
const I2CP_PORT = 7654;
const IRC_PORT = 6668;
/** The IRC server's port on the I2P side (the client tunnels' destinationport). */
const IRC_SERVER_I2P_PORT = 6667;

const CONFIG = { qubes: { clients: ['torrents'] }, i2p: { apps: { sam: ['torrents'], i2cp: ['torrents'], socks: ['torrents'], irc: ['torrents'] } } };

/**
 * A small IRC server (python3, standard library, raw sockets): writes every line it receives as a JSON line into its
 * log, answers USER with 001, JOIN with the JOIN, a PRIVMSG with a PRIVMSG back to the sender ("echo " + the text).
 */
const IRC_SERVER = [
  'import json, socketserver, sys, threading',
  'port, log = int(sys.argv[1]), sys.argv[2]',
  'lock = threading.Lock()',
  'def record(**kw):',
  '    with lock, open(log, "a") as f:',
  '        f.write(json.dumps(kw) + "\\n")',
  'class H(socketserver.StreamRequestHandler):',
  '    def handle(self):',
  '        nick = "*"',
  '        def send(line):',
  '            self.wfile.write((line + "\\r\\n").encode())',
  '            self.wfile.flush()',
  '        for raw in self.rfile:',
  '            line = raw.decode("latin-1").rstrip("\\r\\n")',
  '            record(line=line)',
  '            cmd, _, rest = line.partition(" ")',
  '            cmd = cmd.upper()',
  '            if cmd == "NICK":',
  '                nick = rest.strip()',
  '            elif cmd == "USER":',
  '                send(":qig.irc 001 %s :Welcome to the lab\'s IRC server" % nick)',
  '            elif cmd == "JOIN":',
  '                send(":%s!u@qig.irc JOIN %s" % (nick, rest.strip()))',
  '            elif cmd == "PRIVMSG":',
  '                target, _, text = rest.partition(" :")',
  '                send(":qig-bot!bot@qig.irc PRIVMSG %s :echo %s" % (nick, text))',
  '            elif cmd == "QUIT":',
  '                send("ERROR :Closing link")',
  '                return',
  'class S(socketserver.ThreadingTCPServer):',
  '    allow_reuse_address = True',
  '    daemon_threads = True',
  'S(("127.0.0.1", port), H).serve_forever()',
  '',
].join('\n');

/**
 * An IRC client (host's python3, raw sockets): NICK and USER, then once welcomed (001) JOIN #qig and PRIVMSG #qig,
 * and waits for the server's answer to it. Prints every line it receives; CONNECT-FAILED when the gateway refuses
 * the connection, CLOSED when the tunnel closes it (the server not reached yet).
 */
const IRC_CLIENT = [
  'import socket, sys',
  'vip, port, nick, text = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]',
  'try:',
  '    s = socket.create_connection((vip, port), timeout=10)',
  'except OSError as e:',
  '    print("CONNECT-FAILED %s" % e); sys.exit(0)',
  's.settimeout(60)',
  'f = s.makefile("rb")',
  's.sendall(("NICK %s\\r\\nUSER %s 0 * :QIG lab\\r\\n" % (nick, nick)).encode())',
  'try:',
  '    for raw in f:',
  '        line = raw.decode("latin-1").rstrip("\\r\\n")',
  '        print(line, flush=True)',
  '        if " 001 " in line:',
  '            s.sendall(("JOIN #qig\\r\\nPRIVMSG #qig :%s\\r\\n" % text).encode())',
  '        if ("PRIVMSG %s :echo %s" % (nick, text)) in line:',
  '            s.sendall(b"QUIT :bye\\r\\n")',
  '            print("DONE")',
  '            break',
  '    else:',
  '        print("CLOSED")',
  'except OSError as e:',
  '    print("ERROR %s" % e)',
].join('\n');

async function ircClient(ns: string, nick: string, text: string): Promise<string> {
  const r = await run(['ip', 'netns', 'exec', ns, PYTHON, '-c', IRC_CLIENT, A.vip, String(IRC_PORT), nick, text], { timeoutMs: 200_000 });
  return r.stdout + r.stderr;
}

/** The lines the IRC server received, in order. */
function ircLines(): string[] {
  return readFileSync((i2p as I2pNet).ircLog(), 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { line: string }).line);
}

/**
 * A SAM v3 client (host's python3, standard library): one control socket with a STREAM session of a new
 * (TRANSIENT) destination, one socket that connects a stream of that session to the eepsite's b32, then an HTTP
 * GET through it. Prints each SAM reply line, then the HTTP answer; CONNECT-FAILED when the gateway refuses it.
 */
const SAM_CLIENT = [
  'import socket, sys, time',
  'vip, port, b32, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]',
  'def line(s):',
  '    buf = b""',
  '    while not buf.endswith(b"\\n"):',
  '        c = s.recv(1)',
  '        if not c:',
  '            raise EOFError("closed after %r" % buf)',
  '        buf += c',
  '    return buf.decode("latin-1").strip()',
  'try:',
  '    ctl = socket.create_connection((vip, port), timeout=10)',
  'except OSError as e:',
  '    print("CONNECT-FAILED %s" % e); sys.exit(0)',
  'ctl.settimeout(150)',
  'ctl.sendall(b"HELLO VERSION MIN=3.0 MAX=3.1\\n")',
  'print(line(ctl), flush=True)',
  'sid = "qig%d" % (time.time() * 1000)',
  'ctl.sendall(("SESSION CREATE STYLE=STREAM ID=%s DESTINATION=TRANSIENT SIGNATURE_TYPE=7\\n" % sid).encode())',
  'print(line(ctl).split(" DESTINATION=")[0], flush=True)',
  'for attempt in range(12):',
  '    s = socket.create_connection((vip, port), timeout=10)',
  '    s.settimeout(150)',
  '    s.sendall(b"HELLO VERSION MIN=3.0 MAX=3.1\\n")',
  '    line(s)',
  '    s.sendall(("STREAM CONNECT ID=%s DESTINATION=%s SILENT=false\\n" % (sid, b32)).encode())',
  '    r = line(s)',
  '    print(r, flush=True)',
  '    if "RESULT=OK" in r:',
  '        break',
  '    s.close()',
  '    time.sleep(5)',
  'else:',
  '    sys.exit(0)',
  's.sendall(("GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" % (path, b32)).encode())',
  'data = b""',
  'while True:',
  '    c = s.recv(65536)',
  '    if not c:',
  '        break',
  '    data += c',
  'sys.stdout.write(data.decode("latin-1"))',
].join('\n');

/** A bare TCP connection from `ns` to `to:port`: CONNECTED, or CONNECT-FAILED with the error. */
const CONNECT = [
  'import socket, sys',
  'try:',
  '    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=8)',
  '    print("CONNECTED")',
  'except OSError as e:',
  '    print("CONNECT-FAILED %s" % e)',
].join('\n');

async function connect(ns: string, to: string, port: number): Promise<string> {
  const r = await run(['ip', 'netns', 'exec', ns, PYTHON, '-c', CONNECT, to, String(port)], { timeoutMs: 30_000 });
  return r.stdout.trim();
}

async function sam(ns: string, path: string): Promise<string> {
  const r = await run(['ip', 'netns', 'exec', ns, PYTHON, '-c', SAM_CLIENT, A.vip, String(SAM_PORT), (i2p as I2pNet).b32, path], { timeoutMs: 400_000 });
  return r.stdout + r.stderr;
}

/**
 * A SOCKS5 client (host's python3): CONNECT to a host name (the eepsite's b32) and port 80, then an HTTP GET.
 * Prints SOCKS-REPLY and the reply code, then the HTTP answer; CONNECT-FAILED when the gateway refuses it.
 */
const SOCKS_CLIENT = [
  'import socket, struct, sys',
  'vip, port, host, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]',
  'try:',
  '    s = socket.create_connection((vip, port), timeout=10)',
  'except OSError as e:',
  '    print("CONNECT-FAILED %s" % e); sys.exit(0)',
  's.settimeout(150)',
  's.sendall(b"\\x05\\x01\\x00")',
  'if s.recv(2) != b"\\x05\\x00":',
  '    print("SOCKS-AUTH-REFUSED"); sys.exit(0)',
  'h = host.encode()',
  's.sendall(b"\\x05\\x01\\x00\\x03" + bytes([len(h)]) + h + struct.pack(">H", 80))',
  'r = s.recv(4)',
  'print("SOCKS-REPLY %d" % (r[1] if len(r) > 1 else -1), flush=True)',
  'if len(r) < 4 or r[1] != 0:',
  '    sys.exit(0)',
  'rest = {1: 4 + 2, 4: 16 + 2}.get(r[3])',
  'if rest is None:',
  '    rest = s.recv(1)[0] + 2',
  's.recv(rest)',
  's.sendall(("GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" % (path, host)).encode())',
  'data = b""',
  'while True:',
  '    c = s.recv(65536)',
  '    if not c:',
  '        break',
  '    data += c',
  'sys.stdout.write(data.decode("latin-1"))',
].join('\n');

async function socks(ns: string, path: string, host?: string): Promise<string> {
  const r = await run(['ip', 'netns', 'exec', ns, PYTHON, '-c', SOCKS_CLIENT, A.vip, '4447', host ?? (i2p as I2pNet).b32, path], { timeoutMs: 200_000 });
  return r.stdout + r.stderr;
}

/** An HTTP GET of the eepsite through the client's own HTTP proxy (the virtual IP, port 80). */
async function viaHttp(ns: string, path: string): Promise<string> {
  const script = ['import socket, sys', 's = socket.create_connection((sys.argv[1], 80), timeout=10)', 's.settimeout(60)', 's.sendall(("GET %s HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n" % (sys.argv[3], sys.argv[2])).encode())', 'data = b""', 'while True:', '    c = s.recv(65536)', '    if not c: break', '    data += c', 'sys.stdout.write(data.decode("latin-1"))'].join('\n');
  const r = await run(['ip', 'netns', 'exec', ns, PYTHON, '-c', script, A.vip, (i2p as I2pNet).b32, path], { timeoutMs: 90_000 });
  return r.stdout + r.stderr;
}

async function gwShell(cmd: string): Promise<string> {
  const r = await lab.gwRun(['sh', '-c', cmd]);
  return r.stdout + r.stderr;
}

beforeAll(async () => {
  w = await World.create(CONFIG);
  lab = w.lab;
  i2p = await I2pNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 90_000, ircServer: IRC_SERVER });
  // The config with the private network's IRC server (its b32 address) as i2p.ircServer, validated as a user's.
  const withServer = parseConfigValue({ ...CONFIG, i2p: { ...CONFIG.i2p, ircServer: `${i2p.ircB32}:${IRC_SERVER_I2P_PORT}` } });
  if (!withServer.ok) throw new Error(`the IRC server's address as i2p.ircServer: ${JSON.stringify(withServer.issues)}`);
  const facts = `${JSON.stringify(clientProxiesFacts(withServer.config), null, 2)}\n`;
  await lab.gwRun(['sh', '-c', 'mkdir -p /etc/systemd/system/i2pd.service.d && cat > /etc/systemd/system/i2pd.service.d/zz-lab-privnet.conf'], { input: gatewayI2pdDropIn(PATHS.i2pdRuntimeConf, false) });
  for (const [i, r] of i2p.routers.entries()) {
    const dst = join('/var/lib/i2pd/netDb', netDbPath(i2p.routerInfos()[i] as Buffer));
    const cp = await lab.gwRun(['sh', '-c', 'mkdir -p "$(dirname "$2")" && cp "$1" "$2"', 'sh', join(r.dir, 'router.info'), dst], { user: 'i2pd' });
    expect(cp.code, cp.stderr).toBe(0);
  }
  second = await lab.addClient();
  try {
    // dom0 granted SAM and I2CP to the qube whose address is the lab's first client.
    await w.startClientProxies(
      { '/vm-config/qubes-i2p-gateway-sam': A.client4, '/vm-config/qubes-i2p-gateway-i2cp': A.client4, '/vm-config/qubes-i2p-gateway-socks': A.client4, '/vm-config/qubes-i2p-gateway-irc': A.client4 },
      { [PATHS.clientProxiesConf]: facts },
    );
    await w.use({ tor: 'off', router: 'real', dnsmasq: false, tinyproxy: false });
  } catch (e) {
    throw new Error(`${String(e)}\n--- client proxies ---\n${w.gw.get(UNIT.clientProxies)?.proc.diagnostics()}`);
  }
}, 240_000);

afterAll(async () => {
  await w?.gw.stopAll();
  await i2p?.stop();
  await w?.destroy();
});

describe('SAM and I2CP for one client qube (i2p.apps)', () => {
  it('the program puts the granted qube\'s address from qubesdb, and only it, into the apps\' sets', async () => {
    let sets = '';
    for (let i = 0; i < 30; i++) {
      sets = await gwShell('nft list set inet qubes-i2p-gateway app-sam; nft list set inet qubes-i2p-gateway app-i2cp');
      if ((sets.match(new RegExp(`elements = \\{ ${A.client4.replace(/\./g, '\\.')} \\}`, 'g')) ?? []).length === 2) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect((sets.match(new RegExp(`elements = \\{ ${A.client4.replace(/\./g, '\\.')} \\}`, 'g')) ?? []).length, sets).toBe(2);
    expect(sets).not.toContain(second.addr);
    // i2pd listens for SAM and I2CP on loopback only.
    const ss = await gwShell('ss -Hltn');
    expect(ss).toContain(`127.0.0.1:${SAM_PORT}`);
    expect(ss).toContain(`127.0.0.1:${I2CP_PORT}`);
    expect(ss).not.toMatch(new RegExp(`(0\\.0\\.0\\.0|\\*|\\[::\\]):(${SAM_PORT}|${I2CP_PORT})\\b`));
  }, 60_000);

  it('a SAM v3 client in the granted qube creates a STREAM session and reaches the eepsite by its b32', async () => {
    const t0 = Date.now();
    const out = await sam(lab.ns.client, '/sam-granted');
    console.log(`SAM: eepsite reached through a new SAM session in ${Date.now() - t0} ms`);
    expect(out).toMatch(/^HELLO REPLY RESULT=OK VERSION=3\.[01]$/m);
    expect(out).toMatch(/^SESSION STATUS RESULT=OK$/m);
    expect(out).toMatch(/^STREAM STATUS RESULT=OK/m);
    expect(out).toContain(EEPSITE_MARKER);
    // The eepsite saw the SAM session's own destination.
    const visit = (i2p as I2pNet).siteVisitors().find((v) => v.path === '/sam-granted');
    expect(visit?.b32, out).toMatch(/^[a-z2-7]{52}\.b32\.i2p$/);
  }, 420_000);

  it('the I2CP port takes the granted qube\'s connection', async () => {
    expect(await connect(lab.ns.client, A.vip, I2CP_PORT)).toBe('CONNECTED');
  }, 60_000);

  it('another client gets no connection to SAM or I2CP: a reset on the virtual IP, nothing on the gateway\'s own address', async () => {
    for (const port of [SAM_PORT, I2CP_PORT]) {
      expect(await connect(second.ns, A.vip, port)).toMatch(/^CONNECT-FAILED .*(refused|reset)/i);
      expect(await connect(second.ns, A.gwDown4, port)).toMatch(/^CONNECT-FAILED/);
    }
    const out = await sam(second.ns, '/sam-hostile');
    expect(out).toMatch(/^CONNECT-FAILED/);
    expect((i2p as I2pNet).siteVisitors().find((v) => v.path === '/sam-hostile')).toBeUndefined();
    // The reset came from our input chain's rule (its counter moved), not from a daemon.
    const input = await gwShell('nft list chain ip qubes qubes-i2p-gateway-input');
    expect(input).toMatch(/tcp dport \{ 7654, 7656 \} counter packets [1-9]\d* bytes \d+ reject with tcp reset/);
  }, 120_000);

  it('SOCKS: the granted qube\'s own SOCKS proxy reaches the eepsite by its b32, on the destination of its own HTTP proxy; another client gets a reset', async () => {
    let out = '';
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      out = await socks(lab.ns.client, `/socks-granted-${i}`);
      if (out.includes(EEPSITE_MARKER)) break;
      await new Promise((r) => setTimeout(r, 3000));
    }
    console.log(`SOCKS: eepsite reached in ${Date.now() - t0} ms`);
    expect(out, `${out}\n${await gwShell('ls -la /etc/i2pd/tunnels.d/; nft list map inet qubes-i2p-gateway client-socks')}\n${(w as World).gw.get(UNIT.clientProxies)?.proc.diagnostics()}`).toContain(EEPSITE_MARKER);
    const socksVisit = (i2p as I2pNet).siteVisitors().filter((v) => v.path.startsWith('/socks-granted-')).pop();
    let http = '';
    for (let i = 0; i < 20 && !http.includes(EEPSITE_MARKER); i++) {
      http = await viaHttp(lab.ns.client, `/http-granted-${i}`);
      if (!http.includes(EEPSITE_MARKER)) await new Promise((r) => setTimeout(r, 3000));
    }
    const httpVisit = (i2p as I2pNet).siteVisitors().filter((v) => v.path.startsWith('/http-granted-')).pop();
    expect(socksVisit?.b32).toMatch(/^[a-z2-7]{52}\.b32\.i2p$/);
    expect(socksVisit?.b32).toBe(httpVisit?.b32);
    // A clearnet host through the client's SOCKS proxy: refused by i2pd (no outproxy), nothing served.
    for (const host of ['example.com', A.web]) {
      const clear = await socks(lab.ns.client, '/clearnet', host);
      expect(clear, host).not.toMatch(/SOCKS-REPLY 0\b/);
      expect(clear).not.toContain(EEPSITE_MARKER);
    }
    const other = await socks(second.ns, '/socks-hostile');
    expect(other).toMatch(/^CONNECT-FAILED .*(refused|reset)/i);
    expect(await connect(second.ns, A.vip, 4447)).toMatch(/^CONNECT-FAILED/);
  }, 400_000);

  it('the granted qube\'s address leaves the sets when its interface goes (and comes back with it); after a reload of the ruleset the program fills them again', async () => {
    const sets = (): Promise<string> => gwShell('nft list set inet qubes-i2p-gateway app-sam; nft list set inet qubes-i2p-gateway app-i2cp');
    const until = async (want: boolean): Promise<string> => {
      let now = '';
      for (let i = 0; i < 30; i++) {
        now = await sets();
        if (now.includes(A.client4) === want) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      return now;
    };
    // What vif-route-qubes does when the client's interface goes away: its address leaves Qubes' set.
    await gwShell(`nft delete element ip qubes allowed '{ "vif3.0" . ${A.client4} }'`);
    expect(await until(false)).not.toContain(A.client4);
    await gwShell(`nft add element ip qubes allowed '{ "vif3.0" . ${A.client4} }'`);
    expect(await until(true)).toContain(A.client4);
    await (w as World).loadFirewall(); // qubes-firewall's restart: our table anew, the sets empty
    expect(await until(true)).toContain(A.client4);
    expect(await connect(lab.ns.client, A.vip, SAM_PORT)).toBe('CONNECTED');
    expect(await connect(second.ns, A.vip, SAM_PORT)).toMatch(/^CONNECT-FAILED/);
  }, 120_000);
});

describe('IRC for chosen client qubes (i2p.apps.irc)', () => {
  it('the granted qube\'s IRC client reaches the IRC server on the private network through the virtual IP\'s 6668 (NICK, USER, JOIN, PRIVMSG; the server\'s replies come back), and the server sees the destination of the client\'s own HTTP proxy', async () => {
    let out = '';
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      out = await ircClient(lab.ns.client, 'qigtorrents', `hello-${i}`);
      if (out.includes('DONE')) break;
      await new Promise((r) => setTimeout(r, 3000));
    }
    console.log(`IRC: the server's answer to a PRIVMSG came back ${Date.now() - t0} ms after the first try`);
    const diag = async (): Promise<string> => `${out}\n${await gwShell('ls -la /etc/i2pd/tunnels.d/; cat /etc/i2pd/tunnels.d/62-*; nft list map inet qubes-i2p-gateway client-irc; ss -Hltn')}\n${(w as World).gw.get(UNIT.clientProxies)?.proc.diagnostics()}`;
    expect(out, await diag()).toContain('DONE');
    expect(out).toMatch(/^:qig\.irc 001 qigtorrents /m);
    expect(out).toMatch(/^:qigtorrents!u@qig\.irc JOIN #qig$/m);
    const said = /PRIVMSG qigtorrents :echo (hello-\d+)$/m.exec(out)?.[1];
    // What the server received: the client's own lines, its USER line with the client's b32 put in by the server tunnel.
    const lines = ircLines();
    expect(lines).toContain('NICK qigtorrents');
    expect(lines).toContain('JOIN #qig');
    expect(lines).toContain(`PRIVMSG #qig :${said}`);
    const user = lines.filter((l) => l.startsWith('USER qigtorrents ')).pop() ?? '';
    const ircB32 = /\b([a-z2-7]{52}\.b32\.i2p)\b/.exec(user)?.[1];
    console.log(`IRC: the server received ${JSON.stringify(user)}`);
    expect(ircB32, lines.join('\n')).toMatch(/^[a-z2-7]{52}\.b32\.i2p$/);
    // The same destination as the client's HTTP proxy (X-I2P-DestB32 at the eepsite).
    let http = '';
    for (let i = 0; i < 20 && !http.includes(EEPSITE_MARKER); i++) {
      http = await viaHttp(lab.ns.client, `/http-irc-${i}`);
      if (!http.includes(EEPSITE_MARKER)) await new Promise((r) => setTimeout(r, 3000));
    }
    const httpVisit = (i2p as I2pNet).siteVisitors().filter((v) => v.path.startsWith('/http-irc-')).pop();
    expect(httpVisit?.b32, http).toBe(ircB32);
    // The tunnel i2pd runs for it: a client tunnel on 127.0.0.3, the client's keys, the server's b32 (from qubesdb's grant).
    const tunnel = await gwShell(`cat /etc/i2pd/tunnels.d/62-qubes-i2p-gateway-irc-${A.client4}.conf`);
    expect(tunnel).toContain(`type = client\naddress = 127.0.0.3\n`);
    expect(tunnel).toContain(`destination = ${(i2p as I2pNet).ircB32}\ndestinationport = ${IRC_SERVER_I2P_PORT}\n`);
    expect(tunnel).toContain(`keys = qubes-i2p-gateway-client-${A.client4}.dat\n`);
  }, 400_000);

  it('another client gets a reset on 6668 (from our input chain), and its IRC never reaches the server; i2pd runs no IRC tunnel of Debian\'s (nothing listens on 6668 in the gateway)', async () => {
    const before = ircLines().length;
    const other = await ircClient(second.ns, 'qighostile', 'hostile');
    expect(other).toMatch(/^CONNECT-FAILED .*(refused|reset)/i);
    expect(await connect(second.ns, A.vip, IRC_PORT)).toMatch(/^CONNECT-FAILED .*(refused|reset)/i);
    expect(await connect(second.ns, A.gwDown4, IRC_PORT)).toMatch(/^CONNECT-FAILED/);
    expect(ircLines().slice(before).filter((l) => l.includes('qighostile'))).toEqual([]);
    const input = await gwShell('nft list chain ip qubes qubes-i2p-gateway-input');
    expect(input).toMatch(/ip daddr [0-9.]+ tcp dport 6668 counter packets [1-9]\d* bytes \d+ reject with tcp reset/);
    // Debian's tunnels.conf has an IRC tunnel on 127.0.0.1:6668 (one identity for all); the packaged i2pd reads none.
    const ss = await gwShell('ss -Hltn');
    expect(ss, ss).not.toMatch(/:6668\b/);
    expect(await gwShell('cat /etc/i2pd/tunnels.conf')).toContain('port = 6668');
  }, 120_000);
});
