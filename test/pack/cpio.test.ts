/**
 * The newc cpio writer, checked against GNU cpio: it must list and extract what we wrote, and the bytes must
 * follow the format (110-byte ASCII headers, 4-byte padding, TRAILER!!!) and be reproducible.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveName, writeCpio } from '../../src/pack/cpio.ts';
import { binaryFile, dirEntry, symlink, textFile, type RenderedFile } from '../../src/files.ts';

const EPOCH = 1_700_000_000;
const env = { ...process.env, TZ: 'UTC', LC_ALL: 'C' };

/** Deliberately unsorted, with a file whose parent directory is not listed. */
const FILES: readonly RenderedFile[] = [
  textFile('/usr/bin/tool', '#!/bin/sh\necho tool\n', 0o755),
  dirEntry('/var/lib/thing', 0o750),
  textFile('/etc/thing/a.conf', 'a=1\n'),
  symlink('/usr/bin/tool-alias', 'tool'),
  binaryFile('/usr/share/thing/blob.bin', new Uint8Array([0, 1, 2, 255, 254, 3, 0])),
  textFile('/etc/thing/empty', ''),
];

function cpio(args: string[], input: Uint8Array, cwd?: string): { stdout: string; stderr: string; status: number } {
  const r = spawnSync('cpio', args, { input, env, encoding: 'utf8', ...(cwd === undefined ? {} : { cwd }) });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? -1 };
}

/** Parse our own output: [name, fields] per entry, checking the framing as we go. */
function parseNewc(bytes: Uint8Array): { name: string; f: number[]; data: Uint8Array; at: number }[] {
  const text = (a: number, b: number): string => Buffer.from(bytes.subarray(a, b)).toString('latin1');
  const out: { name: string; f: number[]; data: Uint8Array; at: number }[] = [];
  let at = 0;
  for (;;) {
    expect(at % 4).toBe(0);
    expect(text(at, at + 6)).toBe('070701');
    const f = Array.from({ length: 13 }, (_, i) => parseInt(text(at + 6 + i * 8, at + 14 + i * 8), 16));
    const namesize = f[11] ?? 0;
    const name = text(at + 110, at + 110 + namesize - 1);
    expect(bytes[at + 110 + namesize - 1]).toBe(0);
    const dataAt = Math.ceil((at + 110 + namesize) / 4) * 4;
    const size = f[6] ?? 0;
    const data = bytes.subarray(dataAt, dataAt + size);
    out.push({ name, f, data, at });
    at = Math.ceil((dataAt + size) / 4) * 4;
    if (name === 'TRAILER!!!') break;
  }
  expect(at).toBe(bytes.length);
  return out;
}

describe('writeCpio (newc)', () => {
  let dir: string;
  let archive: Uint8Array;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cpio-test-'));
    archive = writeCpio(FILES, { mtime: EPOCH });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('frames every entry as newc: sorted ./ names, inodes 1..n, owners 0, fixed mtime, padding, trailer', () => {
    const entries = parseNewc(archive);
    expect(entries.map((e) => e.name)).toEqual([
      './etc/thing/a.conf',
      './etc/thing/empty',
      './usr/bin/tool',
      './usr/bin/tool-alias',
      './usr/share/thing/blob.bin',
      './var/lib/thing',
      'TRAILER!!!',
    ]);
    const [ino, mode, uid, gid, nlink, mtime] = [0, 1, 2, 3, 4, 5];
    entries.slice(0, -1).forEach((e, i) => {
      expect(e.f[ino]).toBe(i + 1);
      expect(e.f[uid]).toBe(0);
      expect(e.f[gid]).toBe(0);
      expect(e.f[mtime]).toBe(EPOCH);
      expect(e.f[12]).toBe(0); // check field: unused in 070701
    });
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect(byName.get('./usr/bin/tool')?.f[mode]).toBe(0o100755);
    expect(byName.get('./usr/bin/tool-alias')?.f[mode]).toBe(0o120777);
    expect(Buffer.from(byName.get('./usr/bin/tool-alias')?.data ?? []).toString()).toBe('tool');
    expect(byName.get('./var/lib/thing')?.f[mode]).toBe(0o040750);
    expect(byName.get('./var/lib/thing')?.f[nlink]).toBe(1);
    expect(byName.get('./etc/thing/a.conf')?.f[nlink]).toBe(1);
    expect(byName.get('TRAILER!!!')?.f).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0]);
  });

  it('is listed by GNU cpio with the modes, owners, sizes and link target we wrote', () => {
    const r = cpio(['-tv', '--quiet'], archive);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(FILES.length);
    expect(lines[0]).toMatch(/^-rw-r--r-- +1 root +root +4 Nov 14 +2023 \.\/etc\/thing\/a\.conf$/);
    expect(lines[3]).toMatch(/^lrwxrwxrwx +1 root +root +4 Nov 14 +2023 \.\/usr\/bin\/tool-alias -> tool$/);
    expect(lines[5]).toMatch(/^drwxr-x--- +1 root +root +0 Nov 14 +2023 \.\/var\/lib\/thing$/);
  });

  it('extracts with cpio -i to the same files, modes, mtimes and link target', () => {
    const out = join(dir, 'extract');
    mkdirSync(out);
    const r = cpio(['-idm', '--quiet', '--no-absolute-filenames'], archive, out);
    expect(r.status, r.stderr).toBe(0);
    for (const f of FILES) {
      const p = join(out, f.path);
      const st = lstatSync(p);
      expect(st.mode & 0o7777, f.path).toBe(f.mode);
      if (f.kind === 'symlink') {
        expect(st.isSymbolicLink()).toBe(true);
        expect(readlinkSync(p)).toBe(f.target);
      } else if (f.kind === 'dir') {
        expect(st.isDirectory()).toBe(true);
        expect(st.mtimeMs / 1000).toBe(EPOCH);
      } else {
        expect(st.isFile()).toBe(true);
        expect(new Uint8Array(readFileSync(p))).toEqual(f.data);
        expect(st.mtimeMs / 1000).toBe(EPOCH);
      }
    }
  });

  it('is reproducible: same bytes for the same files in any order; the epoch shows in the bytes', () => {
    expect(writeCpio([...FILES].reverse(), { mtime: EPOCH })).toEqual(archive);
    expect(writeCpio(FILES, { mtime: EPOCH + 1 })).not.toEqual(archive);
  });

  it('writes an empty archive as just the trailer', () => {
    const empty = writeCpio([], { mtime: EPOCH });
    expect(parseNewc(empty).map((e) => e.name)).toEqual(['TRAILER!!!']);
    expect(cpio(['-t', '--quiet'], empty).stdout).toBe('');
  });

  it('refuses duplicates, unsafe names, bad modes and out-of-range times', () => {
    expect(() => writeCpio([textFile('/a', 'x'), textFile('a', 'y')], { mtime: EPOCH })).toThrow(/two entries/);
    expect(() => archiveName('/etc/../shadow')).toThrow(/"\.\."/);
    expect(() => archiveName('/etc//x')).toThrow(/empty/);
    expect(() => archiveName('/')).toThrow(/not a file path/);
    expect(archiveName('etc/x')).toBe('./etc/x');
    expect(() => writeCpio([textFile('/a', 'x', 0o10000)], { mtime: EPOCH })).toThrow(/mode/);
    expect(() => writeCpio([], { mtime: -1 })).toThrow(/mtime/);
    expect(() => writeCpio([{ path: '/l', kind: 'symlink', mode: 0o777, data: new Uint8Array() }], { mtime: 0 })).toThrow(
      /target/,
    );
  });
});
