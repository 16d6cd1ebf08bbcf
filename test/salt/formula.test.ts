/**
 * The rendered dom0 formula against the recording fake dom0 (dom0-fake.ts; scripts run for real against the
 * stand-in qvm-* tools of qvm-tools.ts): first runs, second runs that change nothing, a changed build that
 * upgrades, clients that run while the gateway is halted, and the removal.
 */
import { readFileSync, readdirSync, existsSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { parseConfigValue } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import { readStaticSources } from '../../src/io/static.ts';
import { debDepends } from '../../src/render/deb/package.ts';
import { renderFormula } from '../../src/render/salt/formula.ts';
import { FakeDom0 } from './dom0-fake.ts';
import { apply, checkKeys, argMap, mustApply, readSls, type ApplyResult } from './apply.ts';
import { DEFAULT_CONNECT_TCP, evaluate, parsePolicy, POLICY_FILE_NAME } from './qrexec-policy.ts';

const POLICY = '/etc/qubes/policy.d/70-i2p-gateway-publish.policy';

const VERSION = '0.1.0+20231114221320.20231114221320.0a1b2c3d';
const debName = (version: string): string => `qubes-i2p-gateway_${version}_all.deb`;
const DEB = debName(VERSION);
const CLIENT_NETVM = readStaticSources().clientNetvm;

function config(value: unknown): GatewayConfig {
  const r = parseConfigValue(value);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

function formula(c: GatewayConfig, version = VERSION): Map<string, string> {
  const files = renderFormula(c, {
    debFileName: debName(version),
    debBytes: new Uint8Array([1, 2, 3]),
    debVersion: version,
    dependencies: debDepends(c),
    clientNetvm: CLIENT_NETVM,
  });
  return new Map(files.filter((f) => !f.path.endsWith('.deb')).map((f) => [f.path, new TextDecoder().decode(f.data)]));
}

/** A dom0 as a Qubes OS 4.3 install leaves it: sys-net and sys-firewall running, sys-firewall the default netvm. */
function dom0For(c: GatewayConfig, version = VERSION): FakeDom0 {
  const d = new FakeDom0();
  d.offerTemplate('qubes-templates-itl', c.qubes.sourceTemplate);
  d.addQube('sys-net', 'AppVM', { 'provides-network': true, netvm: '' }, 'Running');
  d.addQube('sys-firewall', 'AppVM', { 'provides-network': true, netvm: 'sys-net' }, 'Running');
  for (const client of c.qubes.clients) d.addQube(client, 'AppVM', {});
  // The service qubes, as a user creates them: with the default netvm (publish.sls takes it away).
  for (const s of c.publish) if (!d.has(s.qube)) d.addQube(s.qube, 'AppVM', {});
  d.saltFiles.set(`salt://i2p-gateway/files/${debName(version)}`, { package: 'qubes-i2p-gateway', version, depends: debDepends(c) });
  return d;
}

function run(d: FakeDom0, files: Map<string, string>, state: string, minion = 'dom0'): ApplyResult {
  return mustApply(d, readSls(files, state), minion, { files });
}

/** The order the dom0 README gives. */
function applyAll(d: FakeDom0, files: Map<string, string>, c: GatewayConfig): void {
  run(d, files, 'i2p-gateway.clone');
  run(d, files, 'i2p-gateway.install', c.qubes.template);
  run(d, files, 'i2p-gateway.create');
  run(d, files, 'i2p-gateway.clients');
  run(d, files, 'i2p-gateway.publish');
}

const SCENARIOS: [string, unknown][] = [
  ['default', {}],
  ['clients', { qubes: { clients: ['work', 'untrusted', 'personal'] } }],
  ['java-router-no-tor', { i2p: { router: 'i2p', keyring: 'k.gpg' }, tor: { enabled: false } }],
  ['publish', { publish: [{ name: 'wiki', qube: 'webapp', port: 8080, onion: true }, { name: 'blog', qube: 'blogvm', port: 80 }] }],
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
    expect(init.base['dom0']).toEqual([{ match: 'nodegroup' }, 'i2p-gateway.clone', 'i2p-gateway.create', 'i2p-gateway.publish']);
    expect(init.base[c.qubes.template]).toEqual(['i2p-gateway.install']);
    for (const s of ['clone', 'create', 'clients', 'remove', 'publish']) {
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
    expect(d.qubes.get(c.qubes.template)!.packages['qubes-i2p-gateway']).toBe(VERSION);
    for (const client of c.qubes.clients) {
      expect(d.qubes.get(client)!.prefs['netvm']).toBe(c.qubes.gateway);
      expect(d.qubes.get(client)!.features['i2p-gateway.previous-netvm']).toBe('*default*');
      expect(d.firewallRules(client), client).toEqual(['action=drop comment=qubes-i2p-gateway-fail-closed', 'action=accept']);
    }
    if (c.i2p.router === 'i2p') expect(d.qubes.get(c.qubes.template)!.packages['i2p']).toBeDefined();
    // No client runs: nothing was started.
    expect(first.filter((x) => x.startsWith('qvm-start'))).toEqual([]);
    expect(d.files.has(POLICY), 'the policy file exists exactly when something is published').toBe(c.publish.length > 0);

    d.commands.length = 0;
    applyAll(d, files, c);
    expect(d.commands).toEqual([]);
  });

  it("install.sls disables the Debian daemons' units its dependencies enabled (none starts in the template once our package is gone); a second run disables nothing", () => {
    const d = dom0For(c);
    run(d, files, 'i2p-gateway.clone');
    d.commands.length = 0;
    run(d, files, 'i2p-gateway.install', c.qubes.template);
    const t = c.qubes.template;
    const units = [...(c.tor.enabled ? ['tor.service'] : []), 'tinyproxy.service', c.i2p.router === 'i2pd' ? 'i2pd.service' : 'i2p.service'];
    expect(d.commands.filter((x) => x.includes('systemctl')).sort()).toEqual(units.map((u) => `${t}: systemctl disable ${u}`).sort());
    for (const u of units) {
      const pkg = u.replace('.service', '');
      expect(d.commands.indexOf(`${t}: systemctl disable ${u}`), u).toBeGreaterThan(d.commands.findIndex((x) => x.startsWith(`${t}: install ${pkg}=`)));
    }
    expect(d.get(t).enabledUnits).toEqual([]);
    d.commands.length = 0;
    run(d, files, 'i2p-gateway.install', t);
    expect(d.commands).toEqual([]);
  });

  it('a template switched from the other router loses it: exactly one router is installed', () => {
    const d = dom0For(c);
    applyAll(d, files, c);
    const other = c.i2p.router === 'i2pd' ? 'i2p' : 'i2pd';
    d.qubes.get(c.qubes.template)!.packages[other] = '1.0';
    d.commands.length = 0;
    applyAll(d, files, c);
    expect(d.commands).toEqual([`${c.qubes.template}: purge ${other}`]);
    expect(other in d.qubes.get(c.qubes.template)!.packages).toBe(false);
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

  it('remove after the build: clients back, gateway and template gone, the source template kept; a second run changes nothing', () => {
    const d = dom0For(c);
    applyAll(d, files, c);
    d.commands.length = 0;
    const r = run(d, files, 'i2p-gateway.remove');
    expect(d.qubes.has(c.qubes.gateway)).toBe(false);
    expect(d.qubes.has(c.qubes.template)).toBe(false);
    expect(d.qubes.has(c.qubes.sourceTemplate)).toBe(true);
    for (const client of c.qubes.clients) {
      expect(d.qubes.get(client)!.prefs, client).toEqual({});
      expect(d.qubes.get(client)!.features, client).toEqual({});
      expect(d.firewallRules(client), client).toEqual(['action=accept']);
      expect(r.outcomes.get(`i2p-gateway-remove-client-${client}`)).toBe('changed');
    }
    expect(d.commands.at(-2)).toBe(`qvm-remove --force ${c.qubes.gateway}`);
    expect(d.commands.at(-1)).toBe(`qvm-remove --force ${c.qubes.template}`);
    d.commands.length = 0;
    const again = run(d, files, 'i2p-gateway.remove');
    expect(d.commands).toEqual([]);
    expect([...again.outcomes.values()].every((o) => o === 'ok')).toBe(true);
  });
});

describe('published services: the qrexec policy in dom0', () => {
  const c = config({ publish: [{ name: 'wiki', qube: 'webapp', port: 8080, onion: true }, { name: 'blog', qube: 'blogvm', port: 80 }, { name: 'api', qube: 'webapp', port: 9000 }] });
  const files = formula(c);

  function applied(): { d: FakeDom0; policy: string } {
    const d = dom0For(c);
    applyAll(d, files, c);
    const f = d.files.get(POLICY);
    if (f === undefined) throw new Error('no policy file written');
    expect(f).toMatchObject({ mode: '0644', user: 'root', group: 'root' });
    return { d, policy: f.contents };
  }

  it('a file of Qubes 4.x format in /etc/qubes/policy.d whose lines are exactly one allow per service', () => {
    const { policy } = applied();
    expect(POLICY_FILE_NAME.test(POLICY.split('/').at(-1)!)).toBe(true);
    expect(parsePolicy(policy).map((l) => [l.service, l.argument, l.source, l.destination, l.action, ...l.params].join(' '))).toEqual([
      'qubes.ConnectTCP +8080 sys-i2p webapp allow',
      'qubes.ConnectTCP +80 sys-i2p blogvm allow',
      'qubes.ConnectTCP +9000 sys-i2p webapp allow',
    ]);
  });

  it('allows the gateway exactly qubes.ConnectTCP +<port> to each qube, and nothing wider (with dom0\'s default deny after it)', () => {
    const { policy } = applied();
    const ask = (source: string, target: string, argument: string, service = 'qubes.ConnectTCP'): string => evaluate([policy, DEFAULT_CONNECT_TCP], { source, target, service, argument });
    expect(ask('sys-i2p', 'webapp', '8080')).toBe('allow');
    expect(ask('sys-i2p', 'blogvm', '80')).toBe('allow');
    expect(ask('sys-i2p', 'webapp', '9000')).toBe('allow');
    // Not another port of the same qube, not the same port of another qube, not someone else, not @default.
    expect(ask('sys-i2p', 'webapp', '80')).toBe('deny');
    expect(ask('sys-i2p', 'webapp', '22')).toBe('deny');
    expect(ask('sys-i2p', 'blogvm', '8080')).toBe('deny');
    expect(ask('sys-i2p', 'vault', '8080')).toBe('deny');
    expect(ask('sys-i2p', '@default', '8080')).toBe('deny');
    expect(ask('sys-i2p', 'dom0', '8080')).toBe('deny');
    expect(ask('work', 'webapp', '8080')).toBe('deny');
    expect(ask('webapp', 'sys-i2p', '8080')).toBe('deny');
    expect(ask('sys-i2p', 'webapp', '8080', 'qubes.VMShell')).toBe('deny');
  });

  it('a second run writes nothing; an emptied publish list and i2p-gateway.unpublish remove the file', () => {
    const { d } = applied();
    d.commands.length = 0;
    applyAll(d, files, c);
    expect(d.commands).toEqual([]);
    const none = config({});
    applyAll(d, formula(none), none);
    expect(d.commands).toEqual([`rm ${POLICY}`]);
    expect(d.files.has(POLICY)).toBe(false);

    const again = applied().d;
    again.commands.length = 0;
    apply(again, readSls(files, 'i2p-gateway.unpublish'), 'dom0');
    expect(again.commands).toEqual([`rm ${POLICY}`]);
    apply(again, readSls(files, 'i2p-gateway.unpublish'), 'dom0');
    expect(again.commands).toEqual([`rm ${POLICY}`]);
  });

  it('every service qube gets no netvm before the policy is written; a second run changes nothing', () => {
    const d = dom0For(c);
    d.get('blogvm').prefs['netvm'] = 'sys-firewall';
    d.get('blogvm').power = 'Running';
    expect(d.netvmOf('webapp')).toBe('sys-firewall');
    applyAll(d, files, c);
    expect(d.netvmOf('webapp')).toBe('');
    expect(d.netvmOf('blogvm')).toBe('');
    const netvmAt = d.commands.indexOf("qvm-prefs webapp netvm ''");
    expect(netvmAt).toBeGreaterThanOrEqual(0);
    expect(d.commands.indexOf("qvm-prefs blogvm netvm ''")).toBeGreaterThanOrEqual(0);
    expect(netvmAt).toBeLessThan(d.commands.findIndex((x) => x.startsWith(`write ${POLICY}`)));
    d.commands.length = 0;
    run(d, files, 'i2p-gateway.publish');
    expect(d.commands).toEqual([]);
  });

  it('a service qube that does not exist fails the state, and no policy is written', () => {
    const d = dom0For(c);
    d.qubes.delete('blogvm');
    run(d, files, 'i2p-gateway.clone');
    run(d, files, 'i2p-gateway.install', c.qubes.template);
    run(d, files, 'i2p-gateway.create');
    const r = apply(d, readSls(files, 'i2p-gateway.publish'), 'dom0', { files });
    expect(r.outcomes.get('i2p-gateway-publish-blogvm-no-netvm')).toBe('failed');
    expect(r.outcomes.get('i2p-gateway-publish-policy')).toBe('skipped');
    expect(d.files.has(POLICY)).toBe(false);
  });

  it('an edited policy file is put back on the next run', () => {
    const { d, policy } = applied();
    d.files.set(POLICY, { contents: `${policy}qubes.ConnectTCP * sys-i2p @anyvm allow\n`, mode: '0644', user: 'root', group: 'root' });
    d.commands.length = 0;
    applyAll(d, files, c);
    expect(d.commands).toEqual([`write ${POLICY} (0644 root:root)`]);
    expect(d.files.get(POLICY)!.contents).toBe(policy);
  });

  it('the states carry nothing Jinja would read (Salt renders .sls files through Jinja first)', () => {
    for (const [path, text] of files) if (path.endsWith('.sls')) expect(text, path).not.toMatch(/\{\{|\{%|\{#/);
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
    mustApply(d, clone, 'dom0');
    expect(d.commands).toEqual(['qvm-template install --quiet debian-13-minimal', 'qvm-clone debian-13-minimal debian-13-i2p']);

    const community = new FakeDom0();
    community.offerTemplate('qubes-templates-community', 'debian-13-minimal');
    expect(() => mustApply(community, clone, 'dom0')).toThrow(/no template debian-13-minimal in qubes-templates-itl/);
    // ...which is what fromrepo is for (qvm-template --repoid), e.g. the Whonix templates in Qubes' own formulas.
    const withRepo = clone.map((x) => (x.fn === 'qvm.template_installed' ? { ...x, args: { ...x.args, fromrepo: 'qubes-templates-community' } } : x));
    const d2 = new FakeDom0();
    d2.offerTemplate('qubes-templates-community', 'debian-13-minimal');
    mustApply(d2, withRepo, 'dom0');
    expect(d2.commands[0]).toBe('qvm-template install --quiet --repoid=qubes-templates-community debian-13-minimal');
  });

  it('a debian-13-minimal that is already a template counts as installed however it got there (4.3: qvm-check --template), so nothing is downloaded', () => {
    const d = new FakeDom0();
    d.addQube('debian-13-minimal', 'TemplateVM');
    mustApply(d, clone, 'dom0');
    expect(d.commands).toEqual(['qvm-clone debian-13-minimal debian-13-i2p']);
  });

  it('a qube named debian-13-minimal that is not a template fails the state, and the clone that requires it does not run', () => {
    const d = new FakeDom0();
    d.offerTemplate('qubes-templates-itl', 'debian-13-minimal');
    d.addQube('debian-13-minimal', 'AppVM');
    expect(() => mustApply(d, clone, 'dom0')).toThrow(/exists but is not a template/);
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

describe('a changed build (another version) over the installed one', () => {
  const c = config({});
  const B = '0.1.0+20231114221320.20231115000000.4e5f6071';

  it('install.sls installs B, pins it, and says to restart the gateway; a second run says nothing and changes nothing', () => {
    const d = dom0For(c);
    applyAll(d, formula(c), c);
    const filesB = formula(c, B);
    d.saltFiles.set(`salt://i2p-gateway/files/${debName(B)}`, { package: 'qubes-i2p-gateway', version: B });
    d.commands.length = 0;
    const r = run(d, filesB, 'i2p-gateway.install', c.qubes.template);
    expect(d.commands).toEqual([`${c.qubes.template}: install qubes-i2p-gateway=${B}`]);
    expect(d.qubes.get(c.qubes.template)!.packages['qubes-i2p-gateway']).toBe(B);
    expect(r.outcomes.get('i2p-gateway-package')).toBe('changed');
    expect(r.outcomes.get('i2p-gateway-package-version')).toBe('ok');
    const notice = r.comments.get('i2p-gateway-restart-notice') ?? '';
    expect(notice).toContain(`qubes-i2p-gateway ${B} is installed in ${c.qubes.template}.`);
    expect(notice).toContain(`qvm-shutdown --wait --force ${c.qubes.gateway} && qvm-start ${c.qubes.gateway}`);

    d.commands.length = 0;
    const again = run(d, filesB, 'i2p-gateway.install', c.qubes.template);
    expect(d.commands).toEqual([]);
    expect(again.comments.get('i2p-gateway-restart-notice')).toBe('State was not run because none of the onchanges reqs changed');
  });

  it('a package file that is not the version the formula names fails the run at the pin (no silent old gateway)', () => {
    const d = dom0For(c);
    applyAll(d, formula(c), c);
    // The formula names B, but what it ships (and Salt installs) still says A: the old behaviour of every build.
    d.saltFiles.set(`salt://i2p-gateway/files/${debName(B)}`, { package: 'qubes-i2p-gateway', version: VERSION });
    const r = apply(d, readSls(formula(c, B), 'i2p-gateway.install'), c.qubes.template, { files: formula(c, B) });
    expect(r.outcomes.get('i2p-gateway-package')).toBe('ok');
    expect(r.outcomes.get('i2p-gateway-package-version')).toBe('failed');
    expect(r.comments.get('i2p-gateway-package-version')).toContain(`Version '${B}' for 'qubes-i2p-gateway' was not found`);
  });
});

describe('a switch of router whose new package fails to install', () => {
  const before = config({});
  const after = config({ i2p: { router: 'i2p', keyring: 'k.gpg' } });
  const B = '0.1.0+20231114221320.20231115000000.4e5f6071';
  const url = `salt://i2p-gateway/files/${debName(B)}`;

  it('keeps the old package and its router (apt would remove an i2pd build with i2pd); once the file installs, the old router goes', () => {
    const d = dom0For(before);
    applyAll(d, formula(before), before);
    const template = d.get(before.qubes.template);
    expect(template.packages).toMatchObject({ 'qubes-i2p-gateway': VERSION, i2pd: 'debian' });
    // The new file cannot be configured (dpkg -i: a dependency nobody installs).
    d.saltFiles.set(url, { package: 'qubes-i2p-gateway', version: B, depends: [...debDepends(after), 'libmissing1'] });
    const files = formula(after, B);
    const r = apply(d, readSls(files, 'i2p-gateway.install'), after.qubes.template, { files });
    expect(r.outcomes.get('i2p-gateway-package')).toBe('failed');
    expect(r.outcomes.get('i2p-gateway-other-router')).toBe('skipped');
    expect(template.packages['qubes-i2p-gateway']).toBe(VERSION);
    expect(template.packages['i2pd']).toBe('debian');
    expect(d.commands.filter((x) => x.includes('purge') || x.includes('remove'))).toEqual([]);

    d.saltFiles.set(url, { package: 'qubes-i2p-gateway', version: B, depends: debDepends(after) });
    d.commands.length = 0;
    run(d, files, 'i2p-gateway.install', after.qubes.template);
    expect(template.packages['qubes-i2p-gateway']).toBe(B);
    expect(template.packages['i2p']).toBeDefined();
    expect('i2pd' in template.packages).toBe(false);
    const at = (prefix: string): number => d.commands.findIndex((x) => x.startsWith(`${after.qubes.template}: ${prefix}`));
    expect(at('purge i2pd')).toBeGreaterThan(at(`install qubes-i2p-gateway=${B}`));
    expect(at('purge i2pd')).toBeGreaterThan(at('install i2p='));
  });

  it('the fake models apt: purging a package removes the formula package that depends on it', () => {
    const d = dom0For(before);
    applyAll(d, formula(before), before);
    d.pkgPurged(before.qubes.template, 'i2pd');
    expect('qubes-i2p-gateway' in d.get(before.qubes.template).packages).toBe(false);
  });
});

describe('clients that run while the gateway is halted', () => {
  const c = config({ qubes: { clients: ['work', 'untrusted'] } });
  const files = formula(c);

  /** Built as far as create.sls; the gateway halted, as create leaves it (autostart off, nothing starts it). */
  function built(): FakeDom0 {
    const d = dom0For(c);
    run(d, files, 'i2p-gateway.clone');
    run(d, files, 'i2p-gateway.install', c.qubes.template);
    run(d, files, 'i2p-gateway.create');
    expect(d.qubes.get('sys-i2p')!.power).toBe('Halted');
    return d;
  }

  it('Qubes refuses to attach a running client to the halted gateway (the failure clients.sls must avoid)', () => {
    const d = built();
    d.get('work').power = 'Running';
    expect(() => d.prefs('work', { netvm: 'sys-i2p' })).toThrow('Cannot dynamically attach to stopped qube sys-i2p');
  });

  it('clients.sls starts the gateway first when a client runs, records the netvm, then wires both; a second run changes nothing', () => {
    const d = built();
    d.get('untrusted').power = 'Running';
    d.get('untrusted').prefs['netvm'] = 'sys-firewall';
    d.commands.length = 0;
    run(d, files, 'i2p-gateway.clients');
    expect(d.commands).toEqual([
      'qvm-start sys-i2p',
      'qvm-features work i2p-gateway.previous-netvm *default*',
      'qvm-firewall work add --before 0 action=drop comment=qubes-i2p-gateway-fail-closed',
      'qvm-prefs work netvm sys-i2p',
      'qvm-features untrusted i2p-gateway.previous-netvm sys-firewall',
      'qvm-firewall untrusted add --before 0 action=drop comment=qubes-i2p-gateway-fail-closed',
      'qvm-prefs untrusted netvm sys-i2p',
    ]);
    expect(d.netvmOf('untrusted')).toBe('sys-i2p');
    // The fail-closed rule first, the client's own (Qubes' default accept) after it.
    expect(d.firewallRules('untrusted')).toEqual(['action=drop comment=qubes-i2p-gateway-fail-closed', 'action=accept']);
    d.commands.length = 0;
    run(d, files, 'i2p-gateway.clients');
    expect(d.commands).toEqual([]);
  });

  it("a client's own qvm-firewall rules stay, after the fail-closed rule, and are exactly as before after remove", () => {
    const d = built();
    const own = ['action=accept proto=tcp dstports=443-443', 'action=accept specialtarget=dns', 'action=drop'];
    d.get('work').firewall = [...own];
    run(d, files, 'i2p-gateway.clients');
    expect(d.firewallRules('work')).toEqual(['action=drop comment=qubes-i2p-gateway-fail-closed', ...own]);
    run(d, files, 'i2p-gateway.clients');
    expect(d.firewallRules('work'), 'a second run adds nothing').toEqual(['action=drop comment=qubes-i2p-gateway-fail-closed', ...own]);
    run(d, files, 'i2p-gateway.remove');
    expect(d.firewallRules('work')).toEqual(own);
  });

  it('clients.sls leaves the gateway halted when no client runs', () => {
    const d = built();
    d.commands.length = 0;
    run(d, files, 'i2p-gateway.clients');
    expect(d.commands.filter((x) => x.startsWith('qvm-start'))).toEqual([]);
    expect(d.qubes.get('sys-i2p')!.power).toBe('Halted');
  });

  it('a client pointed at the gateway by hand before is not recorded; remove then gives it no netvm, never the clear net', () => {
    const d = built();
    d.get('sys-i2p').power = 'Running';
    d.get('work').prefs['netvm'] = 'sys-i2p';
    run(d, files, 'i2p-gateway.clients');
    expect(d.get('work').features).toEqual({});
    const r = run(d, files, 'i2p-gateway.remove');
    expect(d.netvmOf('work')).toBe('');
    expect(r.comments.get('i2p-gateway-remove-client-work')).toContain('work: no netvm now');
    expect(d.has('sys-i2p')).toBe(false);
  });
});

describe('i2p-gateway.remove', () => {
  const c = config({ qubes: { clients: ['work', 'untrusted', 'offline', 'moved'] } });
  const files = formula(c);

  /** Clients with every kind of netvm before: the default, sys-whonix (explicit), none, and one moved away later. */
  function wired(): FakeDom0 {
    const d = dom0For(c);
    d.addQube('sys-whonix', 'AppVM', { 'provides-network': true, netvm: 'sys-firewall' });
    d.get('untrusted').prefs['netvm'] = 'sys-whonix';
    d.get('offline').prefs['netvm'] = '';
    applyAll(d, files, c);
    d.get('moved').prefs['netvm'] = 'sys-whonix';
    d.get('work').power = 'Running';
    d.get('untrusted').power = 'Running';
    d.get('sys-i2p').power = 'Running';
    return d;
  }

  it('puts each client back on its recorded netvm, starting a halted one for a running client, then removes gateway and template', () => {
    const d = wired();
    d.commands.length = 0;
    const r = run(d, files, 'i2p-gateway.remove');
    expect(d.commands).toEqual([
      'qvm-prefs --default work netvm',
      'qvm-features --unset work i2p-gateway.previous-netvm',
      'qvm-firewall work del action=drop comment=qubes-i2p-gateway-fail-closed',
      'qvm-start sys-whonix',
      'qvm-prefs untrusted netvm sys-whonix',
      'qvm-features --unset untrusted i2p-gateway.previous-netvm',
      'qvm-firewall untrusted del action=drop comment=qubes-i2p-gateway-fail-closed',
      "qvm-prefs offline netvm ''",
      'qvm-features --unset offline i2p-gateway.previous-netvm',
      'qvm-firewall offline del action=drop comment=qubes-i2p-gateway-fail-closed',
      'qvm-features --unset moved i2p-gateway.previous-netvm',
      'qvm-firewall moved del action=drop comment=qubes-i2p-gateway-fail-closed',
      'qvm-shutdown --wait --force sys-i2p',
      'qvm-remove --force sys-i2p',
      'qvm-remove --force debian-13-i2p',
    ]);
    expect(['work', 'untrusted', 'offline', 'moved'].map((q) => d.netvmOf(q))).toEqual(['sys-firewall', 'sys-whonix', '', 'sys-whonix']);
    expect(r.comments.get('i2p-gateway-remove-client-moved')).toBe('moved: uses sys-whonix now, not sys-i2p, so it stays; record dropped; its fail-closed firewall rule removed');
    for (const q of ['work', 'untrusted', 'offline', 'moved']) expect(d.firewallRules(q), q).toEqual(['action=accept']);
    d.commands.length = 0;
    run(d, files, 'i2p-gateway.remove');
    expect(d.commands).toEqual([]);
  });

  it('a qube wired to the gateway by hand stops the removal before the gateway: Qubes refuses, the template stays', () => {
    const d = wired();
    d.addQube('hand-wired', 'AppVM', { netvm: 'sys-i2p' });
    const r = apply(d, readSls(files, 'i2p-gateway.remove'), 'dom0', { files });
    expect(r.outcomes.get('i2p-gateway-remove-qube')).toBe('failed');
    expect(r.comments.get('i2p-gateway-remove-qube')).toContain("Domain is in use: 'sys-i2p'");
    expect(r.outcomes.get('i2p-gateway-remove-template')).toBe('skipped');
    expect(d.has('debian-13-i2p')).toBe(true);
    // Fixed by hand, the same state finishes the job.
    d.setPref('hand-wired', 'netvm', 'sys-firewall');
    run(d, files, 'i2p-gateway.remove');
    expect(d.has('sys-i2p') || d.has('debian-13-i2p')).toBe(false);
  });

  it('a recorded netvm that no longer exists fails that client (never the clear net instead), and the gateway stays', () => {
    const d = wired();
    d.qubes.delete('sys-whonix');
    d.get('moved').prefs['netvm'] = 'sys-firewall';
    const r = apply(d, readSls(files, 'i2p-gateway.remove'), 'dom0', { files });
    expect(r.outcomes.get('i2p-gateway-remove-client-untrusted')).toBe('failed');
    expect(r.comments.get('i2p-gateway-remove-client-untrusted')).toContain('its netvm before sys-i2p, sys-whonix, no longer exists');
    expect(d.netvmOf('untrusted')).toBe('sys-i2p');
    expect(d.firewallRules('untrusted'), 'still on the gateway: the fail-closed rule stays').toEqual(['action=drop comment=qubes-i2p-gateway-fail-closed', 'action=accept']);
    expect(r.outcomes.get('i2p-gateway-remove-qube')).toBe('skipped');
    expect(d.has('sys-i2p')).toBe(true);
  });

  it('on a dom0 where nothing was ever built it changes nothing', () => {
    const d = dom0For(c);
    run(d, files, 'i2p-gateway.remove');
    expect(d.commands).toEqual([]);
  });

  it('is one list of steps: the published services\' policy goes after the clients and before the qubes', async () => {
    const { removeStates } = await import('../../src/render/salt/remove.ts');
    const data = removeStates(c) as Record<string, Record<string, Record<string, unknown>[]>>;
    expect(data['i2p-gateway-remove-publish-policy']!['file.absent']).toEqual([
      { name: POLICY },
      { require: ['work', 'untrusted', 'offline', 'moved'].map((q) => ({ cmd: `i2p-gateway-remove-client-${q}` })) },
    ]);
    expect(data['i2p-gateway-remove-qube']!['qvm.vm']!.at(-1)).toEqual({ require: [{ file: 'i2p-gateway-remove-publish-policy' }] });
  });

  it('removes a policy an earlier build published (with publish empty now), before the gateway goes; a second run changes nothing', () => {
    const published = config({ qubes: { clients: ['work'] }, publish: [{ name: 'wiki', qube: 'webapp', port: 8080 }] });
    const d = dom0For(published);
    applyAll(d, formula(published), published);
    expect(d.files.has(POLICY)).toBe(true);
    const now = config({ qubes: { clients: ['work'] } });
    d.commands.length = 0;
    run(d, formula(now), 'i2p-gateway.remove');
    expect(d.files.has(POLICY)).toBe(false);
    expect(d.commands.indexOf(`rm ${POLICY}`)).toBeGreaterThanOrEqual(0);
    expect(d.commands.indexOf(`rm ${POLICY}`)).toBeLessThan(d.commands.findIndex((x) => x.startsWith('qvm-remove')));
    d.commands.length = 0;
    run(d, formula(now), 'i2p-gateway.remove');
    expect(d.commands).toEqual([]);
  });
});

describe('golden formula (UPDATE_GOLDEN=1 rewrites)', () => {
  for (const [name, value] of SCENARIOS.filter(([n]) => ['default', 'clients', 'publish'].includes(n))) {
    it(name, () => {
      const dir = new URL(`../golden/${name}/formula/`, import.meta.url).pathname;
      // files/ holds the .deb and a copy of salt/client-netvm, not rendered text: not part of the golden.
      const files = new Map([...formula(config(value))].filter(([p]) => !p.startsWith('i2p-gateway/files/')));
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
