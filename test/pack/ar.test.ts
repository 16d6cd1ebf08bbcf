import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAr } from '../../src/pack/ar.ts';
import { run, runRaw, tempDir } from './run-tools.ts';

const tmp = tempDir('ar');
afterAll(() => tmp.cleanup());
const enc = new TextEncoder();

describe('writeAr', () => {
  const members = [
    { name: 'debian-binary', data: enc.encode('2.0\n') },
    { name: 'odd', data: enc.encode('abc') },
    { name: 'empty', data: new Uint8Array(0) },
    { name: 'control.tar.gz', data: new Uint8Array([0, 1, 2, 255, 10]) },
  ];
  const bytes = writeAr(members, { mtime: 1_700_000_000 });
  const file = join(tmp.dir, 'a.ar');
  writeFileSync(file, bytes);

  it('is read back by binutils ar in order, with exact contents', () => {
    expect(run('ar', ['t', file]).split('\n').filter(Boolean)).toEqual(['debian-binary', 'odd', 'empty', 'control.tar.gz']);
    for (const m of members) {
      const r = runRaw('ar', ['p', file, m.name]);
      expect(r.status).toBe(0);
      expect(new Uint8Array(r.stdout)).toEqual(m.data);
    }
  });

  it('writes fixed headers: mtime, uid/gid 0, mode 100644, \\n padding for odd sizes', () => {
    const text = Buffer.from(bytes).toString('latin1');
    expect(text.startsWith('!<arch>\n')).toBe(true);
    const first = text.slice(8, 68);
    expect(first).toBe('debian-binary   1700000000  0     0     100644  4         `\n');
    // 'odd' (3 bytes) at 68+4, then its header... one '\n' of padding follows its data.
    const oddHeaderAt = 8 + 60 + 4;
    expect(text.slice(oddHeaderAt, oddHeaderAt + 16)).toBe('odd             ');
    expect(text.slice(oddHeaderAt + 60, oddHeaderAt + 64)).toBe('abc\n');
    expect(run('ar', ['tv', file])).toContain('rw-r--r-- 0/0      3 Nov 14 22:13 2023 odd');
    expect(bytes.length % 2).toBe(0);
  });

  it('is deterministic and uses the mtime it is given', () => {
    expect(writeAr(members, { mtime: 1_700_000_000 })).toEqual(bytes);
    expect(writeAr(members, { mtime: 1_700_000_001 })).not.toEqual(bytes);
  });

  it('rejects names that are too long, non-ASCII, contain / or spaces, or repeat', () => {
    const d = new Uint8Array(0);
    expect(() => writeAr([{ name: 'a-very-long-name.tar', data: d }], { mtime: 0 })).toThrow(/longer than 15 characters/);
    expect(() => writeAr([{ name: 'naïve', data: d }], { mtime: 0 })).toThrow(/printable ASCII/);
    expect(() => writeAr([{ name: 'a/b', data: d }], { mtime: 0 })).toThrow(/printable ASCII/);
    expect(() => writeAr([{ name: 'a b', data: d }], { mtime: 0 })).toThrow(/printable ASCII/);
    expect(() => writeAr([{ name: '', data: d }], { mtime: 0 })).toThrow(/empty member name/);
    expect(() => writeAr([{ name: 'x', data: d }, { name: 'x', data: d }], { mtime: 0 })).toThrow(/duplicate/);
    expect(() => writeAr([{ name: 'x', data: d }], { mtime: -1 })).toThrow(/mtime/);
    // exactly 15 characters is fine
    expect(() => writeAr([{ name: 'a'.repeat(15), data: d }], { mtime: 0 })).not.toThrow();
  });
});
