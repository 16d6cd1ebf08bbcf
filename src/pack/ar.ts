/**
 * Deterministic writer for the common `ar` archive format as dpkg reads it (deb(5)):
 * the global header `!<arch>\n`, then per member a 60-byte header and the data, padded to an even offset
 * with `\n`. Member names are written as dpkg-deb writes them: plain, space-padded, without the GNU `/`.
 * Owner 0/0, mode 100644 and a caller-given mtime (SOURCE_DATE_EPOCH) make the output host-independent.
 */

export interface ArMember {
  readonly name: string;
  readonly data: Uint8Array;
}

export interface ArOptions {
  /** Seconds since the epoch written into every member header (use SOURCE_DATE_EPOCH). */
  readonly mtime: number;
}

const MAGIC = '!<arch>\n';
const HEADER_SIZE = 60;

/** Left-justify `value` in a field of `width` bytes, space padded; throw if it does not fit. */
function field(value: string, width: number, what: string): string {
  if (value.length > width) throw new Error(`ar: ${what} ${JSON.stringify(value)} does not fit in ${width} bytes`);
  return value.padEnd(width, ' ');
}

function checkName(name: string): void {
  if (name.length === 0) throw new Error('ar: empty member name');
  if (name.length > 15) {
    throw new Error(`ar: member name ${JSON.stringify(name)} is longer than 15 characters`);
  }
  // Printable ASCII without space (padding would make it ambiguous) and without `/` (the GNU terminator).
  if (!/^[\x21-\x2e\x30-\x7e]+$/.test(name)) {
    throw new Error(`ar: member name ${JSON.stringify(name)} must be printable ASCII without spaces or '/'`);
  }
}

export function writeAr(members: readonly ArMember[], opts: ArOptions): Uint8Array {
  const { mtime } = opts;
  if (!Number.isSafeInteger(mtime) || mtime < 0 || mtime > 999_999_999_999) {
    throw new Error(`ar: mtime ${mtime} must be a non-negative integer of at most 12 digits`);
  }
  const seen = new Set<string>();
  let total = MAGIC.length;
  for (const m of members) {
    checkName(m.name);
    if (seen.has(m.name)) throw new Error(`ar: duplicate member name ${JSON.stringify(m.name)}`);
    seen.add(m.name);
    if (m.data.length > 9_999_999_999) throw new Error(`ar: member ${m.name} is too large`);
    total += HEADER_SIZE + m.data.length + (m.data.length % 2);
  }

  const out = new Uint8Array(total);
  const ascii = new TextEncoder();
  let off = 0;
  const put = (s: string): void => {
    out.set(ascii.encode(s), off);
    off += s.length;
  };
  put(MAGIC);
  for (const m of members) {
    const header =
      field(m.name, 16, 'name') +
      field(String(mtime), 12, 'mtime') +
      field('0', 6, 'uid') +
      field('0', 6, 'gid') +
      field('100644', 8, 'mode') +
      field(String(m.data.length), 10, 'size') +
      '`\n';
    if (header.length !== HEADER_SIZE) throw new Error('ar: internal error, header is not 60 bytes');
    put(header);
    out.set(m.data, off);
    off += m.data.length;
    if (m.data.length % 2 === 1) put('\n');
  }
  if (off !== total) throw new Error('ar: internal error, size mismatch');
  return out;
}
