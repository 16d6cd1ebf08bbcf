import { readFileSync, readdirSync, existsSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { parseConfigValue } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import { debDepends } from '../../src/render/deb/package.ts';
import { renderFormula } from '../../src/render/salt/formula.ts';
import { FakeDom0 } from './dom0-fake.ts';
import { apply, checkKeys, argMap, readSls } from './apply.ts';

const DEB = 'qubes-i2p-gateway_0.1.0_all.deb';

function config(value: unknown): GatewayConfig {
  const r = parseConfigValue(value);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

function formula(c: GatewayConfig): Map<string, string> {
  const files = renderFormula(c, { debFileName: DEB, debBytes: new Uint8Array([1, 2, 3]), dependencies: debDepends(c) });
  return new Map(files.filter((f) => !f.path.endsWith('.deb')).map((f) => [f.path, new TextDecoder().decode(f.data)]));
}

function dom0For(c: GatewayConfig): FakeDom0 {
  const d = new FakeDom0();
  d.offerTemplate('qubes-templates-itl', c.qubes.sourceTemplate);
  d.addQube('sys-firewall', 'AppVM', { 'provides-network': true, netvm: 'sys-net' });
  for (const client of c.qubes.clients) d.addQube(client, 'AppVM', { netvm: 'sys-firewall' });
  d.saltFiles.set(`salt://i2p-gateway/files/${DEB}`, { package: 'qubes-i2p-gateway', version: '0.1.0' });
  return d;
}

/** The order the dom0 README gives. */
function applyAll(d: FakeDom0, files: Map<string, string>, c: GatewayConfig): void {
  apply(d, readSls(files, 'i2p-gateway.clone'), 'dom0');
  apply(d, readSls(files, 'i2p-gateway.install'), c.qubes.template);
  apply(d, readSls(files, 'i2p-gateway.create'), 'dom0');
  apply(d, readSls(files, 'i2p-gateway.clients'), 'dom0');
}

const SCENARIOS: [string, unknown][] = [
  ['default', {}],
  ['clients', { qubes: { clients: ['work', 'untrusted', 'personal'] } }],
  ['java-router-no-tor', { i2p: { router: 'i2p', keyring: 'k.gpg' }, tor: { enabled: false } }],
  ['renamed', { qubes: { sourceTemplate: 'debian-13-xfce', template: 'deb13-i2p', gateway: 'gw.i2p', netvm: 'sys-firewall', label: 'black', memory: 600, maxmem: 2000, autostart: true, service: 'i2p-gw' }, debian: { release: 'trixie' } }],
];

describe.each(SCENARIOS)('formula: %s', (_name, value) => {
  const c = config(value);
  const files = formula(c);

  it('every .sls and .top parses back as YAML and uses only accepted keys', () => {
    for (const [path, text] of files) {
      if (!path.endsWith('.sls') && !path.endsWith('.top')) continue;
      const doc = load(text) as Record<string, unknown>;
      expect(doc, path).toBeTypeOf('object');
      expect(text.startsWith('# '), `${path} opens with a header comment`).toBe(true);
      if (path.endsWith('.sls')) {
        for (const [id, body] of Object.entries(doc)) {
          if (id === 'include') continue;
          const [fn, list] = Object.entries(body as object)[0]!;
          expect(() => checkKeys(path, id, fn, argMap(list, id))).not.toThrow();
        }
      } else {
        expect(Object.keys(doc)).toEqual(['base']);
      }
    }
  });

  it('tops target dom0 by nodegroup and the template by name; init.top leaves the clients out', () => {
    const init = load(files.get('i2p-gateway/init.top')!) as { base: Record<string, unknown[]> };
    expect(init.base['dom0']).toEqual([{ match: 'nodegroup' }, 'i2p-gateway.clone', 'i2p-gateway.create']);
    expect(init.base[c.qubes.template]).toEqual(['i2p-gateway.install']);
    for (const s of ['clone', 'create', 'clients']) {
      const top = load(files.get(`i2p-gateway/${s}.top`)!) as { base: Record<string, unknown[]> };
      expect(top.base).toEqual({ dom0: [{ match: 'nodegroup' }, `i2p-gateway.${s}`] });
    }
  });

  it('applied to a fresh dom0 builds the gateway; a second run runs no command', () => {
    const d = dom0For(c);
    applyAll(d, files, c);
    const first = [...d.commands];
    expect(first).toContain(`qvm-template install --quiet ${c.qubes.sourceTemplate}`);
    expect(first).toContain(`qvm-clone ${c.qubes.sourceTemplate} ${c.qubes.template}`);
    expect(first.some((x) => x.startsWith(`qvm-create --template ${c.qubes.template} --label ${c.qubes.label}`))).toBe(true);
    const gw = d.qubes.get(c.qubes.gateway)!;
    expect(gw.prefs).toMatchObject({ template: c.qubes.template, memory: c.qubes.memory, maxmem: c.qubes.maxmem, netvm: c.qubes.netvm, 'provides-network': true, label: c.qubes.label, autostart: c.qubes.autostart });
    expect(gw.features[`service.${c.qubes.service}`]).toBe('1');
    expect(gw.features['servicevm']).toBe('1');
    expect(d.qubes.get(c.qubes.template)!.packages.get('qubes-i2p-gateway')).toBe('0.1.0');
    for (const client of c.qubes.clients) expect(d.qubes.get(client)!.prefs['netvm']).toBe(c.qubes.gateway);
    if (c.i2p.router === 'i2p') expect(d.qubes.get(c.qubes.template)!.packages.has('i2p')).toBe(true);

    d.commands.length = 0;
    applyAll(d, files, c);
    expect(d.commands).toEqual([]);
  });

  it('a template switched from the other router loses it: exactly one router is installed', () => {
    const d = dom0For(c);
    applyAll(d, files, c);
    const other = c.i2p.router === 'i2pd' ? 'i2p' : 'i2pd';
    d.qubes.get(c.qubes.template)!.packages.set(other, '1.0');
    d.commands.length = 0;
    applyAll(d, files, c);
    expect(d.commands).toEqual([`${c.qubes.template}: purge ${other}`]);
    expect(d.qubes.get(c.qubes.template)!.packages.has(other)).toBe(false);
  });

  it('a gateway that exists with other prefs is brought back to the config', () => {
    const d = dom0For(c);
    applyAll(d, files, c);
    d.qubes.get(c.qubes.gateway)!.prefs['memory'] = 4000;
    d.qubes.get(c.qubes.gateway)!.prefs['provides-network'] = false;
    d.commands.length = 0;
    applyAll(d, files, c);
    expect(d.commands).toEqual([`qvm-prefs ${c.qubes.gateway} memory ${c.qubes.memory}`, `qvm-prefs ${c.qubes.gateway} provides-network true`]);
  });
});

describe('the fake dom0 catches the known traps', () => {
  const c = config({});
  it('memory written as a string would change on every run', () => {
    const files = formula(c);
    const bad = new Map(files);
    bad.set('i2p-gateway/create.sls', files.get('i2p-gateway/create.sls')!.replace('memory: 400', "memory: '400'"));
    const d = dom0For(c);
    applyAll(d, bad, c);
    d.commands.length = 0;
    applyAll(d, bad, c);
    // once for create.sls and once more for clients.sls, which includes it
    expect(d.commands).toEqual(['qvm-prefs sys-i2p memory 400', 'qvm-prefs sys-i2p memory 400']);
  });

  it('`memory` under present and `template` at the top of qvm.vm are refused', () => {
    const files = formula(c);
    const bad = new Map(files);
    bad.set('i2p-gateway/create.sls', files.get('i2p-gateway/create.sls')!.replace('- mem: 400', '- memory: 400'));
    expect(() => readSls(bad, 'i2p-gateway.create')).toThrow(/present does not accept "memory"/);
    bad.set('i2p-gateway/create.sls', files.get('i2p-gateway/create.sls')!.replace('    - name: sys-i2p', '    - name: sys-i2p\n    - template: debian-13-i2p'));
    expect(() => readSls(bad, 'i2p-gateway.create')).toThrow(/does not accept "template"/);
  });

  it('clients before the gateway provides network fail, as qvm-prefs does', () => {
    const d = dom0For(config({ qubes: { clients: ['work'] } }));
    expect(() => d.prefs('work', { netvm: 'sys-firewall-missing' })).toThrow();
    d.addQube('plain', 'AppVM', { 'provides-network': false });
    expect(() => d.prefs('work', { netvm: 'plain' })).toThrow(/does not provide network/);
  });
});

describe('qvm.template_installed of the default source template, debian-13-minimal (qubes-mgmt-salt-dom0-qvm v4.3.6)', () => {
  const c = config({});
  const files = formula(c);
  const clone = readSls(files, 'i2p-gateway.clone');

  it('clone.sls names the template and nothing else: it is an official (ITL) template, in the repository dom0 enables by default', () => {
    expect(c.qubes.sourceTemplate).toBe('debian-13-minimal');
    const installed = clone.find((d) => d.fn === 'qvm.template_installed');
    expect(installed?.args).toEqual({ name: 'debian-13-minimal' });
    expect(clone.find((d) => d.fn === 'qvm.clone')?.args).toEqual({ name: c.qubes.template, source: 'debian-13-minimal', require: [{ qvm: installed?.id }] });
  });

  it('without fromrepo it is found in qubes-templates-itl; a repository that is not enabled by default (community) would not do', () => {
    const d = new FakeDom0();
    d.offerTemplate('qubes-templates-itl', 'debian-13-minimal');
    apply(d, clone, 'dom0');
    expect(d.commands).toEqual(['qvm-template install --quiet debian-13-minimal', 'qvm-clone debian-13-minimal debian-13-i2p']);

    const community = new FakeDom0();
    community.offerTemplate('qubes-templates-community', 'debian-13-minimal');
    expect(() => apply(community, clone, 'dom0')).toThrow(/no template debian-13-minimal in qubes-templates-itl/);
    // ...which is what fromrepo is for (qvm-template --repoid), e.g. the Whonix templates in Qubes' own formulas.
    const withRepo = clone.map((x) => (x.fn === 'qvm.template_installed' ? { ...x, args: { ...x.args, fromrepo: 'qubes-templates-community' } } : x));
    const d2 = new FakeDom0();
    d2.offerTemplate('qubes-templates-community', 'debian-13-minimal');
    apply(d2, withRepo, 'dom0');
    expect(d2.commands[0]).toBe('qvm-template install --quiet --repoid=qubes-templates-community debian-13-minimal');
  });

  it('a debian-13-minimal that is already a template counts as installed however it got there (4.3: qvm-check --template), so nothing is downloaded', () => {
    const d = new FakeDom0();
    d.addQube('debian-13-minimal', 'TemplateVM');
    apply(d, clone, 'dom0');
    expect(d.commands).toEqual(['qvm-clone debian-13-minimal debian-13-i2p']);
  });

  it('a qube named debian-13-minimal that is not a template fails the state, and the clone that requires it does not run', () => {
    const d = new FakeDom0();
    d.offerTemplate('qubes-templates-itl', 'debian-13-minimal');
    d.addQube('debian-13-minimal', 'AppVM');
    expect(() => apply(d, clone, 'dom0')).toThrow(/exists but is not a template/);
    expect(d.qubes.has(c.qubes.template)).toBe(false);
  });
});

describe('the accepted-keys table is the module\'s, not a guess', () => {
  it('a qvm.prefs spelling the module does not declare is refused (it would be dropped silently): dispvm_allowed, provides_networks', () => {
    for (const key of ['dispvm_allowed', 'provides_networks']) {
      expect(() => checkKeys('x.sls', 'id', 'qvm.prefs', { name: 'q', [key]: true })).toThrow(`does not accept "${key}"`);
    }
    for (const key of ['dispvm-allowed', 'provides_network', 'provides-network', 'devices_denied']) {
      expect(() => checkKeys('x.sls', 'id', 'qvm.prefs', { name: 'q', [key]: true })).not.toThrow();
    }
  });
});

describe('golden formula (UPDATE_GOLDEN=1 rewrites)', () => {
  for (const [name, value] of SCENARIOS.slice(0, 2)) {
    it(name, () => {
      const dir = new URL(`../golden/${name}/formula/`, import.meta.url).pathname;
      const files = formula(config(value));
      if (process.env['UPDATE_GOLDEN'] === '1') {
        rmSync(dir, { recursive: true, force: true });
        for (const [path, text] of files) {
          mkdirSync(join(dir, path, '..'), { recursive: true });
          writeFileSync(join(dir, path), text);
        }
      }
      expect(existsSync(dir), `${dir} missing: run with UPDATE_GOLDEN=1 and review`).toBe(true);
      const list = (d: string, prefix = ''): string[] => readdirSync(join(d, prefix), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? list(d, join(prefix, e.name)) : [join(prefix, e.name)]));
      expect(list(dir).sort()).toEqual([...files.keys()].sort());
      for (const [path, text] of files) expect(text, path).toBe(readFileSync(join(dir, path), 'utf8'));
    });
  }
});
