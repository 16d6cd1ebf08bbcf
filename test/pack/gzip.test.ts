import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { gzip } from '../../src/pack/gzip.ts';
import { runRaw } from './run-tools.ts';

describe('gzip', () => {
  const input = new TextEncoder().encode('hello, reproducible world\n'.repeat(100));

  it('writes the fixed header: no flags, mtime 0, XFL 2, OS 3 (Unix)', () => {
    expect([...gzip(input).subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    expect([...gzip(new Uint8Array(0)).subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
  });

  it('round-trips through Node and through gzip(1), which also accepts it with -t', () => {
    const out = gzip(input);
    expect(Buffer.from(gunzipSync(out)).equals(Buffer.from(input))).toBe(true);
    expect(runRaw('gzip', ['-t'], { input: out }).status).toBe(0);
    const d = runRaw('gzip', ['-dc'], { input: out });
    expect(d.status).toBe(0);
    expect(d.stdout.equals(Buffer.from(input))).toBe(true);
  });

  it('is deterministic', () => {
    expect(Buffer.from(gzip(input)).equals(Buffer.from(gzip(input)))).toBe(true);
  });
});
