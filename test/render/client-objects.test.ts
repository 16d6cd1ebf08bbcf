/**
 * qubes.clients objects (issue 22): a config that grants I2P applications on client objects builds the same dist/ tree,
 * byte for byte (the .deb, the .rpm with the dom0 formula, the formula's files, their names and modes), as the
 * equivalent config written with i2p.apps: everything after src/config sees one form.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText, type LoadResult } from '../../src/config/load.ts';
import type { OutputFile } from '../../src/io/atomic.ts';
import { readStaticSources } from '../../src/io/static.ts';
import { build } from '../../src/pipeline.ts';

const EPOCH = 1_700_000_000;
const SOURCES = readStaticSources();

const OBJECTS = `qubes:
  clients:
    - work
    - name: torrents
      apps: [sam, socks]
    - { name: biglybt, apps: [i2cp] }
    - name: chat
      apps:
        - socks
`;

const LISTS = `qubes:
  clients: [work, torrents, biglybt, chat]
i2p:
  apps:
    sam: [torrents]
    i2cp: [biglybt]
    socks: [torrents, chat]
`;

/** The same qubes, no application granted: proves the grants reach the artifacts (so equality above is not vacuous). */
const NONE = `qubes:
  clients: [work, torrents, biglybt, chat]
`;

function tree(yaml: string): readonly OutputFile[] {
  const r: LoadResult = parseConfigText(yaml);
  if (!r.ok) throw new Error(`refused: ${JSON.stringify(r.issues)}`);
  return build({ config: r.config, sourceDateEpoch: EPOCH, sources: SOURCES }).outputs;
}

function differing(a: readonly OutputFile[], b: readonly OutputFile[]): string[] {
  const bBy = new Map(b.map((f) => [f.path, f]));
  const paths = new Set([...a.map((f) => f.path), ...b.map((f) => f.path)]);
  return [...paths].filter((p) => {
    const x = a.find((f) => f.path === p);
    const y = bBy.get(p);
    return x === undefined || y === undefined || x.mode !== y.mode || Buffer.compare(Buffer.from(x.data), Buffer.from(y.data)) !== 0;
  });
}

describe('client objects build the same artifacts as i2p.apps', () => {
  const objects = tree(OBJECTS);
  const lists = tree(LISTS);

  it('the dist/ trees are byte-identical (names, modes, bytes)', () => {
    expect(objects.map((f) => f.path)).toEqual(lists.map((f) => f.path));
    expect(objects.some((f) => f.path.endsWith('.deb'))).toBe(true);
    expect(objects.some((f) => f.path.endsWith('.rpm'))).toBe(true);
    expect(differing(objects, lists)).toEqual([]);
  });

  it('and differ from the same clients without the grants (the grants are in the artifacts)', () => {
    const none = tree(NONE);
    const diff = differing(objects, none);
    expect(diff.length).toBeGreaterThan(0);
    const clientsSls = objects.find((f) => f.path.endsWith('i2p-gateway/clients.sls'));
    expect(clientsSls, objects.map((f) => f.path).join(', ')).toBeDefined();
    const text = new TextDecoder().decode(clientsSls!.data);
    expect(text).toContain('torrents');
    expect(text).toMatch(/socks/);
  });
});
