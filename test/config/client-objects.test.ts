/**
 * qubes.clients entries as objects, `{ name, apps }` (issue 22): accepted forms, and the refused ones' places in the
 * file (line:column). The refused forms' fields and fixes are in bad-configs.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatIssues } from '../../src/config/format.ts';
import { parseConfigText, parseConfigValue, type LoadResult } from '../../src/config/load.ts';
import { I2P_APPS } from '../../src/config/schema.ts';

function accepted(r: LoadResult): Extract<LoadResult, { ok: true }> {
  if (!r.ok) throw new Error(`refused: ${JSON.stringify(r.issues)}`);
  return r;
}

function refusedText(src: string): string {
  const r = parseConfigText(src);
  if (r.ok) throw new Error('expected the config to be refused');
  return formatIssues(r.issues, 'g.yaml', src);
}

describe('client objects: accepted', () => {
  it('a plain list of names stays valid and unchanged', () => {
    const r = accepted(parseConfigValue({ qubes: { clients: ['work', 'personal'] } }));
    expect(r.config.qubes.clients).toEqual(['work', 'personal']);
    expect(r.config.i2p.apps).toEqual(Object.fromEntries(I2P_APPS.map((a) => [a, []])));
  });

  it('an object without apps is the same as its name', () => {
    expect(parseConfigValue({ qubes: { clients: ['work', { name: 'chat' }] } })).toEqual(parseConfigValue({ qubes: { clients: ['work', 'chat'] } }));
  });

  it('apps on a client object is the same config as listing the client under i2p.apps', () => {
    const objects = parseConfigValue({
      qubes: { clients: ['work', { name: 'torrents', apps: ['sam', 'socks'] }, { name: 'biglybt', apps: ['i2cp'] }, { name: 'chat', apps: ['socks'] }] },
    });
    const lists = parseConfigValue({
      qubes: { clients: ['work', 'torrents', 'biglybt', 'chat'] },
      i2p: { apps: { sam: ['torrents'], i2cp: ['biglybt'], socks: ['torrents', 'chat'] } },
    });
    expect(accepted(objects).config.qubes.clients).toEqual(['work', 'torrents', 'biglybt', 'chat']);
    expect(objects).toEqual(lists);
  });

  it('both spellings together: the lists first, then the objects\' grants in the order of qubes.clients', () => {
    const r = accepted(
      parseConfigValue({ qubes: { clients: [{ name: 'b', apps: ['socks'] }, 'a', { name: 'c', apps: ['socks', 'sam'] }] }, i2p: { apps: { socks: ['a'] } } }),
    );
    expect(r.config.qubes.clients).toEqual(['b', 'a', 'c']);
    expect(r.config.i2p.apps.socks).toEqual(['a', 'b', 'c']);
    expect(r.config.i2p.apps.sam).toEqual(['c']);
  });

  it('every application of i2p.apps may be granted on a client object', () => {
    for (const app of I2P_APPS) {
      const r = accepted(parseConfigValue({ qubes: { clients: [{ name: 'work', apps: [app] }] } }));
      expect(r.config.i2p.apps[app]).toEqual(['work']);
    }
  });

  it('reads the object form from YAML, block and flow style alike', () => {
    const block = parseConfigText('qubes:\n  clients:\n    - work\n    - name: torrents\n      apps: [sam]\n');
    const flow = parseConfigText('qubes:\n  clients: [work, { name: torrents, apps: [sam] }]\n');
    expect(accepted(block).config.i2p.apps.sam).toEqual(['torrents']);
    expect(flow).toEqual(block);
  });

  it('the example config\'s commented client objects, uncommented, are what its comment says', () => {
    const lines = readFileSync(new URL('../../examples/gateway.yaml', import.meta.url), 'utf8').split('\n');
    const start = lines.findIndex((l) => l.startsWith('# clients:'));
    expect(start).toBeGreaterThan(0);
    const block = [lines[start]!];
    for (const l of lines.slice(start + 1)) {
      if (!l.startsWith('#   ')) break;
      block.push(l);
    }
    const yaml = `qubes:\n${block.map((l) => `  ${l.slice(2)}`).join('\n')}\n`;
    const r = accepted(parseConfigText(yaml));
    expect(r.config.qubes.clients).toEqual(['work', 'torrents']);
    expect(parseConfigText(yaml)).toEqual(parseConfigText('qubes:\n  clients: [work, torrents]\ni2p:\n  apps: { sam: [torrents], socks: [torrents] }\n'));
  });
});

describe('client objects: refused, with the place in the file', () => {
  it('an unknown application inside an object: line and column of the entry, the applications that exist', () => {
    const src = 'qubes:\n  clients:\n    - work\n    - name: torrents\n      apps:\n        - sam\n        - bittorrent\n';
    expect(refusedText(src)).toBe(
      'g.yaml: the gateway config is not valid (1 problem); nothing was written.\n' +
        `g.yaml:7:11 qubes.clients.1.apps.1: "bittorrent" is not an I2P application the gateway offers. Fix: use one of ${I2P_APPS.join(', ')}`,
    );
  });

  it('a second SAM qube granted in an object points at that object\'s apps entry (flow style)', () => {
    const src = 'qubes:\n  clients: [torrents, { name: work, apps: [socks, sam] }]\ni2p:\n  apps:\n    sam: [torrents]\n';
    expect(refusedText(src)).toContain('g.yaml:2:51 qubes.clients.1.apps.1: "work" is a second qube for SAM (the first, torrents, at i2p.apps.sam.0)');
  });

  it('a grant made impossible by shared destinations points at the object\'s entry', () => {
    const src = 'qubes:\n  clients:\n    - name: work\n      apps: [socks]\ni2p:\n  clientDestinations: shared\n';
    expect(refusedText(src)).toContain('g.yaml:4:14 qubes.clients.0.apps.0: "work" needs router i2pd');
  });

  it('the same qube as a name and as an object points at the object\'s name', () => {
    const src = 'qubes:\n  clients:\n    - work\n    - name: work\n      apps: [sam]\n';
    expect(refusedText(src)).toContain('g.yaml:4:7 qubes.clients.1.name: "work" is listed twice (also at qubes.clients.0)');
  });

  it('an object without a name points at the object (the key is missing, so it has no place of its own)', () => {
    const src = 'qubes:\n  clients:\n    - work\n    - apps: [sam]\n';
    expect(refusedText(src)).toContain("g.yaml:4:7 qubes.clients.1.name: is missing. Fix: give the client qube's name");
  });

  it('an unknown key in an object: its place and the keys that exist', () => {
    const src = 'qubes:\n  clients:\n    - name: work\n      netvm: sys-firewall\n';
    expect(refusedText(src)).toContain('g.yaml:4:7 qubes.clients.0.netvm: is not a known setting. Fix: remove it or use one of: name, apps');
  });

  it('500 objects that all ask for SAM: refused (within the test timeout), the second qube once', () => {
    const clients = Array.from({ length: 500 }, (_, i) => ({ name: `q${i}`, apps: [...I2P_APPS] }));
    const r = parseConfigValue({ qubes: { clients } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.filter((i) => i.message.includes('a second qube for SAM'))).toHaveLength(1);
  });

  it('more than 500 entries are refused like names', () => {
    const r = parseConfigValue({ qubes: { clients: Array.from({ length: 501 }, (_, i) => ({ name: `q${i}` })) } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.path.join('.'))).toContain('qubes.clients');
  });
});
