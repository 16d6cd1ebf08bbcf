/**
 * The payload: a newc cpio archive of exactly the files the header lists (rpm refuses an archive entry the
 * header does not know, so no implicit parent directories), gzip-compressed, with the digests rpm checks.
 */
import { createHash } from 'node:crypto';
import type { RenderedFile } from '../../files.ts';
import { writeCpio } from '../cpio.ts';
import { gzip } from '../gzip.ts';

export interface Payload {
  /** the gzip-compressed cpio archive, as stored in the .rpm */
  readonly compressed: Uint8Array;
  /** size of the uncompressed cpio archive (signature tag PAYLOADSIZE) */
  readonly cpioSize: number;
  /** SHA-256 hex of `compressed` (PAYLOADDIGEST: checked by `rpm -K` and on install) */
  readonly sha256: string;
  /** SHA-256 hex of the uncompressed cpio archive (PAYLOADDIGESTALT) */
  readonly sha256Uncompressed: string;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `files` must already be sorted by path, in the same order as the header's file list. */
export function buildPayload(files: readonly RenderedFile[], mtime: number): Payload {
  const cpio = writeCpio(files, { mtime });
  const compressed = gzip(cpio);
  return {
    compressed,
    cpioSize: cpio.length,
    sha256: sha256Hex(compressed),
    sha256Uncompressed: sha256Hex(cpio),
  };
}
