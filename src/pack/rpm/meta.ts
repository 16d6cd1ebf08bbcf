/**
 * What the caller tells the RPM writer about the package, and the checks that make a bad value fail at build
 * time with a message rather than at `rpm -i` time on the user's dom0.
 */

/** A version comparison, as written in a spec file (`Requires: foo >= 1.2`). */
export type RpmSense = '<' | '<=' | '=' | '>=' | '>';

export interface RpmDependency {
  readonly name: string;
  /** Given together with `version`, or not at all. */
  readonly flags?: RpmSense;
  /** `VERSION` or `VERSION-RELEASE` (or `EPOCH:VERSION-RELEASE`). */
  readonly version?: string;
}

/** Scriptlet bodies, run by `/bin/sh` with `$1` = number of instances after the operation (see rpm docs). */
export interface RpmScripts {
  readonly pre?: string;
  readonly post?: string;
  readonly preun?: string;
  readonly postun?: string;
}

export interface RpmChangelogEntry {
  /** Seconds since the epoch (rpm shows the day only). */
  readonly time: number;
  /** `Name <mail> - VERSION-RELEASE`, as in a spec's `%changelog` heading. */
  readonly author: string;
  /** The entry's lines, usually `- did this`. */
  readonly text: string;
}

export interface RpmMeta {
  readonly name: string;
  readonly version: string;
  readonly release: string;
  /** One line. */
  readonly summary: string;
  readonly description: string;
  /** SPDX expression, e.g. `GPL-3.0-or-later`. */
  readonly license: string;
  /** Defaults to `Unspecified`, the value rpmbuild writes when a spec has none (rpmlint counts it as missing). */
  readonly group?: string;
  readonly url?: string;
  /** `Name <mail>`. */
  readonly packager?: string;
  /** Runtime dependencies. The writer adds the `rpmlib(...)` and scriptlet `/bin/sh` ones itself. */
  readonly requires?: readonly RpmDependency[];
  /** Extra capabilities; `NAME = VERSION-RELEASE` (and `config(NAME)` when there are config files) are added. */
  readonly provides?: readonly RpmDependency[];
  readonly scripts?: RpmScripts;
  /** Newest entry first, as rpm stores it. */
  readonly changelog?: readonly RpmChangelogEntry[];
}

/** rpm's own rule for package names, kept a little stricter: no spaces, no shell specials. */
const NAME_RE = /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/;
/** Version and release may not contain `-` (it separates them in NAME-VERSION-RELEASE) nor whitespace. */
const VERSION_RE = /^[A-Za-z0-9._+~^]+$/;
/** A dependency name: a package name, a path, or a capability like `config(foo)` / `perl(Foo::Bar)`. */
const DEP_NAME_RE = /^[^\s,<>=]+$/;
const DEP_VERSION_RE = /^(?:[0-9]+:)?[A-Za-z0-9._+~^]+(?:-[A-Za-z0-9._+~^]+)?$/;

function fail(field: string, message: string): never {
  throw new Error(`rpm meta: ${field}: ${message}`);
}

function checkDependency(field: string, dep: RpmDependency): void {
  if (!DEP_NAME_RE.test(dep.name)) fail(field, `"${dep.name}" is not a dependency name`);
  if ((dep.flags === undefined) !== (dep.version === undefined)) {
    fail(field, `"${dep.name}": give both a comparison and a version, or neither`);
  }
  if (dep.version !== undefined && !DEP_VERSION_RE.test(dep.version)) {
    fail(field, `"${dep.name}": "${dep.version}" is not a version`);
  }
}

export function checkMeta(meta: RpmMeta): void {
  if (!NAME_RE.test(meta.name)) fail('name', `"${meta.name}" is not a package name (letters, digits, . _ + -)`);
  if (!VERSION_RE.test(meta.version)) fail('version', `"${meta.version}" is not a version (no "-" or spaces)`);
  if (!VERSION_RE.test(meta.release)) fail('release', `"${meta.release}" is not a release (no "-" or spaces)`);
  if (meta.summary.trim() === '' || /[\r\n]/.test(meta.summary)) fail('summary', 'must be one non-empty line');
  if (meta.description.trim() === '') fail('description', 'must not be empty');
  if (meta.license.trim() === '') fail('license', 'must not be empty');
  meta.requires?.forEach((d, i) => checkDependency(`requires[${i}]`, d));
  meta.provides?.forEach((d, i) => checkDependency(`provides[${i}]`, d));
  meta.changelog?.forEach((c, i) => {
    if (!Number.isInteger(c.time) || c.time < 0 || c.time > 0xffff_ffff) fail(`changelog[${i}].time`, 'not a time');
    if (c.author.trim() === '' || /[\r\n]/.test(c.author)) fail(`changelog[${i}].author`, 'must be one line');
    if (c.text.trim() === '') fail(`changelog[${i}].text`, 'must not be empty');
  });
}
