/**
 * One package's life in a Debian chroot — install, remove, purge — with a twin run as the baseline.
 *
 * What a package's own files are is easy to check; what its maintainer scripts leave behind is not, because the
 * dependencies' scripts (adduser, deb-systemd-helper, tor's "Something made /var/lib/tor disappear") change the
 * tree too. So every variant runs twice, in two fresh overlays of the same pristine tree:
 *   - the shadow: a package with the same name, version and Depends, but no files and no maintainer scripts,
 *     built with the same writer. apt resolves and orders exactly as for the real one (same users, same uids);
 *   - the real package.
 * After install, the real tree must equal the shadow's plus exactly the paths the package ships; after purge,
 * the two trees must be equal, modulo apt's and dpkg's own state and logs (IGNORED below).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RenderedFile } from '../../src/files.ts';
import { debFileName, writeDeb, type DebMeta } from '../../src/pack/deb.ts';
import {
  POLICY_LOG,
  aptUpdate,
  diffTrees,
  freshChroot,
  listTree,
  type Chroot,
  type Listing,
  type RunResult,
} from '../util/chroot.ts';
import { buildDummyDeb } from './dummy.ts';

/** Where the .debs are put inside the chroot. */
export const INBOX = '/tmp/qig-install';

/**
 * Paths the tree comparisons skip, each with why. dpkg's database is checked through dpkg itself (`dpkg -s`,
 * `dpkg -L`, `--verify`) instead; its diversions, stat overrides and alternatives are NOT skipped, since a
 * package that leaves one behind has left something of its own.
 */
const IGNORED: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\/var\/lib\/dpkg\/(?!diversions$|statoverride$|alternatives(?:\/|$))/, "dpkg's package database"],
  [/^\/var\/lib\/apt\//, "apt's state (extended_states: auto/manual marks differ by design)"],
  [/^\/var\/cache\/apt\//, "apt's binary caches"],
  [/^\/var\/cache\/debconf\/[^/]+-old$/, "debconf's backups of its own database"],
  [/^\/var\/cache\/ldconfig\/aux-cache$/, "ldconfig's stat cache (inode numbers, times)"],
  [/^\/var\/log\//, 'logs (dpkg.log, apt/history.log, the policy-rc.d log)'],
  [new RegExp(`^${INBOX}(?:/|$)`), 'the .debs under test'],
];

export function ignored(path: string): boolean {
  return IGNORED.some(([re]) => re.test(path));
}

export interface Built {
  readonly meta: DebMeta;
  readonly files: readonly RenderedFile[];
  readonly fileName: string;
  readonly bytes: Uint8Array;
}

export function buildDeb(meta: DebMeta, files: readonly RenderedFile[], sourceDateEpoch: number): Built {
  return { meta, files, fileName: debFileName(meta), bytes: writeDeb(meta, files, { sourceDateEpoch }) };
}

/** The same name, version and Depends, but no files and no maintainer scripts. */
export function shadowOf(built: Built, sourceDateEpoch: number): Built {
  const { scripts: _scripts, ...meta } = built.meta;
  return buildDeb(meta, [], sourceDateEpoch);
}

/** Every path the package puts on disk: its files and all their parent directories. */
export function shippedPaths(files: readonly RenderedFile[]): Set<string> {
  const paths = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/').filter((x) => x !== '');
    for (let i = 1; i <= parts.length; i++) paths.add(`/${parts.slice(0, i).join('/')}`);
  }
  return paths;
}

const UNIT_DIR = '/usr/lib/systemd/system/';

/** Names of the unit files the package ships (`foo.service`, not drop-ins). */
export function shippedUnits(files: readonly RenderedFile[]): string[] {
  return files
    .filter((f) => f.kind === 'file' && f.path.startsWith(UNIT_DIR) && /^[^/]+\.(service|target|socket|timer|path)$/.test(f.path.slice(UNIT_DIR.length)))
    .map((f) => f.path.slice(UNIT_DIR.length))
    .sort();
}

/** Every `Key=value` setting of `key` in the package's units and drop-ins, with the unit it applies to. */
export function unitSettings(files: readonly RenderedFile[], key: string): Array<{ unit: string; value: string }> {
  const found: Array<{ unit: string; value: string }> = [];
  for (const f of files) {
    if (f.kind !== 'file' || !f.path.startsWith(UNIT_DIR)) continue;
    const rel = f.path.slice(UNIT_DIR.length);
    const unit = rel.includes('.d/') ? rel.slice(0, rel.indexOf('.d/')) : rel;
    for (const line of new TextDecoder().decode(f.data).split('\n')) {
      const m = /^\s*([A-Za-z]+)\s*=\s*(.*?)\s*$/.exec(line);
      if (m?.[1] === key && m[2] !== undefined && m[2] !== '') found.push({ unit, value: m[2] });
    }
  }
  return found;
}

/**
 * The directories systemd creates for a unit's StateDirectory=, CacheDirectory= and LogsDirectory=
 * (systemd.exec(5) "RuntimeDirectory=, StateDirectory=, ..."), with the user that owns them. RuntimeDirectory=
 * is left out: it lives on /run, a tmpfs that no package upgrade or purge needs to clean.
 */
export function runtimeStateDirs(files: readonly RenderedFile[]): Array<{ path: string; unit: string; user: string }> {
  const bases: ReadonlyArray<readonly [string, string]> = [
    ['StateDirectory', '/var/lib'],
    ['CacheDirectory', '/var/cache'],
    ['LogsDirectory', '/var/log'],
  ];
  const users = new Map(unitSettings(files, 'User').map((s) => [s.unit, s.value]));
  const dirs: Array<{ path: string; unit: string; user: string }> = [];
  for (const [key, base] of bases) {
    for (const s of unitSettings(files, key)) {
      for (const word of s.value.split(/\s+/)) {
        dirs.push({ path: `${base}/${word.split(':')[0] ?? word}`, unit: s.unit, user: users.get(s.unit) ?? 'root' });
      }
    }
  }
  return dirs;
}

/** What policy-rc.d was asked to start, one request per line, sorted (order differs between runs). */
export function policyRequests(c: Chroot): string[] {
  try {
    return readFileSync(c.path(POLICY_LOG), 'utf8').split('\n').filter((l) => l !== '').sort();
  } catch {
    return [];
  }
}

export interface Stage {
  readonly listing: Listing;
  readonly policy: readonly string[];
}

async function stage(c: Chroot): Promise<Stage> {
  return { listing: await listTree(c), policy: policyRequests(c) };
}

/** A fresh chroot with current indexes and the .debs in INBOX. */
export async function prepare(pristine: string, debs: readonly Pick<Built, 'fileName' | 'bytes'>[]): Promise<Chroot> {
  const c = await freshChroot(pristine);
  try {
    await aptUpdate(c);
    for (const d of debs) await c.write(join(INBOX, d.fileName), d.bytes);
  } catch (e) {
    await c.dispose();
    throw e;
  }
  return c;
}

export function installArgs(debs: readonly Pick<Built, 'fileName'>[]): string[] {
  return ['apt-get', 'install', '-y', ...debs.map((d) => join(INBOX, d.fileName))];
}

export interface ShadowRun {
  readonly installed: Stage;
  readonly purged: Stage;
  /** `dpkg-query -W` after install: what the dependencies resolved to. */
  readonly packages: string;
}

/** The baseline: dummy + shadow installed, then the shadow purged, in its own chroot (disposed at the end). */
export async function runShadow(pristine: string, real: Built, sourceDateEpoch: number): Promise<ShadowRun> {
  const shadow = shadowOf(real, sourceDateEpoch);
  const dummy = buildDummyDeb(sourceDateEpoch);
  const c = await prepare(pristine, [dummy, shadow]);
  try {
    await c.must(installArgs([dummy, shadow]));
    const installed = await stage(c);
    const packages = (await c.must(['dpkg-query', '-W'])).stdout;
    await c.must(['apt-get', 'purge', '-y', real.meta.package]);
    const purged = await stage(c);
    return { installed, purged, packages };
  } finally {
    await c.dispose();
  }
}

export function dpkgStatus(r: RunResult): string {
  return /^Status: (.*)$/m.exec(r.stdout)?.[1] ?? `(no status; dpkg -s exited ${String(r.code)})`;
}

export { diffTrees };
