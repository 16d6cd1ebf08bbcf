/**
 * The install/remove/purge suite for one package variant, as vitest `describe` blocks. install.test.ts calls
 * `lifecycle()` once per variant; see lifecycle.ts for the shadow baseline every stage is compared with.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, ensurePristine, listTree, type Chroot, type Listing } from '../util/chroot.ts';
import { buildDummyDeb, DUMMY_PACKAGE, DUMMY_VERSION } from './dummy.ts';
import {
  diffTrees,
  dpkgStatus,
  ignored,
  installArgs,
  policyRequests,
  prepare,
  runShadow,
  runtimeStateDirs,
  shippedPaths,
  shippedUnits,
  unitSettings,
  type Built,
  type ShadowRun,
} from './lifecycle.ts';

export const SOURCE_DATE_EPOCH = 1_700_000_000;

export const log = (msg: string): void => console.log(`[install] ${msg}`);
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

export async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t = Date.now();
  const r = await f();
  log(`${what}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return r;
}

let pristine: Promise<string> | undefined;

/** The pristine tree, made once per process (debootstrap only when the cache is cold). */
export function getPristine(): Promise<string> {
  pristine ??= timed('pristine chroot (debootstrap on a cold cache only)', () => ensurePristine(log));
  return pristine;
}

/** The sources `apt-cache policy` gives for the installed version of `name` (`/var/lib/dpkg/status` or a URI). */
async function installedFrom(c: Chroot, name: string): Promise<string[]> {
  const out = (await c.must(['apt-cache', 'policy', name])).stdout.split('\n');
  const star = out.findIndex((l) => /^ \*\*\* /.test(l));
  const sources: string[] = [];
  for (const line of out.slice(star + 1)) {
    const m = /^ {8}\s*-?\d+ (\S+)/.exec(line);
    if (star < 0 || m === null) break;
    sources.push(m[1] ?? '');
  }
  return sources;
}

export interface VariantChecks {
  /** Extra checks after install, with the chroot and the package. */
  afterInstall?(c: Chroot, pkg: Built): Promise<void>;
  afterRemove?(c: Chroot, pkg: Built): Promise<void>;
  afterPurge?(c: Chroot, pkg: Built): Promise<void>;
}

/** Install, check, remove, check, purge, check: one `describe` with one `it` per stage, run in order. */
export function lifecycle(name: string, build: () => Built, checks: VariantChecks = {}): void {
  describe(name, () => {
    let pkg: Built;
    let shadow: ShadowRun;
    let c: Chroot | undefined;
    let before: Listing = new Map();
    const dummy = buildDummyDeb(SOURCE_DATE_EPOCH);
    const chroot = (): Chroot => {
      if (c === undefined) throw new Error('no chroot: an earlier step failed');
      return c;
    };
    const files = () => pkg.files.filter((f) => f.kind === 'file' || f.kind === 'config');
    const conffiles = () => files().filter((f) => f.kind === 'config');

    beforeAll(async () => {
      pkg = build();
      log(`${name}: ${pkg.fileName}, ${String(pkg.files.length)} entries, Depends: ${pkg.meta.depends.join(', ')}`);
      const base = await getPristine();
      shadow = await timed(`${name}: shadow install + purge (baseline)`, () => runShadow(base, pkg, SOURCE_DATE_EPOCH));
      c = await timed(`${name}: fresh chroot + apt-get update`, () => prepare(base, [dummy, pkg]));
      before = await listTree(c);
    });

    afterAll(async () => {
      await c?.dispose();
    });

    it('installs with apt-get, dependencies from Debian', async () => {
      const r = await timed(`${name}: apt-get install`, () => chroot().exec(installArgs([dummy, pkg])));
      expect(r.code, describeRun('apt-get install', r)).toBe(0);
      expect(r.stderr, 'apt/dpkg warnings or errors').not.toMatch(/^(E:|W:|dpkg: (error|warning))/m);
      expect(dpkgStatus(await chroot().exec(['dpkg', '-s', pkg.meta.package]))).toBe('install ok installed');
      const dummyStatus = await chroot().must(['dpkg-query', '-W', '-f', '${Status} ${Version}', DUMMY_PACKAGE]);
      expect(dummyStatus.stdout).toBe(`install ok installed ${DUMMY_VERSION}`);
      // Every dependency is installed, and (besides the dummy) from the Debian mirror's indexes.
      for (const dep of pkg.meta.depends) {
        const names = dep.split('|').map((alt) => alt.trim().split(/[\s(:]/)[0] ?? '');
        let found: string | undefined;
        for (const n of names) {
          const q = await chroot().exec(['dpkg-query', '-W', '-f', '${Status}', n]);
          if (q.stdout === 'install ok installed') found ??= n;
        }
        expect(found, `dependency "${dep}" installed`).toBeDefined();
        if (found !== undefined && found !== DUMMY_PACKAGE) {
          expect(await installedFrom(chroot(), found), `where ${found} came from`).toContainEqual(expect.stringMatching(/^https?:\/\//));
        }
      }
      // Same resolution as the shadow (same Depends): the baseline is comparable.
      const packages = (await chroot().must(['dpkg-query', '-W'])).stdout;
      expect(packages).toBe(shadow.packages);
    });

    it('puts every file in place with the packaged type, mode, owner and contents', () => {
      const problems: string[] = [];
      for (const f of pkg.files) {
        const host = chroot().path(f.path);
        let st;
        try {
          st = lstatSync(host);
        } catch {
          problems.push(`${f.path}: missing`);
          continue;
        }
        const kindOk =
          f.kind === 'dir' ? st.isDirectory() : f.kind === 'symlink' ? st.isSymbolicLink() : st.isFile();
        if (!kindOk) problems.push(`${f.path}: not a ${f.kind}`);
        if (f.kind !== 'symlink' && (st.mode & 0o7777) !== f.mode) {
          problems.push(`${f.path}: mode ${(st.mode & 0o7777).toString(8)}, packaged ${f.mode.toString(8)}`);
        }
        if (st.uid !== 0 || st.gid !== 0) problems.push(`${f.path}: owner ${String(st.uid)}:${String(st.gid)}`);
        if (f.kind === 'symlink' && readlinkSync(host) !== f.target) problems.push(`${f.path}: link to ${readlinkSync(host)}`);
        if ((f.kind === 'file' || f.kind === 'config') && sha256(readFileSync(host)) !== sha256(f.data)) {
          problems.push(`${f.path}: contents differ from the package`);
        }
      }
      expect(problems).toEqual([]);
    });

    it('passes dpkg --verify and registers every /etc file as a conffile', async () => {
      const v = await chroot().exec(['dpkg', '--verify', pkg.meta.package]);
      expect(v.code, describeRun('dpkg --verify', v)).toBe(0);
      expect(v.stdout).toBe('');
      const q = await chroot().must(['dpkg-query', '-W', '-f', '${Conffiles}\n', pkg.meta.package]);
      const registered = q.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')
        .sort();
      const expected = conffiles()
        .map((f) => `${f.path} ${md5(f.data)}`)
        .sort();
      expect(registered).toEqual(expected);
    });

    it('adds exactly its own files: nothing else from its maintainer scripts, no service enabled or started', async () => {
      const after = await listTree(chroot());
      const d = diffTrees(shadow.installed.listing, after, ignored);
      const shipped = shippedPaths(pkg.files);
      expect(d.removed, 'paths removed by our install').toEqual([]);
      expect(d.changed, 'existing paths changed by our install').toEqual([]);
      expect(d.added.filter((p) => !shipped.has(p)), 'paths created by our maintainer scripts').toEqual([]);
      expect(policyRequests(chroot()), 'service start requests beyond those of the dependencies').toEqual(shadow.installed.policy);
      expect(chroot().processes(), 'processes running in the chroot (daemons started?)').toEqual([]);
      await checks.afterInstall?.(chroot(), pkg);
    });

    it('its units verify against the installed dependencies, and the users and groups they name exist', async () => {
      const units = shippedUnits(pkg.files);
      if (units.length > 0) {
        // --man=no: minbase has no man pages for Documentation= to find. A private tmpfs on /run, because
        // systemd-analyze leaves /run/systemd/systemd-units-load behind, which the purge comparison would see.
        const script = 'mount -t tmpfs qig-run /run && exec systemd-analyze verify --man=no "$@"';
        const v = await chroot().exec(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...units]);
        expect(v.code, describeRun('systemd-analyze verify', v)).toBe(0);
      }
      const missing: string[] = [];
      // A DynamicUser= unit's user is made by systemd as it starts (each client's HTTP front: qig-http-PORT).
      const dynamic = new Set(unitSettings(pkg.files, 'DynamicUser').filter((d) => d.value === 'yes').map((d) => d.unit));
      for (const [key, db] of [['User', 'passwd'], ['Group', 'group']] as const) {
        for (const { unit, value } of unitSettings(pkg.files, key)) {
          if (dynamic.has(unit)) continue;
          const q = await chroot().exec(['getent', db, value]);
          if (q.code !== 0) missing.push(`${unit}: ${key}=${value} does not exist after installing the package and its Depends`);
        }
      }
      expect(missing).toEqual([]);
    });

    it('a gateway run: creates the state directories its units declare (for the purge check)', async () => {
      for (const d of runtimeStateDirs(pkg.files)) {
        await chroot().must(['install', '-d', '-m', '0700', '-o', d.user, d.path]);
        await chroot().must(['sh', '-c', 'echo "state of a gateway run" > "$1/qig-run-state"', 'sh', d.path]);
        log(`${name}: simulated ${d.unit} state in ${d.path} (owner ${d.user})`);
      }
    });

    it('remove: keeps the conffiles (state rc), removes everything else it shipped', async () => {
      const policyBefore = policyRequests(chroot());
      const quieted = quietedUnits(pkg.files);
      const enablement = async (): Promise<string[]> =>
        Promise.all(quieted.map(async (u) => `${u} ${(await chroot().exec(['systemctl', 'is-enabled', u])).stdout.trim()}`));
      const linksBefore = enabledLinks(await listTree(chroot()));
      const stateBefore = await enablement();
      const r = await timed(`${name}: apt-get remove`, () => chroot().exec(['apt-get', 'remove', '-y', pkg.meta.package]));
      expect(r.code, describeRun('apt-get remove', r)).toBe(0);
      expect(dpkgStatus(await chroot().exec(['dpkg', '-s', pkg.meta.package]))).toBe('deinstall ok config-files');
      const dpkgL = await chroot().must(['dpkg-query', '-W', '-f', '${db:Status-Abbrev}', pkg.meta.package]);
      expect(dpkgL.stdout.trim()).toBe('rc');
      const problems: string[] = [];
      for (const f of conffiles()) {
        const host = chroot().path(f.path);
        if (!existsSync(host)) problems.push(`conffile ${f.path} removed`);
        else if (sha256(readFileSync(host)) !== sha256(f.data)) problems.push(`conffile ${f.path} changed`);
      }
      const kept = new Set(conffiles().map((f) => f.path));
      for (const f of pkg.files) {
        if (f.kind === 'dir' || kept.has(f.path)) continue;
        if (existsSync(chroot().path(f.path)) || isSymlink(chroot().path(f.path))) problems.push(`${f.path} still there`);
      }
      expect(problems).toEqual([]);
      expect(policyRequests(chroot()), 'service requests during remove').toEqual(policyBefore);
      expect(chroot().processes(), 'processes running in the chroot (daemons started?)').toEqual([]);
      // The removal changes nothing other packages own: the distribution's units our drop-ins kept quiet stay as
      // their packages (or the admin) left them, links and all. Keeping them off in a template is install.sls's
      // job (it disables them: test/salt, and test/boot after removal and reboot), not the package's.
      expect(quieted.length, 'units our drop-ins keep quiet').toBeGreaterThan(0);
      expect(enabledLinks(await listTree(chroot())), 'enabled units (wants/ links) after remove').toEqual(linksBefore);
      expect(await enablement(), 'systemctl is-enabled of the quieted units after remove').toEqual(stateBefore);
      await checks.afterRemove?.(chroot(), pkg);
    });

    it('purge: nothing of ours is left anywhere in the chroot', async () => {
      const policyBefore = policyRequests(chroot());
      const r = await timed(`${name}: apt-get purge`, () => chroot().exec(['apt-get', 'purge', '-y', pkg.meta.package]));
      expect(r.code, describeRun('apt-get purge', r)).toBe(0);
      const listFiles = await chroot().exec(['dpkg', '-L', pkg.meta.package]);
      expect(listFiles.code, 'dpkg -L after purge').not.toBe(0);
      const status = await chroot().exec(['dpkg', '-s', pkg.meta.package]);
      expect(status.code, 'dpkg -s after purge').not.toBe(0);

      const after = await listTree(chroot());
      // No path that the package shipped remains, unless it was there before the install.
      const leftovers = [...shippedPaths(pkg.files)].filter((p) => !before.has(p) && after.has(p));
      expect(leftovers, 'shipped paths left after purge').toEqual([]);
      // And the tree is exactly the shadow's after its purge (the shadow: the same files, no maintainer scripts):
      // no file created by our scripts, nothing of another package changed, its wants/ and rc?.d links included
      // (piuparts' "files disappeared after purge ... not owned").
      const d = diffTrees(shadow.purged.listing, after, ignored);
      expect(d.changed, 'paths changed after purge, compared with the baseline').toEqual([]);
      expect(d.added, 'paths added after purge, compared with the baseline').toEqual([]);
      expect(d.removed, 'paths removed after purge, compared with the baseline').toEqual([]);
      expect(enabledLinks(after), 'enabled units after purge').toEqual(enabledLinks(shadow.purged.listing));
      // Also where the comparison does not look (logs): the state a gateway run leaves.
      const state = runtimeStateDirs(pkg.files).map((s) => s.path).filter((p) => existsSync(chroot().path(p)));
      expect(state, 'run-time state left after purge').toEqual([]);
      expect(policyRequests(chroot()), 'service requests during purge').toEqual(policyBefore);
      expect(chroot().processes(), 'processes running in the chroot (daemons started?)').toEqual([]);
      await checks.afterPurge?.(chroot(), pkg);
    });
  });
}

/** Units of other packages our drop-ins (50-qubes-i2p-gateway.conf) configure (install.sls disables them in a template). */
export function quietedUnits(files: readonly { path: string }[]): string[] {
  return files
    .map((f) => /^\/usr\/lib\/systemd\/system\/([^/]+\.service)\.d\/50-qubes-i2p-gateway\.conf$/.exec(f.path)?.[1])
    .filter((u): u is string => u !== undefined && !u.startsWith('qubes-i2p-gateway'))
    .sort();
}

/** The units enabled in a tree, as the links in /etc/systemd/system/*.wants/ (and *.requires/) show them. */
function enabledLinks(listing: Listing): string[] {
  return [...listing.keys()].filter((p) => /^\/etc\/systemd\/system\/[^/]+\.(wants|requires)\/[^/]+$/.test(p)).sort();
}

function newlyEnabled(before: Listing, after: Listing): string[] {
  const was = new Set(enabledLinks(before));
  return enabledLinks(after).filter((p) => !was.has(p));
}

/**
 * What stays enabled after our removal because a dependency that stays installed enabled it: logrotate's daily
 * timer (tinyproxy depends on logrotate). Not a daemon, and no network; no service is in this list.
 */
const NEWLY_ENABLED_BY_DEPENDENCIES = ['/etc/systemd/system/timers.target.wants/logrotate.timer'];

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
