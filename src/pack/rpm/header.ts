/**
 * The RPM header structure, used for both the signature header and the main header.
 *
 *   magic 8E AD E8 01, 4 reserved zero bytes, il (index entry count), dl (data store size), all big-endian;
 *   il index entries of 16 bytes {tag, type, offset into the store, count}; the data store of dl bytes.
 *
 * Rules rpm 4.18 enforces when it reads a header (`hdrblobVerifyInfo` / `hdrblobVerifyRegion` in rpm's
 * `lib/header.c`), and so this writer follows:
 * - The first index entry is the *region* tag (62 for the signature header, 63 for the main header), type BIN,
 *   count 16, pointing at the last 16 bytes of the store. Those bytes are a copy of an index entry with the
 *   same tag whose offset is minus the size of the whole index (-16 * il): it marks every entry as part of
 *   the signed, immutable region. rpm refuses a package whose header lacks it.
 * - The other entries follow sorted by tag (rpm looks tags up by binary search).
 * - Entry data lies in the store in the order of the index, without overlap (rpm checks that each entry
 *   starts after the previous one ends).
 * - Integers are aligned to their size: rpm reads them in place and rejects a misaligned offset. Strings and
 *   BIN are *not* padded, as rpmbuild does not; padding bytes are zero.
 */
import { RPM_TYPE } from './tags.ts';
import { concat } from '../cpio.ts';

export type HeaderValue =
  | { readonly type: 'int16'; readonly values: readonly number[] }
  | { readonly type: 'int32'; readonly values: readonly number[] }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'bin'; readonly value: Uint8Array }
  | { readonly type: 'strings'; readonly values: readonly string[] }
  /** one string for the single locale "C" of HEADERI18NTABLE */
  | { readonly type: 'i18n'; readonly value: string };

export const int16 = (...values: number[]): HeaderValue => ({ type: 'int16', values });
export const int32 = (...values: number[]): HeaderValue => ({ type: 'int32', values });
export const str = (value: string): HeaderValue => ({ type: 'string', value });
export const bin = (value: Uint8Array): HeaderValue => ({ type: 'bin', value });
export const strs = (values: readonly string[]): HeaderValue => ({ type: 'strings', values });
export const i18n = (value: string): HeaderValue => ({ type: 'i18n', value });

const MAGIC = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
const ENTRY_SIZE = 16;
const encoder = new TextEncoder();

interface Encoded {
  readonly type: number;
  readonly count: number;
  readonly align: number;
  readonly data: Uint8Array;
}

function cstring(s: string, tag: number): Uint8Array {
  if (s.includes('\0')) throw new Error(`rpm header: tag ${tag}: a string contains a NUL byte`);
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function encode(tag: number, v: HeaderValue): Encoded {
  switch (v.type) {
    case 'int16':
    case 'int32': {
      const size = v.type === 'int16' ? 2 : 4;
      const max = v.type === 'int16' ? 0xffff : 0xffff_ffff;
      const data = new Uint8Array(v.values.length * size);
      const view = new DataView(data.buffer);
      v.values.forEach((n, i) => {
        if (!Number.isInteger(n) || n < 0 || n > max) {
          throw new Error(`rpm header: tag ${tag}: ${n} does not fit ${v.type}`);
        }
        if (size === 2) view.setUint16(i * 2, n);
        else view.setUint32(i * 4, n);
      });
      return { type: size === 2 ? RPM_TYPE.INT16 : RPM_TYPE.INT32, count: v.values.length, align: size, data };
    }
    case 'string':
      return { type: RPM_TYPE.STRING, count: 1, align: 1, data: cstring(v.value, tag) };
    case 'i18n':
      return { type: RPM_TYPE.I18NSTRING, count: 1, align: 1, data: cstring(v.value, tag) };
    case 'bin':
      return { type: RPM_TYPE.BIN, count: v.value.length, align: 1, data: v.value };
    case 'strings':
      return {
        type: RPM_TYPE.STRING_ARRAY,
        count: v.values.length,
        align: 1,
        data: concat(v.values.map((s) => cstring(s, tag))),
      };
  }
}

/**
 * Serialise a header: `regionTag` (62 or 63) plus `entries` (tag → value). Entries with a count of 0 are
 * refused, since rpm rejects them; leave such tags out instead.
 */
export function writeHeader(regionTag: number, entries: ReadonlyMap<number, HeaderValue>): Uint8Array {
  const tags = [...entries.keys()].sort((a, b) => a - b);
  const il = tags.length + 1;
  const index = new Uint8Array(il * ENTRY_SIZE);
  const indexView = new DataView(index.buffer);
  const store: Uint8Array[] = [];
  let dl = 0;

  const putEntry = (slot: number, tag: number, type: number, offset: number, count: number): void => {
    indexView.setUint32(slot * ENTRY_SIZE, tag);
    indexView.setUint32(slot * ENTRY_SIZE + 4, type);
    indexView.setInt32(slot * ENTRY_SIZE + 8, offset);
    indexView.setUint32(slot * ENTRY_SIZE + 12, count);
  };

  tags.forEach((tag, i) => {
    if (tag <= regionTag) throw new Error(`rpm header: tag ${tag} must sort after the region tag ${regionTag}`);
    const value = entries.get(tag);
    if (value === undefined) return;
    const e = encode(tag, value);
    if (e.count === 0) throw new Error(`rpm header: tag ${tag} has no elements; leave it out`);
    const padding = (e.align - (dl % e.align)) % e.align;
    if (padding > 0) {
      store.push(new Uint8Array(padding));
      dl += padding;
    }
    putEntry(i + 1, tag, e.type, dl, e.count);
    store.push(e.data);
    dl += e.data.length;
  });

  // The region trailer: an index entry for the region tag whose offset is -(size of the index).
  const trailer = new Uint8Array(ENTRY_SIZE);
  const trailerView = new DataView(trailer.buffer);
  trailerView.setUint32(0, regionTag);
  trailerView.setUint32(4, RPM_TYPE.BIN);
  trailerView.setInt32(8, -il * ENTRY_SIZE);
  trailerView.setUint32(12, ENTRY_SIZE);
  putEntry(0, regionTag, RPM_TYPE.BIN, dl, ENTRY_SIZE);
  store.push(trailer);
  dl += ENTRY_SIZE;

  const intro = new Uint8Array(16);
  intro.set(MAGIC);
  const introView = new DataView(intro.buffer);
  introView.setUint32(8, il);
  introView.setUint32(12, dl);
  return concat([intro, index, ...store]);
}

/** Zero bytes that bring `length` to a multiple of 8: the signature header is padded so the main one is aligned. */
export function padTo8(length: number): Uint8Array {
  return new Uint8Array((8 - (length % 8)) % 8);
}
