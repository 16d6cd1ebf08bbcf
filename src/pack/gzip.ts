/**
 * Deterministic gzip (RFC 1952) for package members.
 *
 * The header is fixed: no FNAME/FCOMMENT/FEXTRA, MTIME 0, XFL 2 (level 9), and the OS byte forced to 3 (Unix)
 * so the output does not depend on the build host (zlib writes its compile-time OS_CODE there: 3 on Linux,
 * but 10 on Windows and 19 on newer macOS builds). This matches `gzip -9n` on Linux byte for byte in the header.
 *
 * The compressed bytes come from the zlib bundled with Node, not from the system, and a different zlib may
 * produce different, equally valid, bytes. Node 20 and 22 bundle Chromium's zlib fork (process.versions.zlib
 * `1.3.1-<commit>`), Node 24 its successor (`1.3.2.1-motley-<commit>`); so far they give the same bytes for
 * every package, and `npm run repro` proves it on each run by building with Node 20, 22 and 24
 * (build/node-majors.ts pins the versions compared). A major not listed there has not been compared. The fork
 * picks SIMD code paths at run time: compare builds from two different machines (diffoscope) before relying
 * on bit-identity across CPUs.
 */
import { constants, gzipSync } from 'node:zlib';

/** Offset of the OS byte in the 10-byte gzip header. */
const OS_OFFSET = 9;
/** RFC 1952: 3 = Unix. */
const OS_UNIX = 3;

export function gzip(data: Uint8Array): Uint8Array {
  const out = gzipSync(data, {
    level: 9,
    windowBits: 15,
    memLevel: 8,
    strategy: constants.Z_DEFAULT_STRATEGY,
  });
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  // Node never sets a name or a time, but check rather than trust: the header must be the fixed one.
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b || bytes[2] !== 8 || bytes[3] !== 0) {
    throw new Error('gzip: zlib produced an unexpected header (flags set?)');
  }
  if (bytes[4] !== 0 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new Error('gzip: zlib wrote a non-zero MTIME');
  }
  // The header has no FHCRC, so patching the OS byte leaves the trailer's CRC32 (of the data) valid.
  bytes[OS_OFFSET] = OS_UNIX;
  return bytes;
}
