/**
 * `writeRpm(meta, files, opts)`: a noarch binary .rpm, in memory, byte-for-byte reproducible.
 *
 * File layout (rpm's docs/manual/format_v4.md):
 *   lead (96 bytes) | signature header, padded to 8 | main header | gzip(cpio payload)
 *
 * The signature header carries only digests, no signature: SHA-256 of the main header, MD5 and size of main
 * header + payload, and the uncompressed payload size. Signing, if wanted, is `rpmsign --addsign` afterwards.
 * Nothing here reads the clock, the host, the user or the environment: every time is `opts.sourceDateEpoch`.
 */
import { createHash } from 'node:crypto';
import type { RenderedFile } from '../../files.ts';
import { concat } from '../cpio.ts';
import { requires, provides, SCRIPT_INTERPRETER, evr, type Dep } from './deps.ts';
import { fileListTags, sortFiles } from './filelist.ts';
import { bin, i18n, int32, padTo8, str, strs, writeHeader, type HeaderValue } from './header.ts';
import { writeLead } from './lead.ts';
import { checkMeta, type RpmMeta } from './meta.ts';
import { buildPayload, sha256Hex } from './payload.ts';
import { PGPHASHALGO_SHA256, SIG_TAG, TAG } from './tags.ts';

export type { RpmChangelogEntry, RpmDependency, RpmMeta, RpmScripts, RpmSense } from './meta.ts';

export interface RpmOptions {
  /** SOURCE_DATE_EPOCH: build time and every file's mtime. */
  readonly sourceDateEpoch: number;
}

/** A fixed build host: the real one would make the package differ from machine to machine. */
export const BUILD_HOST = 'reproducible';
const DEFAULT_GROUP = 'Unspecified';
const MAX_INT32 = 0xffff_ffff;

/** `<name>-<version>-<release>.noarch.rpm`, the conventional file name. */
export function rpmFileName(meta: RpmMeta): string {
  return `${meta.name}-${meta.version}-${meta.release}.noarch.rpm`;
}

function setDeps(entries: Map<number, HeaderValue>, deps: readonly Dep[], tags: readonly [number, number, number]): void {
  if (deps.length === 0) return;
  const [nameTag, flagsTag, versionTag] = tags;
  entries.set(nameTag, strs(deps.map((d) => d.name)));
  entries.set(flagsTag, int32(...deps.map((d) => d.flags)));
  entries.set(versionTag, strs(deps.map((d) => d.version)));
}

const SCRIPT_TAGS = [
  ['pre', TAG.PREIN, TAG.PREINPROG],
  ['post', TAG.POSTIN, TAG.POSTINPROG],
  ['preun', TAG.PREUN, TAG.PREUNPROG],
  ['postun', TAG.POSTUN, TAG.POSTUNPROG],
] as const;

function mainHeader(
  meta: RpmMeta,
  files: readonly RenderedFile[],
  epoch: number,
  payload: ReturnType<typeof buildPayload>,
): Uint8Array {
  const list = fileListTags(files, epoch);
  if (list.totalSize > MAX_INT32) throw new Error('rpm: files larger than 4 GiB in total need LONGSIZE (unsupported)');
  const e = new Map<number, HeaderValue>(list.entries);

  e.set(TAG.HEADERI18NTABLE, strs(['C']));
  e.set(TAG.NAME, str(meta.name));
  e.set(TAG.VERSION, str(meta.version));
  e.set(TAG.RELEASE, str(meta.release));
  e.set(TAG.SUMMARY, i18n(meta.summary));
  e.set(TAG.DESCRIPTION, i18n(meta.description));
  e.set(TAG.BUILDTIME, int32(epoch));
  e.set(TAG.BUILDHOST, str(BUILD_HOST));
  e.set(TAG.SIZE, int32(list.totalSize));
  e.set(TAG.LICENSE, str(meta.license));
  if (meta.packager !== undefined) e.set(TAG.PACKAGER, str(meta.packager));
  e.set(TAG.GROUP, i18n(meta.group ?? DEFAULT_GROUP));
  if (meta.url !== undefined) e.set(TAG.URL, str(meta.url));
  e.set(TAG.OS, str('linux'));
  e.set(TAG.ARCH, str('noarch'));
  // rpm decides "binary or source package" by the presence of SOURCERPM; the name is rpmbuild's convention.
  e.set(TAG.SOURCERPM, str(`${meta.name}-${evr(meta)}.src.rpm`));

  for (const [key, bodyTag, progTag] of SCRIPT_TAGS) {
    const body = meta.scripts?.[key];
    if (body === undefined) continue;
    e.set(bodyTag, str(body));
    e.set(progTag, str(SCRIPT_INTERPRETER));
  }

  setDeps(e, requires(meta, list.hasConfigFiles), [TAG.REQUIRENAME, TAG.REQUIREFLAGS, TAG.REQUIREVERSION]);
  setDeps(e, provides(meta, list.hasConfigFiles), [TAG.PROVIDENAME, TAG.PROVIDEFLAGS, TAG.PROVIDEVERSION]);

  const log = meta.changelog ?? [];
  if (log.length > 0) {
    e.set(TAG.CHANGELOGTIME, int32(...log.map((c) => c.time)));
    e.set(TAG.CHANGELOGNAME, strs(log.map((c) => c.author)));
    e.set(TAG.CHANGELOGTEXT, strs(log.map((c) => c.text)));
  }

  e.set(TAG.PAYLOADFORMAT, str('cpio'));
  e.set(TAG.PAYLOADCOMPRESSOR, str('gzip'));
  e.set(TAG.PAYLOADFLAGS, str('9'));
  e.set(TAG.ENCODING, str('utf-8'));
  e.set(TAG.PAYLOADDIGEST, strs([payload.sha256]));
  e.set(TAG.PAYLOADDIGESTALGO, int32(PGPHASHALGO_SHA256));
  e.set(TAG.PAYLOADDIGESTALT, strs([payload.sha256Uncompressed]));
  return writeHeader(TAG.HEADERIMMUTABLE, e);
}

function signatureHeader(header: Uint8Array, payload: ReturnType<typeof buildPayload>): Uint8Array {
  const size = header.length + payload.compressed.length;
  if (size > MAX_INT32 || payload.cpioSize > MAX_INT32) {
    throw new Error('rpm: packages over 4 GiB need LONGSIZE/LONGARCHIVESIZE (unsupported)');
  }
  const md5 = createHash('md5').update(header).update(payload.compressed).digest();
  const sig = writeHeader(
    SIG_TAG.HEADERSIGNATURES,
    new Map<number, HeaderValue>([
      [SIG_TAG.SHA256, str(sha256Hex(header))],
      [SIG_TAG.SIZE, int32(size)],
      [SIG_TAG.MD5, bin(new Uint8Array(md5))],
      [SIG_TAG.PAYLOADSIZE, int32(payload.cpioSize)],
    ]),
  );
  return concat([sig, padTo8(sig.length)]);
}

export function writeRpm(meta: RpmMeta, files: readonly RenderedFile[], opts: RpmOptions): Uint8Array {
  const epoch = opts.sourceDateEpoch;
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_INT32) {
    throw new Error(`rpm: sourceDateEpoch ${epoch} is not a time in seconds that fits 32 bits`);
  }
  checkMeta(meta);
  const sorted = sortFiles(files);
  const payload = buildPayload(sorted, epoch);
  const header = mainHeader(meta, sorted, epoch, payload);
  return concat([writeLead(`${meta.name}-${evr(meta)}`), signatureHeader(header, payload), header, payload.compressed]);
}
