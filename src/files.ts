/**
 * The one value type every renderer returns and every package writer consumes.
 *
 * A rendered file is format-neutral: the .deb writer turns `config` into a `conffiles` entry, the .rpm writer
 * into a `%config` flag. Writers never see the YAML config, only lists of these.
 */
export type FileKind =
  /** an ordinary file */
  | 'file'
  /** a configuration file the admin may edit (deb: conffile; rpm: %config(noreplace)) */
  | 'config'
  /** a directory (parents are added implicitly by the writers; list one only to own an empty one) */
  | 'dir'
  /** a symbolic link to `target` */
  | 'symlink';

export interface RenderedFile {
  /** Absolute path inside the target system (`/etc/foo.conf`) or, for trees that are not packages, a relative one. */
  readonly path: string;
  readonly kind: FileKind;
  /** Permission bits only (0o644, 0o755); the type bits come from `kind`. */
  readonly mode: number;
  /** Contents for `file` and `config`; empty for `dir` and `symlink`. */
  readonly data: Uint8Array;
  /** Link target, for `symlink` only. */
  readonly target?: string;
}

const encoder = new TextEncoder();

export function textFile(path: string, text: string, mode = 0o644): RenderedFile {
  return { path, kind: 'file', mode, data: encoder.encode(text) };
}

export function configFile(path: string, text: string, mode = 0o644): RenderedFile {
  return { path, kind: 'config', mode, data: encoder.encode(text) };
}

export function binaryFile(path: string, data: Uint8Array, mode = 0o644): RenderedFile {
  return { path, kind: 'file', mode, data };
}

export function dirEntry(path: string, mode = 0o755): RenderedFile {
  return { path, kind: 'dir', mode, data: new Uint8Array(0) };
}

export function symlink(path: string, target: string): RenderedFile {
  return { path, kind: 'symlink', mode: 0o777, data: new Uint8Array(0), target };
}

/** Sort by path (byte order) and refuse two files at one path: renderers must not silently overwrite each other. */
export function mergeTrees(...trees: ReadonlyArray<readonly RenderedFile[]>): RenderedFile[] {
  const byPath = new Map<string, RenderedFile>();
  for (const tree of trees) {
    for (const f of tree) {
      const seen = byPath.get(f.path);
      if (seen !== undefined) {
        if (seen.kind === 'dir' && f.kind === 'dir') continue;
        throw new Error(`two renderers produce ${f.path}`);
      }
      byPath.set(f.path, f);
    }
  }
  return [...byPath.values()].sort((a, b) => compareBytes(a.path, b.path));
}

export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
