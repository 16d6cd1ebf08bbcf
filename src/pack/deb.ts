/**
 * Deterministic Debian binary package (.deb) assembler, per deb(5) and deb-control(5).
 *
 * Knows nothing of Qubes or of the gateway config: it takes package metadata and a list of RenderedFiles
 * and returns the bytes of the .deb. Same input, same bytes: every timestamp is `sourceDateEpoch`, owners
 * are root/root, entries are sorted, gzip carries no name or time (see gzip.ts for the zlib caveat).
 */
import { createHash } from 'node:crypto';
import { compareBytes, type RenderedFile } from '../files.ts';
import { writeAr } from './ar.ts';
import { gzip } from './gzip.ts';
import { normalizeTarEntries, tarLinkProblem, tarPathProblem, writeTar, type TarEntry } from './tar.ts';

export interface MaintainerScripts {
  readonly preinst?: string;
  readonly postinst?: string;
  readonly prerm?: string;
  readonly postrm?: string;
}

export interface DebMeta {
  readonly package: string;
  /** Debian version, optionally with an epoch (`1:2.0-1`). */
  readonly version: string;
  /** `all`, `amd64`, ... */
  readonly architecture: string;
  /** `Name <email>` */
  readonly maintainer: string;
  readonly section: string;
  readonly priority: string;
  /** Each item one dependency (alternatives written with `|` inside the item). Empty: no Depends field. */
  readonly depends: readonly string[];
  readonly recommends?: readonly string[];
  readonly description: {
    /** The one-line synopsis. */
    readonly summary: string;
    /** The extended description, one string per line; `''` is a paragraph break (written as ` .`). */
    readonly extended: readonly string[];
  };
  readonly homepage?: string;
  /** Shell scripts (must start with `#!`), stored with mode 0755. */
  readonly scripts?: MaintainerScripts;
}

export interface DebOptions {
  /** SOURCE_DATE_EPOCH: the mtime of every tar entry and ar member. */
  readonly sourceDateEpoch: number;
}

const SCRIPT_NAMES = ['preinst', 'postinst', 'prerm', 'postrm'] as const;
const encoder = new TextEncoder();

/** `<package>_<version without epoch>_<arch>.deb`, the name dpkg-name and the archive use. */
export function debFileName(meta: Pick<DebMeta, 'package' | 'version' | 'architecture'>): string {
  const version = meta.version.replace(/^[0-9]+:/, '');
  return `${meta.package}_${version}_${meta.architecture}.deb`;
}

function fail(what: string, why: string): never {
  throw new Error(`deb: ${what}: ${why}`);
}

/**
 * Throw unless every file can go into a .deb as given: absolute, normalised path of printable ASCII without
 * whitespace (dpkg's conffiles and md5sums are line/space based), no `.`/`..` components, fits a plain ustar
 * header (no PAX), symlinks with a short ASCII target, permission-only modes, no duplicate paths.
 */
export function validateDebFiles(files: readonly RenderedFile[]): void {
  const seen = new Set<string>();
  for (const f of files) {
    const p = f.path;
    if (!p.startsWith('/')) fail(JSON.stringify(p), 'path is not absolute');
    if (p === '/') fail(p, 'the root directory is implicit, do not list it');
    if (!/^[\x21-\x7e]+$/.test(p)) {
      fail(JSON.stringify(p), 'path must be printable ASCII without whitespace (non-ASCII would need a PAX header)');
    }
    if (p.split('/').includes('..')) fail(p, "path contains '..'");
    const problem = tarPathProblem(p.slice(1), f.kind === 'dir');
    if (problem !== undefined) fail(p, problem);
    if (seen.has(p)) fail(p, 'listed twice');
    seen.add(p);
    if (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o7777) fail(p, `mode ${String(f.mode)} is not 0..0o7777`);
    switch (f.kind) {
      case 'symlink': {
        if (f.target === undefined) fail(p, 'symlink without a target');
        const linkProblem = tarLinkProblem(f.target);
        if (linkProblem !== undefined) fail(p, linkProblem);
        if (f.data.length !== 0) fail(p, 'a symlink must not carry data');
        break;
      }
      case 'dir':
        if (f.data.length !== 0) fail(p, 'a directory must not carry data');
        if (f.target !== undefined) fail(p, 'only symlinks have a target');
        break;
      case 'file':
      case 'config':
        if (f.target !== undefined) fail(p, 'only symlinks have a target');
        break;
      default: {
        const kind: never = f.kind;
        fail(p, `unknown kind ${String(kind)}`);
      }
    }
  }
}

function toTarEntry(f: RenderedFile): TarEntry {
  const path = f.path.slice(1);
  switch (f.kind) {
    case 'dir':
      return { type: 'dir', path, mode: f.mode };
    case 'symlink':
      return { type: 'symlink', path, target: f.target ?? '' };
    case 'file':
    case 'config':
      return { type: 'file', path, mode: f.mode, data: f.data };
  }
}

function dataEntries(files: readonly RenderedFile[]): TarEntry[] {
  validateDebFiles(files);
  return files.map(toTarEntry);
}

/**
 * Installed-Size in KiB, computed exactly as dpkg-gencontrol(1) does when the substvar is unset
 * (deb-substvars(5) "Installed-Size"; /usr/bin/dpkg-gencontrol of dpkg 1.21): it walks the package build
 * directory, including the directory itself, and adds for each regular file and symlink ceil(lstat size / 1024)
 * (a symlink's size is the length of its target, so a non-empty target counts 1; an empty file counts 0) and
 * 1 for every other object, i.e. every directory. Here that tree is the data.tar: the root `./`, the explicit
 * and the implied parent directories, the files and the symlinks. (dpkg-gencontrol also walks a DEBIAN/
 * folder if one exists at that time; a .deb built from a list has none, so it is not counted.)
 */
export function installedSize(files: readonly RenderedFile[]): number {
  let kib = 1; // the root directory
  for (const e of normalizeTarEntries(dataEntries(files))) {
    switch (e.type) {
      case 'dir':
        kib += 1;
        break;
      case 'symlink':
        kib += Math.ceil(encoder.encode(e.target).length / 1024);
        break;
      case 'file':
        kib += Math.ceil(e.data.length / 1024);
        break;
    }
  }
  return kib;
}

function singleLine(what: string, value: string): string {
  if (value.trim() === '') fail(what, 'must not be empty');
  if (/[\x00-\x1f\x7f]/.test(value)) fail(what, `${JSON.stringify(value)} contains a newline or control character`);
  if (value !== value.trim()) fail(what, `${JSON.stringify(value)} has leading or trailing whitespace`);
  return value;
}

function depList(what: string, items: readonly string[]): string {
  for (const item of items) {
    singleLine(what, item);
    if (item.includes(',')) fail(what, `${JSON.stringify(item)}: give one dependency per item, without commas`);
  }
  return items.join(', ');
}

function checkMeta(meta: DebMeta): void {
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(meta.package)) fail('Package', `${JSON.stringify(meta.package)} is not a valid package name`);
  // Epoch digits, upstream starting with a digit, characters of deb-version(7); '_' would break the file name.
  if (!/^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$/.test(meta.version)) {
    fail('Version', `${JSON.stringify(meta.version)} is not a valid Debian version`);
  }
  if (!/^[a-z0-9][a-z0-9-]*$/.test(meta.architecture)) fail('Architecture', `${JSON.stringify(meta.architecture)} is invalid`);
  singleLine('Maintainer', meta.maintainer);
  if (!/^[a-z0-9][a-z0-9+./-]*$/.test(meta.section)) fail('Section', `${JSON.stringify(meta.section)} is invalid`);
  if (!/^[a-z]+$/.test(meta.priority)) fail('Priority', `${JSON.stringify(meta.priority)} is invalid`);
  if (meta.homepage !== undefined) singleLine('Homepage', meta.homepage);
  singleLine('Description', meta.description.summary);
  for (const line of meta.description.extended) {
    if (/[\x00-\x1f\x7f]/.test(line)) fail('Description', `line ${JSON.stringify(line)} contains a control character`);
    if (line.trim() === '.') fail('Description', "a line of just '.' is ambiguous; use '' for a blank line");
  }
  for (const name of SCRIPT_NAMES) {
    const text = meta.scripts?.[name];
    if (text !== undefined && !text.startsWith('#!')) fail(name, 'a maintainer script must start with #!');
  }
}

/** The control file, fields in dpkg's canonical order for binary packages (Dpkg::Control::FieldsCore). */
export function controlFile(meta: DebMeta, files: readonly RenderedFile[]): string {
  checkMeta(meta);
  const fields: Array<[string, string]> = [
    ['Package', meta.package],
    ['Version', meta.version],
    ['Architecture', meta.architecture],
    ['Maintainer', meta.maintainer],
    ['Installed-Size', String(installedSize(files))],
  ];
  if (meta.depends.length > 0) fields.push(['Depends', depList('Depends', meta.depends)]);
  if (meta.recommends !== undefined && meta.recommends.length > 0) {
    fields.push(['Recommends', depList('Recommends', meta.recommends)]);
  }
  fields.push(['Section', meta.section], ['Priority', meta.priority]);
  if (meta.homepage !== undefined) fields.push(['Homepage', meta.homepage]);
  const extended = meta.description.extended.map((line) => (line.trim() === '' ? ' .' : ` ${line}`));
  fields.push(['Description', [meta.description.summary, ...extended].join('\n')]);
  return fields.map(([k, v]) => `${k}: ${v}\n`).join('');
}

function regularFiles(files: readonly RenderedFile[]): RenderedFile[] {
  return files.filter((f) => f.kind === 'file' || f.kind === 'config').sort((a, b) => compareBytes(a.path, b.path));
}

/** `md5sums`: `<md5>  <path without leading />`, regular files only, in byte order (as dh_md5sums writes it). */
export function md5sumsFile(files: readonly RenderedFile[]): string {
  return regularFiles(files)
    .map((f) => `${createHash('md5').update(f.data).digest('hex')}  ${f.path.slice(1)}\n`)
    .join('');
}

/** `conffiles`: every `config` file and every regular file under /etc, absolute, one per line, byte order. */
export function conffilesFile(files: readonly RenderedFile[]): string {
  return regularFiles(files)
    .filter((f) => f.kind === 'config' || f.path.startsWith('/etc/'))
    .map((f) => `${f.path}\n`)
    .join('');
}

/** Build the .deb. Pure: the same meta, files and epoch always give the same bytes. */
export function writeDeb(meta: DebMeta, files: readonly RenderedFile[], opts: DebOptions): Uint8Array {
  const mtime = opts.sourceDateEpoch;
  const data = dataEntries(files);

  const control: TarEntry[] = [{ type: 'file', path: 'control', mode: 0o644, data: encoder.encode(controlFile(meta, files)) }];
  const md5sums = md5sumsFile(files);
  if (md5sums !== '') control.push({ type: 'file', path: 'md5sums', mode: 0o644, data: encoder.encode(md5sums) });
  const conffiles = conffilesFile(files);
  if (conffiles !== '') control.push({ type: 'file', path: 'conffiles', mode: 0o644, data: encoder.encode(conffiles) });
  for (const name of SCRIPT_NAMES) {
    const text = meta.scripts?.[name];
    if (text !== undefined) control.push({ type: 'file', path: name, mode: 0o755, data: encoder.encode(text) });
  }

  return writeAr(
    [
      { name: 'debian-binary', data: encoder.encode('2.0\n') },
      { name: 'control.tar.gz', data: gzip(writeTar(control, { mtime })) },
      { name: 'data.tar.gz', data: gzip(writeTar(data, { mtime })) },
    ],
    { mtime },
  );
}
