/**
 * Golden files: the package as a reviewer reads it, for the default config and for one with a published service.
 * Every text file of the .deb's tree lives under test/golden/<scenario>/deb/<path>; test/golden/<scenario>/deb.listing
 * holds the control file and one line per entry (kind, mode, path, link target, sha256 of binary files). Any
 * difference fails; regenerate on purpose with UPDATE_GOLDEN=1 and review the diff.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { controlFile } from '../../src/pack/deb.ts';
import { renderDebPackage } from '../../src/render/deb/package.ts';
import { configOf } from './helpers.ts';
import { readStaticSources } from '../../src/io/static.ts';

const DEB_STATICS = readStaticSources().deb;

const EPOCH = 1_700_000_000;
const update = process.env['UPDATE_GOLDEN'] === '1';

function asText(data: Uint8Array): string | undefined {
  if (data.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return undefined;
  }
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** The scenarios, by golden folder; `publish` is also a formula scenario in test/salt/formula.test.ts. */
const SCENARIOS: readonly [string, unknown][] = [
  ['default', {}],
  ['publish', { publish: [{ name: 'wiki', qube: 'webapp', port: 8080, onion: true }, { name: 'blog', qube: 'blogvm', port: 80 }] }],
];

describe.each(SCENARIOS)('golden: %s config', (scenario, value) => {
  const GOLDEN = join(import.meta.dirname, '..', 'golden', scenario);
  const TREE = join(GOLDEN, 'deb');
  const LISTING = join(GOLDEN, 'deb.listing');
  const { meta, files } = renderDebPackage(configOf(value), { sourceDateEpoch: EPOCH, statics: DEB_STATICS });
  const expected = new Map<string, string>();
  const listing: string[] = [controlFile(meta, files), ''];
  for (const f of files) {
    const mode = f.mode.toString(8).padStart(4, '0');
    if (f.kind === 'symlink') listing.push(`symlink ${mode} ${f.path} -> ${f.target ?? ''}`);
    else if (f.kind === 'dir') listing.push(`dir     ${mode} ${f.path}`);
    else {
      const body = asText(f.data);
      if (body === undefined) listing.push(`${f.kind.padEnd(7)} ${mode} ${f.path} sha256:${createHash('sha256').update(f.data).digest('hex')}`);
      else {
        listing.push(`${f.kind.padEnd(7)} ${mode} ${f.path}`);
        expected.set(join(TREE, f.path), body);
      }
    }
  }
  expected.set(LISTING, listing.join('\n') + '\n');

  if (update) {
    rmSync(TREE, { recursive: true, force: true });
    for (const [path, body] of expected) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, body);
    }
  }

  it('has exactly the golden files', () => {
    const have = [...walk(TREE), ...(existsSync(LISTING) ? [LISTING] : [])].map((p) => relative(GOLDEN, p)).sort();
    expect(have).toEqual([...expected.keys()].map((p) => relative(GOLDEN, p)).sort());
  });

  for (const [path, body] of expected) {
    it(relative(GOLDEN, path), () => {
      expect(existsSync(path), `${path} is missing: run with UPDATE_GOLDEN=1 and review`).toBe(true);
      expect(readFileSync(path, 'utf8')).toBe(body);
    });
  }
});
