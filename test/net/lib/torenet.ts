/**
 * A private Tor network of Debian 13's tor (the cached oracles root), in one network namespace (the lab's `up`):
 * three directory authorities (keys made with tor-gencert) that are relays too, two middle relays, one exit, and a
 * client whose SocksPort (127.0.0.1:TOR_SOCKS_PORT in up) tests use; plus the "clearnet" the exit reaches: a web server
 * (Debian's python3 http.server) at WEB_ADDR and a DNS server (Debian's dnsmasq) at DNS_ADDR that answers WEB_NAME
 * with it, named by the exit's ServerDNSResolvConfFile. Every node has its own address on up's eth0
 * (172.31.3.N), so the gateway reaches them through its eth0.
 *
 * The options are Tor's testing-network ones (read from torproject/chutney's torrc templates; this config is our
 * own): `TestingTorNetwork 1` and the same `DirAuthority` lines everywhere; the authorities vote every 20 s and
 * give every relay the Guard, Exit and HSDir flags. See test/net/README.md "Private networks".
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { endPid, must, Proc, run, sleep, cpuSeconds } from './sh.ts';
import { UpMachines } from './upmachine.ts';

export const TOR_SUBNET = '172.31.3';
/** The client's SocksPort, on up's loopback. */
export const TOR_SOCKS_PORT = 29050;
/** The "clearnet" web server and its DNS (documentation addresses, RFC 5737 TEST-NET-2: only inside up). */
export const WEB_ADDR = '198.51.100.80';
export const DNS_ADDR = '198.51.100.53';
export const WEB_NAME = 'www.qig-clearnet.test';
/** More names of the web server, one set per client qube of a test (dns-isolation.test.ts): a name per lookup. */
export const MORE_NAMES: readonly string[] = ['a', 'b'].flatMap((c) => [1, 2, 3, 4].map((i) => `${c}${i}.qig-clearnet.test`));
/** What the web server serves: a test that sees it has fetched it through the exit. */
/** Its port: not 80, which up's recorder holds on every address (a wildcard listener). */
export const WEB_PORT = 8000;
export const WEB_MARKER = 'QIG-PRIVATE-CLEARNET';
/** What the onion service serves (a web server on up's loopback behind the onion node's service). */
export const ONION_MARKER = 'QIG-PRIVATE-ONION';
const ONION_WEB_PORT = 28002;
const OR_PORT = 5000;
const DIR_PORT = 7000;

export interface TorNode {
  readonly nick: string;
  readonly role: 'authority' | 'relay' | 'exit' | 'client' | 'onion';
  readonly addr: string;
  readonly dir: string;
}

export interface TorNetOptions {
  readonly ns: string;
  readonly scratch: string;
  readonly root: string;
  /** Bound on the whole start (keys, then the client's "Bootstrapped 100%"), ms. */
  readonly startTimeoutMs?: number;
  /** Bound from the client's bootstrap until the onion service's descriptor is on every HSDir, ms (its own: the
   * service uploads only once a consensus lists the relays as HSDirs, a voting round or two after the bootstrap). */
  readonly onionTimeoutMs?: number;
  /** Starts tried when the network does not form (NetworkDidNotForm): 1 unless given (a caller whose hook's bound
   * holds two starts, up to 2 × (startTimeoutMs + onionTimeoutMs), may give 2). */
  readonly attempts?: number;
  /** Where a failed start's reason goes before the next try (console.log unless given). */
  readonly log?: (msg: string) => void;
}

/**
 * The private network did not form within its bounds (the client did not bootstrap, or the onion service's
 * descriptor was not stored), every daemon still running. Seen once in a whole booted run (not in the same suite
 * alone): the client bootstrapped, then every node failed to pick relays for its circuits ("Failed to find node for
 * hop #2", "All routers are down or won't exit") for the next 180 s. The lab's network, not the gateway under test:
 * TorNet.start can try again (opts.attempts) with new keys and new directories, and logs why.
 */
class NetworkDidNotForm extends Error {}

/** Lines every node of the network has (the gateway's extra torrc file has the first and the DirAuthority lines). */
const TESTING = [
  'TestingTorNetwork 1',
  'AssumeReachable 1',
  'PathsNeededToBuildCircuits 0.67',
  'TestingDirAuthVoteExit *',
  'TestingDirAuthVoteGuard *',
  'TestingDirAuthVoteHSDir *',
  'TestingMinExitFlagThreshold 0',
  'V3AuthNIntervalsValid 2',
];

const AUTHORITY = [
  'AuthoritativeDirectory 1',
  'V3AuthoritativeDirectory 1',
  'TestingV3AuthInitialVotingInterval 20',
  'TestingV3AuthInitialVoteDelay 4',
  'TestingV3AuthInitialDistDelay 4',
  'V3AuthVotingInterval 20',
  'V3AuthVoteDelay 4',
  'V3AuthDistDelay 4',
];

/** The one file the gateway's Tor gets (in torrc.d, the README's place for the admin's lines). */
export function gatewayTorrc(dirAuthorities: readonly string[]): string {
  return ["# lab: the gateway's Tor joins the private Tor network (test/net/lib/torenet.ts)", 'TestingTorNetwork 1', ...dirAuthorities, ''].join('\n');
}

export class TorNet {
  readonly nodes: TorNode[];
  /** The DirAuthority lines of the network (known after start). */
  dirAuthorities: string[] = [];
  /** ms from the daemons' start to the client's "Bootstrapped 100%". */
  bootstrapMs = 0;
  /** The onion service's address (….onion), known once the onion node wrote it and its descriptor is stored. */
  onion = '';
  /** ms from the daemons' start until the onion service's descriptor was on every HSDir. */
  onionMs = 0;
  /** ms the keys took (tor-gencert, fingerprints). */
  keysMs = 0;
  private readonly procs: Proc[] = [];
  private web: Proc | undefined;
  private readonly base: string;
  private readonly machines: UpMachines;
  private readonly user: { uid: number; gid: number };

  private constructor(private readonly opts: TorNetOptions) {
    this.base = join(opts.scratch, 'tornet');
    this.machines = new UpMachines(opts.ns, this.base, opts.root, opts.scratch);
    this.user = this.machines.account('debian-tor');
    const node = (nick: string, role: TorNode['role'], i: number): TorNode => ({ nick, role, addr: `${TOR_SUBNET}.${i}`, dir: join(this.base, nick) });
    // Six relays: an onion service's connections need at least five (chutney's hs networks say so: a path of three,
    // the client's rendezvous point and a separate introduction point); with four (this lab until now) circuits
    // sometimes found no relay for a hop ("Failed to find node for hop #2") and a rendezvous failed (Chromium's
    // net::ERR_EMPTY_RESPONSE on the onion page), only in whole runs.
    this.nodes = [
      node('auth1', 'authority', 1), node('auth2', 'authority', 2), node('auth3', 'authority', 3), node('exit1', 'exit', 4), node('client1', 'client', 5), node('hs1', 'onion', 6),
      node('mid1', 'relay', 7), node('mid2', 'relay', 8),
    ];
  }

  get client(): TorNode {
    return this.nodes.find((n) => n.role === 'client') as TorNode;
  }

  /** The node that runs the onion service (a client of its own: no relay, no SocksPort). */
  get onionNode(): TorNode {
    return this.nodes.find((n) => n.role === 'onion') as TorNode;
  }

  get exit(): TorNode {
    return this.nodes.find((n) => n.role === 'exit') as TorNode;
  }

  static async start(opts: TorNetOptions): Promise<TorNet> {
    const attempts = opts.attempts ?? 1;
    for (let attempt = 1; ; attempt++) {
      const net = new TorNet(opts);
      try {
        await net.boot();
        return net;
      } catch (e) {
        await net.stop();
        if (!(e instanceof NetworkDidNotForm) || attempt >= attempts) throw e;
        (opts.log ?? console.log)(`tornet: start ${attempt} of ${attempts} failed, starting the network again from new keys: ${e.message}`);
      }
    }
  }

  private async tool(name: string, argv: readonly string[], input = ''): Promise<string> {
    const r = await run([...this.machines.argv(name), ...this.machines.asUser('debian-tor'), ...argv], { timeoutMs: 60_000, input });
    if (r.code !== 0) throw new Error(`tornet: ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  private async boot(): Promise<void> {
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 120_000);
    mkdirSync(join(this.base, 'machines'), { recursive: true, mode: 0o755 });
    for (const n of this.nodes) {
      await must(['ip', '-n', this.opts.ns, 'addr', 'add', `${n.addr}/32`, 'dev', 'eth0', 'nodad']);
      mkdirSync(join(n.dir, 'keys'), { recursive: true });
      this.own(n.dir);
      chmodSync(n.dir, 0o700);
    }
    for (const a of [WEB_ADDR, DNS_ADDR]) await must(['ip', '-n', this.opts.ns, 'addr', 'add', `${a}/32`, 'dev', 'eth0', 'nodad']);

    // Keys: each authority's v3 identity (tor-gencert) and every relay's fingerprint (tor --list-fingerprint).
    const t0 = Date.now();
    await Promise.all(
      this.nodes.filter((n) => n.role === 'authority').map(async (n) => {
        const k = join(n.dir, 'keys');
        await this.tool(`gencert-${n.nick}`, ['tor-gencert', '--create-identity-key', '--passphrase-fd', '0', '-m', '12', '-a', `${n.addr}:${DIR_PORT}`,
          '-i', join(k, 'authority_identity_key'), '-s', join(k, 'authority_signing_key'), '-c', join(k, 'authority_certificate')], '\n');
      }),
    );
    const lines: string[] = [];
    for (const n of this.nodes.filter((x) => x.role === 'authority')) {
      await this.tool(`fpr-${n.nick}`, ['tor', '--quiet', '--ignore-missing-torrc', '-f', '/nonexistent', '--list-fingerprint', '--DataDirectory', n.dir, '--ORPort', '1', '--Nickname', n.nick,
        '--DirAuthority', 'x 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff']);
      const fpr = readFileSync(join(n.dir, 'fingerprint'), 'utf8').trim().split(/\s+/)[1];
      const v3 = /^fingerprint ([0-9A-F]{40})$/m.exec(readFileSync(join(n.dir, 'keys', 'authority_certificate'), 'utf8'))?.[1];
      if (fpr === undefined || v3 === undefined) throw new Error(`tornet: no fingerprint or v3 identity for ${n.nick}`);
      lines.push(`DirAuthority ${n.nick} orport=${OR_PORT} no-v2 v3ident=${v3} ${n.addr}:${DIR_PORT} ${fpr}`);
    }
    this.dirAuthorities = lines;
    this.keysMs = Date.now() - t0;

    // The clearnet: DNS (dnsmasq: the one name, nothing else, no upstream) and the web server.
    const site = join(this.base, 'site');
    mkdirSync(site, { recursive: true, mode: 0o755 });
    writeFileSync(join(site, 'index.html'), `<html><body>${WEB_MARKER}</body></html>\n`);
    this.procs.push(new Proc('clearnet-dns', [...this.machines.argv('dns'), 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${DNS_ADDR}`, '--except-interface=lo', `--address=/${WEB_NAME}/${WEB_ADDR}`, ...MORE_NAMES.map((n) => `--address=/${n}/${WEB_ADDR}`), '--user=dnsmasq', '--pid-file=', '--log-facility=-', '--log-queries']));
    const onionSite = join(this.base, 'onion-site');
    mkdirSync(onionSite, { recursive: true, mode: 0o755 });
    writeFileSync(join(onionSite, 'index.html'), `<html><body>${ONION_MARKER}</body></html>\n`);
    this.procs.push(new Proc('onion-web', [...this.machines.argv('onion-web'), ...this.machines.asUser('nobody'), 'python3', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', onionSite, String(ONION_WEB_PORT)]));
    this.web = new Proc('clearnet-web', [...this.machines.argv('web'), 'python3', '-m', 'http.server', '--bind', WEB_ADDR, '--directory', site, String(WEB_PORT)]);
    this.procs.push(this.web);

    for (const n of this.nodes) {
      writeFileSync(join(n.dir, 'torrc'), this.torrc(n));
      if (n.role === 'exit') writeFileSync(join(n.dir, 'resolv.conf'), `nameserver ${DNS_ADDR}\n`);
      this.own(n.dir);
      chmodSync(n.dir, 0o700);
    }
    const t1 = Date.now();
    for (const n of this.nodes) {
      this.procs.push(new Proc(`tor-${n.nick}`, [...this.machines.argv(n.nick), ...this.machines.asUser('debian-tor'), 'tor', '-f', join(n.dir, 'torrc'), '--ignore-missing-torrc']));
    }
    const log = join(this.client.dir, 'notice.log');
    while (!(existsSync(log) && readFileSync(log, 'utf8').includes('Bootstrapped 100%'))) {
      const dead = this.procs.find((p) => p.exited !== undefined);
      if (dead !== undefined) throw new Error(`tornet: ${dead.name} exited ${JSON.stringify(dead.exited)}\n${dead.diagnostics()}\n${this.logs()}`);
      if (Date.now() > deadline) throw new NetworkDidNotForm(`tornet: the client did not bootstrap within the bound\n${this.logs()}`);
      await sleep(250);
    }
    this.bootstrapMs = Date.now() - t1;
    // The onion service's descriptor stored on the HSDirs (every relay here; counted as one upload a relay) before anyone asks: once a gateway's Tor
    // that asked too early did not reach the site for 120 s (a client does not soon ask again an HSDir it asked).
    const host = join(this.onionNode.dir, 'onion', 'hostname');
    const info = join(this.onionNode.dir, 'info.log');
    const uploads = (): number => (existsSync(info) ? readFileSync(info, 'utf8').split('Uploading hidden service descriptor: finished with status 200').length - 1 : 0);
    const relays = this.nodes.filter((n) => n.role !== 'client' && n.role !== 'onion').length;
    const onionDeadline = Date.now() + (this.opts.onionTimeoutMs ?? 180_000);
    while (!existsSync(host) || uploads() < relays) {
      const dead = this.procs.find((p) => p.exited !== undefined);
      if (dead !== undefined) throw new Error(`tornet: ${dead.name} exited ${JSON.stringify(dead.exited)}\n${dead.diagnostics()}\n${this.logs()}`);
      if (Date.now() > onionDeadline) {
        const hs = existsSync(info) ? readFileSync(info, 'utf8').split('\n').filter((l) => /descriptor|HSDir|hs_service|consensus/i.test(l)).slice(-40).join('\n') : '(no info.log)';
        throw new NetworkDidNotForm(`tornet: the onion service's descriptor was stored ${uploads()} times (want ${relays}) within ${(this.opts.onionTimeoutMs ?? 180_000) / 1000} s of the bootstrap\n--- hs1 info.log (descriptor lines) ---\n${hs}\n${this.logs()}`);
      }
      await sleep(250);
    }
    this.onion = readFileSync(host, 'utf8').trim();
    this.onionMs = Date.now() - t1;
  }

  private torrc(n: TorNode): string {
    const l = [
      `# ${n.nick}: a ${n.role} of the lab's private Tor network (test/net/lib/torenet.ts)`,
      ...TESTING,
      `DataDirectory ${n.dir}`,
      'RunAsDaemon 0',
      `Nickname ${n.nick}`,
      'ShutdownWaitLength 0',
      `Log notice file ${join(n.dir, 'notice.log')}`,
      'SafeLogging 0',
      `Address ${n.addr}`,
      `OutboundBindAddress ${n.addr}`,
      ...this.dirAuthorities,
    ];
    if (n.role === 'client') {
      l.push(`SocksPort 127.0.0.1:${TOR_SOCKS_PORT}`);
    } else if (n.role === 'onion') {
      l.push('SocksPort 0', `HiddenServiceDir ${join(n.dir, 'onion')}`, `HiddenServicePort 80 127.0.0.1:${ONION_WEB_PORT}`, `Log info file ${join(n.dir, 'info.log')}`);
    } else {
      l.push('SocksPort 0', `ORPort ${n.addr}:${OR_PORT}`, `DirPort ${n.addr}:${DIR_PORT}`, `ContactInfo ${n.nick}@qig-lab.test`);
    }
    if (n.role === 'authority') l.push(...AUTHORITY);
    if (n.role === 'authority' || n.role === 'relay') l.push('ExitRelay 0', 'ExitPolicy reject *:*');
    if (n.role === 'exit') {
      l.push('ExitRelay 1', 'ExitPolicyRejectPrivate 0', 'ExitPolicy accept *:*', `ServerDNSResolvConfFile ${join(n.dir, 'resolv.conf')}`, 'ServerDNSDetectHijacking 0', 'ServerDNSAllowNonRFC953Hostnames 1');
    }
    return `${l.join('\n')}\n`;
  }

  private own(dir: string): void {
    const walk = (p: string): void => {
      chownSync(p, this.user.uid, this.user.gid);
      if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    };
    walk(dir);
  }

  /** The web server's request lines so far, with the peer address each came from (python's http.server log). */
  webRequests(): Array<{ peer: string; line: string }> {
    return (this.web?.err ?? '')
      .split('\n')
      .map((l) => /^(\S+) - - \[[^\]]*\] "([^"]*)"/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ peer: m[1] ?? '', line: m[2] ?? '' }));
  }

  /** curl in a fresh machine of the namespace through the client's SocksPort (names resolved by the exit). */
  async fetch(url: string, maxS = 15): Promise<{ status: string; body: string; err: string }> {
    const r = await run([...this.machines.argv('curl'), 'curl', '-sS', '-m', String(maxS), '--socks5-hostname', `127.0.0.1:${TOR_SOCKS_PORT}`, '-o', '-', '-w', '\n@@%{http_code}', url], { timeoutMs: (maxS + 5) * 1000 });
    const at = r.stdout.lastIndexOf('\n@@');
    return { status: at >= 0 ? r.stdout.slice(at + 3) : '', body: at >= 0 ? r.stdout.slice(0, at) : r.stdout, err: r.stderr };
  }

  logs(): string {
    return this.nodes
      .map((n) => {
        const f = join(n.dir, 'notice.log');
        return `--- ${n.nick} (${n.role}, ${n.addr}) notice.log ---\n${existsSync(f) ? readFileSync(f, 'utf8').slice(-1500) : '(no log)'}`;
      })
      .join('\n');
  }

  /** CPU seconds (user + system) its processes have used so far. */
  cpuSeconds(): number {
    return cpuSeconds(this.procs);
  }

  /** End every process this network started (by pid), remove its addresses and files. Safe to call twice. */
  async stop(): Promise<void> {
    for (const p of this.procs) if (p.child.pid !== undefined) await endPid(p.child.pid);
    this.procs.length = 0;
    for (const a of [...this.nodes.map((n) => n.addr), WEB_ADDR, DNS_ADDR]) await run(['ip', '-n', this.opts.ns, 'addr', 'del', `${a}/32`, 'dev', 'eth0']);
    rmSync(this.base, { recursive: true, force: true });
  }
}
