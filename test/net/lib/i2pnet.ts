/**
 * A private I2P network of real Debian 13 i2pd routers (the cached oracles root), all in one network namespace
 * (the lab's `up`, the gateway's "clearnet"), each router a machine of its own (test/util/machine-view.sh) running
 * as the root's `i2pd` user, with its own address on up's eth0 (172.31.2.N), so the gateway reaches every router
 * through its eth0 as it would reach the real network's.
 *
 * What makes a handful of routers a network (found by the project, see test/net/README.md "Private networks"):
 *   - the same `netid` on every router, not 2 (the real network's): a router drops every peer of another netid;
 *   - `reservedrange = false`: the routers' addresses are private, which i2pd refuses by default;
 *   - `nat = false` with `host` (the published address) and `address4` (the bound one): published, reachable;
 *   - two floodfills (the netDb of the network);
 *   - each router's router.info copied into every other router's netDb/ before the start; no reseed
 *     (`reseed.threshold = 0`: it never asks, and it could reach no reseed server anyway).
 *
 * Start in two rounds: the first makes each router's identity and router.info (and the site's keys) and stops
 * them; the second starts them with every other router's router.info in their netDb. The eepsite is one router's
 * server tunnel to a tiny HTTP server (Debian 13's python3 http.server) on up's loopback.
 *
 * Nothing here is cached across runs: the first round is one short start (a few seconds on a loaded machine), and
 * a cached router.info would age (it carries its publishing time, and i2pd expires old ones from its netDb).
 */
import { createHash } from 'node:crypto';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { must, Proc, run, sleep, endPid, cpuSeconds } from './sh.ts';
import { UpMachines } from './upmachine.ts';


/** The private network's id: any but 2 (the real I2P network's), the same on every router and on the gateway. */
export const I2P_NETID = 42;
/** The subnet of the routers' addresses on up's eth0 (nothing else of the lab is there). */
export const I2P_SUBNET = '172.31.2';
const ROUTER_PORT = 23456;
/** Where the web server behind the eepsite listens, on up's loopback. */
const SITE_PORT = 28001;
/** Where the IRC server behind the network's IRC site listens (opts.ircServer), on up's loopback. */
export const IRC_SERVER_PORT = 28002;
/** The HTTP proxy of the client router, on up's loopback. */
export const I2P_PROXY_PORT = 24444;
/** What the eepsite serves: a test that sees it has fetched it through I2P. */
export const EEPSITE_MARKER = 'QIG-PRIVATE-EEPSITE';

/**
 * The eepsite's web server (Debian 13's python3, standard library): serves index.html for every GET (a path that
 * names a file of files/, as I2pNet.serve wrote it, gets that file as text: an address book list) and appends one
 * JSON line per request to visitors.jsonl: the path, the X-I2P-DestB32 header (the visitor's destination that
 * i2pd's http server tunnel adds, after removing any X-I2P-* the visitor sent) and the time (ms since the epoch).
 */
const SITE_SERVER = [
  'import http.server, json, os, sys, time',
  'root = sys.argv[1]',
  'class H(http.server.BaseHTTPRequestHandler):',
  '    def do_GET(self):',
  '        with open(os.path.join(root, "visitors.jsonl"), "a") as f:',
  '            f.write(json.dumps({"path": self.path, "b32": self.headers.get("X-I2P-DestB32"), "at": int(time.time() * 1000)}) + "\\n")',
  '        name = self.path.split("?")[0][1:]',
  '        served = os.path.join(root, "files", name)',
  '        listed = name != "" and "/" not in name and not name.startswith(".") and os.path.isfile(served)',
  '        with open(served if listed else os.path.join(root, "index.html"), "rb") as f:',
  '            body = f.read()',
  '        self.send_response(200)',
  '        self.send_header("Content-Type", "text/plain" if listed else "text/html")',
  '        self.send_header("Content-Length", str(len(body)))',
  '        self.end_headers()',
  '        self.wfile.write(body)',
  '    def log_message(self, *a):',
  '        pass',
  'http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()',
  '',
].join('\n');

export interface I2pRouter {
  readonly name: string;
  readonly addr: string;
  readonly port: number;
  readonly floodfill: boolean;
  /** The router's data dir on the host (and at the same path inside its machine). */
  readonly dir: string;
}

export interface I2pNetOptions {
  /** The network namespace (the lab's up). */
  readonly ns: string;
  /** A host directory shared into the machines at the same path (the lab's scratch); the network lives under it. */
  readonly scratch: string;
  /** The Debian 13 oracles root (ensureOracles). */
  readonly root: string;
  /** Routers (at least 4: 2 floodfills, the site's router, the client's router). */
  readonly routers?: number;
  /** Bound on the whole start (both rounds), ms. */
  readonly startTimeoutMs?: number;
  /**
   * An IRC server of the test's (a python3 script, run as nobody with its port and a log file as arguments) to publish
   * on the site's router behind an i2pd server tunnel of type irc (which puts the visitor's b32 into USER); its
   * address is `ircB32`, its log `ircLog()`.
   */
  readonly ircServer?: string;
}

/** base64 of I2P (RFC 4648 with `-` and `~` for `+` and `/`). */
function i2pBase64(b: Buffer): string {
  return b.toString('base64').replace(/\+/g, '-').replace(/\//g, '~');
}

function base32(b: Buffer): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of b) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/**
 * The identity at the head of a router.info or a destination's keys file: 256 + 128 bytes of keys, then a
 * certificate (type, 2-byte length, payload). Its SHA-256 is the router's or destination's hash.
 */
export function identityHash(data: Buffer): Buffer {
  const certLen = data.readUInt16BE(385);
  return createHash('sha256').update(data.subarray(0, 387 + certLen)).digest();
}

/**
 * The public destination at the head of a destination's keys file (what i2pd's console shows as its base64, and
 * what an address book list gives for a name: NAME=BASE64), in I2P's base64.
 */
export function destinationBase64(keys: Buffer): string {
  const certLen = keys.readUInt16BE(385);
  return i2pBase64(keys.subarray(0, 387 + certLen));
}

/** The b32 address of a destination's keys file (as i2pd writes it for a server tunnel). */
export function b32Address(keys: Buffer): string {
  return `${base32(identityHash(keys))}.b32.i2p`;
}

/** Where a router.info goes in a netDb: r<first char of its base64 hash>/routerInfo-<hash>.dat. */
export function netDbPath(routerInfo: Buffer): string {
  const h = i2pBase64(identityHash(routerInfo));
  return join(`r${h[0]}`, `routerInfo-${h}.dat`);
}

/**
 * The options every router of the private network needs (and the gateway's router: its one extra file has the
 * first three). Each is explained in test/net/README.md.
 */
export function privateNetOptions(): string {
  return `netid = ${I2P_NETID}\nreservedrange = false\n`;
}

/** Where the gateway's drop-in finds the seeds (the routers' router.info, in netDb's layout), when it copies them. */
export const GATEWAY_SEEDS = '/etc/qubes-i2p-gateway/lab-privnet/netDb';

/**
 * The one file the gateway's i2pd gets to join the network: a drop-in for Debian's i2pd.service (the admin's place,
 * /etc/systemd/system/i2pd.service.d/) whose ExecStartPre=, as i2pd's user, puts the private network's options at
 * the top of the config i2pd runs with (made from the packaged one by the step before it) and, with `seeds`, copies
 * the seed routers' router.info from GATEWAY_SEEDS into its netDb. i2pd reads one config file and `reservedrange`
 * can only be turned off there, so the package's own config is otherwise what runs.
 */
export function gatewayI2pdDropIn(runtimeConf: string, seeds: boolean, defaultUrl?: string): string {
  // defaultUrl: i2pd's addressbook.defaulturl, the list it loads first while its address book is empty (i2pd's own is
  // reg.i2p's b32, which the private network has not): a list served on the private network in its place.
  const lines = [...privateNetOptions().trim().split('\n'), ...(defaultUrl === undefined ? [] : [`addressbook.defaulturl = ${defaultUrl}`])];
  const echo = lines.map((l) => `echo ${l};`).join(' ');
  return [
    "# lab: the gateway's i2pd joins the private I2P network (test/net/lib/i2pnet.ts)",
    '[Service]',
    `ExecStartPre=/bin/sh -c '{ ${echo} cat ${runtimeConf}; } > /run/i2pd/lab-privnet.conf && mv -f /run/i2pd/lab-privnet.conf ${runtimeConf}'`,
    ...(seeds ? [`ExecStartPre=/bin/sh -c 'mkdir -p /var/lib/i2pd/netDb && cp -R ${GATEWAY_SEEDS}/. /var/lib/i2pd/netDb/'`] : []),
    '',
  ].join('\n');
}

/** The seeds as [path inside the gateway, contents]: every router's router.info under GATEWAY_SEEDS. */
export function gatewaySeedFiles(net: I2pNet): Array<[string, Buffer]> {
  return net.routerInfos().map((ri) => [join(GATEWAY_SEEDS, netDbPath(ri)), ri]);
}

function routerConf(r: I2pRouter, proxy: boolean): string {
  return [
    '# a router of the lab\'s private I2P network (test/net/lib/i2pnet.ts)',
    'log = file',
    `logfile = ${join(r.dir, 'i2pd.log')}`,
    'loglevel = warn',
    `host = ${r.addr}`,
    `address4 = ${r.addr}`,
    `port = ${r.port}`,
    'ipv4 = true',
    'ipv6 = false',
    'nat = false',
    privateNetOptions().trimEnd(),
    `floodfill = ${r.floodfill}`,
    'bandwidth = X',
    '[ntcp2]',
    'enabled = true',
    'published = true',
    '[ssu2]',
    'enabled = true',
    'published = true',
    '[http]',
    'enabled = false',
    '[httpproxy]',
    `enabled = ${proxy}`,
    'address = 127.0.0.1',
    `port = ${I2P_PROXY_PORT}`,
    'inbound.length = 1',
    'outbound.length = 1',
    'inbound.quantity = 2',
    'outbound.quantity = 2',
    'addresshelper = false',
    '[socksproxy]',
    'enabled = false',
    '[sam]',
    'enabled = false',
    '[bob]',
    'enabled = false',
    '[i2cp]',
    'enabled = false',
    '[i2pcontrol]',
    'enabled = false',
    '[upnp]',
    'enabled = false',
    '[reseed]',
    'threshold = 0',
    'verify = false',
    '[addressbook]',
    'enabled = false',
    '[nettime]',
    'enabled = false',
    '[exploratory]',
    'inbound.quantity = 2',
    'outbound.quantity = 2',
    '',
  ].join('\n');
}

/** A server tunnel of the site node (its keys `NAME.dat`), with short tunnels: the private network is small. */
function serverTunnel(name: string, type: 'http' | 'irc', port: number): string {
  return [
    `[${name}]`,
    `type = ${type}`,
    'host = 127.0.0.1',
    `port = ${port}`,
    `keys = ${name}.dat`,
    'inbound.length = 1',
    'outbound.length = 1',
    'inbound.quantity = 2',
    'outbound.quantity = 2',
    '',
  ].join('\n');
}

const SITE_TUNNEL = serverTunnel('eepsite', 'http', SITE_PORT);

/** The IRC server's tunnel (opts.ircServer): type irc, which puts the visitor's b32 address into its USER line. */
const IRC_TUNNEL = serverTunnel('ircd', 'irc', IRC_SERVER_PORT);

export class I2pNet {
  readonly routers: I2pRouter[];
  /** The b32 address of the eepsite (known after start). */
  b32 = '';
  /** The b32 address of the IRC server (opts.ircServer; known after start). */
  ircB32 = '';
  /** Milliseconds from the second round's start until every router ran (set by start). */
  startedMs = 0;
  private readonly procs: Proc[] = [];
  private readonly base: string;
  private readonly machines: UpMachines;
  private readonly user: { uid: number; gid: number };

  private constructor(private readonly opts: I2pNetOptions) {
    this.base = join(opts.scratch, 'i2pnet');
    const n = opts.routers ?? 4;
    if (n < 4) throw new Error(`i2pnet: ${n} routers: the network needs at least 4 (2 floodfills, the site's, the client's)`);
    this.routers = Array.from({ length: n }, (_, i) => ({
      name: `r${i + 1}`,
      addr: `${I2P_SUBNET}.${i + 1}`,
      port: ROUTER_PORT + i,
      floodfill: i < 2,
      dir: join(this.base, `r${i + 1}`),
    }));
    this.machines = new UpMachines(opts.ns, this.base, opts.root, opts.scratch);
    this.user = this.machines.account('i2pd');
  }

  /** The router with the eepsite's server tunnel. */
  get siteRouter(): I2pRouter {
    return this.routers[this.routers.length - 2] as I2pRouter;
  }

  /** The router whose HTTP proxy (127.0.0.1:I2P_PROXY_PORT in up) fetches the site. */
  get clientRouter(): I2pRouter {
    return this.routers[this.routers.length - 1] as I2pRouter;
  }

  /** Every router's router.info, as the routers wrote them in the first round (the gateway's seeds). */
  /**
   * Each router's router.info, whole: i2pd rewrites the file in place now and then (its addresses, its caps), and a
   * read in the middle got an empty file once in a whole booted run (identityHash then failed). A copy counts when
   * two reads 50 ms apart agree and it holds at least its identity; up to 5 s a router.
   */
  routerInfos(): Buffer[] {
    const pause = new Int32Array(new SharedArrayBuffer(4));
    return this.routers.map((r) => {
      const path = join(r.dir, 'router.info');
      for (let i = 0; i < 100; i++) {
        const a = readFileSync(path);
        Atomics.wait(pause, 0, 0, 50);
        const b = readFileSync(path);
        if (a.length > 387 && a.equals(b) && a.length >= 387 + a.readUInt16BE(385)) return a;
      }
      throw new Error(`i2pnet: ${path} did not hold still, whole, within 5 s`);
    });
  }

  /** Start the network; throws with the routers' logs if it is not up within the bound. Stop it with stop(). */
  static async start(opts: I2pNetOptions): Promise<I2pNet> {
    const net = new I2pNet(opts);
    try {
      await net.boot();
    } catch (e) {
      await net.stop();
      throw e;
    }
    return net;
  }

  private async boot(): Promise<void> {
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 60_000);
    mkdirSync(join(this.base, 'machines'), { recursive: true, mode: 0o755 });
    const site = join(this.base, 'site');
    mkdirSync(site, { recursive: true, mode: 0o755 });
    writeFileSync(join(site, 'index.html'), `<html><body>${EEPSITE_MARKER}</body></html>\n`);
    writeFileSync(join(site, 'visitors.jsonl'), '');
    chownSync(join(site, 'visitors.jsonl'), 65534, 65534);
    writeFileSync(join(this.base, 'site.py'), SITE_SERVER);
    for (const r of this.routers) {
      await must(['ip', '-n', this.opts.ns, 'addr', 'add', `${r.addr}/32`, 'dev', 'eth0', 'nodad']);
      mkdirSync(join(r.dir, 'netDb'), { recursive: true, mode: 0o700 });
      mkdirSync(join(r.dir, 'tunnels.d'), { recursive: true, mode: 0o755 });
      writeFileSync(join(r.dir, 'i2pd.conf'), routerConf(r, r === this.clientRouter));
      writeFileSync(join(r.dir, 'tunnels.conf'), r === this.siteRouter ? SITE_TUNNEL + (this.opts.ircServer !== undefined ? IRC_TUNNEL : '') : '');
      this.chownTree(r.dir);
    }

    // Round 1: identities, router.info files, the site's keys.
    const first = this.routers.map((r) => this.spawnRouter(r));
    const irc = this.opts.ircServer !== undefined;
    await this.waitFor(() => this.routers.every((r) => existsSync(join(r.dir, 'router.info'))) && existsSync(join(this.siteRouter.dir, 'eepsite.dat')) && (!irc || existsSync(join(this.siteRouter.dir, 'ircd.dat'))), deadline, 'round 1: every router writes its router.info');
    await sleep(300); // let the files be complete (i2pd writes them in place)
    for (const p of first) await endPid(p.pid);
    this.procs.length = 0;
    this.b32 = b32Address(readFileSync(join(this.siteRouter.dir, 'eepsite.dat')));
    if (irc) this.ircB32 = b32Address(readFileSync(join(this.siteRouter.dir, 'ircd.dat')));

    // Every router knows every other from the start.
    const infos = this.routerInfos();
    for (const r of this.routers) {
      for (const ri of infos) {
        const p = join(r.dir, 'netDb', netDbPath(ri));
        mkdirSync(join(p, '..'), { recursive: true, mode: 0o700 });
        writeFileSync(p, ri);
      }
      this.chownTree(r.dir);
    }

    // The site's web server (Debian 13's python3, as nobody) and round 2.
    const web = new Proc('eepsite-web', [...this.machine('web'), 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'python3', join(this.base, 'site.py'), site, String(SITE_PORT)]);
    this.procs.push(web);
    if (this.opts.ircServer !== undefined) {
      writeFileSync(join(this.base, 'ircd.py'), this.opts.ircServer);
      writeFileSync(this.ircLog(), '');
      chownSync(this.ircLog(), 65534, 65534);
      this.procs.push(new Proc('ircd', [...this.machine('ircd'), 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'python3', join(this.base, 'ircd.py'), String(IRC_SERVER_PORT), this.ircLog()]));
    }
    const t0 = Date.now();
    for (const r of this.routers) this.spawnRouter(r);
    await this.waitFor(async () => (await run(['ip', 'netns', 'exec', this.opts.ns, 'ss', '-Hltn', `sport = :${I2P_PROXY_PORT}`])).stdout.trim() !== '' && (await run(['ip', 'netns', 'exec', this.opts.ns, 'ss', '-Hltn', `sport = :${SITE_PORT}`])).stdout.trim() !== '', deadline, 'round 2: the client router\'s HTTP proxy and the site\'s web server listen');
    if (this.opts.ircServer !== undefined) {
      await this.waitFor(async () => (await run(['ip', 'netns', 'exec', this.opts.ns, 'ss', '-Hltn', `sport = :${IRC_SERVER_PORT}`])).stdout.trim() !== '', deadline, 'the IRC server listens');
    }
    this.startedMs = Date.now() - t0;
  }

  private chownTree(dir: string): void {
    const walk = (p: string): void => {
      chownSync(p, this.user.uid, this.user.gid);
      if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    };
    walk(dir);
  }

  private machine(name: string): string[] {
    return this.machines.argv(name);
  }

  private spawnRouter(r: I2pRouter): Proc {
    const p = new Proc(`i2pd-${r.name}`, [
      ...this.machine(r.name),
      'setpriv', `--reuid=${this.user.uid}`, `--regid=${this.user.gid}`, '--clear-groups',
      'env', `HOME=${r.dir}`, 'i2pd', `--datadir=${r.dir}`, `--conf=${join(r.dir, 'i2pd.conf')}`, `--tunconf=${join(r.dir, 'tunnels.conf')}`, `--tunnelsdir=${join(r.dir, 'tunnels.d')}`,
      '--certsdir=/usr/share/i2pd/certificates', `--pidfile=${join(r.dir, 'i2pd.pid')}`,
    ]);
    this.procs.push(p);
    return p;
  }

  private async waitFor(cond: () => boolean | Promise<boolean>, deadline: number, what: string): Promise<void> {
    while (Date.now() < deadline) {
      if (await cond()) return;
      const dead = this.procs.find((p) => p.exited !== undefined);
      if (dead !== undefined) throw new Error(`i2pnet: ${dead.name} exited ${JSON.stringify(dead.exited)} before: ${what}\n${dead.diagnostics()}\n${this.logs()}`);
      await sleep(100);
    }
    throw new Error(`i2pnet: not within the bound: ${what}\n${this.logs()}`);
  }

  /** The routers' logs (the last lines of each), for an error. */
  logs(): string {
    return this.routers
      .map((r) => {
        const f = join(r.dir, 'i2pd.log');
        const text = existsSync(f) ? readFileSync(f, 'utf8') : '(no log)';
        return `--- ${r.name} (${r.addr}:${r.port}${r.floodfill ? ', floodfill' : ''}) i2pd.log ---\n${text.slice(-1500)}`;
      })
      .join('\n');
  }

  /**
   * curl in a fresh Debian 13 machine of the namespace, through the client router's HTTP proxy: the status and
   * body, or the error. One try, bounded by `maxS`.
   */
  async fetch(url: string, maxS = 10): Promise<{ status: string; body: string; err: string }> {
    const r = await run([...this.machine('curl'), 'curl', '-sS', '-m', String(maxS), '-x', `http://127.0.0.1:${I2P_PROXY_PORT}`, '-o', '-', '-w', '\n@@%{http_code}', url], { timeoutMs: (maxS + 5) * 1000 });
    const at = r.stdout.lastIndexOf('\n@@');
    return { status: at >= 0 ? r.stdout.slice(at + 3) : '', body: at >= 0 ? r.stdout.slice(0, at) : r.stdout, err: r.stderr };
  }

  /** Fetch `url` until its body has `marker` (a first fetch waits for tunnels and a LeaseSet); ms taken, or throw. */
  async fetchUntil(url: string, marker: string, timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    let last = { status: '', body: '', err: '' };
    let tries = 0;
    while (Date.now() - t0 < timeoutMs) {
      tries++;
      last = await this.fetch(url);
      if (last.status === '200' && last.body.includes(marker)) return Date.now() - t0;
      await sleep(1000);
    }
    throw new Error(`i2pnet: ${url} not served within ${timeoutMs} ms (${tries} tries); last: HTTP ${last.status} ${last.err}\n${last.body.slice(0, 800)}\n${this.logs()}`);
  }

  /**
   * Every request the eepsite served, in order: its path, the visitor's X-I2P-DestB32 (null: none came) and when the
   * site got it (ms since the epoch).
   */
  siteVisitors(): Array<{ path: string; b32: string | null; at: number }> {
    const text = readFileSync(join(this.base, 'site', 'visitors.jsonl'), 'utf8');
    return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { path: string; b32: string | null; at: number });
  }

  /** The eepsite's destination in base64 (the public part of its keys), as an address book list gives it. */
  get siteDestination(): string {
    return destinationBase64(readFileSync(join(this.siteRouter.dir, 'eepsite.dat')));
  }

  /** Have the eepsite serve `text` as text/plain at /NAME (an address book list, hosts.txt's format). */
  serve(name: string, text: string): void {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`i2pnet: not a file name the site serves: ${name}`);
    const dir = join(this.base, 'site', 'files');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    writeFileSync(join(dir, name), text, { mode: 0o644 });
  }

  /** The IRC server's log (opts.ircServer): what it wrote, one line per event, as it chose. */
  ircLog(): string {
    return join(this.base, 'ircd.log');
  }

  /** CPU seconds (user + system) its processes have used so far. */
  cpuSeconds(): number {
    return cpuSeconds(this.procs);
  }

  /** End every process this network started (by pid), remove its addresses and files. Safe to call twice. */
  async stop(): Promise<void> {
    for (const p of this.procs) if (p.child.pid !== undefined) await endPid(p.child.pid);
    this.procs.length = 0;
    for (const r of this.routers) await run(['ip', '-n', this.opts.ns, 'addr', 'del', `${r.addr}/32`, 'dev', 'eth0']);
    rmSync(this.base, { recursive: true, force: true });
  }

}

