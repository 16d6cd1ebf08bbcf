/**
 * Applies rendered .sls files to a FakeDom0 the way Salt would: includes first, states in requisite order, a
 * failed requisite stops its dependents. Refuses any key outside the accepted-keys table.
 */
import { load } from 'js-yaml';
import { ACTION_KEYS, REQUISITE_MODULES, STATE_KEYS } from './accepted-keys.ts';
import type { FakeDom0 } from './dom0-fake.ts';

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

export function checkKeys(path: string, id: string, fn: string, args: Args): void {
  const allowed = STATE_KEYS[fn];
  if (allowed === undefined) throw new Error(`${path} ${id}: state ${fn} is not in the accepted-keys table`);
  for (const key of Object.keys(args)) {
    if (!allowed.includes(key)) throw new Error(`${path} ${id}: ${fn} does not accept "${key}"`);
  }
  for (const req of (args['require'] as unknown[] | undefined) ?? []) {
    const [mod] = Object.keys(req as object);
    if (!REQUISITE_MODULES.includes(mod ?? '')) throw new Error(`${path} ${id}: bad requisite ${JSON.stringify(req)}`);
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

/** Runs states against the fake; `minion` is 'dom0' or a template name (for pkg states). */
export function apply(dom0: FakeDom0, decls: readonly StateDecl[], minion: string): Map<string, 'ok' | 'failed' | 'skipped'> {
  const result = new Map<string, 'ok' | 'failed' | 'skipped'>();
  const byId = new Map(decls.map((d) => [d.id, d]));
  const visit = (d: StateDecl, stack: string[]): void => {
    if (result.has(d.id)) return;
    if (stack.includes(d.id)) throw new Error(`requisite cycle at ${d.id}`);
    for (const req of (d.args['require'] as Record<string, string>[] | undefined) ?? []) {
      const target = Object.values(req)[0]!;
      const dep = byId.get(target);
      if (dep === undefined) throw new Error(`${d.file} ${d.id}: requires missing id ${target}`);
      visit(dep, [...stack, d.id]);
      if (result.get(target) !== 'ok') {
        result.set(d.id, 'skipped');
        return;
      }
    }
    try {
      runState(dom0, d, minion);
      result.set(d.id, 'ok');
    } catch (e) {
      result.set(d.id, 'failed');
      throw e;
    }
  };
  for (const d of decls) visit(d, []);
  return result;
}

function runState(dom0: FakeDom0, d: StateDecl, minion: string): void {
  const a = d.args;
  const name = String(a['name']);
  switch (d.fn) {
    case 'qvm.template_installed':
      return dom0.templateInstalled(name, optionalString(a['fromrepo']), optionalString(a['pool']));
    case 'qvm.clone':
      return dom0.clone(String(a['source']), name);
    case 'qvm.prefs': {
      const { name: _n, require: _r, ...prefs } = a;
      return dom0.prefs(name, prefs);
    }
    case 'qvm.vm': {
      // qvm.vm runs its actions in its own fixed order, whatever order the file gives.
      if ('present' in a) dom0.present(name, argMap(a['present'], d.id));
      if ('prefs' in a) dom0.prefs(name, argMap(a['prefs'], d.id));
      if ('service' in a) for (const s of (argMap(a['service'], d.id)['enable'] as string[] | undefined) ?? []) dom0.setFeature(name, `service.${s}`, '1');
      if ('features' in a) for (const f of (argMap(a['features'], d.id)['enable'] as string[] | undefined) ?? []) dom0.setFeature(name, f, '1');
      return;
    }
    case 'pkg.installed': {
      for (const p of (a['pkgs'] as string[] | undefined) ?? []) dom0.pkgInstalled(minion, p, 'debian');
      for (const src of (a['sources'] as Record<string, string>[] | undefined) ?? []) {
        const [pkg, url] = Object.entries(src)[0]!;
        const file = dom0.saltFiles.get(url);
        if (file === undefined || file.package !== pkg) throw new Error(`pkg.installed: ${url} not found in the formula`);
        dom0.pkgInstalled(minion, pkg, file.version);
      }
      return;
    }
    case 'pkg.purged':
      for (const p of (a['pkgs'] as string[] | undefined) ?? []) dom0.pkgPurged(minion, p);
      return;
    default:
      throw new Error(`no fake for ${d.fn}`);
  }
}

function optionalString(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : String(v);
}
