/**
 * Requires and provides, with the dependencies rpmbuild adds on its own so that a package written here
 * carries the same ones as a package built from an equivalent spec:
 * - `rpmlib(...)` features the package relies on; rpm refuses to install a package needing a feature it
 *   lacks, which is the point: older rpms must not misread the header.
 * - `/bin/sh` for each scriptlet, flagged as the interpreter of that scriptlet (`Requires(post): /bin/sh`).
 * - `NAME = VERSION-RELEASE` provided, and `config(NAME) = VERSION-RELEASE` provided *and* required when the
 *   package has config files (rpm uses it to keep config files of one package consistent).
 */
import type { RpmDependency, RpmMeta, RpmScripts, RpmSense } from './meta.ts';
import { SENSE } from './tags.ts';
import { compareBytes } from '../../files.ts';

export interface Dep {
  readonly name: string;
  readonly flags: number;
  /** "" when unversioned */
  readonly version: string;
}

const SENSE_BITS: Readonly<Record<RpmSense, number>> = {
  '<': SENSE.LESS,
  '<=': SENSE.LESS | SENSE.EQUAL,
  '=': SENSE.EQUAL,
  '>=': SENSE.GREATER | SENSE.EQUAL,
  '>': SENSE.GREATER,
};

/**
 * The features this writer's output uses, with the versions rpmbuild 4.18 writes for them. No
 * `rpmlib(PayloadIsZstd)` etc.: the payload is gzip, which every rpm reads.
 */
const RPMLIB_FEATURES: readonly (readonly [string, string])[] = [
  // BASENAMES/DIRNAMES/DIRINDEXES instead of OLDFILENAMES
  ['rpmlib(CompressedFileNames)', '3.0.4-1'],
  // FILEDIGESTS are SHA-256 (FILEDIGESTALGO), not MD5
  ['rpmlib(FileDigests)', '4.6.0-1'],
  // cpio names start with "./"
  ['rpmlib(PayloadFilesHavePrefix)', '4.0-1'],
];

/** Which SENSE bit marks the `/bin/sh` needed by each scriptlet. */
const SCRIPT_SENSE: Readonly<Record<keyof RpmScripts, number>> = {
  pre: SENSE.SCRIPT_PRE,
  post: SENSE.SCRIPT_POST,
  preun: SENSE.SCRIPT_PREUN,
  postun: SENSE.SCRIPT_POSTUN,
};

export const SCRIPT_INTERPRETER = '/bin/sh';

function fromMeta(d: RpmDependency): Dep {
  return { name: d.name, flags: d.flags === undefined ? SENSE.ANY : SENSE_BITS[d.flags], version: d.version ?? '' };
}

/** Sorted by name, then flags, then version, duplicates dropped: the order does not depend on the caller's. */
function normalise(deps: readonly Dep[]): Dep[] {
  const sorted = [...deps].sort(
    (a, b) => compareBytes(a.name, b.name) || a.flags - b.flags || compareBytes(a.version, b.version),
  );
  return sorted.filter((d, i) => {
    const prev = sorted[i - 1];
    return prev === undefined || prev.name !== d.name || prev.flags !== d.flags || prev.version !== d.version;
  });
}

export function evr(meta: RpmMeta): string {
  return `${meta.version}-${meta.release}`;
}

export function requires(meta: RpmMeta, hasConfigFiles: boolean): Dep[] {
  const deps: Dep[] = (meta.requires ?? []).map(fromMeta);
  for (const key of Object.keys(SCRIPT_SENSE) as (keyof RpmScripts)[]) {
    if (meta.scripts?.[key] !== undefined) {
      deps.push({ name: SCRIPT_INTERPRETER, flags: SENSE.INTERP | SCRIPT_SENSE[key], version: '' });
    }
  }
  if (hasConfigFiles) deps.push({ name: `config(${meta.name})`, flags: SENSE.CONFIG | SENSE.EQUAL, version: evr(meta) });
  for (const [name, version] of RPMLIB_FEATURES) {
    deps.push({ name, flags: SENSE.RPMLIB | SENSE.LESS | SENSE.EQUAL, version });
  }
  return normalise(deps);
}

export function provides(meta: RpmMeta, hasConfigFiles: boolean): Dep[] {
  const deps: Dep[] = (meta.provides ?? []).map(fromMeta);
  deps.push({ name: meta.name, flags: SENSE.EQUAL, version: evr(meta) });
  if (hasConfigFiles) deps.push({ name: `config(${meta.name})`, flags: SENSE.CONFIG | SENSE.EQUAL, version: evr(meta) });
  return normalise(deps);
}
