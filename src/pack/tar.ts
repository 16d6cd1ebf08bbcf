/**
 * Deterministic ustar (POSIX.1-1988) writer for .deb members.
 *
 * Why not tar-stream: its pack() switches to PAX extended headers by itself for long or non-ASCII names,
 * and dpkg rejects PAX headers (see FIELD-NOTES ".deb format"); it is also stream/async based. A ustar
 * header is a fixed 512-byte record of NUL-padded strings and octal numbers, so writing it here is short,
 * synchronous, and leaves no choice to a library: every byte of the output is decided in this file.
 *
 * What the archive looks like (the same shape `dpkg-deb --root-owner-group --build` produces):
 * - a `./` root entry, then every entry as `./path` (directories as `./path/`);
 * - every parent directory present as its own entry, before its children;
 * - depth-first, siblings in byte order (the order of `tar --sort=name` and of dpkg-deb; it is byte order
 *   of the path with `/` ranked lowest, so a directory's contents stay together: `usr/bin/x` < `usr/bin-x`);
 * - symlinks after every other entry, in that same order among themselves: dpkg-deb --build does this
 *   "so that symlinks will not appear before their target" (dpkg-deb/build.c), and matching it keeps our
 *   listing identical to dpkg-deb's for the same tree;
 * - uid/gid 0, uname/gname `root`, the caller's permission bits, every mtime = the given epoch;
 * - no PAX, no GNU extensions: names that do not fit ustar are refused with an Error, never rewritten.
 */

export type TarEntry =
  | { readonly type: 'file'; readonly path: string; readonly mode: number; readonly data: Uint8Array }
  | { readonly type: 'dir'; readonly path: string; readonly mode: number }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string };

export interface TarOptions {
  /** Seconds since the epoch for every entry (SOURCE_DATE_EPOCH). */
  readonly mtime: number;
}

const BLOCK = 512;
/** GNU tar and bsdtar pad the archive to whole 10 KiB records (blocking factor 20); do the same. */
const RECORD = 20 * BLOCK;
const NAME_MAX = 100;
const PREFIX_MAX = 155;
const LINK_MAX = 100;
/** Largest value of an 11-digit octal field (size, mtime). */
const OCTAL11_MAX = 0o77777777777;
const DEFAULT_DIR_MODE = 0o755;

/**
 * Why `path` (relative, normalised, e.g. `usr/bin/foo`) cannot be stored as a plain ustar entry, or undefined
 * if it can. `isDir` adds the trailing `/` that directory names carry.
 */
export function tarPathProblem(path: string, isDir: boolean): string | undefined {
  if (path.length === 0) return 'empty path';
  if (!/^[\x20-\x7e]+$/.test(path)) return 'contains non-ASCII or control characters (would need a PAX header)';
  if (path.startsWith('/')) return 'must be relative (no leading /)';
  if (path.endsWith('/')) return 'must not end with /';
  for (const part of path.split('/')) {
    if (part === '') return 'contains an empty component (//)';
    if (part === '.' || part === '..') return `contains a '${part}' component`;
  }
  if (splitUstarName(archiveName(path, isDir)) === undefined) {
    return (
      `too long for ustar: "./${path}${isDir ? '/' : ''}" needs name <= ${NAME_MAX} bytes, ` +
      `or a split at a '/' into prefix <= ${PREFIX_MAX} and name <= ${NAME_MAX} (would need a PAX header)`
    );
  }
  return undefined;
}

/** Why `target` cannot be a ustar link name, or undefined. */
export function tarLinkProblem(target: string): string | undefined {
  if (target.length === 0) return 'empty symlink target';
  if (!/^[\x20-\x7e]+$/.test(target)) {
    return 'symlink target contains non-ASCII or control characters (would need a PAX header)';
  }
  if (target.length > LINK_MAX) {
    return `symlink target is ${target.length} bytes, ustar allows ${LINK_MAX} (would need a PAX header)`;
  }
  return undefined;
}

function archiveName(path: string, isDir: boolean): string {
  return `./${path}${isDir ? '/' : ''}`;
}

/**
 * Split a full archive name into ustar `prefix` and `name` (readers join them with `/`). Prefers the whole
 * name in `name`; otherwise splits at the last `/` that leaves name <= 100, which is the longest prefix
 * that could work. Returns undefined if no split fits.
 */
export function splitUstarName(full: string): { prefix: string; name: string } | undefined {
  if (full.length <= NAME_MAX) return { prefix: '', name: full };
  // A directory's trailing '/' cannot be the split point: the name part would be empty.
  const searchEnd = full.endsWith('/') ? full.length - 2 : full.length - 1;
  for (let i = full.lastIndexOf('/', searchEnd); i > 0; i = full.lastIndexOf('/', i - 1)) {
    const prefix = full.slice(0, i);
    const name = full.slice(i + 1);
    if (name.length > NAME_MAX) return undefined; // moving left only makes the name longer
    if (prefix.length <= PREFIX_MAX) return { prefix, name };
  }
  return undefined;
}

/** Byte order with '/' ranked below every other byte: depth-first, siblings sorted. Paths are ASCII. */
export function compareTarPaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const ra = ca === 0x2f ? -1 : ca;
    const rb = cb === 0x2f ? -1 : cb;
    return ra - rb;
  }
  return a.length - b.length;
}

function checkMode(path: string, mode: number): void {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new Error(`tar: ${path}: mode ${String(mode)} is not a permission value (0..0o7777)`);
  }
}

/**
 * Complete `entries` with their parent directories and return them in archive order (depth-first sorted,
 * symlinks last), checked.
 * Throws on duplicates, on a parent that is not a directory, and on anything ustar cannot hold.
 */
export function normalizeTarEntries(entries: readonly TarEntry[]): TarEntry[] {
  const byPath = new Map<string, TarEntry>();
  for (const e of entries) {
    const problem = tarPathProblem(e.path, e.type === 'dir');
    if (problem !== undefined) throw new Error(`tar: ${JSON.stringify(e.path)}: ${problem}`);
    if (e.type === 'symlink') {
      const linkProblem = tarLinkProblem(e.target);
      if (linkProblem !== undefined) throw new Error(`tar: ${e.path}: ${linkProblem}`);
    } else {
      checkMode(e.path, e.mode);
    }
    if (e.type === 'file' && e.data.length > OCTAL11_MAX) throw new Error(`tar: ${e.path}: file too large for ustar`);
    if (byPath.has(e.path)) throw new Error(`tar: duplicate path ${e.path}`);
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const seen = byPath.get(parent);
      if (seen === undefined) {
        const problem = tarPathProblem(parent, true);
        if (problem !== undefined) throw new Error(`tar: parent of ${e.path}: ${problem}`);
        byPath.set(parent, { type: 'dir', path: parent, mode: DEFAULT_DIR_MODE });
      } else if (seen.type !== 'dir') {
        throw new Error(`tar: ${e.path}: parent ${parent} is a ${seen.type}, not a directory`);
      }
    }
  }
  const sorted = [...byPath.values()].sort((a, b) => compareTarPaths(a.path, b.path));
  return [...sorted.filter((e) => e.type !== 'symlink'), ...sorted.filter((e) => e.type === 'symlink')];
}

const encoder = new TextEncoder();

function putString(block: Uint8Array, offset: number, width: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > width) throw new Error(`tar: internal error, ${JSON.stringify(value)} exceeds ${width} bytes`);
  block.set(bytes, offset);
}

/** `width - 1` zero-padded octal digits and a NUL terminator (the POSIX form). */
function putOctal(block: Uint8Array, offset: number, width: number, value: number): void {
  const digits = value.toString(8).padStart(width - 1, '0');
  if (digits.length > width - 1) throw new Error(`tar: value ${value} does not fit an octal field of ${width}`);
  putString(block, offset, width, `${digits}\0`);
}

interface HeaderFields {
  readonly fullName: string;
  readonly mode: number;
  readonly size: number;
  readonly mtime: number;
  readonly typeflag: '0' | '2' | '5';
  readonly linkname: string;
}

function header(h: HeaderFields): Uint8Array {
  const split = splitUstarName(h.fullName);
  if (split === undefined) throw new Error(`tar: internal error, ${h.fullName} does not fit`);
  const b = new Uint8Array(BLOCK);
  putString(b, 0, 100, split.name);
  putOctal(b, 100, 8, h.mode);
  putOctal(b, 108, 8, 0); // uid
  putOctal(b, 116, 8, 0); // gid
  putOctal(b, 124, 12, h.size);
  putOctal(b, 136, 12, h.mtime);
  putString(b, 148, 8, '        '); // checksum counts as spaces while summing
  putString(b, 156, 1, h.typeflag);
  putString(b, 157, 100, h.linkname);
  putString(b, 257, 6, 'ustar\0');
  putString(b, 263, 2, '00');
  putString(b, 265, 32, 'root');
  putString(b, 297, 32, 'root');
  putOctal(b, 329, 8, 0); // devmajor
  putOctal(b, 337, 8, 0); // devminor
  putString(b, 345, 155, split.prefix);
  let sum = 0;
  for (const byte of b) sum += byte;
  // Six octal digits, NUL, space: the form GNU tar writes and every reader accepts.
  putString(b, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return b;
}

/** Build a ustar archive. Pure and synchronous: the same entries and mtime give the same bytes. */
export function writeTar(entries: readonly TarEntry[], opts: TarOptions): Uint8Array {
  const { mtime } = opts;
  if (!Number.isSafeInteger(mtime) || mtime < 0 || mtime > OCTAL11_MAX) {
    throw new Error(`tar: mtime ${mtime} must be a non-negative integer below 8^11`);
  }
  const ordered = normalizeTarEntries(entries);
  const chunks: Uint8Array[] = [
    header({ fullName: './', mode: DEFAULT_DIR_MODE, size: 0, mtime, typeflag: '5', linkname: '' }),
  ];
  for (const e of ordered) {
    switch (e.type) {
      case 'dir':
        chunks.push(header({ fullName: archiveName(e.path, true), mode: e.mode, size: 0, mtime, typeflag: '5', linkname: '' }));
        break;
      case 'symlink':
        chunks.push(header({ fullName: archiveName(e.path, false), mode: 0o777, size: 0, mtime, typeflag: '2', linkname: e.target }));
        break;
      case 'file': {
        const size = e.data.length;
        chunks.push(header({ fullName: archiveName(e.path, false), mode: e.mode, size, mtime, typeflag: '0', linkname: '' }));
        const padded = new Uint8Array(Math.ceil(size / BLOCK) * BLOCK);
        padded.set(e.data);
        chunks.push(padded);
        break;
      }
    }
  }
  // End of archive: two zero blocks, then zero padding up to a whole record.
  let length = chunks.reduce((n, c) => n + c.length, 0) + 2 * BLOCK;
  length = Math.ceil(length / RECORD) * RECORD;
  const out = new Uint8Array(length);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
