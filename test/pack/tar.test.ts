import { lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareTarPaths, splitUstarName, writeTar, type TarEntry } from '../../src/pack/tar.ts';
import { run, tempDir } from './run-tools.ts';

const tmp = tempDir('tar');
afterAll(() => tmp.cleanup());
const enc = new TextEncoder();
const EPOCH = 1_700_000_000;

/** Walk the 512-byte headers of a ustar archive: [typeflag, magic+version, joined name]. */
function headers(bytes: Uint8Array): Array<{ type: string; magic: string; name: string }> {
  const out: Array<{ type: string; magic: string; name: string }> = [];
  const str = (off: number, len: number): string => {
    const raw = Buffer.from(bytes.subarray(off, off + len)).toString('latin1');
    const nul = raw.indexOf('\0');
    return nul === -1 ? raw : raw.slice(0, nul);
  };
  let off = 0;
  while (off + 512 <= bytes.length && bytes.subarray(off, off + 512).some((b) => b !== 0)) {
    const name = str(off, 100);
    const prefix = str(off + 345, 155);
    const size = parseInt(str(off + 124, 12), 8);
    out.push({
      type: str(off + 156, 1),
      magic: Buffer.from(bytes.subarray(off + 257, off + 265)).toString('latin1'),
      name: prefix === '' ? name : `${prefix}/${name}`,
    });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const deep = `${'d'.repeat(90)}/${'e'.repeat(60)}`; // 151 chars: needs the prefix field
const entries: TarEntry[] = [
  { type: 'file', path: 'usr/bin-x', mode: 0o644, data: enc.encode('sibling\n') },
  { type: 'file', path: 'usr/bin/tool', mode: 0o755, data: enc.encode('#!/bin/sh\n') },
  { type: 'symlink', path: 'usr/bin/alias', target: 'tool' },
  { type: 'file', path: 'empty', mode: 0o600, data: new Uint8Array(0) },
  { type: 'file', path: 'block', mode: 0o644, data: new Uint8Array(512).fill(7) },
  { type: 'file', path: 'block1', mode: 0o644, data: new Uint8Array(513).fill(9) },
  { type: 'dir', path: 'var/lib/private', mode: 0o700 },
  { type: 'file', path: `${deep}/${'f'.repeat(99)}`, mode: 0o644, data: enc.encode('deep\n') },
];

describe('writeTar', () => {
  const bytes = writeTar(entries, { mtime: EPOCH });
  const file = join(tmp.dir, 't.tar');
  writeFileSync(file, bytes);

  it('lists depth-first with parents first, symlinks last, ./ prefix, root/root, fixed mtime (GNU tar)', () => {
    const list = run('tar', ['-tv', '--full-time', '-f', file]).trim().split('\n');
    const names = list.map((l) => l.split(/\s+/)[5]);
    expect(names).toEqual([
      './',
      './block',
      './block1',
      `./${'d'.repeat(90)}/`,
      `./${deep}/`,
      `./${deep}/${'f'.repeat(99)}`,
      './empty',
      './usr/',
      './usr/bin/',
      './usr/bin/tool',
      './usr/bin-x',
      './var/',
      './var/lib/',
      './var/lib/private/',
      './usr/bin/alias', // symlinks last, as dpkg-deb orders them
    ]);
    for (const line of list) {
      expect(line).toMatch(/^\S+ root\/root +\d+ 2023-11-14 22:13:20 /);
    }
    expect(list.find((l) => l.endsWith('./usr/bin/alias -> tool'))).toMatch(/^lrwxrwxrwx /);
    expect(list.find((l) => l.endsWith('./usr/bin/tool'))).toMatch(/^-rwxr-xr-x /);
    expect(list.find((l) => l.endsWith('./var/lib/private/'))).toMatch(/^drwx------ /);
    expect(list.find((l) => l.endsWith('./empty'))).toMatch(/^-rw------- /);
    expect(run('tar', ['-tv', '--numeric-owner', '-f', file])).toMatch(/^drwxr-xr-x 0\/0 /);
  });

  it('writes only plain ustar headers (no PAX x/g, no GNU L/K) and whole 10 KiB records', () => {
    const hs = headers(bytes);
    expect(hs.length).toBe(15);
    for (const h of hs) {
      expect(['0', '2', '5']).toContain(h.type);
      expect(h.magic).toBe('ustar\u000000');
    }
    expect(hs.map((h) => h.name)).toContain(`./${deep}/${'f'.repeat(99)}`);
    expect(bytes.length % 10240).toBe(0);
  });

  it('extracts byte-identical files, modes and symlinks', () => {
    const out = join(tmp.dir, 'x');
    mkdirSync(out);
    run('tar', ['-x', '-p', '-f', file, '-C', out]);
    for (const e of entries) {
      const p = join(out, e.path);
      const st = lstatSync(p);
      if (e.type === 'file') {
        expect(new Uint8Array(readFileSync(p))).toEqual(e.data);
        expect(st.mode & 0o7777).toBe(e.mode);
        expect(st.mtimeMs).toBe(EPOCH * 1000);
      } else if (e.type === 'symlink') {
        expect(readlinkSync(p)).toBe(e.target);
      } else {
        expect(st.isDirectory()).toBe(true);
        expect(st.mode & 0o7777).toBe(e.mode);
      }
    }
  });

  it('is deterministic: input order does not matter, the mtime does', () => {
    expect(writeTar([...entries].reverse(), { mtime: EPOCH })).toEqual(bytes);
    expect(writeTar(entries, { mtime: EPOCH + 1 })).not.toEqual(bytes);
  });

  it('splits long names at a / into prefix <= 155 and name <= 100, up to 256 bytes', () => {
    expect(splitUstarName('./short')).toEqual({ prefix: '', name: './short' });
    const exactly100 = `./${'a'.repeat(98)}`;
    expect(splitUstarName(exactly100)).toEqual({ prefix: '', name: exactly100 });
    const max = `${'p'.repeat(155)}/${'n'.repeat(100)}`;
    expect(splitUstarName(max)).toEqual({ prefix: 'p'.repeat(155), name: 'n'.repeat(100) });
    expect(splitUstarName(`${'p'.repeat(156)}/${'n'.repeat(10)}`)).toBeUndefined();
    expect(splitUstarName(`./${'n'.repeat(101)}`)).toBeUndefined();
    // a directory's trailing slash is never the split point
    expect(splitUstarName(`./${'a'.repeat(50)}/${'b'.repeat(99)}/`)).toEqual({ prefix: `./${'a'.repeat(50)}`, name: `${'b'.repeat(99)}/` });
    expect(splitUstarName(`./${'b'.repeat(110)}/`)).toBeUndefined();
  });

  it('a 256-byte name round-trips through GNU tar', () => {
    const dir = `${'p'.repeat(76)}/${'q'.repeat(76)}`; // "./" + dir = a prefix of exactly 155
    const path = `${dir}/${'n'.repeat(100)}`;
    const t = writeTar([{ type: 'file', path, mode: 0o644, data: enc.encode('x') }], { mtime: 0 });
    expect(headers(t).map((h) => h.name)).toEqual(['./', `./${'p'.repeat(76)}/`, `./${dir}/`, `./${path}`]);
    const f = join(tmp.dir, 'max.tar');
    writeFileSync(f, t);
    expect(run('tar', ['-tf', f]).trim().split('\n')).toEqual(['./', `./${'p'.repeat(76)}/`, `./${dir}/`, `./${path}`]);
    // a single component too long for the name field cannot be split, even as an implied parent
    expect(() => writeTar([{ type: 'file', path: `${'p'.repeat(153)}/x`, mode: 0o644, data: new Uint8Array(0) }], { mtime: 0 })).toThrow(
      /parent of p+\/x: too long for ustar/,
    );
  });

  it('orders by path components, so a directory stays together', () => {
    const sorted = ['usr/bin-x', 'usr/bin/x', 'usr/bin', 'usr/bin.d/a', 'usr'].sort(compareTarPaths);
    expect(sorted).toEqual(['usr', 'usr/bin', 'usr/bin/x', 'usr/bin-x', 'usr/bin.d/a']);
  });

  it('refuses what ustar cannot hold, naming the path and the reason', () => {
    const file = (path: string): TarEntry => ({ type: 'file', path, mode: 0o644, data: new Uint8Array(0) });
    expect(() => writeTar([file('etc/caf\u00e9')], { mtime: 0 })).toThrow(/etc\/caf.*non-ASCII/);
    expect(() => writeTar([file(`usr/${'x'.repeat(101)}`)], { mtime: 0 })).toThrow(/too long for ustar/);
    expect(() => writeTar([file(`${'a/'.repeat(130)}b`)], { mtime: 0 })).toThrow(/too long for ustar/);
    expect(() => writeTar([{ type: 'symlink', path: 'l', target: 't'.repeat(101) }], { mtime: 0 })).toThrow(/l: symlink target is 101 bytes/);
    expect(() => writeTar([{ type: 'symlink', path: 'l', target: 'caf\u00e9' }], { mtime: 0 })).toThrow(/non-ASCII/);
    expect(() => writeTar([file('/abs')], { mtime: 0 })).toThrow(/relative/);
    expect(() => writeTar([file('a/../b')], { mtime: 0 })).toThrow(/'\.\.' component/);
    expect(() => writeTar([file('a//b')], { mtime: 0 })).toThrow(/empty component/);
    expect(() => writeTar([file('a'), file('a')], { mtime: 0 })).toThrow(/duplicate path a/);
    expect(() => writeTar([file('a'), file('a/b')], { mtime: 0 })).toThrow(/parent a is a file/);
    expect(() => writeTar([{ type: 'file', path: 'm', mode: 0o10000, data: new Uint8Array(0) }], { mtime: 0 })).toThrow(/mode/);
    expect(() => writeTar([], { mtime: 1.5 })).toThrow(/mtime/);
  });
});
