/**
 * P8 of the benchmark: how long until the first I2P page, for a gateway qube that boots (the booted suite's
 * machinery, test/boot/lib/: the template of bench/boot.ts, systemd-nspawn in the lab's gateway namespace) on the
 * lab's private I2P network (test/net/lib/i2pnet.ts, real Debian 13 i2pd routers and an eepsite, in up), joined as
 * test/boot/privnet.test.ts joins it: one drop-in for i2pd and the routers' router.info as seeds.
 *
 *   subject, first boot:  a new gateway qube (a new, empty /rw): from systemd-nspawn's start to the first eepsite
 *                         page a client qube loads by its b32 (DNS → virtual IP → tinyproxy → i2pd → the network)
 *   subject, second boot: the same qube booted again: its /rw kept, so bind-dirs gives i2pd its router identity
 *                         and netDb back
 *   reference, first:     a bare i2pd, Debian 13's (the lab's root), the same config the gateway's i2pd runs (the
 *                         package's i2pd.conf with the same private-network lines on top; no console password), the
 *                         same seeds in a new data directory, started as a plain process in the network's
 *                         namespace (no qube boot, no firewall, no client path): from its start to the first page
 *                         through its own HTTP proxy
 *   reference, second:    the same i2pd started again on its kept data directory (identity and netDb)
 *
 * Both sides are polled the same way: a new curl every POLL_MS (each bounded by CURL_MAX_S, at most MAX_INFLIGHT
 * at once), the time taken when the first one returns the page. i2pd builds tunnels on its tunnel manager's
 * pace (the first page comes at about 7.5 + k·15 s, see issue 21), so the figure moves in steps; each side is the
 * median of P8_RUNS runs (after one discarded warm-up of each), in the order gateway first boot, second boot,
 * reference first start, second start.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chownSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PATHS } from '../src/render/gateway/common.ts';
import { EEPSITE_MARKER, gatewayI2pdDropIn, gatewaySeedFiles, I2pNet, netDbPath, privateNetOptions } from '../test/net/lib/i2pnet.ts';
import { Lab } from '../test/net/lib/lab.ts';
import { endPid, Proc, run, sleep } from '../test/net/lib/sh.ts';
import { UpMachines } from '../test/net/lib/upmachine.ts';
import { bootGateway, gatewayServices, shutdown, uidIn, type GatewayQube } from '../test/boot/lib/gateway.ts';
import { monotonicUs } from '../test/boot/lib/machine.ts';
import type { BootTemplate } from './boot.ts';
import { median } from './measure.ts';

export const P8_RUNS = 5;
const POLL_MS = 500;
const CURL_MAX_S = 8;
const MAX_INFLIGHT = 16;
const FIRST_PAGE_TIMEOUT_MS = 240_000;
const REF_PROXY = 'http://127.0.0.1:4444';

export interface FirstPageRun {
  readonly gatewayFirstMs: number;
  readonly gatewaySecondMs: number;
  readonly bareFirstMs: number;
  readonly bareSecondMs: number;
}

export interface FirstPageResult {
  readonly runs: readonly FirstPageRun[];
  readonly warmup: FirstPageRun;
  readonly versions: string;
  readonly i2pNetworkUpMs: number;
  readonly stageMs: number;
}

export interface FirstPageOptions {
  readonly template: BootTemplate;
  readonly cleanups: Array<() => Promise<void> | void>;
  readonly log: (msg: string) => void;
}

/**
 * Start a curl (argv from `curl`) every POLL_MS until one returns HTTP 200 with the marker; CLOCK_MONOTONIC (µs)
 * when it returned. Waits for the curls still running before it returns (they are bounded by CURL_MAX_S).
 */
export async function pollFirstPage(curl: readonly string[], what: string): Promise<number> {
  const t0 = Date.now();
  let at: number | undefined;
  let inflight = 0;
  let last = '';
  const pending: Array<Promise<void>> = [];
  while (at === undefined) {
    if (Date.now() - t0 > FIRST_PAGE_TIMEOUT_MS) {
      await Promise.all(pending);
      throw new Error(`${what}: no page within ${FIRST_PAGE_TIMEOUT_MS} ms; last: ${last}`);
    }
    if (inflight < MAX_INFLIGHT) {
      inflight++;
      pending.push(
        run([...curl], { timeoutMs: (CURL_MAX_S + 5) * 1000 }).then((r) => {
          const done = monotonicUs();
          inflight--;
          const atMark = r.stdout.lastIndexOf('\n@@');
          const status = atMark >= 0 ? r.stdout.slice(atMark + 3) : '';
          if (status === '200' && r.stdout.includes(EEPSITE_MARKER)) at ??= done;
          else last = `HTTP ${status} ${r.stderr.trim().slice(0, 200)}`;
        }),
      );
    }
    await sleep(POLL_MS);
  }
  await Promise.all(pending);
  return at;
}

/** The router identity kept in `keys` (its SHA-256), which the second boot or start must find again. */
function identity(keys: string, what: string): string {
  if (!existsSync(keys)) throw new Error(`P8: no router identity after ${what} (${keys})`);
  return createHash('sha256').update(readFileSync(keys)).digest('hex');
}

function curlArgv(prefix: readonly string[], extra: readonly string[], url: string): string[] {
  return [...prefix, 'curl', '-sS', '-m', String(CURL_MAX_S), '-o', '-', '-w', '\n@@%{http_code}', ...extra, url];
}

export async function firstPageFigures(opts: FirstPageOptions): Promise<FirstPageResult | { skipped: string }> {
  if (process.getuid?.() !== 0) return { skipped: 'needs root (systemd-nspawn, network namespaces)' };
  const t0 = Date.now();
  const { log, template: tpl } = opts;
  const t = tpl.template;
  const lab = await Lab.create({ sanctionedUsers: [], sanctionedUids: [uidIn(t.upper, 'debian-tor'), uidIn(t.upper, 'i2pd')], gateway: 'booted' });
  opts.cleanups.push(() => lab.destroy());
  const tn = Date.now();
  const net = await I2pNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 90_000 });
  opts.cleanups.push(() => net.stop());
  const i2pNetworkUpMs = Date.now() - tn;
  const url = `http://${net.b32}/`;
  const edits: Array<readonly [string, string | Uint8Array]> = [
    ['/etc/systemd/system/i2pd.service.d/zz-lab-privnet.conf', gatewayI2pdDropIn(PATHS.i2pdRuntimeConf, true)],
    ...gatewaySeedFiles(net),
  ];
  const lowers = [t.upper, tpl.pristine];
  const services = gatewayServices(tpl.release.config.qubes.service);

  // The bare i2pd: a machine of up's (as the network's routers), the package's config with the network's lines.
  const refBase = join(lab.scratch, 'p8-bare');
  mkdirSync(join(refBase, 'machines'), { recursive: true, mode: 0o755 });
  const machines = new UpMachines(lab.ns.up, refBase, lab.root, lab.scratch);
  const user = machines.account('i2pd');
  const conf = join(refBase, 'i2pd.conf');
  writeFileSync(conf, `${privateNetOptions()}${readFileSync(join(t.upper, PATHS.i2pdConf.slice(1)), 'utf8')}`);
  writeFileSync(join(refBase, 'tunnels.conf'), '');
  mkdirSync(join(refBase, 'tunnels.d'), { recursive: true, mode: 0o755 });
  const versions = `${tpl.versions}; the bare i2pd: ${(await run([...machines.argv('version'), 'dpkg-query', '-W', '-f', '${Version}', 'i2pd'])).stdout}`;
  const chownTree = (p: string): void => {
    chownSync(p, user.uid, user.gid);
    if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(join(p, e));
  };
  let bare: Proc | undefined;
  opts.cleanups.push(async () => {
    if (bare?.child.pid !== undefined) await endPid(bare.child.pid);
  });
  const bareStart = async (data: string, fresh: boolean): Promise<number> => {
    if (fresh) rmSync(data, { recursive: true, force: true });
    for (const ri of net.routerInfos()) {
      const p = join(data, 'netDb', netDbPath(ri));
      mkdirSync(join(p, '..'), { recursive: true, mode: 0o700 });
      writeFileSync(p, ri);
    }
    chownTree(data);
    const poll = pollFirstPage(curlArgv(machines.argv('curl'), ['-x', REF_PROXY], url), 'P8: the bare i2pd');
    const startedUs = monotonicUs();
    bare = new Proc('p8-bare-i2pd', [
      ...machines.argv('i2pd'), 'setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups',
      'env', `HOME=${data}`, 'i2pd', `--datadir=${data}`, `--conf=${conf}`, `--tunconf=${join(refBase, 'tunnels.conf')}`, `--tunnelsdir=${join(refBase, 'tunnels.d')}`,
      '--certsdir=/usr/share/i2pd/certificates', `--pidfile=${join(data, 'i2pd.pid')}`,
    ]);
    let at: number;
    try {
      at = await poll;
    } catch (e) {
      throw new Error(`${String(e)}\n${bare.diagnostics()}`);
    }
    await endPid(bare.pid);
    bare = undefined;
    return (at - startedUs) / 1000;
  };

  let current: GatewayQube | undefined;
  opts.cleanups.push(() => shutdown(current));
  const gatewayBoot = async (i: number, rw: string): Promise<number> => {
    const poll = pollFirstPage(curlArgv(lab.clientView(), [], url), `P8: gateway boot of run ${i}`);
    current = await bootGateway(lab, { name: `qig-bench-p8-${i}`, lowers, rw, services, edits, log: () => {} });
    const spawned = current.machine.spawnedAtUs;
    const at = await poll;
    await shutdown(current);
    current = undefined;
    return (at - spawned) / 1000;
  };

  const runs: FirstPageRun[] = [];
  let warmup: FirstPageRun | undefined;
  for (let i = 0; i <= P8_RUNS; i++) {
    const rw = join(t.base, `rw-p8-${i}`);
    const gwKeys = join(rw, 'bind-dirs/var/lib/i2pd/router.keys');
    const gatewayFirstMs = await gatewayBoot(i, rw);
    const gwIdentity = identity(gwKeys, 'the gateway\'s first boot');
    const gatewaySecondMs = await gatewayBoot(i, rw);
    if (identity(gwKeys, 'the gateway\'s second boot') !== gwIdentity) throw new Error('P8: the gateway\'s second boot has another router identity');
    const data = join(refBase, `data-${i}`);
    const bareFirstMs = await bareStart(data, true);
    const bareIdentity = identity(join(data, 'router.keys'), 'the bare i2pd\'s first start');
    const bareSecondMs = await bareStart(data, false);
    if (identity(join(data, 'router.keys'), 'the bare i2pd\'s second start') !== bareIdentity) throw new Error('P8: the bare i2pd\'s second start has another router identity');
    const r = { gatewayFirstMs, gatewaySecondMs, bareFirstMs, bareSecondMs };
    log(`P8 run ${i}${i === 0 ? ' (warm-up)' : ''}: gateway first boot ${(gatewayFirstMs / 1000).toFixed(1)} s, second ${(gatewaySecondMs / 1000).toFixed(1)} s; bare i2pd first start ${(bareFirstMs / 1000).toFixed(1)} s, second ${(bareSecondMs / 1000).toFixed(1)} s`);
    if (i === 0) warmup = r;
    else runs.push(r);
  }
  return { runs, warmup: warmup as FirstPageRun, versions, i2pNetworkUpMs, stageMs: Date.now() - t0 };
}

export function firstPageMedians(r: FirstPageResult): FirstPageRun {
  return {
    gatewayFirstMs: median(r.runs.map((x) => x.gatewayFirstMs)),
    gatewaySecondMs: median(r.runs.map((x) => x.gatewaySecondMs)),
    bareFirstMs: median(r.runs.map((x) => x.bareFirstMs)),
    bareSecondMs: median(r.runs.map((x) => x.bareSecondMs)),
  };
}
