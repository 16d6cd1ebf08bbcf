/**
 * Reading systemd units the way systemd does, for the parts that decide how a daemon is started: the unit,
 * then its drop-ins in lexical order; an empty assignment resets a list setting; `$VAR` and `${VAR}` in
 * command lines are expanded from Environment=/EnvironmentFile=. Specifiers are refused (`%n`, ...: the packaged
 * units promise plain command lines), but for an instance of a template, whose `%i` is its instance.
 *
 * systemd.unit(5), systemd.service(5) "Command lines", systemd.exec(5) "Environment".
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export type Section = ReadonlyArray<readonly [string, string]>;
export type UnitFile = ReadonlyMap<string, Section>;

export function parseUnit(text: string): UnitFile {
  const sections = new Map<string, Array<[string, string]>>();
  let current: Array<[string, string]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] ?? '';
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + (lines[++i] ?? '');
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue;
    const sec = /^\[([^\]]+)\]$/.exec(t);
    if (sec) {
      const name = sec[1] ?? '';
      current = sections.get(name) ?? [];
      sections.set(name, current);
      continue;
    }
    const eq = t.indexOf('=');
    if (eq < 0 || current === undefined) throw new Error(`unit: cannot parse line ${JSON.stringify(line)}`);
    current.push([t.slice(0, eq).trim(), t.slice(eq + 1).trim()]);
  }
  return sections;
}

/** Settings that are lists (an empty value resets them); every other setting: the last one wins. */
const LIST_SETTINGS = new Set([
  'ExecStart', 'ExecStartPre', 'ExecStartPost', 'ExecStop', 'ExecStopPost', 'Environment', 'EnvironmentFile',
  'ConditionPathExists', 'AssertPathExists', 'RuntimeDirectory', 'StateDirectory', 'LogsDirectory', 'CacheDirectory',
  'ConfigurationDirectory', 'AmbientCapabilities', 'CapabilityBoundingSet', 'ReadWritePaths', 'After', 'Before',
  'Wants', 'Requires', 'BindsTo', 'PartOf', 'Conflicts', 'SupplementaryGroups',
]);

export interface EffectiveUnit {
  readonly name: string;
  /** The files read, in order: the unit, then its drop-ins. */
  readonly sources: readonly string[];
  get(section: string, key: string): string | undefined;
  list(section: string, key: string): readonly string[];
}

/**
 * The unit `name` as systemd would load it from `dirs` (first dir that has the unit file wins, as with
 * /etc before /run before /usr/lib), plus every `name.d/*.conf` found in any of the dirs.
 */
export function loadUnit(name: string, dirs: readonly string[]): EffectiveUnit {
  // An instance (NAME@INSTANCE.service) without a file of its own: its template, with %i (and %I) the instance, as
  // systemd does; no other specifier is expanded (parseExec refuses any left in a command line).
  const inst = /^([^@]+@)([^@]+)(\.[a-z]+)$/.exec(name);
  let main = dirs.map((d) => join(d, name)).find((p) => existsSync(p));
  let instance: string | undefined;
  if (main === undefined && inst !== null) {
    main = dirs.map((d) => join(d, `${inst[1]}${inst[3]}`)).find((p) => existsSync(p));
    instance = inst[2];
  }
  if (main === undefined) throw new Error(`unit ${name} not found in ${dirs.join(', ')}`);
  const dropins = new Map<string, string>();
  for (const d of [...dirs].reverse()) {
    const dd = join(d, `${name}.d`);
    if (!existsSync(dd)) continue;
    for (const f of readdirSync(dd)) if (f.endsWith('.conf')) dropins.set(f, join(dd, f));
  }
  const sources = [main, ...[...dropins.keys()].sort().map((k) => dropins.get(k) as string)];
  const merged = new Map<string, Map<string, string[]>>();
  for (const src of sources) {
    const raw = readFileSync(src, 'utf8');
    for (const [section, entries] of parseUnit(instance === undefined ? raw : raw.replace(/%[iI]/g, instance))) {
      const sec = merged.get(section) ?? new Map<string, string[]>();
      merged.set(section, sec);
      for (const [k, v] of entries) {
        if (LIST_SETTINGS.has(k)) {
          if (v === '') sec.set(k, []);
          else sec.set(k, [...(sec.get(k) ?? []), v]);
        } else {
          sec.set(k, [v]);
        }
      }
    }
  }
  return {
    name,
    sources,
    get: (section, key) => merged.get(section)?.get(key)?.at(-1),
    list: (section, key) => merged.get(section)?.get(key) ?? [],
  };
}

export interface ExecLine {
  /** Prefix flags: `-` failure ignored, `+`/`!` full privileges, `@` argv[0] given separately. */
  readonly ignoreFailure: boolean;
  readonly privileged: boolean;
  readonly argv: readonly string[];
}

/** Split a command line as systemd.service(5) does (quotes, backslash escapes), expanding the environment. */
export function parseExec(line: string, env: ReadonlyMap<string, string>): ExecLine {
  let rest = line.trim();
  let ignoreFailure = false;
  let privileged = false;
  let at = false;
  for (;;) {
    const c = rest[0];
    if (c === '-') ignoreFailure = true;
    else if (c === '+' || c === '!') privileged = true;
    else if (c === '@') at = true;
    else if (c === ':') {
      /* no environment expansion: not used by our units */
    } else break;
    rest = rest.slice(1);
  }
  if (/%[a-zA-Z%]/.test(rest)) throw new Error(`unit: ExecStart uses a specifier (%): ${line}`);
  const words: string[] = [];
  let i = 0;
  while (i < rest.length) {
    while (rest[i] === ' ' || rest[i] === '\t') i++;
    if (i >= rest.length) break;
    let word = '';
    let quoted = false;
    const q = rest[i];
    if (q === '"' || q === "'") {
      quoted = true;
      i++;
      while (i < rest.length && rest[i] !== q) {
        if (rest[i] === '\\' && i + 1 < rest.length) i++;
        word += rest[i++];
      }
      i++;
    } else {
      while (i < rest.length && rest[i] !== ' ' && rest[i] !== '\t') {
        if (rest[i] === '\\' && i + 1 < rest.length) i++;
        word += rest[i++];
      }
    }
    // "$VAR" alone as a word: split into words; "${VAR}" inside a word: substituted as is.
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole && !quoted) {
      words.push(...(env.get(whole[1] ?? '') ?? '').split(/\s+/).filter((w) => w !== ''));
    } else {
      words.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, k: string) => env.get(k) ?? ''));
    }
  }
  if (at) words.splice(1, 1);
  if (words.length === 0) throw new Error(`unit: empty command line: ${line}`);
  return { ignoreFailure, privileged, argv: words };
}

/** Environment= assignments (each may hold several quoted KEY=VALUE words) and EnvironmentFile= files. */
export function unitEnvironment(unit: EffectiveUnit, readFile: (path: string) => string | undefined): Map<string, string> {
  const env = new Map<string, string>();
  for (const e of unit.list('Service', 'Environment')) {
    for (const w of parseExec(`x ${e}`, new Map()).argv.slice(1)) {
      const eq = w.indexOf('=');
      if (eq > 0) env.set(w.slice(0, eq), w.slice(eq + 1));
    }
  }
  // EnvironmentFile= is read after, and overrides, Environment= (systemd.exec(5)).
  for (const f of unit.list('Service', 'EnvironmentFile')) {
    const optional = f.startsWith('-');
    const text = readFile(optional ? f.slice(1) : f);
    if (text === undefined) {
      if (optional) continue;
      throw new Error(`unit ${unit.name}: EnvironmentFile ${f} missing`);
    }
    for (const line of text.split('\n')) {
      const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (!m) continue; // systemd ignores (and logs) lines that are not assignments, e.g. "ulimit -n 4096"
      env.set(m[1] ?? '', unquote((m[2] ?? '').trim()));
    }
  }
  return env;
}

function unquote(v: string): string {
  if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) return v.slice(1, -1);
  return v;
}
