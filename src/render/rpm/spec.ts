/**
 * Reads the parts of rpm/qubes-mgmt-salt-i2p-gateway.spec that describe the package (summary, license, URL,
 * group, requirements, description, scriptlets, changelog), so our own RPM writer and rpmbuild make the same
 * package from one source. Only the small subset of spec syntax that file uses is understood; anything else in
 * a section we read is an error, not a guess.
 */
import type { RpmChangelogEntry, RpmDependency, RpmScripts } from '../../pack/rpm/index.ts';

export interface SpecFacts {
  readonly summary: string;
  readonly license: string;
  readonly url: string;
  readonly group: string;
  readonly requires: readonly RpmDependency[];
  readonly description: string;
  readonly scripts: RpmScripts;
  readonly changelog: readonly RpmChangelogEntry[];
}

const SECTIONS = ['%description', '%prep', '%build', '%install', '%post', '%preun', '%postun', '%pre', '%files', '%changelog'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function parseSpec(text: string): SpecFacts {
  const lines = text.split('\n');
  const preamble = new Map<string, string[]>();
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of lines) {
    const head = line.split(/\s+/)[0] ?? '';
    if (SECTIONS.includes(head)) {
      if (line.trim() !== head) throw new Error(`spec: section options are not supported: ${line}`);
      current = [];
      sections.set(head, current);
      continue;
    }
    if (current !== undefined) {
      current.push(line);
      continue;
    }
    // `Requires(post): x` and friends would be dropped by the match below, and the two packages would differ.
    if (/^[A-Za-z]+\([^)]*\)\s*:/.test(line)) throw new Error(`spec: qualified tags are not supported: ${line}`);
    const m = /^([A-Za-z]+):\s*(.*)$/.exec(line);
    if (m) {
      const key = m[1]!.toLowerCase();
      preamble.set(key, [...(preamble.get(key) ?? []), m[2]!.trim()]);
    }
  }
  const one = (key: string): string => {
    const v = preamble.get(key);
    if (v === undefined || v.length !== 1) throw new Error(`spec: expected exactly one ${key} line`);
    return v[0]!;
  };
  const body = (name: string): string | undefined => {
    const s = sections.get(name);
    if (s === undefined) return undefined;
    const trimmed = [...s];
    while (trimmed.length > 0 && trimmed[trimmed.length - 1]!.trim() === '') trimmed.pop();
    return trimmed.length === 0 ? undefined : `${trimmed.join('\n')}\n`;
  };
  const requires = (preamble.get('requires') ?? []).map((r): RpmDependency => {
    const m = /^([^\s<>=]+)(?:\s*(>=|<=|=|<|>)\s*(\S+))?$/.exec(r);
    if (!m) throw new Error(`spec: cannot read Requires: ${r}`);
    return m[2] !== undefined && m[3] !== undefined ? { name: m[1]!, flags: m[2] as RpmDependency['flags'] & string, version: m[3] } : { name: m[1]! };
  });
  const description = body('%description');
  if (description === undefined) throw new Error('spec: %description is empty');
  const scripts: { pre?: string; post?: string; preun?: string; postun?: string } = {};
  for (const [key, section] of [['pre', '%pre'], ['post', '%post'], ['preun', '%preun'], ['postun', '%postun']] as const) {
    const b = body(section);
    // rpmbuild strips a scriptlet's trailing whitespace (newline included) before storing it: do the same, or
    // `rpm -qp --scripts` differs between the two packages.
    if (b !== undefined) scripts[key] = b.trimEnd();
  }
  const facts: SpecFacts = {
    summary: one('summary'),
    license: one('license'),
    url: one('url'),
    group: one('group'),
    requires,
    description: description.trimEnd(),
    scripts,
    changelog: parseChangelog(body('%changelog') ?? ''),
  };
  noMacros(facts);
  return facts;
}

/**
 * rpmbuild expands macros (`%{name}`, `%{version}`, `%%`) in every value read here; this reader takes them
 * literally. A `%` would make our package differ from rpmbuild's, so it is refused rather than copied.
 */
function noMacros(facts: SpecFacts): void {
  const values: [string, string][] = [
    ['Summary', facts.summary],
    ['License', facts.license],
    ['URL', facts.url],
    ['Group', facts.group],
    ['%description', facts.description],
    ...facts.requires.map((r): [string, string] => ['Requires', `${r.name} ${r.version ?? ''}`]),
    ...Object.entries(facts.scripts).map(([k, v]): [string, string] => [`%${k}`, v as string]),
    ...facts.changelog.map((c): [string, string] => ['%changelog', `${c.author}\n${c.text}`]),
  ];
  for (const [where, value] of values) {
    if (value.includes('%')) throw new Error(`spec: ${where} uses a macro or "%", which only rpmbuild would expand: ${value.split('\n').find((l) => l.includes('%'))}`);
  }
}

/** `* Mon Nov 23 2026 Name <mail> - 0.1.0-1` then `- text` lines; rpm keeps each entry's day at 12:00 UTC. */
function parseChangelog(text: string): RpmChangelogEntry[] {
  const entries: RpmChangelogEntry[] = [];
  let open: { time: number; author: string; lines: string[] } | undefined;
  const close = (): void => {
    if (open) entries.push({ time: open.time, author: open.author, text: open.lines.join('\n').trim() });
  };
  for (const line of text.split('\n')) {
    const m = /^\* \w{3} (\w{3}) (\d{1,2}) (\d{4}) (.+)$/.exec(line);
    if (m) {
      close();
      const month = MONTHS.indexOf(m[1]!);
      if (month < 0) throw new Error(`spec: bad changelog date: ${line}`);
      open = { time: Date.UTC(Number(m[3]), month, Number(m[2]), 12) / 1000, author: m[4]!, lines: [] };
    } else if (open && line.trim() !== '') {
      open.lines.push(line);
    }
  }
  close();
  return entries;
}
