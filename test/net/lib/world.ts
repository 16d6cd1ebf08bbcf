/**
 * One gateway build running in one lab, and the switches the tests flip: which Tor runs (the real one from
 * the packaged unit, the recorder standing where the packaged torrc says Tor listens, or none), which I2P
 * router (the real i2pd from Debian's unit and our drop-in, a recorder standing where the router listens, or
 * none), and whether dnsmasq and tinyproxy (from the packaged units) run. Each test states the world it needs
 * with `use(...)`, so tests do not depend on each other's order.
 *
 * Every other unit the packaged target wants (a helper such as the DNS TCP relay) has no switch: it is started
 * from its unit once the firewall is in, as systemd would start it, and runs for the World's whole life. So are
 * the published services' listeners (Accept=yes sockets): their connections run the lab's stand-in for Qubes'
 * qrexec-client-vm (tools/qrexec-client-vm, on a layer over the gateway's /usr/bin), which talks to the stand-in
 * for dom0 and the service qube (tools/qrexec-dom0.py) that a test starts in the lab's `svc` namespace.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROUTERS } from '../../../src/config/routers.ts';
import { PATHS } from '../../../src/render/gateway/common.ts';
import { A, Lab, type UpEvent } from './lab.ts';
import { buildGatewayDeb, Gateway } from './gateway.ts';
import type { Proc } from './sh.ts';

export type Mode = 'real' | 'recorder' | 'off';

export interface WorldState {
  readonly tor: Mode;
  readonly router: Mode;
  readonly dnsmasq: boolean;
  readonly tinyproxy: boolean;
}

export const UNIT = {
  tor: 'qubes-i2p-gateway-tor.service',
  dnsmasq: 'qubes-i2p-gateway-dnsmasq.service',
  tinyproxy: 'qubes-i2p-gateway-tinyproxy.service',
  i2pd: 'i2pd.service',
  lockdown: 'qubes-i2p-gateway-lockdown.service',
  // Forwarding off (the layer below our tables). The lab applies its sysctl file itself before anything starts
  // (lib/lab.ts, as this unit leaves a real gateway); the unit is run by the tests of that layer.
  noForward: 'qubes-i2p-gateway-no-forward.service',
  target: 'qubes-i2p-gateway.target',
  // Router i2pd with per-client destinations: each client's own proxy (started by the tests of that, clientProxies()).
  clientProxies: 'qubes-i2p-gateway-client-proxies.service',
} as const;

/** The only change to a packaged command line: Tor's network is one unreachable bridge inside the lab. */
export const TOR_NO_NETWORK = ['--UseBridges', '1', '--Bridge', `${A.up4}:9`];

export const ROUTER_BANNER = 'I2P-RECORDER';

/**
 * The config input of the tests of the shared HTTP path (the virtual IP -> tinyproxy -> the router's one proxy): the
 * Java router's and `i2p.clientDestinations: shared`. Router i2pd's default, a destination per client, has its own
 * tests (client-destinations.test.ts), with the real i2pd its per-client proxies need.
 */
export const SHARED_DESTINATION = { i2p: { clientDestinations: 'shared' } } as const;

export interface Listen {
  readonly host: string;
  readonly port: number;
}

export class World {
  readonly lab: Lab;
  readonly gw: Gateway;
  readonly routerUser: string;
  readonly torUser = 'debian-tor';
  /** Where the packaged torrc makes Tor listen. */
  readonly transPort: Listen | undefined;
  readonly dnsPort: Listen | undefined;
  /** Where the router's HTTP proxy listens (i2pd: from the packaged i2pd.conf; Java router: its defaults). */
  readonly routerHttp: Listen;
  readonly routerConsole: Listen;
  /** Units the packaged target wants that no switch here controls: they run the whole time. */
  readonly helpers: readonly string[];
  /** The published services' listener sockets the target wants (started like the helpers). */
  readonly sockets: readonly string[];
  /** Appended to the real Tor's command line: its network is none (TOR_NO_NETWORK) unless a test gives it one. */
  torExtraArgs: readonly string[] = TOR_NO_NETWORK;
  private state: WorldState = { tor: 'off', router: 'off', dnsmasq: false, tinyproxy: false };
  private torRec: { proc: Proc; log: string } | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarting: Promise<void> = Promise.resolve();
  /** The router's restarts the lab served for the systemctl stand-in's `try-restart` (serveRestarts). */
  routerRestarts = 0;
  private routerRec: { proc: Proc; log: string } | undefined;

  private constructor(lab: Lab, gw: Gateway) {
    this.lab = lab;
    this.gw = gw;
    const config = gw.config;
    const router = ROUTERS[config.i2p.router];
    this.routerUser = router.user;
    const torrc = readPkg(lab, PATHS.torrc);
    this.transPort = torrc === undefined ? undefined : torListen(torrc, 'TransPort');
    this.dnsPort = torrc === undefined ? undefined : torListen(torrc, 'DNSPort');
    const switched = new Set<string>([...Object.values(UNIT), router.unit]);
    const wants = gw.unit(UNIT.target).list('Unit', 'Wants').flatMap((w) => w.split(/\s+/)).filter((u) => u !== '');
    this.helpers = wants.filter((u) => !switched.has(u) && !u.endsWith('.socket'));
    this.sockets = wants.filter((u) => u.endsWith('.socket'));
    if (config.i2p.router === 'i2pd') {
      const ini = parseIni(readPkg(lab, PATHS.i2pdConf) ?? '');
      this.routerHttp = { host: ini.get('httpproxy.address') ?? '127.0.0.1', port: Number(ini.get('httpproxy.port') ?? 4444) };
      this.routerConsole = { host: ini.get('http.address') ?? '127.0.0.1', port: Number(ini.get('http.port') ?? 7070) };
    } else {
      // The Java router is not in Debian: its stand-in listens where the I2P package's defaults put it.
      this.routerHttp = { host: '127.0.0.1', port: router.httpProxyPort };
      this.routerConsole = { host: '127.0.0.1', port: router.exposable.console };
    }
  }

  /** Build the .deb from `configInput`, make a lab with it installed, enable the service, run the hook. */
  static async create(configInput: unknown, users: readonly string[] = []): Promise<World> {
    const built = buildGatewayDeb(configInput);
    const router = ROUTERS[built.config.i2p.router];
    const sanctioned = [...(built.config.tor.enabled ? ['debian-tor'] : []), router.user];
    // A published service lives in a service qube: the lab gets its namespace (loopback only, no netvm).
    const lab = await Lab.create({ sanctionedUsers: sanctioned, deb: built.debPath, users, serviceQube: built.config.publish.length > 0 });
    rmSync(dirname(built.debPath), { recursive: true, force: true });
    const world = new World(lab, new Gateway(lab, built.config));
    try {
      // The gateway provides network (Qubes makes it a ProxyVM) and has its qvm-service.
      lab.setProvidesNetwork(true);
      lab.setService(built.config.qubes.service, true);
      await world.loadFirewall();
      await world.startHelpers();
    } catch (e) {
      await world.destroy();
      throw e;
    }
    return world;
  }

  get config(): Gateway['config'] {
    return this.gw.config;
  }

  /** Fresh Qubes base tables, then the packaged hook, which must succeed. */
  async loadFirewall(): Promise<void> {
    await this.lab.resetFirewall();
    const r = await this.gw.runHook();
    if (r.code !== 0) throw new Error(`the packaged firewall hook failed (exit ${r.code}): ${r.stderr}`);
  }

  /**
   * Start the per-client proxies' program from its unit, with the lab's systemctl stand-in (tools/lab-systemctl:
   * `systemctl reload UNIT` sends SIGHUP to the process the lab started for UNIT, as Debian's i2pd unit's ExecReload=).
   */
  async startClientProxies(qubesdb?: Readonly<Record<string, string>>, files: Readonly<Record<string, string>> = {}): Promise<void> {
    const dir = join(this.lab.scratch, 'layer-systemctl');
    const bin = join(dir, 'usr/bin/systemctl');
    mkdirSync(dirname(bin), { recursive: true });
    copyFileSync(join(this.lab.scratch, 'tools/lab-systemctl'), bin);
    chmodSync(bin, 0o755);
    // `files`: package files rendered anew for the program (path in the gateway -> text), e.g. its facts with a
    // server address known only once the private network runs.
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    if (qubesdb !== undefined) {
      // What dom0 writes into the gateway's qubesdb (e.g. /vm-config/qubes-i2p-gateway-sam: the granted qube's
      // address), read through the lab's qubesdb-read stand-in (tools/fake-qubesdb-read).
      const db = join(dir, 'usr/bin/qubesdb-read');
      copyFileSync(join(this.lab.scratch, 'tools/fake-qubesdb-read'), db);
      chmodSync(db, 0o755);
      // The keys go into the machine's own /etc (a layer's etc/ would make /etc read-only for the program, which
      // writes i2pd's tunnels directory).
      const log = join(this.lab.scratch, 'logs', 'client-proxies-qubesdb.jsonl');
      writeFileSync(log, '');
      chmodSync(log, 0o666);
      const r = await this.lab.gwRun(['sh', '-c', 'mkdir -p /etc/qig-lab && cat > /etc/qig-lab/qubesdb.json'], { input: JSON.stringify({ log, keys: qubesdb }) });
      if (r.code !== 0) throw new Error(`qubesdb.json: ${r.stderr}`);
    }
    await this.gw.start(UNIT.clientProxies, [], [], { override: dir });
    this.serveRestarts();
  }

  /**
   * systemd's part of the systemctl stand-in's (tools/lab-systemctl) queued requests, left in the machine's
   * /run/qig-lab-units: `try-restart` of the router (stopped and started from its files again, if it runs); `start`
   * of an instance of a template (each client's HTTP front: started from the template's files, then
   * UNIT.started, or UNIT.failed with the reason, for the stand-in that waits for it); `stop` of one.
   */
  private serveRestarts(): void {
    if (this.restartTimer !== undefined) return;
    const dir = join(this.lab.scratch, 'run', 'qig-lab-units');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    this.restartTimer = setInterval(() => {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return;
      }
      for (const f of names) {
        const m = /^(.+)\.(restart|start|stop)$/.exec(f);
        if (m === null) continue;
        const unit = m[1] as string;
        const verb = m[2] as string;
        rmSync(join(dir, f), { force: true });
        this.restarting = this.restarting.then(async () => {
          if (verb === 'restart') {
            if (unit !== UNIT.i2pd || this.state.router !== 'real') return;
            await this.setRouter('off');
            await this.setRouter('real');
            this.routerRestarts++;
          } else if (verb === 'start') {
            try {
              if (!this.gw.isRunning(unit)) {
                const r = await this.gw.start(unit, []);
                await this.lab.waitPidListening(r.pid, 20_000, unit);
              }
              writeFileSync(join(dir, `${unit}.started`), '');
            } catch (e) {
              writeFileSync(join(dir, `${unit}.failed`), String(e).slice(0, 2000));
            }
          } else {
            await this.gw.stop(unit);
          }
        });
      }
    }, 300);
  }

  /** The layer that puts the qrexec-client-vm stand-in where Qubes installs the real one (qubes-core-qrexec). */
  qrexecLayer(): string {
    const dir = join(this.lab.scratch, 'layer-qrexec');
    const bin = join(dir, 'usr/bin/qrexec-client-vm');
    mkdirSync(dirname(bin), { recursive: true });
    copyFileSync(join(this.lab.scratch, 'tools/qrexec-client-vm'), bin);
    chmodSync(bin, 0o755);
    // Where Qubes' agent listens, /run/qubes/qrexec-agent: the stand-in for dom0 binds it there (qrexec-dom0.py).
    mkdirSync(join(this.lab.scratch, 'run/qubes'), { recursive: true, mode: 0o755 });
    return dir;
  }

  /** The helpers, each ready once its main process listens (their ports are theirs to know, not the World's). */
  private async startHelpers(): Promise<void> {
    for (const name of this.sockets) await this.gw.startSocket(name, { override: this.qrexecLayer() });
    for (const name of this.helpers) {
      const r = await this.gw.start(name, []);
      try {
        await this.lab.waitPidListening(r.pid, 20_000, name);
      } catch (e) {
        throw new Error(`${String(e)}\n${r.proc.diagnostics()}`);
      }
    }
  }

  async use(want: WorldState): Promise<void> {
    await this.restarting;
    // Stop first (a recorder and the real daemon share ports), then start.
    if (this.state.tor !== want.tor) await this.setTor('off');
    if (this.state.router !== want.router) await this.setRouter('off');
    if (this.state.dnsmasq && !want.dnsmasq) await this.gw.stop(UNIT.dnsmasq);
    if (this.state.tinyproxy && !want.tinyproxy) await this.gw.stop(UNIT.tinyproxy);
    this.state = { ...this.state, dnsmasq: this.state.dnsmasq && want.dnsmasq, tinyproxy: this.state.tinyproxy && want.tinyproxy };
    if (this.state.tor !== want.tor) await this.setTor(want.tor);
    if (this.state.router !== want.router) await this.setRouter(want.router);
    if (want.dnsmasq && !this.state.dnsmasq) await this.gw.start(UNIT.dnsmasq, [['udp', 53], ['tcp', 53]]);
    if (want.tinyproxy && !this.state.tinyproxy) await this.gw.start(UNIT.tinyproxy, [['tcp', this.config.tinyproxy.port]]);
    this.state = want;
    this.clearRecorderLogs();
  }

  private async setTor(mode: Mode): Promise<void> {
    if (mode === 'off') {
      await this.gw.stop(UNIT.tor);
      if (this.torRec) await this.lab.stop(this.torRec.proc);
      this.torRec = undefined;
    } else {
      if (this.transPort === undefined || this.dnsPort === undefined) throw new Error('this build has no torrc: Tor cannot run');
      const ready: Array<['tcp' | 'udp', number]> = [['tcp', this.transPort.port], ['udp', this.dnsPort.port]];
      if (mode === 'real') await this.gw.start(UNIT.tor, ready, this.torExtraArgs);
      else {
        const t = this.transPort;
        const d = this.dnsPort;
        this.torRec = await this.lab.startStandIn('tor-recorder', ['tor', '--trans', `${t.host}:${t.port}`, '--dns', `${d.host}:${d.port}`], this.torUser);
      }
    }
    this.state = { ...this.state, tor: mode };
  }

  private async setRouter(mode: Mode): Promise<void> {
    if (mode === 'off') {
      await this.gw.stop(UNIT.i2pd);
      if (this.routerRec) await this.lab.stop(this.routerRec.proc);
      this.routerRec = undefined;
    } else if (mode === 'real') {
      if (this.config.i2p.router !== 'i2pd') throw new Error('the Java router is not in Debian: only its stand-in runs here');
      await this.gw.start(UNIT.i2pd, [['tcp', this.routerHttp.port]]);
    } else {
      const h = this.routerHttp;
      const c = this.routerConsole;
      this.routerRec = await this.lab.startStandIn(
        'router-recorder',
        ['http-proxy', '--listen', `${h.host}:${h.port}`, '--listen', `${c.host}:${c.port}`, '--banner', ROUTER_BANNER],
        this.routerUser,
      );
    }
    this.state = { ...this.state, router: mode };
  }

  clearRecorderLogs(): void {
    for (const r of [this.torRec, this.routerRec]) if (r) truncateSync(join(this.lab.scratch, 'logs', r.log));
  }

  torEvents(): UpEvent[] {
    return this.torRec ? this.lab.readLog(this.torRec.log) : [];
  }

  routerEvents(): UpEvent[] {
    return this.routerRec ? this.lab.readLog(this.routerRec.log) : [];
  }

  /** A layer with the packaged firewall.nft broken the way a bad edit would break it. */
  brokenRulesetLayer(): string {
    const dir = join(this.lab.scratch, 'override-broken');
    const f = join(dir, PATHS.ruleset);
    mkdirSync(dirname(f), { recursive: true });
    const packaged = readPkg(this.lab, PATHS.ruleset) ?? '';
    writeFileSync(f, `${packaged}\n# an edit gone wrong\nthis is not an nft statement\n`);
    return dir;
  }

  async destroy(): Promise<void> {
    if (this.restartTimer !== undefined) clearInterval(this.restartTimer);
    await this.restarting.catch(() => undefined);
    await this.gw.stopAll();
    await this.lab.destroy();
  }
}

function readPkg(lab: Lab, path: string): string | undefined {
  try {
    return readFileSync(join(lab.pkgRoot, path), 'utf8');
  } catch {
    return undefined;
  }
}

/** `TransPort 0.0.0.0:9040 IsolateClientAddr` → {host, port}; only the first such line counts, like Tor. */
export function torListen(torrc: string, key: string): Listen | undefined {
  const line = torrc.split('\n').find((l) => l.trim().split(/\s+/)[0] === key);
  if (line === undefined) return undefined;
  const addr = line.trim().split(/\s+/)[1] ?? '';
  const m = /^(?:(\d+\.\d+\.\d+\.\d+):)?(\d+)$/.exec(addr);
  if (!m) throw new Error(`torrc: cannot read ${key} ${addr}`);
  return { host: m[1] ?? '127.0.0.1', port: Number(m[2]) };
}

/** i2pd's ini: `section.key` → value (keys before any section are bare). */
export function parseIni(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1] ?? '';
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const k = line.slice(0, eq).trim();
    out.set(section === '' ? k : `${section}.${k}`, line.slice(eq + 1).trim());
  }
  return out;
}
