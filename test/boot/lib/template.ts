/**
 * A template as Qubes' Salt installs the gateway into it: the release built in-process as the build does
 * (src/pipeline.ts), its install.sls performed state by state, in Salt's order, with apt inside the booted root.
 *
 * Networking, chosen so no daemon that may start ever has a network:
 *   1. download: a plain chroot of the pristine root (no init, policy-rc.d refuses every start) with the host's
 *      network runs `apt-get update` (the states' `refresh: true`) and `apt-get install --download-only` for
 *      every `pkg.installed` with `pkgs` of the formula, into the shared apt cache;
 *   2. install: the booted template (systemd-nspawn --private-network: loopback only) runs the states against
 *      that cache. A `refresh: true` there is recorded as done by step 1 (it cannot reach a mirror).
 * The package itself comes from the formula's files/ (salt:// is the formula folder copied into the root).
 * Nothing from the network is needed for it: if its Depends ask for a package the formula does not install
 * first, dpkg -i fails offline, as it would in a template without an update proxy. (Salt would try to resolve
 * such a dependency itself; the formula must not rely on that.)
 *
 * How each state function runs (Salt's salt/modules/aptpkg.py and salt/states/file.py, what this formula uses):
 *   - pkg.installed pkgs: only the missing packages (or other versions), `apt-get -q -y -o
 *     DPkg::Options::=--force-confold -o DPkg::Options::=--force-confdef install ...`, with
 *     --no-install-recommends when install_recommends is false; Salt's environment (DEBIAN_FRONTEND etc.);
 *   - pkg.installed sources: `dpkg -i --force-confold FILE` unless that version is installed;
 *   - pkg.purged: `apt-get -q -y purge ...` of those installed, nothing when none is;
 *   - file.managed with contents: written (parents made with makedirs) only when it differs, mode set;
 *   - service.disabled: `systemctl disable UNIT` when `systemctl is-enabled UNIT` says enabled (salt/modules/
 *     systemd_service.py `disabled`/`disable`), nothing otherwise;
 *   - test.show_notification: its text, recorded; with `onchanges`, only when a watched state changed something.
 * Any other state function or argument fails the test: the formula changed in a way this does not know yet.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseConfigValue } from '../../../src/config/load.ts';
import type { GatewayConfig } from '../../../src/config/schema.ts';
import type { RenderedFile } from '../../../src/files.ts';
import { readStaticSources } from '../../../src/io/static.ts';
import type { DebMeta } from '../../../src/pack/deb.ts';
import { build } from '../../../src/pipeline.ts';
import { renderDebPackage } from '../../../src/render/deb/package.ts';
import { aptUpdate, describeRun, freshChroot } from '../../util/chroot.ts';
import { readSls, requisiteOrder, type StateDecl } from '../../salt/apply.ts';
import { dummyDebsFor } from './qubes.ts';
import type { Machine } from './machine.ts';

export const SOURCE_DATE_EPOCH = 1_700_000_000;
/** salt:// inside the template: the formula folder, as the Salt file server would serve it. */
export const SALT_ROOT = '/srv/qig-salt';
const DUMMY_PATH = '/srv/qig-dummy';

/** Salt's DPKG_ENV_VARS (salt/modules/aptpkg.py), set for every apt and dpkg it runs. */
const SALT_ENV = ['APT_LISTBUGS_FRONTEND=none', 'APT_LISTCHANGES_FRONTEND=none', 'DEBIAN_FRONTEND=noninteractive', 'UCF_FORCE_CONFFOLD=1'];

export interface Release {
  readonly config: GatewayConfig;
  /** The packages' version (src/version.ts), as the build gives it. */
  readonly version: string;
  /** The formula's files by formula path (i2p-gateway/install.sls, i2p-gateway/files/<deb>). */
  readonly formula: Map<string, Uint8Array>;
  /** The template package as the formula carries it, with its rendered tree (for the checks). */
  readonly deb: { readonly fileName: string; readonly meta: DebMeta; readonly files: readonly RenderedFile[] };
}

export function configOf(input: unknown): GatewayConfig {
  const r = parseConfigValue(input);
  if (!r.ok) throw new Error(`test config refused: ${JSON.stringify(r.issues)}`);
  return r.config;
}

/** Build the release from a config value exactly as `npm run build` does (the pure pipeline). */
export function buildRelease(input: unknown, keyring?: Uint8Array): Release {
  const config = configOf(input);
  const sources = readStaticSources();
  const result = build({ config, sourceDateEpoch: SOURCE_DATE_EPOCH, sources, ...(keyring === undefined ? {} : { keyring }) });
  const formula = new Map<string, Uint8Array>();
  for (const o of result.outputs) if (o.path.startsWith('formula/')) formula.set(o.path.slice('formula/'.length), o.data);
  const { meta, files } = renderDebPackage(config, { sourceDateEpoch: SOURCE_DATE_EPOCH, statics: sources.deb, version: result.version, ...(keyring === undefined ? {} : { keyring }) });
  if (!formula.has(`i2p-gateway/files/${result.debFileName}`)) throw new Error(`the formula carries no ${result.debFileName}`);
  return { config, version: result.version, formula, deb: { fileName: result.debFileName, meta, files } };
}

function slsTexts(r: Release): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, data] of r.formula) if (p.endsWith('.sls')) out.set(p, new TextDecoder().decode(data));
  return out;
}

/** The states of `state` (an .sls with its includes) in the order Salt runs them. */
export function statesOf(r: Release, state: string): StateDecl[] {
  return requisiteOrder(readSls(slsTexts(r), state));
}

/** Put the formula (salt://) and the dummy Qubes networking package into a root, as files on disk. */
export function stageFormula(root: string, r: Release): void {
  for (const [p, data] of r.formula) {
    const f = join(root, SALT_ROOT, p);
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, data);
  }
  mkdirSync(join(root, DUMMY_PATH), { recursive: true });
  for (const dummy of dummyDebsFor(r.deb.meta.depends, SOURCE_DATE_EPOCH)) writeFileSync(join(root, DUMMY_PATH, dummy.fileName), dummy.bytes);
}

type Args = Record<string, unknown>;

function pkgTargets(args: Args, id: string): string[] {
  const pkgs = args['pkgs'];
  if (!Array.isArray(pkgs)) throw new Error(`${id}: pkgs must be a list`);
  return pkgs.map((p: unknown) => {
    if (typeof p === 'string') return p;
    if (typeof p === 'object' && p !== null && Object.keys(p).length === 1) {
      const [name, version] = Object.entries(p)[0]!;
      return `${name}=${String(version).replace(/^=/, '')}`;
    }
    throw new Error(`${id}: cannot read package ${JSON.stringify(p)}`);
  });
}

function refuseUnknown(id: string, fn: string, args: Args, known: readonly string[]): void {
  const unknown = Object.keys(args).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new Error(`${id}: ${fn} with ${unknown.join(', ')}: not performed by this test yet (test/boot/lib/template.ts)`);
}

/**
 * Step 1 (network, no init): download every package the formula's `pkgs` states install into the shared apt
 * cache, from a chroot of `pristine` with the dummy Qubes package in, as the template has the real one.
 */
export async function downloadFor(pristine: string, r: Release, state: string, log: (m: string) => void): Promise<void> {
  const c = await freshChroot(pristine);
  try {
    await aptUpdate(c);
    const dummies = dummyDebsFor(r.deb.meta.depends, SOURCE_DATE_EPOCH);
    for (const dummy of dummies) await c.write(`/tmp/${dummy.fileName}`, dummy.bytes);
    await c.must(['apt-get', '-q', '-y', 'install', ...dummies.map((d) => `/tmp/${d.fileName}`)]);
    const states = statesOf(r, state);
    // Packages the formula brings itself (`sources`), such as the version pin of our own: never from a mirror.
    const own = new Set(states.flatMap((d) => ((d.args['sources'] as Array<Record<string, string>> | undefined) ?? []).map((x) => Object.keys(x)[0] ?? '')));
    for (const d of states) {
      if (d.fn !== 'pkg.installed' || d.args['pkgs'] === undefined) continue;
      const targets = pkgTargets(d.args, d.id).filter((t) => !own.has(t.split('=')[0] ?? t));
      if (targets.length === 0) continue;
      const norec = d.args['install_recommends'] === false ? ['--no-install-recommends'] : [];
      const res = await c.exec(['apt-get', '-q', '-y', '--download-only', ...norec, 'install', ...targets]);
      if (res.code !== 0) throw new Error(describeRun(`${d.id}: apt-get --download-only`, res));
      log(`download for ${d.id}: ${targets.join(' ')}`);
    }
  } finally {
    await c.dispose();
  }
}

/**
 * Install the dummy qubes-core-agent-networking (with its Depends, from the cache), as a template that has the
 * networking agent before the formula runs (debian-13-xfce; a minimal template gets it from the formula's own
 * dependency list, from the Qubes repository, which is not reachable here). With a release whose package Depends on
 * qubes-core-qrexec (a config with `publish`), its dummy too: every Qubes template has qrexec.
 */
export async function installDummy(m: Machine, r?: Release): Promise<void> {
  const dummies = dummyDebsFor(r?.deb.meta.depends ?? [], SOURCE_DATE_EPOCH);
  await m.must(['apt-get', '-q', '-y', 'install', ...dummies.map((d) => `${DUMMY_PATH}/${d.fileName}`)], { env: SALT_ENV, timeoutMs: 300_000 });
}

export interface StateRun {
  readonly id: string;
  readonly fn: string;
  /** Only with `failures: 'record'`: the state failed (its command exited non-zero), or a requisite did. */
  readonly result?: 'failed' | 'skipped';
  /** What was run inside ('' when Salt would have found nothing to do). */
  readonly command: string;
  readonly stdout: string;
}

async function installedVersion(m: Machine, name: string): Promise<string | undefined> {
  const q = await m.exec(['dpkg-query', '-W', '-f', '${Status} ${Version}', name]);
  const out = q.stdout.trim();
  return q.code === 0 && out.startsWith('install ok installed ') ? out.slice('install ok installed '.length) : undefined;
}

/**
 * Step 2 (no network, booted): perform `state` of the release in the template, in Salt's order. A failing command
 * throws, unless `failures: 'record'`: then, as Salt does, the state is recorded as failed, and every state that
 * requires (or watches with onchanges) a failed or skipped one is skipped ("One or more requisite failed").
 */
export async function applyState(m: Machine, r: Release, state: string, log: (msg: string) => void, opts: { failures?: 'throw' | 'record' } = {}): Promise<StateRun[]> {
  const runs: StateRun[] = [];
  const changed = (id: string): boolean => runs.some((x) => x.id === id && x.command !== '');
  for (const d of statesOf(r, state)) {
    if (opts.failures === 'record') {
      const needs = ['require', 'onchanges'].flatMap((k) => ((d.args[k] as Array<Record<string, string>> | undefined) ?? []).map((x) => Object.values(x)[0] ?? ''));
      if (needs.some((id) => runs.some((x) => x.id === id && x.result !== undefined))) {
        runs.push({ id: d.id, fn: d.fn, command: '', stdout: 'One or more requisite failed', result: 'skipped' });
        log(`${d.id} (${d.fn}): skipped, a requisite failed`);
        continue;
      }
      const before = runs.length;
      try {
        await performOne(m, d, runs, changed, log);
      } catch (e) {
        runs.splice(before);
        runs.push({ id: d.id, fn: d.fn, command: '(failed)', stdout: String(e), result: 'failed' });
        log(`${d.id} (${d.fn}): failed: ${String(e).slice(0, 300)}`);
      }
      continue;
    }
    await performOne(m, d, runs, changed, log);
  }
  return runs;
}

async function performOne(m: Machine, d: StateDecl, runs: StateRun[], changed: (id: string) => boolean, log: (msg: string) => void): Promise<void> {
  // One pass (the body's `continue`s end the state, as they did in applyState's loop).
  for (let once = true; once; once = false) {
    const a = d.args;
    const watched = ((a['onchanges'] as Array<Record<string, string>> | undefined) ?? []).map((x) => Object.values(x)[0] ?? '');
    if (watched.length > 0 && !watched.some(changed)) {
      runs.push({ id: d.id, fn: d.fn, command: '', stdout: '' });
      log(`${d.id} (${d.fn}): not run, none of its onchanges changed`);
      continue;
    }
    if (d.fn === 'test.show_notification') {
      refuseUnknown(d.id, d.fn, a, ['text', 'onchanges', 'require']);
      runs.push({ id: d.id, fn: d.fn, command: '', stdout: String(a['text']) });
      log(`${d.id} (${d.fn}): ${String(a['text'])}`);
      continue;
    }
    if (d.fn === 'service.disabled') {
      refuseUnknown(d.id, d.fn, a, ['name', 'require']);
      const unit = String(a['name']);
      const state = (await m.exec(['systemctl', 'is-enabled', unit])).stdout.trim();
      if (state === 'enabled') {
        const argv = ['systemctl', 'disable', unit];
        const res = await m.must(argv, { env: SALT_ENV, timeoutMs: 60_000 });
        runs.push({ id: d.id, fn: d.fn, command: argv.join(' '), stdout: res.stdout + res.stderr });
      } else {
        runs.push({ id: d.id, fn: d.fn, command: '', stdout: state });
      }
      log(`${d.id} (${d.fn}): ${runs.at(-1)?.command || `nothing to do (${state})`}`);
      continue;
    }
    if (d.fn === 'pkg.purged') {
      refuseUnknown(d.id, d.fn, a, ['pkgs', 'require']);
      const present: string[] = [];
      for (const name of pkgTargets(a, d.id)) if ((await installedVersion(m, name)) !== undefined) present.push(name);
      if (present.length === 0) {
        runs.push({ id: d.id, fn: d.fn, command: '', stdout: '' });
      } else {
        const argv = ['apt-get', '-q', '-y', 'purge', ...present];
        const res = await m.must(argv, { env: SALT_ENV, timeoutMs: 300_000 });
        runs.push({ id: d.id, fn: d.fn, command: argv.join(' '), stdout: res.stdout + res.stderr });
      }
      log(`${d.id} (${d.fn}): ${runs.at(-1)?.command || 'nothing to do'}`);
      continue;
    }
    if (d.fn === 'file.managed') {
      refuseUnknown(d.id, d.fn, a, ['name', 'contents', 'mode', 'makedirs', 'user', 'group', 'require']);
      const name = String(a['name']);
      const contents = a['contents'];
      if (typeof contents !== 'string') throw new Error(`${d.id}: file.managed without contents`);
      if (((a['user'] ?? 'root') !== 'root') || ((a['group'] ?? 'root') !== 'root')) throw new Error(`${d.id}: owners other than root are not performed here`);
      const current = await m.exec(['cat', name]);
      if (current.code === 0 && current.stdout === contents) {
        runs.push({ id: d.id, fn: d.fn, command: '', stdout: '' });
        continue;
      }
      const mode = String(a['mode'] ?? '0644');
      const script = `${a['makedirs'] === true ? 'mkdir -p "$(dirname "$1")" && ' : ''}cat > "$1" && chmod "$2" "$1"`;
      const res = await m.must(['sh', '-c', script, 'sh', name, mode], { input: contents });
      runs.push({ id: d.id, fn: d.fn, command: `write ${name} (mode ${mode})`, stdout: res.stdout });
    } else if (d.fn === 'pkg.installed') {
      refuseUnknown(d.id, d.fn, a, ['pkgs', 'sources', 'refresh', 'install_recommends', 'require']);
      if (a['refresh'] === true) log(`${d.id}: refresh: true (apt-get update) was done by the download step; this template has no network`);
      if (a['pkgs'] !== undefined) {
        const missing: string[] = [];
        for (const t of pkgTargets(a, d.id)) {
          const [name, version] = t.split('=') as [string, string | undefined];
          const have = await installedVersion(m, name);
          if (have === undefined || (version !== undefined && have !== version)) missing.push(t);
        }
        if (missing.length === 0) {
          runs.push({ id: d.id, fn: d.fn, command: '', stdout: '' });
          continue;
        }
        const argv = [
          'apt-get', '-q', '-y', '-o', 'DPkg::Options::=--force-confold', '-o', 'DPkg::Options::=--force-confdef',
          ...(a['install_recommends'] === false ? ['--no-install-recommends'] : []), 'install', ...missing,
        ];
        const res = await m.must(argv, { env: SALT_ENV, timeoutMs: 600_000 });
        runs.push({ id: d.id, fn: d.fn, command: argv.join(' '), stdout: res.stdout + res.stderr });
      }
      for (const src of (a['sources'] as Array<Record<string, string>> | undefined) ?? []) {
        const [name, url] = Object.entries(src)[0]!;
        if (!url.startsWith('salt://')) throw new Error(`${d.id}: source ${url} is not in the formula`);
        const file = `${SALT_ROOT}/${url.slice('salt://'.length)}`;
        const want = (await m.must(['dpkg-deb', '-f', file, 'Version'])).stdout.trim();
        if ((await installedVersion(m, name)) === want) {
          runs.push({ id: d.id, fn: d.fn, command: '', stdout: '' });
          continue;
        }
        const argv = ['dpkg', '-i', '--force-confold', file];
        const res = await m.must(argv, { env: SALT_ENV, timeoutMs: 300_000 });
        runs.push({ id: d.id, fn: d.fn, command: argv.join(' '), stdout: res.stdout + res.stderr });
      }
    } else {
      throw new Error(`${d.id}: state ${d.fn} is not performed by this test yet (test/boot/lib/template.ts)`);
    }
    log(`${d.id} (${d.fn}): ${runs.at(-1)?.command || 'nothing to do'}`);
  }
}

/** Salt's environment, for the test's own apt and dpkg runs (remove, purge, an install by hand). */
export { SALT_ENV };
