/**
 * Applies rendered .sls files to a FakeDom0 the way Salt would: includes first, states in requisite order, a
 * failed requisite stops its dependents, `onchanges` runs a state only when a state it names changed something,
 * `onlyif` runs a shell command first. Refuses any key outside the accepted-keys table.
 *
 * Shell is real: `onlyif` commands and `cmd.script` scripts (from the formula's own files, as salt:// serves
 * them) run under /bin/sh with the stand-in qvm-* tools of qvm-tools.ts first on PATH, which act on the same
 * fake dom0 (saved to JSON before, read back after). `stateful: true` reads the script's last output line as
 * Salt's cmd states do (`changed=yes|no comment='...'`, or JSON).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { load } from 'js-yaml';
import { ACTION_KEYS, REQUISITE_MODULES, STATE_KEYS } from './accepted-keys.ts';
import { QubesError, type FakeDom0 } from './dom0-fake.ts';

type Args = Record<string, unknown>;

/** Salt's list-of-one-key-maps argument style → a map; anything else is an error. */
export function argMap(list: unknown, where: string): Args {
  if (!Array.isArray(list)) throw new Error(`${where}: arguments must be a list`);
  const out: Args = {};
  for (const item of list) {
    if (typeof item !== 'object' || item === null || Array.isArray(item) || Object.keys(item).length !== 1) {
      throw new Error(`${where}: each argument must be a one-key mapping, got ${JSON.stringify(item)}`);
    }
    const [k, v] = Object.entries(item)[0]!;
    if (k in out) throw new Error(`${where}: ${k} given twice`);
    out[k] = v;
  }
  return out;
}

export interface StateDecl {
  readonly id: string;
  readonly fn: string;
  readonly args: Args;
  readonly file: string;
}

export function readSls(files: Map<string, string>, state: string, seen = new Set<string>()): StateDecl[] {
  if (seen.has(state)) return [];
  seen.add(state);
  const path = `${state.replace(/\./g, '/')}.sls`;
  const text = files.get(path);
  if (text === undefined) throw new Error(`include of ${state}: no file ${path}`);
  const doc = load(text) as Record<string, unknown>;
  const decls: StateDecl[] = [];
  for (const [id, body] of Object.entries(doc)) {
    if (id === 'include') {
      for (const inc of body as string[]) decls.push(...readSls(files, inc, seen));
      continue;
    }
    const entries = Object.entries(body as Record<string, unknown>);
    if (entries.length !== 1) throw new Error(`${path} ${id}: one state function per id`);
    const [fn, list] = entries[0]!;
    const args = argMap(list, `${path} ${id} ${fn}`);
    checkKeys(path, id, fn, args);
    decls.push({ id, fn, args, file: path });
  }
  return decls;
}

const REQUISITE_KINDS = ['require', 'onchanges', 'watch', 'onfail'];

export function checkKeys(path: string, id: string, fn: string, args: Args): void {
  const allowed = STATE_KEYS[fn];
  if (allowed === undefined) throw new Error(`${path} ${id}: state ${fn} is not in the accepted-keys table`);
  for (const key of Object.keys(args)) {
    if (!allowed.includes(key)) throw new Error(`${path} ${id}: ${fn} does not accept "${key}"`);
  }
  for (const kind of REQUISITE_KINDS) {
    for (const req of (args[kind] as unknown[] | undefined) ?? []) {
      const [mod] = Object.keys(req as object);
      if (!REQUISITE_MODULES.includes(mod ?? '')) throw new Error(`${path} ${id}: bad requisite ${JSON.stringify(req)}`);
    }
  }
  if (fn === 'qvm.vm') {
    for (const [action, keys] of Object.entries(ACTION_KEYS)) {
      if (!(action in args)) continue;
      const inner = argMap(args[action], `${path} ${id} ${action}`);
      for (const key of Object.keys(inner)) {
        if (!keys.includes(key)) throw new Error(`${path} ${id}: qvm.vm ${action} does not accept "${key}"`);
      }
    }
  }
}

/** What a state did: changed something, ran without change, failed, or was not run (a requisite). */
export type Outcome = 'changed' | 'ok' | 'failed' | 'skipped';

/**
 * The order Salt runs `decls` in: each state after the states it requires or watches for changes (require,
 * onchanges), otherwise as written (Salt's default `state_auto_order`). A requisite on a missing id, or a cycle,
 * is an error, as it is for Salt.
 */
export function requisiteOrder(decls: readonly StateDecl[]): StateDecl[] {
  const byId = new Map(decls.map((d) => [d.id, d]));
  const out: StateDecl[] = [];
  const done = new Set<string>();
  const visit = (d: StateDecl, stack: string[]): void => {
    if (done.has(d.id)) return;
    if (stack.includes(d.id)) throw new Error(`requisite cycle at ${d.id}`);
    for (const kind of ['require', 'onchanges']) {
      for (const req of (d.args[kind] as Record<string, string>[] | undefined) ?? []) {
        const target = Object.values(req)[0]!;
        const dep = byId.get(target);
        if (dep === undefined) throw new Error(`${d.file} ${d.id}: requires missing id ${target}`);
        visit(dep, [...stack, d.id]);
      }
    }
    done.add(d.id);
    out.push(d);
  };
  for (const d of decls) visit(d, []);
  return out;
}

export interface ApplyResult {
  readonly outcomes: Map<string, Outcome>;
  /** Each state's comment, as `--show-output` would print it (notifications, stateful scripts, errors). */
  readonly comments: Map<string, string>;
}

export interface ApplyOptions {
  /** The formula tree (relative paths), for salt:// sources of cmd.script. */
  readonly files?: Map<string, string>;
  /** Stop at the first failure (qubesctl does not; the default is to go on, like Salt). */
  readonly failhard?: boolean;
}

/**
 * Runs states against the fake; `minion` is 'dom0' or a template name (for pkg states). A failed state's
 * dependents are skipped and the run goes on, as in Salt; the result says which failed.
 */
export function apply(dom0: FakeDom0, decls: readonly StateDecl[], minion: string, opts: ApplyOptions = {}): ApplyResult {
  const outcomes = new Map<string, Outcome>();
  const comments = new Map<string, string>();
  const byId = new Map(decls.map((d) => [d.id, d]));
  const visit = (d: StateDecl, stack: string[]): void => {
    if (outcomes.has(d.id)) return;
    if (stack.includes(d.id)) throw new Error(`requisite cycle at ${d.id}`);
    const targets = (kind: string): string[] => ((d.args[kind] as Record<string, string>[] | undefined) ?? []).map((r) => Object.values(r)[0]!);
    for (const target of [...targets('require'), ...targets('onchanges')]) {
      const dep = byId.get(target);
      if (dep === undefined) throw new Error(`${d.file} ${d.id}: requires missing id ${target}`);
      visit(dep, [...stack, d.id]);
    }
    if (targets('require').some((t) => outcomes.get(t) === 'failed' || outcomes.get(t) === 'skipped')) {
      outcomes.set(d.id, 'skipped');
      comments.set(d.id, 'One or more requisite failed');
      return;
    }
    const onchanges = targets('onchanges');
    if (onchanges.length > 0 && !onchanges.some((t) => outcomes.get(t) === 'changed')) {
      outcomes.set(d.id, 'ok');
      comments.set(d.id, 'State was not run because none of the onchanges reqs changed');
      return;
    }
    const onlyif = d.args['onlyif'];
    if (onlyif !== undefined && shell(dom0, String(onlyif)).code !== 0) {
      outcomes.set(d.id, 'ok');
      comments.set(d.id, 'onlyif condition is false');
      return;
    }
    const before = dom0.commands.length;
    try {
      const r = runState(dom0, d, minion, opts);
      const changed = r.changed ?? dom0.commands.length > before;
      outcomes.set(d.id, changed ? 'changed' : 'ok');
      comments.set(d.id, r.comment ?? '');
    } catch (e) {
      if (!(e instanceof QubesError)) throw e;
      outcomes.set(d.id, 'failed');
      comments.set(d.id, e.message);
      if (opts.failhard === true) throw e;
    }
  };
  for (const d of decls) visit(d, []);
  return { outcomes, comments };
}

/** Throws unless every state succeeded (changed or not): for runs that must go through. */
export function mustApply(dom0: FakeDom0, decls: readonly StateDecl[], minion: string, opts: ApplyOptions = {}): ApplyResult {
  const r = apply(dom0, decls, minion, opts);
  const bad = [...r.outcomes].filter(([, o]) => o === 'failed' || o === 'skipped');
  if (bad.length > 0) throw new Error(`states did not succeed: ${bad.map(([id, o]) => `${id} ${o}: ${r.comments.get(id) ?? ''}`).join('; ')}`);
  return r;
}

function runState(dom0: FakeDom0, d: StateDecl, minion: string, opts: ApplyOptions): { changed?: boolean; comment?: string } {
  const a = d.args;
  const name = String(a['name']);
  switch (d.fn) {
    case 'qvm.template_installed':
      dom0.templateInstalled(name, optionalString(a['fromrepo']), optionalString(a['pool']));
      return {};
    case 'qvm.clone':
      dom0.clone(String(a['source']), name);
      return {};
    case 'qvm.prefs': {
      const { name: _n, require: _r, onlyif: _o, ...prefs } = a;
      dom0.prefs(name, prefs);
      return {};
    }
    case 'qvm.vm': {
      // qvm.vm runs its actions in its own fixed order (ext_state_qvm.py `actions`), whatever order the file
      // gives, and stops at the first failure.
      if ('absent' in a) dom0.absent(name);
      if ('present' in a) dom0.present(name, argMap(a['present'], d.id));
      if ('prefs' in a) dom0.prefs(name, argMap(a['prefs'], d.id));
      if ('service' in a) for (const s of (argMap(a['service'], d.id)['enable'] as string[] | undefined) ?? []) dom0.setFeature(name, `service.${s}`, '1');
      if ('features' in a) for (const f of (argMap(a['features'], d.id)['enable'] as string[] | undefined) ?? []) dom0.setFeature(name, f, '1');
      if ('shutdown' in a) dom0.shutdown(name, false);
      // The qvm.start module returns at once for a running qube.
      if ('start' in a && !dom0.isRunning(name)) dom0.start(name);
      return {};
    }
    case 'pkg.installed': {
      for (const p of (a['pkgs'] as unknown[] | undefined) ?? []) {
        if (typeof p === 'string') {
          dom0.pkgInstalled(minion, p, 'debian');
          continue;
        }
        // `{name: version}`: satisfied only by that version; else apt-get install name=version, which no
        // repository has for our package.
        const [pkg, version] = Object.entries(p as Record<string, string>)[0]!;
        const have = dom0.get(minion).packages[pkg];
        if (have !== String(version)) throw new QubesError(`E: Version '${String(version)}' for '${pkg}' was not found (installed: ${have ?? 'none'})`);
      }
      for (const src of (a['sources'] as Record<string, string>[] | undefined) ?? []) {
        const [pkg, url] = Object.entries(src)[0]!;
        const file = dom0.saltFiles.get(url);
        if (file === undefined || file.package !== pkg) throw new Error(`pkg.installed: ${url} not found in the formula`);
        // Salt reads the file's version and installs it unless exactly that version is installed.
        dom0.pkgInstalled(minion, pkg, file.version, file.depends);
      }
      return {};
    }
    case 'pkg.purged':
      for (const p of (a['pkgs'] as string[] | undefined) ?? []) dom0.pkgPurged(minion, p);
      return {};
    case 'service.disabled':
      if (minion === 'dom0') throw new Error(`${d.id}: service.disabled is only modelled in a template`);
      dom0.serviceDisabled(minion, name);
      return {};
    case 'test.show_notification':
      return { changed: false, comment: String(a['text']) };
    case 'cmd.script': {
      const source = String(a['source']);
      const rel = source.replace(/^salt:\/\//, '');
      const text = opts.files?.get(rel);
      if (!source.startsWith('salt://') || text === undefined) throw new Error(`${d.id}: ${source} is not a file of the formula`);
      // name is "cmd arg1 arg2..." (cmd is not used): the arguments are the rest.
      const argv = name.split(' ').slice(1);
      const r = script(dom0, text, argv);
      if (r.code !== 0) throw new QubesError(`${d.id}: exit ${r.code}: ${r.stderr.trim()}`);
      if (a['stateful'] !== true) return { changed: true, comment: r.stdout };
      return stateful(d.id, r.stdout);
    }
    case 'file.managed': {
      if (minion !== 'dom0') {
        // In a template: install.sls's runtime drop-ins (contents and a mode, owned by root).
        if (typeof a['contents'] !== 'string') throw new Error(`${d.id}: file.managed without contents is not modelled`);
        dom0.templateFileManaged(minion, name, a['contents']);
        return {};
      }
      for (const key of ['contents', 'mode', 'user', 'group']) {
        if (typeof a[key] !== 'string') throw new Error(`${d.id}: file.managed needs ${key} as text here, got ${JSON.stringify(a[key])}`);
      }
      dom0.fileManaged(name, {
        contents: String(a['contents']),
        mode: String(a['mode']),
        user: String(a['user']),
        group: String(a['group']),
        ...(a['makedirs'] === true ? { makedirs: true } : {}),
      });
      return {};
    }
    case 'file.absent':
      if (minion !== 'dom0') throw new Error(`${d.id}: file.absent is only modelled in dom0`);
      dom0.fileAbsent(name);
      return {};
    default:
      throw new Error(`no fake for ${d.fn}`);
  }
}

function optionalString(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : String(v);
}

/** Salt's `_reinterpreted_state`: the last line of output, JSON or `key=value` words, must say `changed`. */
export function stateful(id: string, stdout: string): { changed: boolean; comment: string } {
  const last = stdout.trimEnd().split('\n').at(-1) ?? '';
  let data: Record<string, string> = {};
  try {
    data = JSON.parse(last) as Record<string, string>;
  } catch {
    for (const m of last.matchAll(/(\w+)=(?:'([^']*)'|"([^"]*)"|(\S*))/g)) data[m[1]!] = m[2] ?? m[3] ?? m[4] ?? '';
  }
  if (!('changed' in data)) throw new QubesError(`${id}: stateful output without "changed": ${last}`);
  return { changed: ['yes', 'true', '1'].includes(String(data['changed']).toLowerCase()), comment: data['comment'] ?? '' };
}

// ---------------------------------------------------------------------------------------------------------------
// Shell with the stand-in tools

let toolsDir: string | undefined;

/**
 * A directory with qvm-check, qvm-prefs, ... wrappers around the bundled qvm-tools.ts. Kept in the checkout's
 * .cache, named by a digest of the sources it is built from (so it is rebuilt when they change, and never
 * needs removing: worker processes end without an exit event); made in a temporary directory and renamed
 * into place, so test files that start together cannot see half of one.
 */
function tools(): string {
  if (toolsDir !== undefined) return toolsDir;
  const sources = ['qvm-tools.ts', 'dom0-fake.ts', 'apply.ts'].map((f) => readFileSync(join(import.meta.dirname, f)));
  const digest = createHash('sha256').update(Buffer.concat(sources)).update(process.execPath).digest('hex').slice(0, 16);
  const parent = join(import.meta.dirname, '..', '..', '.cache', 'qvm-tools');
  const dir = join(parent, digest);
  if (!existsSync(join(dir, 'qvm-start'))) {
    mkdirSync(parent, { recursive: true });
    const tmp = mkdtempSync(join(parent, '.new-'));
    const entry = join(tmp, 'entry.ts');
    writeFileSync(entry, `import { main } from ${JSON.stringify(join(import.meta.dirname, 'qvm-tools.ts'))};\nmain();\n`);
    buildSync({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: join(tmp, 'qvm-tools.mjs'), logLevel: 'error' });
    for (const tool of ['qvm-check', 'qvm-prefs', 'qvm-features', 'qubes-prefs', 'qvm-start', 'qvm-firewall']) {
      const p = join(tmp, tool);
      writeFileSync(p, `#!/bin/sh\n# stand-in for dom0's ${tool} (test/salt/qvm-tools.ts)\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(dir, 'qvm-tools.mjs'))} ${tool} "$@"\n`);
      chmodSync(p, 0o755);
    }
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another test file put it in place first
    }
  }
  toolsDir = dir;
  return dir;
}

interface ShellResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function withState(dom0: FakeDom0, argv: readonly string[]): ShellResult {
  const dir = tools();
  const state = join(mkdtempSync(join(tmpdir(), 'qig-dom0-')), 'dom0.json');
  writeFileSync(state, JSON.stringify(dom0.toJSON()));
  const [cmd, ...rest] = argv;
  const r = spawnSync(cmd!, rest, {
    encoding: 'utf8',
    timeout: 30_000,
    // Only the stand-ins and the basic tools: a real qvm-* (or anything else) on this machine is never reached.
    env: { PATH: `${dir}:/usr/bin:/bin`, QIG_FAKE_DOM0: state, LC_ALL: 'C' },
  });
  dom0.load(JSON.parse(readFileSync(state, 'utf8')) as Parameters<FakeDom0['load']>[0]);
  rmSync(join(state, '..'), { recursive: true, force: true });
  if (r.error !== undefined) throw r.error;
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** `sh -c COMMAND` as Salt runs onlyif/unless (python_shell=True). */
export function shell(dom0: FakeDom0, command: string): ShellResult {
  return withState(dom0, ['/bin/sh', '-c', command]);
}

/** A script as cmd.script runs it: a private copy, mode 0500, executed by its #! line with the arguments. */
export function script(dom0: FakeDom0, text: string, argv: readonly string[]): ShellResult {
  const path = join(mkdtempSync(join(tmpdir(), 'qig-script-')), 'script');
  writeFileSync(path, text);
  chmodSync(path, 0o500);
  try {
    return withState(dom0, [path, ...argv]);
  } finally {
    rmSync(join(path, '..'), { recursive: true, force: true });
  }
}
