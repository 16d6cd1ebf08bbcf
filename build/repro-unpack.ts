/**
 * Reading our artifacts back, member by member, to explain a difference between two builds: .deb (ar), tar,
 * gzip, .rpm (lead, signature and main header tag by tag, gzip'd newc cpio payload). Readers only: nothing here
 * writes packages. Used by build/repro.ts (the reproducibility check) and its test.
 */
import { gunzipSync } from 'node:zlib';
import { SIG_TAG, TAG } from '../src/pack/rpm/tags.ts';

/** One part of an artifact: its name, its metadata as text, its bytes, and how to open it if it is a container. */
export interface Member {
  readonly name: string;
  /** Header fields as one line (mode, owner, mtime, size, ...); compared as text. */
  readonly meta: string;
  readonly data: Uint8Array;
  /** Time stamps this member carries (header mtimes, rpm BUILDTIME/FILEMTIMES): all must be SOURCE_DATE_EPOCH. */
  readonly times: readonly number[];
  /** Where `times` come from, for messages. */
  readonly timeWhat?: string;
  readonly open?: () => Member[];
}

const decoder = new TextDecoder('utf-8', { fatal: false });

function ascii(b: Uint8Array, start: number, len: number): string {
  return decoder.decode(b.subarray(start, start + len));
}

function cstr(b: Uint8Array, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return decoder.decode(nul < 0 ? s : s.subarray(0, nul));
}

function octal(b: Uint8Array, start: number, len: number): number {
  const t = cstr(b, start, len).trim();
  return t === '' ? 0 : parseInt(t, 8);
}

function u32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) >>> 0) + (b[off + 1]! << 16) + (b[off + 2]! << 8) + b[off + 3]!;
}

/** Pick the reader by the artifact's (or member's) name; undefined: a plain file. */
export function opener(name: string, data: Uint8Array): (() => Member[]) | undefined {
  if (name.endsWith('.deb') || (data.length >= 8 && ascii(data, 0, 8) === '!<arch>\n')) return () => readAr(data);
  if (name.endsWith('.rpm') || (data.length >= 4 && u32(data, 0) === 0xedabeedb)) return () => readRpm(data);
  if (name.endsWith('.tar')) return () => readTar(data);
  if (name.endsWith('.gz') || (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b)) return () => readGzip(name, data);
  if (name.endsWith('.cpio')) return () => readCpio(data);
  return undefined;
}

/** ar (the .deb container): `!<arch>\n`, 60-byte headers, data padded to even offsets. */
export function readAr(data: Uint8Array): Member[] {
  if (ascii(data, 0, 8) !== '!<arch>\n') throw new Error('not an ar archive');
  const out: Member[] = [];
  let off = 8;
  while (off < data.length) {
    if (off + 60 > data.length) throw new Error(`ar: truncated header at ${off}`);
    const name = ascii(data, off, 16).trimEnd().replace(/\/$/, '');
    const mtime = Number(ascii(data, off + 16, 12).trim());
    const uid = ascii(data, off + 28, 6).trim();
    const gid = ascii(data, off + 34, 6).trim();
    const mode = ascii(data, off + 40, 8).trim();
    const size = Number(ascii(data, off + 48, 10).trim());
    const body = data.subarray(off + 60, off + 60 + size);
    const open = opener(name, body);
    out.push({
      name,
      meta: `mtime ${mtime} uid ${uid} gid ${gid} mode ${mode} size ${size}`,
      data: body,
      times: [mtime],
      timeWhat: 'ar member mtime',
      ...(open === undefined ? {} : { open }),
    });
    off += 60 + size + (size % 2);
  }
  return out;
}

/** gzip: one member, the decompressed stream; the 10-byte header (flags, MTIME, XFL, OS) is its metadata. */
export function readGzip(name: string, data: Uint8Array): Member[] {
  const head = Buffer.from(data.subarray(0, 10)).toString('hex');
  const mtime = data.length >= 8 ? data[4]! + (data[5]! << 8) + (data[6]! << 16) + ((data[7]! << 24) >>> 0) : 0;
  const inner = new Uint8Array(gunzipSync(data));
  const innerName = name.replace(/\.gz$/, '');
  const open = opener(innerName, inner);
  return [
    {
      name: `${innerName} (gunzipped)`,
      meta: `gzip header ${head}`,
      data: inner,
      // A gzip MTIME is 0 ("no time") in reproducible output; only a non-zero one must be the epoch.
      times: mtime === 0 ? [] : [mtime],
      timeWhat: 'gzip MTIME',
      ...(open === undefined ? {} : { open }),
    },
  ];
}

/** ustar/GNU tar: 512-byte headers; GNU long names (L/K) and PAX headers (x/g) are shown as they are. */
export function readTar(data: Uint8Array): Member[] {
  const out: Member[] = [];
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= data.length) {
    const h = data.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    let name = cstr(h, 0, 100);
    const prefix = cstr(h, 345, 155);
    const magic = ascii(h, 257, 6);
    if (magic === 'ustar\0' && prefix !== '') name = `${prefix}/${name}`;
    const mode = octal(h, 100, 8);
    const uid = octal(h, 108, 8);
    const gid = octal(h, 116, 8);
    const size = octal(h, 124, 12);
    const mtime = octal(h, 136, 12);
    const type = String.fromCharCode(h[156]!) || '0';
    const link = cstr(h, 157, 100);
    const uname = cstr(h, 265, 32);
    const gname = cstr(h, 297, 32);
    const body = data.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = cstr(body, 0, body.length);
      continue;
    }
    if (longName !== undefined) {
      name = longName;
      longName = undefined;
    }
    const open = type === '0' || type === '\0' ? opener(name, body) : undefined;
    out.push({
      name: type === 'x' || type === 'g' ? `${name} (PAX header!)` : name,
      meta:
        `type ${JSON.stringify(type)} mode ${mode.toString(8)} owner ${uid}/${gid} ${uname}/${gname} mtime ${mtime} size ${size}` +
        (link === '' ? '' : ` -> ${link}`) +
        ` magic ${JSON.stringify(magic)}`,
      data: body,
      times: [mtime],
      timeWhat: 'tar entry mtime',
      ...(open === undefined ? {} : { open }),
    });
  }
  return out;
}

/** newc cpio (`070701`), the rpm payload. */
export function readCpio(data: Uint8Array): Member[] {
  const out: Member[] = [];
  let off = 0;
  for (;;) {
    if (off + 110 > data.length) throw new Error(`cpio: truncated header at ${off}`);
    const magic = ascii(data, off, 6);
    if (magic !== '070701' && magic !== '070702') throw new Error(`cpio: bad magic ${JSON.stringify(magic)} at ${off}`);
    const f = (i: number): number => parseInt(ascii(data, off + 6 + i * 8, 8), 16);
    const [ino, mode, uid, gid, nlink, mtime, size, devmaj, devmin, rdevmaj, rdevmin, namesize, check] = Array.from({ length: 13 }, (_, i) => f(i)) as [
      number, number, number, number, number, number, number, number, number, number, number, number, number,
    ];
    const name = cstr(data, off + 110, namesize);
    const dataStart = off + Math.ceil((110 + namesize) / 4) * 4;
    const body = data.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / 4) * 4;
    if (name === 'TRAILER!!!') break;
    const open = (mode & 0o170000) === 0o100000 ? opener(name, body) : undefined;
    out.push({
      name,
      meta: `mode ${mode.toString(8)} ino ${ino} owner ${uid}/${gid} nlink ${nlink} mtime ${mtime} size ${size} dev ${devmaj},${devmin} rdev ${rdevmaj},${rdevmin} check ${check}`,
      data: body,
      times: [mtime],
      timeWhat: 'cpio entry mtime',
      ...(open === undefined ? {} : { open }),
    });
  }
  return out;
}

const TYPE_NAMES = ['NULL', 'CHAR', 'INT8', 'INT16', 'INT32', 'INT64', 'STRING', 'BIN', 'STRING_ARRAY', 'I18NSTRING'];

function invert(table: Record<string, number>): Map<number, string> {
  return new Map(Object.entries(table).map(([k, v]) => [v, k]));
}
const SIG_NAMES = invert(SIG_TAG);
const MAIN_NAMES = invert(TAG);

interface HeaderEntry {
  readonly tag: number;
  readonly type: number;
  readonly value: string | number[] | string[] | Uint8Array;
}

/** One rpm header structure at `off`: returns its entries (in index order) and where it ends. */
export function readRpmHeader(data: Uint8Array, off: number): { entries: HeaderEntry[]; end: number; bytes: Uint8Array } {
  if (u32(data, off) !== 0x8eade801) throw new Error(`rpm: no header magic at ${off}`);
  const il = u32(data, off + 8);
  const dl = u32(data, off + 12);
  const indexStart = off + 16;
  const store = indexStart + il * 16;
  const end = store + dl;
  const entries: HeaderEntry[] = [];
  for (let i = 0; i < il; i++) {
    const e = indexStart + i * 16;
    const tag = u32(data, e);
    const type = u32(data, e + 4);
    const o = store + u32(data, e + 8);
    const count = u32(data, e + 12);
    let value: HeaderEntry['value'];
    switch (type) {
      case 3:
        value = Array.from({ length: count }, (_, k) => (data[o + 2 * k]! << 8) + data[o + 2 * k + 1]!);
        break;
      case 4:
        value = Array.from({ length: count }, (_, k) => u32(data, o + 4 * k));
        break;
      case 5:
        value = Array.from({ length: count }, (_, k) => u32(data, o + 8 * k) * 2 ** 32 + u32(data, o + 8 * k + 4));
        break;
      case 6:
      case 8:
      case 9: {
        const strings: string[] = [];
        let p = o;
        for (let k = 0; k < (type === 6 ? 1 : count); k++) {
          let q = p;
          while (q < end && data[q] !== 0) q++;
          strings.push(decoder.decode(data.subarray(p, q)));
          p = q + 1;
        }
        value = type === 6 ? strings[0]! : strings;
        break;
      }
      default:
        value = data.subarray(o, o + count);
    }
    entries.push({ tag, type, value });
  }
  return { entries, end, bytes: data.subarray(off, end) };
}

function showValue(v: HeaderEntry['value']): string {
  if (v instanceof Uint8Array) return `bin ${Buffer.from(v).toString('hex')}`;
  return JSON.stringify(v);
}

function headerMembers(h: HeaderEntry[], names: Map<number, string>): Member[] {
  return h.map((e) => {
    const name = `tag ${e.tag} ${names.get(e.tag) ?? '?'}`;
    const shown = showValue(e.value);
    const isTime = e.tag === TAG.BUILDTIME || e.tag === TAG.FILEMTIMES;
    return {
      name,
      meta: `type ${TYPE_NAMES[e.type] ?? e.type}`,
      data: new TextEncoder().encode(shown),
      times: isTime && Array.isArray(e.value) ? (e.value as number[]) : [],
      timeWhat: `rpm ${names.get(e.tag) ?? e.tag}`,
    };
  });
}

/** .rpm: lead, signature header, main header (each tag a member), then the payload. */
export function readRpm(data: Uint8Array): Member[] {
  if (u32(data, 0) !== 0xedabeedb) throw new Error('not an rpm (no lead magic)');
  const lead = data.subarray(0, 96);
  const sig = readRpmHeader(data, 96);
  const mainStart = Math.ceil(sig.end / 8) * 8;
  const main = readRpmHeader(data, mainStart);
  const payload = data.subarray(main.end);
  const compressor = main.entries.find((e) => e.tag === 1125)?.value; // PAYLOADCOMPRESSOR
  const payloadOpen = compressor === 'gzip' || (payload[0] === 0x1f && payload[1] === 0x8b) ? () => readGzip('payload.cpio.gz', payload) : undefined;
  return [
    { name: 'lead', meta: '', data: lead, times: [] },
    {
      name: 'signature header',
      meta: `${sig.entries.length} tags, padding ${mainStart - sig.end}`,
      data: sig.bytes,
      times: [],
      open: () => headerMembers(sig.entries, SIG_NAMES),
    },
    {
      name: 'main header',
      meta: `${main.entries.length} tags`,
      data: main.bytes,
      times: [],
      open: () => headerMembers(main.entries, MAIN_NAMES),
    },
    {
      name: 'payload',
      meta: `compressor ${String(compressor)}`,
      data: payload,
      times: [],
      ...(payloadOpen === undefined ? {} : { open: payloadOpen }),
    },
  ];
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function looksText(b: Uint8Array): boolean {
  const n = Math.min(b.length, 4096);
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c === 0 || (c < 9 && c !== 0) || (c > 13 && c < 32 && c !== 27)) return false;
  }
  return true;
}

function clip(s: string, n = 160): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** Where two plain byte strings first differ: a line for text, an offset with hex context otherwise. */
export function describeBytes(a: Uint8Array, b: Uint8Array): string {
  if (looksText(a) && looksText(b)) {
    const la = decoder.decode(a).split('\n');
    const lb = decoder.decode(b).split('\n');
    for (let i = 0; i < Math.max(la.length, lb.length); i++) {
      if (la[i] !== lb[i]) {
        return `line ${i + 1}: ${JSON.stringify(clip(la[i] ?? '<end of file>'))} vs ${JSON.stringify(clip(lb[i] ?? '<end of file>'))}`;
      }
    }
  }
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const ctx = (x: Uint8Array): string => Buffer.from(x.subarray(Math.max(0, i - 8), i + 16)).toString('hex');
  return `byte ${i} (sizes ${a.length} vs ${b.length}): …${ctx(a)} vs …${ctx(b)}`;
}

/**
 * The first difference between two versions of one artifact, as a path of members and what differs there.
 * Undefined when the bytes are equal.
 */
export function firstDifference(name: string, a: Uint8Array, b: Uint8Array): string | undefined {
  if (equalBytes(a, b)) return undefined;
  const openA = opener(name, a);
  const openB = opener(name, b);
  if (openA === undefined || openB === undefined) return `${name}: ${describeBytes(a, b)}`;
  return diffMembers(name, safeOpen(openA), safeOpen(openB)) ?? `${name}: every member is equal, the container framing differs at ${describeBytes(a, b)}`;
}

function safeOpen(open: () => Member[]): Member[] | Error {
  try {
    return open();
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

function diffMembers(path: string, ma: Member[] | Error, mb: Member[] | Error): string | undefined {
  if (ma instanceof Error || mb instanceof Error) {
    return `${path}: cannot be read (${ma instanceof Error ? `first: ${ma.message}` : ''}${mb instanceof Error ? ` second: ${mb.message}` : ''})`;
  }
  for (let i = 0; i < Math.max(ma.length, mb.length); i++) {
    const x = ma[i];
    const y = mb[i];
    if (x === undefined || y === undefined) {
      return `${path}: member ${i + 1} exists in only one build (${x?.name ?? '-'} vs ${y?.name ?? '-'})`;
    }
    const here = `${path} › ${x.name}`;
    if (x.name !== y.name) return `${path}: member ${i + 1} is ${JSON.stringify(x.name)} vs ${JSON.stringify(y.name)}`;
    if (x.meta !== y.meta) return `${here}: header ${JSON.stringify(x.meta)} vs ${JSON.stringify(y.meta)}`;
    if (!equalBytes(x.data, y.data)) {
      if (x.open !== undefined && y.open !== undefined) {
        return diffMembers(here, safeOpen(x.open), safeOpen(y.open)) ?? `${here}: members equal, framing differs at ${describeBytes(x.data, y.data)}`;
      }
      return `${here}: content ${describeBytes(x.data, y.data)}`;
    }
  }
  return undefined;
}

/** Every time stamp in an artifact, recursively, with where it was found. */
export function collectTimes(name: string, data: Uint8Array): { where: string; value: number }[] {
  const out: { where: string; value: number }[] = [];
  const walk = (path: string, members: Member[]): void => {
    for (const m of members) {
      for (const t of m.times) out.push({ where: `${path} › ${m.name} (${m.timeWhat ?? 'time'})`, value: t });
      if (m.open !== undefined) walk(`${path} › ${m.name}`, m.open());
    }
  };
  const open = opener(name, data);
  if (open !== undefined) walk(name, open());
  return out;
}
