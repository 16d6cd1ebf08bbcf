import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText, readConfigFile } from '../../src/config/load.ts';
import { jsonSchemaText } from '../../src/config/jsonschema.ts';
import { GatewayConfigSchema } from '../../src/config/schema.ts';

describe('defaults', () => {
  it('an empty file and no file give the documented defaults', () => {
    const r = parseConfigText('');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.qubes).toMatchObject({ sourceTemplate: 'debian-13-minimal', template: 'debian-13-i2p', gateway: 'sys-i2p', netvm: 'sys-firewall', service: 'i2p', clients: [] });
    expect(r.config.network.virtualIp).toBe('10.100.100.100');
    expect(r.config.i2p.router).toBe('i2pd');
    expect(r.config.tor).toEqual({ enabled: true, transPort: 9040, dnsPort: 5353 });
    expect(parseConfigText('# just a comment\n')).toEqual(r);
  });

  it('the example config spells out exactly the defaults', () => {
    const { source, mtimeSeconds: _mtime, ...example } = readConfigFile(new URL('../../examples/gateway.yaml', import.meta.url).pathname);
    const defaults = parseConfigText('');
    expect(source).toContain('qubes:');
    expect(example.ok).toBe(true);
    expect(example).toEqual(defaults);
  });

  it('a partial config keeps the other defaults', () => {
    const r = parseConfigText('qubes:\n  clients: [work, personal]\ntor:\n  enabled: false\n');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.qubes.clients).toEqual(['work', 'personal']);
    expect(r.config.qubes.gateway).toBe('sys-i2p');
    expect(r.config.tor.enabled).toBe(false);
  });

  it('IRC: nobody by default, the server of Debian 13\'s i2pd tunnels.conf; a b32 address with a port is a server too', () => {
    const r = parseConfigText('');
    expect(r.ok && r.config.i2p.apps.irc).toEqual([]);
    expect(r.ok && r.config.i2p.ircServer).toBe('irc.ilita.i2p:6667');
    const b32 = `${'a'.repeat(52)}.b32.i2p:6697`;
    const g = parseConfigText(`qubes:\n  clients: [chat]\ni2p:\n  apps: { irc: [chat] }\n  ircServer: ${b32}\n`);
    expect(g.ok, JSON.stringify(g)).toBe(true);
    expect(g.ok && g.config.i2p.ircServer).toBe(b32);
  });
});

describe('JSON Schema', () => {
  it('the committed schema is the one the model emits (npm run schema regenerates it)', () => {
    const committed = readFileSync(new URL('../../schema/gateway.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(jsonSchemaText());
  });

  it('lists every key of the model, forbids unknown ones, and carries the defaults', () => {
    interface Node {
      properties: Record<string, { default?: unknown }>;
      additionalProperties: boolean;
      type?: string;
      items?: Node;
      default?: unknown;
    }
    const schema = JSON.parse(jsonSchemaText()) as { properties: Record<string, Node>; additionalProperties: boolean };
    expect(schema.additionalProperties).toBe(false);
    const model = GatewayConfigSchema.shape;
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(model).sort());
    for (const section of Object.keys(model)) {
      // A list section (publish) forbids unknown keys in its items.
      const node = schema.properties[section]!;
      expect((node.type === 'array' ? node.items! : node).additionalProperties, section).toBe(false);
    }
    expect(schema.properties['publish']!.default).toEqual([]);
    expect(schema.properties['publish']!.items!.properties['i2p']!.default).toBe(true);
    expect(schema.properties['publish']!.items!.properties['onion']!.default).toBe(false);
    expect(schema.properties['qubes']!.properties['gateway']!.default).toBe('sys-i2p');
    expect(schema.properties['tor']!.properties['transPort']!.default).toBe(9040);
  });
});
