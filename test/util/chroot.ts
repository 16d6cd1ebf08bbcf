/**
 * Debian roots for the tests, of the release the gateway targets (Debian 13, trixie, what a Qubes OS 4.3 user's
 * debian-13-minimal template is): made once with debootstrap into a cache, then handed out as fresh, throw-away
 * overlays so every test starts from the same tree and nothing a test does survives it.
 *
 * Two trees per release:
 *   - the pristine root (debootstrap --variant=minbase + systemd): what the install and boot tests install the
 *     package into, as into a minimal template;
 *   - the oracles root: the pristine root plus the daemons the gateway runs and the tools that judge it (tor,
 *     i2pd, tinyproxy, dnsmasq-base, nftables, python3, curl, dig, lintian): what the datapath suite runs its
 *     daemons from and lintian checks the .deb with, so the versions under test are the ones users get.
 *
 * Layout of the cache (`.cache/chroot-<codename>`, or `$QIG_CHROOT_CACHE/chroot-<codename>`):
 *   rootfs/          the pristine tree; only ever an overlay's lowerdir
 *   rootfs.stamp     what rootfs was made from (recipe, mirror); a different stamp rebuilds it
 *   oracles/, oracles.stamp   the oracles tree (a full copy of rootfs plus the packages) and its recipe
 *   apt/archives/    downloaded .debs, bind-mounted into every overlay (apt locks it), so reruns download nothing
 *   apt/lists/       apt's index files, bind-mounted likewise, so `apt-get update` only fetches what changed
 *
 * A fresh chroot is a tmpfs at /tmp/qig-chroot-<pid>-XXXXXX holding the overlay's upper and work dirs, the merged
 * tree mounted at `root/`, and inside it /proc, a read-only /sys, a minimal /dev and the two apt caches. Everything
 * is unmounted by `dispose()`, by a synchronous exit hook if the test process ends without it, and by a sweep at
 * the next start for mounts whose owning process is gone.
 *
 * The chroot uses the Debian mirror this machine's apt uses (read from /etc/apt/sources.list{,.d}, with this
 * machine's release replaced by the target's: the same archive serves both), never a host named here. `policy-rc.d` answers 101 so no package starts a daemon; `processes()` lets the tests check
 * that nothing runs inside anyway.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pidAlive } from './process.ts';

/** The release the gateway targets: Qubes OS 4.3's debian-13-minimal template. */
export const CODENAME = 'trixie';
/** Bump when the pristine tree's recipe changes, so cached trees are rebuilt. */
const RECIPE = 'v1 minbase include=systemd,systemd-sysv';
const INCLUDE = ['systemd', 'systemd-sysv'];
const MOUNT_PREFIX = '/tmp/qig-chroot-';

/**
 * The oracles root's packages: the daemons the gateway runs (from its Depends), and the tools the tests judge
 * it with. Installed with --no-install-recommends, as Salt's install.sls does not install recommends either.
 */
export const ORACLE_PACKAGES = [
  'tor', 'i2pd', 'tinyproxy', 'dnsmasq-base', 'nftables', 'python3',
  'curl', 'bind9-dnsutils', 'iproute2', 'util-linux', 'passwd', 'procps',
  'lintian', 'dpkg-dev',
] as const;
const ORACLES_RECIPE = `v1 oracles ${ORACLE_PACKAGES.join(',')}`;

const repoRoot = resolve(import.meta.dirname, '..', '..');

export function cacheDir(codename = CODENAME): string {
  const env = process.env['QIG_CHROOT_CACHE'];
  return join(env !== undefined && env !== '' ? resolve(env) : join(repoRoot, '.cache'), `chroot-${codename}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Running commands

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly input?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** Run a host command without a shell; async so vitest's timeouts still fire. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env === undefined ? process.env : { ...opts.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolvePromise({
        code: code ?? (signal !== null ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    if (child.stdin !== null) {
      child.stdin.on('error', () => {}); // the command may exit without reading its input
      child.stdin.end(opts.input);
    }
  });
}

export function describeRun(what: string, r: RunResult): string {
  const tail = (s: string): string => (s.length > 6000 ? `…${s.slice(-6000)}` : s);
  return `${what} exited ${String(r.code)}\n--- stdout\n${tail(r.stdout)}\n--- stderr\n${tail(r.stderr)}`;
}

/** Run and throw with the output unless it exits 0. */
export async function must(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(describeRun([cmd, ...args].join(' '), r));
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// The host's Debian sources

export interface AptSource {
  readonly types: readonly string[];
  readonly uris: readonly string[];
  readonly suites: readonly string[];
  readonly components: readonly string[];
  readonly signedBy?: string;
}

/** deb822 `.sources` stanzas (sources.list(5) "DEB822-STYLE FORMAT"); `Enabled: no` stanzas are skipped. */
export function parseDeb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      if (/^[ \t]/.test(line) && last !== undefined) {
        fields.set(last, `${fields.get(last) ?? ''}\n${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m === null) continue;
      last = (m[1] ?? '').toLowerCase();
      fields.set(last, (m[2] ?? '').trim());
    }
    if (!fields.has('types') || fields.get('enabled')?.toLowerCase() === 'no') continue;
    const words = (k: string): string[] => (fields.get(k) ?? '').split(/\s+/).filter((w) => w !== '');
    const signedBy = fields.get('signed-by');
    sources.push({
      types: words('types'),
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
      ...(signedBy !== undefined && !signedBy.includes('\n') ? { signedBy } : {}),
    });
  }
  return sources;
}

/** One-line `deb [opts] uri suite comp...` entries (sources.list(5) "ONE-LINE-STYLE FORMAT"). */
export function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (m === null) continue;
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[2] ?? '')?.[1];
    sources.push({
      types: [m[1] ?? 'deb'],
      uris: [m[3] ?? ''],
      suites: [m[4] ?? ''],
      components: (m[5] ?? '').split(/\s+/).filter((w) => w !== ''),
      ...(signedBy !== undefined ? { signedBy } : {}),
    });
  }
  return sources;
}

/** The codename of this machine's Debian release (os-release VERSION_CODENAME). */
export function hostCodename(osRelease = '/etc/os-release'): string {
  const m = /^VERSION_CODENAME=(\S+)$/m.exec(existsSync(osRelease) ? readFileSync(osRelease, 'utf8') : '');
  if (m?.[1] === undefined) throw new Error(`${osRelease} names no VERSION_CODENAME: cannot tell which Debian this is`);
  return m[1].replace(/^"|"$/g, '');
}

/**
 * The binary sources for Debian `codename` (its release, -updates and -security): the host's own Debian sources,
 * with the host's release renamed to `codename` where they differ (one archive serves every release).
 */
export function hostDebianSources(etcApt = '/etc/apt', codename = CODENAME, host = hostCodename()): AptSource[] {
  return debianSourcesFrom(readHostSources(etcApt), codename, host);
}

export function debianSourcesFrom(all: readonly AptSource[], codename: string, host: string): AptSource[] {
  const rename = (suite: string): string => (suite === host ? codename : suite.startsWith(`${host}-`) ? `${codename}${suite.slice(host.length)}` : suite);
  const ours = all
    .filter((s) => s.types.includes('deb'))
    .map((s) => ({ ...s, types: ['deb'], suites: s.suites.map(rename).filter((x) => x === codename || x.startsWith(`${codename}-`)) }))
    .filter((s) => s.suites.length > 0 && s.uris.length > 0);
  if (!ours.some((s) => s.suites.includes(codename))) {
    throw new Error(`no "deb ... ${host}" or "${codename}" source in /etc/apt/sources.list{,.d}: cannot tell which Debian mirror to use`);
  }
  return ours;
}

function readHostSources(etcApt: string): AptSource[] {
  const all: AptSource[] = [];
  const list = join(etcApt, 'sources.list');
  if (existsSync(list)) all.push(...parseOneLineSources(readFileSync(list, 'utf8')));
  const dir = join(etcApt, 'sources.list.d');
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      const text = (): string => readFileSync(join(dir, name), 'utf8');
      if (name.endsWith('.sources')) all.push(...parseDeb822Sources(text()));
      else if (name.endsWith('.list')) all.push(...parseOneLineSources(text()));
    }
  }
  return all;
}

/** The mirror debootstrap fetches `codename` from: the first URI of the host's source for that suite. */
export function hostMirror(sources: readonly AptSource[], codename = CODENAME): string {
  const s = sources.find((x) => x.suites.includes(codename));
  const uri = s?.uris[0];
  if (uri === undefined) throw new Error(`no mirror for ${codename}`);
  return uri;
}

/** The sources as one deb822 file for the chroot; `Signed-By` kept only where the key file exists there. */
export function chrootSourcesFile(sources: readonly AptSource[], keyExists: (path: string) => boolean): string {
  return sources
    .map((s) => {
      const lines = [`Types: ${s.types.join(' ')}`, `URIs: ${s.uris.join(' ')}`, `Suites: ${s.suites.join(' ')}`];
      lines.push(`Components: ${(s.components.length > 0 ? s.components : ['main']).join(' ')}`);
      if (s.signedBy !== undefined && s.signedBy.startsWith('/') && keyExists(s.signedBy)) lines.push(`Signed-By: ${s.signedBy}`);
      return `${lines.join('\n')}\n`;
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// The pristine tree

function stampText(mirror: string): string {
  return `${RECIPE}\nsuite ${CODENAME}\nmirror ${mirror}\n`;
}

export function requireRoot(): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error('the install tests need root (debootstrap, chroot, mount); run them as root, as .ci/run does');
  }
  if (!existsSync('/usr/sbin/debootstrap')) throw new Error('the install tests need debootstrap: apt-get install debootstrap');
}

/**
 * The pristine rootfs, made with debootstrap on first use (minutes) and reused after (instant). Built into a
 * temporary directory and renamed into place, so an interrupted build never leaves a half tree that looks done.
 */
export async function ensurePristine(log: (msg: string) => void = () => {}): Promise<string> {
  requireRoot();
  sweepStaleMounts();
  const sources = hostDebianSources();
  const mirror = hostMirror(sources);
  return cachedTree('rootfs', stampText(mirror), log, async (tmp) => {
    const started = Date.now();
    log(`debootstrap ${CODENAME} from ${mirror} into ${tmp} (first run: takes minutes)`);
    await must('debootstrap', [
      '--variant=minbase',
      `--include=${INCLUDE.join(',')}`,
      '--components=main',
      '--keyring=/usr/share/keyrings/debian-archive-keyring.gpg',
      CODENAME,
      tmp,
      mirror,
    ]);
    // The .debs debootstrap fetched are not part of the tree.
    await must('chroot', [tmp, 'apt-get', 'clean']);
    log(`debootstrap done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });
}

/**
 * A tree of the cache, `dir/NAME` with its recipe in `dir/NAME.stamp`: returned as it is when the stamp says
 * `want`, else built by `build` into a temporary directory beside it (one builder at a time, by the lock) and
 * renamed into place with the stamp written last, so an interrupted build never leaves a half tree that looks done.
 */
export async function cachedTree(name: string, want: string, log: (msg: string) => void, build: (tmp: string) => Promise<void>): Promise<string> {
  const dir = cacheDir();
  const tree = join(dir, name);
  const stamp = join(dir, `${name}.stamp`);
  const fresh = (): boolean => existsSync(tree) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want;
  if (fresh()) return tree;
  return withBuildLock(dir, log, async () => {
    if (fresh()) return tree; // another process built it while we waited
    const tmp = await mkdtemp(join(dir, `${name}.tmp-`));
    try {
      await build(tmp);
      await rm(tree, { recursive: true, force: true });
      await rm(stamp, { force: true });
      await rename(tmp, tree);
      await writeFile(stamp, want);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return tree;
  });
}

/**
 * One builder at a time per cache (two suites, or a suite and the bench, may start together): a lock directory
 * holding the builder's pid; a lock whose pid is gone is taken over. The others wait, then find the tree made.
 */
export async function withBuildLock<T>(dir: string, log: (msg: string) => void, build: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true });
  const lock = join(dir, 'build.lock');
  const deadline = Date.now() + 30 * 60_000;
  let said = false;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {
        // the holder is between mkdir and writing its pid
      }
      if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${lock}: held by process ${String(holder)} for 30 minutes; remove it if that process is gone`);
      if (!said) log(`waiting for process ${String(holder)}, which is building the test root in ${dir}`);
      said = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await build();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/**
 * The oracles tree: the pristine root plus ORACLE_PACKAGES, installed once in an overlay and copied out as a
 * full tree (first use: a minute or two of downloads; after: instant). Rebuilt when the pristine root or the
 * package list changes. policy-rc.d stays in it: nothing in it is ever started by a maintainer script.
 */
export async function ensureOracles(log: (msg: string) => void = () => {}): Promise<string> {
  const pristine = await ensurePristine(log);
  const want = `${ORACLES_RECIPE}\n${readFileSync(join(cacheDir(), 'rootfs.stamp'), 'utf8')}`;
  return cachedTree('oracles', want, log, async (tmp) => {
    const started = Date.now();
    log(`oracles root: installing ${ORACLE_PACKAGES.join(' ')} into a copy of the ${CODENAME} root`);
    const c = await freshChroot(pristine);
    try {
      await aptUpdate(c);
      await c.must(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...ORACLE_PACKAGES]);
      // The merged tree, without what is mounted into it (proc, sys, dev, the shared apt caches).
      await must('cp', ['-a', '--one-file-system', `${c.root}/.`, tmp]);
      for (const d of ['proc', 'sys', 'dev', 'var/cache/apt/archives', 'var/lib/apt/lists']) await mkdir(join(tmp, d), { recursive: true });
    } catch (e) {
      await c.dispose().catch(() => {});
      throw e;
    }
    await c.dispose();
    log(`oracles root done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });
}

/** `Package Version` of each named package installed in `tree` (dpkg's own database there). */
export async function packageVersions(tree: string, packages: readonly string[]): Promise<Map<string, string>> {
  const r = await must('chroot', [tree, 'dpkg-query', '-W', '-f', '${Package} ${Version}\n', ...packages]);
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const [name, version] = line.split(' ');
    if (name !== undefined && name !== '' && version !== undefined) out.set(name, version);
  }
  return out;
}

/** The versions under test, one line, for the start of a suite's output. */
export async function describeVersions(tree: string, packages: readonly string[]): Promise<string> {
  const v = await packageVersions(tree, packages);
  const osRelease = readFileSync(join(tree, 'etc/os-release'), 'utf8');
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? CODENAME;
  return `${pretty}: ${packages.map((p) => `${p} ${v.get(p) ?? '(not installed)'}`).join(', ')}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Mount bookkeeping

function mountPointsUnder(prefix: string): string[] {
  const points: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (point === prefix || point.startsWith(prefix)) points.push(point);
  }
  return points;
}

/** Unmount everything at and below `base`, deepest first; lazily if a mount is busy. Synchronous on purpose. */
function unmountAllSync(base: string): void {
  const points = mountPointsUnder(base).filter((p) => p === base || p.startsWith(`${base}/`));
  for (const p of points.sort((a, b) => b.length - a.length)) {
    if (spawnSync('umount', [p]).status !== 0) spawnSync('umount', ['-l', p]);
  }
}


/** Remove chroots left by test processes that died before cleaning up (their pid is in the directory name). */
export function sweepStaleMounts(): void {
  const bases = new Set<string>();
  for (const p of mountPointsUnder(MOUNT_PREFIX)) {
    const m = /^(\/tmp\/qig-chroot-(\d+)-[^/]+)/.exec(p);
    if (m?.[1] !== undefined && !pidAlive(Number(m[2]))) bases.add(m[1]);
  }
  for (const entry of readdirSync('/tmp')) {
    const m = /^qig-chroot-(\d+)-/.exec(entry);
    if (m !== null && !pidAlive(Number(m[1]))) bases.add(join('/tmp', entry));
  }
  for (const base of bases) {
    killProcessesUnderSync(join(base, 'root'));
    unmountAllSync(base);
    if (mountPointsUnder(base).length === 0) spawnSync('rm', ['-rf', '--one-file-system', base]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Processes inside a chroot

export interface ChrootProcess {
  readonly pid: number;
  readonly comm: string;
  readonly cmdline: string;
}

/** Host processes whose root directory is `root` (i.e. that run inside that chroot). */
export function processesRootedAt(root: string): ChrootProcess[] {
  const found: ChrootProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const r = readlinkSync(`/proc/${entry}/root`);
      if (r !== root && !r.startsWith(`${root}/`)) continue;
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      found.push({ pid: Number(entry), comm, cmdline });
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

function killProcessesUnderSync(root: string): ChrootProcess[] {
  const procs = processesRootedAt(root);
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return procs;
}

// ---------------------------------------------------------------------------------------------------------------
// A fresh chroot

export interface Chroot {
  /** The merged tree on the host, e.g. /tmp/qig-chroot-123-abc/root. */
  readonly root: string;
  /** The overlay's upper dir: everything changed since the pristine tree. */
  readonly upper: string;
  /** The pristine tree under the overlay. */
  readonly lower: string;
  /** Run a command inside, with a clean non-interactive environment. */
  exec(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Like exec, but throw with the output unless it exits 0. */
  must(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Host path of a path inside. */
  path(inside: string): string;
  /** Write a file inside (parents created). */
  write(inside: string, data: string | Uint8Array, mode?: number): Promise<void>;
  /** Processes running inside right now. */
  processes(): ChrootProcess[];
  /** Kill what still runs inside, unmount everything, delete the overlay. Safe to call twice. */
  dispose(): Promise<void>;
}

const CHROOT_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
  DEBCONF_NONINTERACTIVE_SEEN: 'true',
  APT_LISTCHANGES_FRONTEND: 'none',
};

/** Device nodes a package install needs: major/minor as in devices.txt of the kernel docs. */
const DEVICES: ReadonlyArray<readonly [string, number, number, number]> = [
  ['null', 1, 3, 0o666],
  ['zero', 1, 5, 0o666],
  ['full', 1, 7, 0o666],
  ['random', 1, 8, 0o666],
  ['urandom', 1, 9, 0o666],
  ['tty', 5, 0, 0o666],
];

/** Where policy-rc.d notes every request it refuses (a log: outside what the tests compare). */
export const POLICY_LOG = '/var/log/qig-policy-rc.d.log';

/**
 * Exits 101 ("action forbidden by policy", invoke-rc.d(8), also honoured by deb-systemd-invoke) so no
 * maintainer script starts a daemon, and logs each request so a test can tell which package asked.
 */
export const POLICY_RC_D = `#!/bin/sh
# install tests: no daemon may start in this chroot; note who asked
echo "$*" >> ${POLICY_LOG} 2>/dev/null || true
exit 101
`;

const APT_CONF = [
  '// install tests: quiet, non-interactive, retry flaky downloads',
  'Dpkg::Use-Pty "0";',
  'Acquire::Retries "3";',
  'APT::Get::Assume-Yes "true";',
  'Dpkg::Options { "--force-confdef"; "--force-confold"; };',
  '',
].join('\n');

// ---------------------------------------------------------------------------------------------------------------
// Overlays

/** A throw-away overlay of read-only trees: what a chroot (below) and a booted machine (test/boot/) run in. */
export interface Overlay {
  /** The tmpfs holding upper, work and the merged tree: /tmp/qig-chroot-<pid>-XXXXXX (swept when <pid> is gone). */
  readonly base: string;
  /** The merged tree, e.g. /tmp/qig-chroot-123-abc/root. */
  readonly root: string;
  /** Everything written since the lower trees. */
  readonly upper: string;
  /** The read-only trees under it, topmost first. */
  readonly lowers: readonly string[];
  /** Mount the merged tree at `root` again after `unmount()` (same upper: what was written is still there). */
  mount(): Promise<void>;
  /**
   * Unmount the merged tree and everything mounted inside it, keeping upper (e.g. to stack it under another
   * overlay, which must never happen while it is mounted and written). Throws if something is busy.
   */
  unmount(): Promise<void>;
  /** Kill what still runs inside, unmount everything, delete the tmpfs. Safe to call twice. */
  dispose(): Promise<void>;
}

/**
 * A tmpfs with an overlay of `lowers` (topmost first) mounted at its `root/`. Unmounted and deleted by
 * `dispose()`, by a synchronous exit hook if the process ends without it, and by the next sweep after a crash.
 */
export async function makeOverlay(lowers: readonly string[], size = '8g'): Promise<Overlay> {
  if (lowers.length === 0) throw new Error('an overlay needs at least one lower tree');
  const base = await mkdtemp(`${MOUNT_PREFIX}${String(process.pid)}-`);
  const root = join(base, 'root');
  const upper = join(base, 'upper');
  let disposed = false;
  const disposeSync = (): void => {
    if (disposed) return;
    disposed = true;
    killProcessesUnderSync(root);
    unmountAllSync(base);
    if (mountPointsUnder(base).length === 0) spawnSync('rm', ['-rf', '--one-file-system', base]);
  };
  process.once('exit', disposeSync);
  const overlay: Overlay = {
    base,
    root,
    upper,
    lowers,
    async mount() {
      await must('mount', ['-t', 'overlay', 'qig-chroot', '-o', `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${base}/work`, root]);
    },
    async unmount() {
      const points = mountPointsUnder(root).filter((p) => p === root || p.startsWith(`${root}/`));
      for (const p of points.sort((a, b) => b.length - a.length)) await must('umount', [p]);
    },
    async dispose() {
      process.removeListener('exit', disposeSync);
      disposeSync();
      const left = mountPointsUnder(base);
      if (left.length > 0) throw new Error(`could not unmount ${left.join(', ')}`);
    },
  };
  try {
    await must('mount', ['-t', 'tmpfs', '-o', `mode=0755,size=${size}`, 'qig-chroot', base]);
    for (const d of ['upper', 'work', 'root']) await mkdir(join(base, d));
    await overlay.mount();
  } catch (e) {
    await overlay.dispose().catch(() => {});
    throw e;
  }
  return overlay;
}

/** The apt caches every tree of `codename` shares (host dir, path inside), created on first use. */
export async function aptCacheDirs(codename = CODENAME): Promise<ReadonlyArray<readonly [string, string]>> {
  const cache = cacheDir(codename);
  const dirs = [
    [join(cache, 'apt', 'archives'), '/var/cache/apt/archives'],
    [join(cache, 'apt', 'lists'), '/var/lib/apt/lists'],
  ] as const;
  for (const [hostDir] of dirs) await mkdir(hostDir, { recursive: true });
  return dirs;
}

/** The host's Debian mirror as the tree's only apt source (the file the shared apt lists are named after). */
export async function writeAptSources(root: string, codename = CODENAME): Promise<void> {
  const sources = hostDebianSources('/etc/apt', codename);
  await rm(join(root, 'etc/apt/sources.list'), { force: true });
  const file = join(root, 'etc/apt/sources.list.d/debian.sources');
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, chrootSourcesFile(sources, (p) => existsSync(join(root, p))));
}

/**
 * Mount a fresh overlay of the pristine tree and prepare it: devices, /proc, /sys (read-only), apt caches,
 * the host's Debian sources, DNS, policy-rc.d. Does not run `apt-get update`; call `aptUpdate()`.
 */
export async function freshChroot(pristine: string, codename = CODENAME): Promise<Chroot> {
  const overlay = await makeOverlay([pristine]);
  const root = overlay.root;

  const chroot: Chroot = {
    root,
    upper: overlay.upper,
    lower: pristine,
    exec: (args, opts = {}) => run('chroot', [root, ...args], { ...opts, env: { ...CHROOT_ENV, ...(opts.env ?? {}) } }),
    async must(args, opts = {}) {
      const r = await chroot.exec(args, opts);
      if (r.code !== 0) throw new Error(describeRun(`(chroot) ${args.join(' ')}`, r));
      return r;
    },
    path: (inside) => join(root, inside),
    async write(inside, data, mode = 0o644) {
      const p = join(root, inside);
      await mkdir(join(p, '..'), { recursive: true });
      await writeFile(p, data);
      await chmod(p, mode);
    },
    processes: () => processesRootedAt(root),
    dispose: () => overlay.dispose(),
  };

  try {
    await must('mount', ['-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', join(root, 'proc')]);
    await must('mount', ['-t', 'sysfs', '-o', 'ro,nosuid,nodev,noexec', 'sysfs', join(root, 'sys')]);
    const dev = join(root, 'dev');
    await must('mount', ['-t', 'tmpfs', '-o', 'mode=0755,nosuid,size=16m', 'qig-dev', dev]);
    for (const [name, major, minor, mode] of DEVICES) {
      await must('mknod', ['-m', mode.toString(8), join(dev, name), 'c', String(major), String(minor)]);
    }
    await mkdir(join(dev, 'pts'));
    await mkdir(join(dev, 'shm'));
    await must('mount', ['-t', 'devpts', '-o', 'newinstance,ptmxmode=0666,mode=0620', 'devpts', join(dev, 'pts')]);
    await must('ln', ['-s', 'pts/ptmx', join(dev, 'ptmx')]);
    for (const [name, target] of [['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2']] as const) {
      await must('ln', ['-s', target, join(dev, name)]);
    }

    for (const [hostDir, inside] of await aptCacheDirs(codename)) {
      await mkdir(join(root, inside), { recursive: true });
      await must('mount', ['--bind', hostDir, join(root, inside)]);
    }

    await writeAptSources(root, codename);
    await chroot.write('/etc/apt/apt.conf.d/99qig-install-test', APT_CONF);
    await chroot.write('/usr/sbin/policy-rc.d', POLICY_RC_D, 0o755);
    await chroot.write(POLICY_LOG, '');
    for (const f of ['/etc/resolv.conf', '/etc/hosts']) {
      if (existsSync(f)) {
        await rm(join(root, f), { force: true }); // may be a dangling symlink into /run
        await chroot.write(f, await readFile(f));
      }
    }
  } catch (e) {
    await chroot.dispose().catch(() => {});
    throw e;
  }
  return chroot;
}

/** `apt-get update` inside, failing on any index that cannot be fetched. */
export async function aptUpdate(chroot: Chroot): Promise<void> {
  await chroot.must(['apt-get', '-q', '-o', 'APT::Update::Error-Mode=any', 'update']);
}

// ---------------------------------------------------------------------------------------------------------------
// File-system listings

export interface Entry {
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** sha256 of a regular file, the target of a symlink, '' otherwise. */
  readonly digest: string;
}

export type Listing = Map<string, Entry>;

/** Directories never listed: kernel file systems, the shared apt caches. */
const NOT_LISTED = new Set(['/proc', '/sys', '/dev', '/var/cache/apt/archives', '/var/lib/apt/lists']);

/** Digests of pristine files, by host path: the same in every overlay, so hashed once per process. */
const pristineDigests = new Map<string, string>();

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/**
 * Every path in the chroot (as seen from inside) with type, permissions, owner and content digest. A file
 * with no entry in the overlay's upper dir is the pristine file, so its digest is computed once and reused.
 */
export async function listTree(chroot: Pick<Chroot, 'root' | 'upper' | 'lower'>): Promise<Listing> {
  const { root, upper, lower } = chroot;
  const listing: Listing = new Map();
  const walk = async (inside: string): Promise<void> => {
    const names = (await readdir(join(root, inside))).sort();
    for (const name of names) {
      const p = inside === '/' ? `/${name}` : `${inside}/${name}`;
      if (NOT_LISTED.has(p)) continue;
      const host = join(root, p);
      const st = await lstat(host);
      let type: Entry['type'] = 'other';
      let digest = '';
      if (st.isDirectory()) type = 'dir';
      else if (st.isSymbolicLink()) {
        type = 'symlink';
        digest = await readlink(host);
      } else if (st.isFile()) {
        type = 'file';
        if (existsSync(join(upper, p))) {
          digest = await sha256File(host);
        } else {
          const key = join(lower, p);
          digest = pristineDigests.get(key) ?? (await sha256File(key));
          pristineDigests.set(key, digest);
        }
      }
      listing.set(p, { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, digest });
      if (type === 'dir') await walk(p);
    }
  };
  await walk('/');
  return listing;
}

export interface TreeDiff {
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
}

/** Paths only in `after`, only in `before`, and in both but different; `ignore(path)` drops a path from all three. */
export function diffTrees(before: Listing, after: Listing, ignore: (path: string) => boolean = () => false): TreeDiff {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const [p, e] of after) {
    if (ignore(p)) continue;
    const b = before.get(p);
    if (b === undefined) added.push(p);
    else if (b.type !== e.type || b.mode !== e.mode || b.uid !== e.uid || b.gid !== e.gid || b.digest !== e.digest) {
      changed.push(p);
    }
  }
  for (const p of before.keys()) if (!ignore(p) && !after.has(p)) removed.push(p);
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}
