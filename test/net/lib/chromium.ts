/**
 * Debian 13's Chromium for the lab's app qube: a layer over the oracles root (its overlay's upper dir after
 * `apt-get install chromium fonts-dejavu-core`), cached beside it as `chromium/` with a stamp, made on first use
 * (a few minutes of downloads) under the cache's build lock. The oracles root itself is not changed (every other
 * suite keeps its tree and its recipe).
 *
 * `screenshot()` runs it headless in a fresh machine of the client's namespace: this layer, then the app qube's own
 * files (resolv.conf with Qubes' 10.139.1.1/.2), then the oracles root, so it resolves and connects exactly as curl
 * in the app qube does: through the gateway.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { aptUpdate, cacheDir, cachedTree, ensureOracles, freshChroot, must } from '../../util/chroot.ts';
import { run, type RunResult } from './sh.ts';

export const CHROMIUM_PACKAGES = ['chromium', 'fonts-dejavu-core'] as const;
const RECIPE = `v1 chromium layer ${CHROMIUM_PACKAGES.join(',')}`;
const VIEW = join(import.meta.dirname, '..', '..', 'util', 'machine-view.sh');

/** The cached layer (a directory to put above the oracles root), made if missing or stale. */
export async function ensureChromiumLayer(log: (msg: string) => void = () => {}): Promise<string> {
  const oracles = await ensureOracles(log);
  const want = `${RECIPE}\n${readFileSync(join(cacheDir(), 'oracles.stamp'), 'utf8')}`;
  return cachedTree('chromium', want, log, async (tmp) => {
    const c = await freshChroot(oracles);
    try {
      await aptUpdate(c);
      await c.must(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...CHROMIUM_PACKAGES]);
      // Only what the install changed: the overlay's upper dir (whiteouts included), minus the chroot's own set-up.
      await must('cp', ['-a', '--one-file-system', `${c.upper}/.`, tmp]);
      for (const f of ['usr/sbin/policy-rc.d', 'etc/resolv.conf', 'etc/hosts']) await rm(join(tmp, f), { force: true });
    } catch (e) {
      await c.dispose().catch(() => {});
      throw e;
    }
    await c.dispose();
  });
}

export interface ChromiumRun {
  readonly result: RunResult;
  /** The page's DOM after load (--dump-dom). */
  readonly dom: string;
}

/**
 * Load `url` with headless Chromium in a fresh machine of namespace `ns` over `lowers` (topmost first, without
 * the layer and the root), write a PNG screenshot to `png` (a path under `share`), return the DOM.
 */
export async function chromiumLoad(opts: { ns: string; layer: string; lowers: readonly string[]; root: string; share: string; state: string; url: string; png: string; timeoutS?: number }): Promise<ChromiumRun> {
  const name = `chromium-${Date.now()}`;
  const runDir = join(opts.state, 'machines', `run-${name}`);
  mkdirSync(runDir, { recursive: true, mode: 0o755 });
  const home = join(opts.share, `${name}-home`);
  mkdirSync(home, { recursive: true });
  const t = opts.timeoutS ?? 60;
  const base = ['ip', 'netns', 'exec', opts.ns, 'unshare', '-m', '--propagation', 'private', 'sh', VIEW, name, opts.state, runDir, [opts.layer, ...opts.lowers, opts.root].join(':'), opts.share];
  const flags = [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-default-apps', '--disable-extensions', '--metrics-recording-only', '--no-default-browser-check',
    `--user-data-dir=${join(home, 'profile')}`, '--window-size=1024,640', `--timeout=${(t - 10) * 1000}`,
  ];
  const env = ['env', `HOME=${home}`, 'LANG=C.UTF-8'];
  const shot = await run([...base, ...env, 'chromium', ...flags, `--screenshot=${opts.png}`, opts.url], { timeoutMs: t * 1000 });
  const name2 = `${name}-dom`;
  const runDir2 = join(opts.state, 'machines', `run-${name2}`);
  mkdirSync(runDir2, { recursive: true, mode: 0o755 });
  const base2 = ['ip', 'netns', 'exec', opts.ns, 'unshare', '-m', '--propagation', 'private', 'sh', VIEW, name2, opts.state, runDir2, [opts.layer, ...opts.lowers, opts.root].join(':'), opts.share];
  const dom = await run([...base2, ...env, 'chromium', ...flags, '--dump-dom', opts.url], { timeoutMs: t * 1000 });
  return { result: shot, dom: dom.stdout };
}

/**
 * A page as a user gets it: for an onion page up to 3 loads (each a screenshot and a DOM, the screenshot removed first)
 * until the screenshot is written and the DOM has `marker`, each failed load logged with Chromium's net errors.
 * Debian 13's Chromium asks for https:// before http://, and an onion service that serves only port 80 closes the
 * rendezvous circuit on a stream to a port it does not serve (Tor's HiddenServiceAllowUnknownPorts 0), which can
 * cut the http:// try: net::ERR_EMPTY_RESPONSE once, then a reload loads the page (seen in two whole runs on the
 * lab's private Tor network). Other pages (not `.onion`) take one load.
 */
export async function chromiumLoadPage(opts: Parameters<typeof chromiumLoad>[0] & { marker: string; what: string; log: (msg: string) => void }): Promise<ChromiumRun> {
  const t0 = Date.now();
  const tries = new URL(opts.url).hostname.endsWith('.onion') ? 3 : 1;
  const load = async (): Promise<ChromiumRun> => {
    rmSync(opts.png, { force: true });
    return chromiumLoad(opts);
  };
  let r = await load();
  for (let n = 2; n <= tries && !(r.dom.includes(opts.marker) && existsSync(opts.png)); n++) {
    const err = [...r.result.stderr.matchAll(/net::ERR_[A-Z_]+/g)].map((m) => m[0]).join(', ') || `exit ${r.result.code}`;
    opts.log(`chromium: ${opts.what} load ${n - 1} of ${tries} failed (screenshot ${existsSync(opts.png) ? 'written' : 'missing'}, marker ${r.dom.includes(opts.marker) ? 'in' : 'not in'} the DOM; ${err}) ${Date.now() - t0} ms after the first; loading again`);
    r = await load();
  }
  return r;
}
