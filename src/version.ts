/**
 * The packages' version: one string for the .deb and the .rpm (with the RPM release after it), built so that
 * every package manager on the way (dpkg and apt in the template, Salt's pkg.installed, rpm and dnf in dom0)
 * takes a rebuild after a change as an upgrade, and an unchanged rebuild as the same package.
 *
 *     <package.version>+<source time>.<input delay>.<digest>        e.g. 0.1.0+20261123120000.691800.1a2b3c4d
 *
 * - package.version (config, default 0.1.0): the upstream part, which a user may raise by hand.
 * - source time: when the project's code was committed (HEAD's commit time; the fixed fallback outside git), as
 *   UTC YYYYMMDDhhmmss. A build of newer project code sorts higher whatever the config and its file's time.
 * - input delay: the input time less the source time, in seconds, with no leading zeros. The input time is
 *   SOURCE_DATE_EPOCH, whose default is the latest of HEAD's commit time and the modification times of the config
 *   file and the keyring (src/epoch.ts), so it is never before the source time. Editing the config moves it
 *   forward, so a changed config sorts higher than the build before it, at the same project code. At one source
 *   time the delay orders builds exactly as the input time would.
 * - digest: the first 8 hex digits of SHA-256 over the validated config (every key, defaults filled in, the
 *   keyring's path left out), the keyring's bytes and the template's rendered files. Equal times with different
 *   contents (uncommitted edits to the project, or a SOURCE_DATE_EPOCH set by hand across a config change) still
 *   give a different version, so nothing is skipped as "already installed"; the digest alone does not order them.
 *
 * Why a delay and not the input time as a second YYYYMMDDhhmmss: length. Debian 13's lintian warns
 * package-has-long-file-name when the .deb's name, with its architecture counted as the longest one
 * ("kfreebsd-amd64", 14 characters), is longer than 80 characters (lintian's check archive/file/name/length):
 * for an `all` package at most 69. Two 14-digit stamps made `qubes-i2p-gateway_0.1.0+…_all.deb` 70. The source
 * time stays first and in the same form, so every build of this scheme sorts above every build of the one before
 * it (made from older code, so an earlier source time).
 *
 * SOURCE_DATE_EPOCH set in the environment sets both times (one value reproduces a build; the delay is 0). The
 * numbers and the digest are a pure function of the inputs: the same config, keyring, code and times give the
 * same version and so the same bytes. Valid as a Debian upstream version (deb-version(7)) and an RPM Version
 * (letters, digits, "." and "+"; no "-"), and both compare the numeric parts as numbers.
 */
import { createHash } from 'node:crypto';
import type { GatewayConfig } from './config/schema.ts';
import type { RenderedFile } from './files.ts';

export interface VersionInputs {
  readonly config: GatewayConfig;
  /** The I2P repository keyring (router i2p only). */
  readonly keyring?: Uint8Array;
  /** The template package's runtime files (renderGateway's output). */
  readonly gatewayFiles: readonly RenderedFile[];
  /** HEAD's commit time, seconds. */
  readonly sourceTime: number;
  /** SOURCE_DATE_EPOCH, seconds. */
  readonly inputTime: number;
}

/** UTC YYYYMMDDhhmmss: digits only, so dpkg and rpm compare it as one number. */
export function versionStamp(epochSeconds: number): string {
  if (!Number.isInteger(epochSeconds) || epochSeconds < 0) throw new Error(`version: ${epochSeconds} is not a whole number of seconds`);
  return new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, '').replace(/[-T:]/g, '');
}

/** JSON with object keys sorted at every level, so the digest does not depend on key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function inputDigest(inputs: Pick<VersionInputs, 'config' | 'keyring' | 'gatewayFiles'>): string {
  const { keyring: _path, ...i2p } = inputs.config.i2p;
  const h = createHash('sha256');
  const part = (tag: string, data: Uint8Array | string): void => {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    h.update(`${tag} ${bytes.length}\n`);
    h.update(bytes);
  };
  part('config', canonical({ ...inputs.config, i2p }));
  part('keyring', inputs.keyring ?? new Uint8Array());
  for (const f of inputs.gatewayFiles) {
    part('file', `${f.path} ${f.kind} ${f.mode.toString(8)} ${f.target ?? ''}`);
    part('data', f.data);
  }
  return h.digest('hex').slice(0, 8);
}

/** The input time's delay after the source time, in seconds: digits only, no leading zeros. */
export function inputDelay(sourceTime: number, inputTime: number): string {
  if (!Number.isInteger(inputTime) || inputTime < sourceTime) {
    throw new Error(`version: the input time ${inputTime} is before the source time ${sourceTime} (SOURCE_DATE_EPOCH is never before HEAD's commit time, src/epoch.ts)`);
  }
  return String(inputTime - sourceTime);
}

export function packageVersion(inputs: VersionInputs): string {
  return `${inputs.config.package.version}+${versionStamp(inputs.sourceTime)}.${inputDelay(inputs.sourceTime, inputs.inputTime)}.${inputDigest(inputs)}`;
}
