/**
 * A writer for the "new ASCII" cpio format (`070701`, a.k.a. newc), the payload format of .rpm packages.
 *
 * Layout of one entry: a 110-byte ASCII header (magic + 13 fields of 8 hex digits), the NUL-terminated name,
 * padding to a multiple of 4, the data, padding to a multiple of 4. The archive ends with an entry named
 * `TRAILER!!!`. Everything here is fixed or derived from the input, so the same list gives the same bytes:
 * names are `./`-prefixed and sorted by byte order, inodes are 1..n in that order, owners are 0/0 and every
 * mtime is the given epoch.
 *
 * The writer archives exactly the entries it is given: it adds no parent directories (an .rpm payload must
 * hold only the files its header lists).
 */
import type { RenderedFile } from '../files.ts';
import { compareBytes } from '../files.ts';

export interface CpioOptions {
  /** Modification time of every entry, in seconds since the epoch (SOURCE_DATE_EPOCH). */
  readonly mtime: number;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';
/** Every numeric field is 8 hex digits, so sizes, inodes and times must fit in 32 bits. */
const MAX_U32 = 0xffff_ffff;

const encoder = new TextEncoder();

/** The mode with its file-type bits (S_IFREG, S_IFDIR, S_IFLNK) for a rendered file. */
export function fileTypeMode(file: RenderedFile): number {
  const perms = file.mode;
  if (!Number.isInteger(perms) || perms < 0 || perms > 0o7777) {
    throw new Error(`cpio: ${file.path}: mode ${perms} is not a permission value (0..0o7777)`);
  }
  switch (file.kind) {
    case 'file':
    case 'config':
      return S_IFREG | perms;
    case 'dir':
      return S_IFDIR | perms;
    case 'symlink':
      return S_IFLNK | perms;
  }
}

/**
 * The bytes an entry stores: a file's contents, a symlink's target (that is how cpio and rpm store links),
 * nothing for a directory.
 */
export function entryData(file: RenderedFile): Uint8Array {
  switch (file.kind) {
    case 'file':
    case 'config':
      return file.data;
    case 'symlink':
      if (file.target === undefined || file.target === '') {
        throw new Error(`cpio: ${file.path}: a symlink needs a target`);
      }
      return encoder.encode(file.target);
    case 'dir':
      return new Uint8Array(0);
  }
}

/**
 * `/etc/foo` or `etc/foo` → `./etc/foo`. Refuses names a safe extractor would refuse anyway (`..`, empty
 * components), so a bad path fails here and not on the target machine.
 */
export function archiveName(path: string): string {
  const rel = path.replace(/^\/+/, '').replace(/^\.\//, '');
  if (rel === '' || rel.endsWith('/')) throw new Error(`cpio: "${path}" is not a file path`);
  for (const part of rel.split('/')) {
    if (part === '' || part === '.' || part === '..') {
      throw new Error(`cpio: "${path}" has an empty, "." or ".." component`);
    }
  }
  if (rel.includes('\0')) throw new Error(`cpio: "${path}" contains a NUL byte`);
  return `./${rel}`;
}

function hex8(value: number, what: string): string {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U32) {
    throw new Error(`cpio: ${what} ${value} does not fit the 8-hex-digit field`);
  }
  return value.toString(16).padStart(8, '0');
}

interface RawEntry {
  readonly name: string;
  readonly ino: number;
  readonly mode: number;
  readonly nlink: number;
  readonly mtime: number;
  readonly data: Uint8Array;
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function entryBytes(e: RawEntry): Uint8Array[] {
  const name = encoder.encode(e.name);
  const header =
    MAGIC +
    hex8(e.ino, 'inode') +
    hex8(e.mode, 'mode') +
    hex8(0, 'uid') +
    hex8(0, 'gid') +
    hex8(e.nlink, 'nlink') +
    hex8(e.mtime, `${e.name}: mtime`) +
    hex8(e.data.length, `${e.name}: size`) +
    hex8(0, 'devmajor') +
    hex8(0, 'devminor') +
    hex8(0, 'rdevmajor') +
    hex8(0, 'rdevminor') +
    hex8(name.length + 1, 'name size') +
    hex8(0, 'check');
  // The name (with its NUL) is padded so that header + name ends on a 4-byte boundary.
  const head = new Uint8Array(110 + name.length + 1 + pad4(110 + name.length + 1));
  head.set(encoder.encode(header), 0);
  head.set(name, 110);
  return [head, e.data, new Uint8Array(pad4(e.data.length))];
}

/** Write a newc cpio archive of `files` (sorted by archive name; duplicates refused). */
export function writeCpio(files: readonly RenderedFile[], opts: CpioOptions): Uint8Array {
  hex8(opts.mtime, 'mtime');
  const named = files.map((f) => ({ file: f, name: archiveName(f.path) }));
  named.sort((a, b) => compareBytes(a.name, b.name));
  const parts: Uint8Array[] = [];
  named.forEach(({ file, name }, i) => {
    const prev = named[i - 1];
    if (prev !== undefined && prev.name === name) throw new Error(`cpio: two entries for ${file.path}`);
    parts.push(
      ...entryBytes({
        name,
        ino: i + 1,
        mode: fileTypeMode(file),
        // One link for every entry, directories included, as rpmbuild writes them (rpm ignores a directory's
        // nlink; there are no hard links here).
        nlink: 1,
        mtime: opts.mtime,
        data: entryData(file),
      }),
    );
  });
  parts.push(...entryBytes({ name: TRAILER, ino: 0, mode: 0, nlink: 1, mtime: 0, data: new Uint8Array(0) }));
  return concat(parts);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
