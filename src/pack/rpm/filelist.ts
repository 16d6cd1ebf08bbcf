/**
 * The header's per-file arrays. Every array has one element per file, in the same order: the files sorted by
 * full path in byte order. That order matters: rpm finds an archive member's header entry by binary search
 * over (dirname + basename), and the linear fallback is broken in some rpm releases.
 *
 * Only the entries given are listed: a directory is listed (owned) only when it comes as kind `dir`; parents
 * are not added, since a package must not claim `/etc` or `/usr/bin`.
 */
import { createHash } from 'node:crypto';
import type { RenderedFile } from '../../files.ts';
import { compareBytes } from '../../files.ts';
import { entryData, fileTypeMode } from '../cpio.ts';
import type { HeaderValue } from './header.ts';
import { int16, int32, strs } from './header.ts';
import { FILE_FLAG, PGPHASHALGO_SHA256, RPMVERIFY_ALL, TAG } from './tags.ts';

/** rpmbuild's defaults for files whose owner the spec does not set; the only owner this writer supports. */
const OWNER = 'root';
const GROUP = 'root';
/** FILEDEVICES: one fake device for all files, so FILEINODES alone tell files apart (no hard links). */
const DEVICE = 1;

/** Check paths and sort: absolute, normalised, unique. */
export function sortFiles(files: readonly RenderedFile[]): RenderedFile[] {
  for (const f of files) {
    if (!f.path.startsWith('/') || f.path === '/' || f.path.endsWith('/')) {
      throw new Error(`rpm: ${f.path}: paths in an rpm are absolute file paths ("/etc/foo")`);
    }
    if (f.path.split('/').slice(1).some((p) => p === '' || p === '.' || p === '..')) {
      throw new Error(`rpm: ${f.path}: has an empty, "." or ".." component`);
    }
  }
  const sorted = [...files].sort((a, b) => compareBytes(a.path, b.path));
  sorted.forEach((f, i) => {
    if (i > 0 && sorted[i - 1]?.path === f.path) throw new Error(`rpm: two entries for ${f.path}`);
  });
  return sorted;
}

function fileFlags(f: RenderedFile): number {
  // `config` is what an admin may edit: keep their copy on upgrade (%config(noreplace)).
  if (f.kind === 'config') return FILE_FLAG.CONFIG | FILE_FLAG.NOREPLACE;
  // Folders are never flagged, as rpmbuild does (`%doc %dir` flags no folder either).
  if (f.kind === 'dir') return 0;
  if (f.path.startsWith('/usr/share/doc/')) return FILE_FLAG.DOC;
  if (f.path.startsWith('/usr/share/licenses/')) return FILE_FLAG.LICENSE;
  return 0;
}

export interface FileListTags {
  readonly entries: ReadonlyMap<number, HeaderValue>;
  /** sum of file sizes (the SIZE tag) */
  readonly totalSize: number;
  readonly hasConfigFiles: boolean;
}

/** `files` sorted by `sortFiles`. Returns no tags at all for an empty list (rpm refuses empty arrays). */
export function fileListTags(files: readonly RenderedFile[], mtime: number): FileListTags {
  const entries = new Map<number, HeaderValue>();
  if (files.length === 0) return { entries, totalSize: 0, hasConfigFiles: false };

  const dirNames: string[] = [];
  const dirIndex = new Map<string, number>();
  const baseNames: string[] = [];
  const dirIndexes: number[] = [];
  const sizes: number[] = [];
  let totalSize = 0;

  for (const f of files) {
    const slash = f.path.lastIndexOf('/');
    const dir = f.path.slice(0, slash + 1);
    let di = dirIndex.get(dir);
    if (di === undefined) {
      di = dirNames.length;
      dirNames.push(dir);
      dirIndex.set(dir, di);
    }
    dirIndexes.push(di);
    baseNames.push(f.path.slice(slash + 1));
    // A directory's size is 0, a symlink's the length of its target (what rpmbuild 4.18 records).
    const size = entryData(f).length;
    sizes.push(size);
    totalSize += size;
  }

  const n = files.length;
  const each = <T>(v: T): T[] => new Array<T>(n).fill(v);
  const digest = (f: RenderedFile): string =>
    f.kind === 'file' || f.kind === 'config' ? createHash('sha256').update(f.data).digest('hex') : '';

  entries.set(TAG.FILESIZES, int32(...sizes));
  entries.set(TAG.FILEMODES, int16(...files.map(fileTypeMode)));
  entries.set(TAG.FILERDEVS, int16(...each(0)));
  entries.set(TAG.FILEMTIMES, int32(...each(mtime)));
  entries.set(TAG.FILEDIGESTS, strs(files.map(digest)));
  entries.set(TAG.FILELINKTOS, strs(files.map((f) => (f.kind === 'symlink' ? (f.target ?? '') : ''))));
  entries.set(TAG.FILEFLAGS, int32(...files.map(fileFlags)));
  entries.set(TAG.FILEUSERNAME, strs(each(OWNER)));
  entries.set(TAG.FILEGROUPNAME, strs(each(GROUP)));
  entries.set(TAG.FILEVERIFYFLAGS, int32(...each(RPMVERIFY_ALL)));
  entries.set(TAG.FILEDEVICES, int32(...each(DEVICE)));
  entries.set(TAG.FILEINODES, int32(...files.map((_, i) => i + 1)));
  entries.set(TAG.FILELANGS, strs(each('')));
  entries.set(TAG.DIRINDEXES, int32(...dirIndexes));
  entries.set(TAG.BASENAMES, strs(baseNames));
  entries.set(TAG.DIRNAMES, strs(dirNames));
  entries.set(TAG.FILEDIGESTALGO, int32(PGPHASHALGO_SHA256));
  return { entries, totalSize, hasConfigFiles: files.some((f) => f.kind === 'config') };
}
