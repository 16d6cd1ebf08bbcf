/**
 * Reading a config: file → text → YAML → validated GatewayConfig, or a list of issues. The only config module
 * that touches the disk is `readConfigFile`; `parseConfigText` is pure.
 */
import { load, YAMLException } from 'js-yaml';
import { z } from 'zod';
import { InputFileError, readRegularFile } from '../io/read.ts';
import { GatewayConfigSchema, type GatewayConfig } from './schema.ts';
import { checkRules, type ConfigIssue } from './rules.ts';
import { normalizeClients } from './clients.ts';
import { suggest } from './suggest.ts';
import { checkWarnings } from './warnings.ts';

/** A gateway config is a few hundred bytes; anything this large is a mistake or an attack. */
export const MAX_CONFIG_BYTES = 64 * 1024;

export type LoadResult =
  | { readonly ok: true; readonly config: GatewayConfig; readonly warnings: readonly ConfigIssue[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

export function parseConfigText(text: string): LoadResult {
  if (Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) {
    return fail([], `is larger than ${MAX_CONFIG_BYTES / 1024} KiB. Fix: a gateway config is a few hundred bytes; check you named the right file`);
  }
  let doc: unknown;
  try {
    // Aliases are refused outright: a config has no use for them, and they are how "billion laughs" bombs work.
    doc = load(text, { maxAliases: 0, maxDepth: 16, maxTotalMergeKeys: 0 });
  } catch (e) {
    const reason = e instanceof YAMLException ? e.reason : String(e);
    if (/alias/i.test(reason)) {
      return fail([], 'uses a YAML alias (*name). Fix: write the value out; aliases are not accepted in a gateway config');
    }
    if (/empty|no document/i.test(reason) && text.trim().replace(/^#.*$/gm, '').trim() === '') {
      doc = null;
    } else {
      const mark = e instanceof YAMLException && e.mark ? ` at line ${e.mark.line + 1}, column ${e.mark.column + 1}` : '';
      return fail([], `is not valid YAML${mark}: ${reason}. Fix: correct the YAML syntax`);
    }
  }
  return parseConfigValue(doc ?? {});
}

export function parseConfigValue(value: unknown): LoadResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail([], 'is not a mapping of settings. Fix: the file must hold keys such as "qubes:" and "tor:" (or be empty for all defaults)', value);
  }
  const parsed = GatewayConfigSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) return { ok: false, issues: parsed.error.issues.flatMap(fromZodIssue) };
  // Client objects become names and i2p.apps grants once, here: the rules and everything after see one form.
  const { config, written } = normalizeClients(parsed.data);
  const ruleIssues = checkRules(config, written);
  return ruleIssues.length > 0 ? { ok: false, issues: ruleIssues } : { ok: true, config, warnings: checkWarnings(config) };
}

/** Reads and parses a config file; `source` is its text, for error positions (absent when it was not read). */
export function readConfigFile(path: string): LoadResult & { readonly source?: string; readonly mtimeSeconds?: number } {
  let read: ReturnType<typeof readRegularFile>;
  try {
    // Only a regular file, read with the cap: a FIFO, a device or a huge file is refused at once, never waited on.
    read = readRegularFile(path, MAX_CONFIG_BYTES);
  } catch (e) {
    if (!(e instanceof InputFileError)) throw e;
    const fix = e.message.startsWith('is larger')
      ? 'a gateway config is a few hundred bytes; check you named the right file'
      : 'give --config the path of the YAML file';
    return fail([], `${e.message}. Fix: ${fix}`);
  }
  const source = Buffer.from(read.bytes).toString('utf8');
  return { ...parseConfigText(source), source, mtimeSeconds: read.mtimeSeconds };
}

function fail(path: readonly (string | number)[], message: string, input?: unknown): LoadResult {
  return { ok: false, issues: [input === undefined ? { path, message } : { path, message, input }] };
}

/** Known keys at a path of the schema, for "did you mean": through lists' items, and a union's mapping (a client object). */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let node: z.ZodType = GatewayConfigSchema;
  for (const part of path) {
    node = unwrap(node);
    if (node instanceof z.ZodObject) {
      const next = (node.shape as Record<string, z.ZodType>)[String(part)];
      if (next === undefined) return [];
      node = next;
    } else if (node instanceof z.ZodArray && typeof part === 'number') {
      node = node.element as z.ZodType;
    } else {
      return [];
    }
  }
  node = unwrap(node);
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

function unwrap(node: z.ZodType): z.ZodType {
  let n: z.ZodType = node;
  for (;;) {
    if (n instanceof z.ZodDefault || n instanceof z.ZodPrefault || n instanceof z.ZodOptional) {
      n = n.unwrap() as z.ZodType;
    } else if (n instanceof z.ZodUnion) {
      const object = (n.options as readonly z.ZodType[]).find((o) => unwrap(o) instanceof z.ZodObject);
      if (object === undefined) return n;
      n = object;
    } else {
      return n;
    }
  }
}

/** A value of the wrong kind for a union branch: the branch's only issue is its type, at the union's own place. */
function wrongKind(issues: readonly z.core.$ZodIssue[]): boolean {
  return issues.length === 1 && issues[0]!.code === 'invalid_type' && issues[0]!.path.length === 0;
}

function fromZodIssue(issue: z.core.$ZodIssue): ConfigIssue[] {
  const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
  if (issue.code === 'invalid_union' && path.length === 3 && path[0] === 'qubes' && path[1] === 'clients') {
    // A qubes.clients entry is a name or a mapping: report the problems of the branch of the value's kind. (The
    // other unions, i2p.bandwidth and transitTunnels, say their own message.)
    const branches = issue.errors.filter((e) => !wrongKind(e));
    if (branches.length === 1) {
      return branches[0]!.flatMap((inner) => fromZodIssue({ ...inner, path: [...issue.path, ...inner.path] }));
    }
    return [{ path, input: issue.input, message: 'is neither a qube name nor a mapping. Fix: write a qube name, e.g. work, or { name: work, apps: [sam] }' }];
  }
  if (issue.code === 'invalid_type' && issue.input === undefined && path.length === 4 && path[0] === 'qubes' && path[1] === 'clients' && path[3] === 'name') {
    return [{ path, message: 'is missing. Fix: give the client qube\'s name, e.g. { name: work, apps: [sam] }' }];
  }
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(issue.path);
    return issue.keys.map((key) => {
      const guess = suggest(key, known);
      const hint = guess !== undefined ? `Did you mean "${guess}"? ` : '';
      return { path: [...path, key], message: `is not a known setting. ${hint}Fix: remove it or use one of: ${known.join(', ')}` };
    });
  }
  if (issue.code === 'invalid_type' && issue.expected === 'object') {
    return [{ path, input: issue.input, message: 'is not a mapping. Fix: write the settings below it as "key: value" lines' }];
  }
  if (issue.code === 'invalid_type' && issue.expected === 'array') {
    return [{ path, input: issue.input, message: 'is not a list. Fix: write it as a YAML list, e.g. [work, personal]' }];
  }
  if (issue.code === 'invalid_type' && issue.expected === 'string') {
    return [{ path, input: issue.input, message: 'is not a text value. Fix: write a plain name or text (quote it if YAML would read it as a number)' }];
  }
  return [{ path, input: issue.input, message: issue.message }];
}
