/**
 * The template guard's list (read by the postinst) and install.sls's holds agree with the drop-ins the package
 * ships: every unit the postinst would stop, and install.sls holds, has one of our drop-ins with the same flag,
 * and every distribution unit we ship a drop-in for is on the list (but the router the build does not run: its
 * drop-in keeps it out of the gateway only, and install.sls purges it). A unit held in one place and not the
 * other would start in the template. What the postinst does with the list is proven in a booted template
 * (test/boot/identity.test.ts).
 */
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { renderGateway } from '../../src/render/gateway/index.ts';
import { renderI2pDropIn } from '../../src/render/gateway/java-router.ts';
import { heldStateDirs, heldUnits, renderTemplateGuardList } from '../../src/render/gateway/template-guard.ts';
import { persistentDirs } from '../../src/render/gateway/persistence.ts';
import { holdPath, renderInstall } from '../../src/render/salt/install.ts';
import { readFileSync } from 'node:fs';
import { configOf, PROGRAMS, REAL_KEYRING, text } from './helpers.ts';

const CONFIGS: Array<[string, unknown]> = [
  ['default', {}],
  ['tor off', { tor: { enabled: false } }],
  ['renamed service', { qubes: { service: 'i2p-gw' } }],
  ['java router', { i2p: { router: 'i2p' } }],
];

/** Units (not ours) that get a drop-in from the package, with the flag of its ConditionPathExists=. */
function distroDropIns(files: ReturnType<typeof renderGateway>): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of files) {
    const m = /^\/usr\/lib\/systemd\/system\/([^/]+)\.d\/50-qubes-i2p-gateway\.conf$/.exec(f.path);
    if (m?.[1] === undefined) continue;
    const cond = /^ConditionPathExists=(.*)$/m.exec(new TextDecoder().decode(f.data));
    // `!flag`: the router this build does not run, kept out of the gateway only (install.sls purges it).
    if (cond?.[1]?.startsWith('!') === true) continue;
    out.set(m[1], cond?.[1] ?? '(no condition)');
  }
  return out;
}

describe.each(CONFIGS)('template guard: %s', (_name, value) => {
  const config = configOf(value);
  const files = renderGateway(config, config.i2p.router === 'i2p' ? { programs: PROGRAMS, keyring: new Uint8Array(readFileSync(REAL_KEYRING)) } : { programs: PROGRAMS });

  it('holds exactly the distribution units the package ships a drop-in for, with the same flag', () => {
    const dropIns = distroDropIns(files);
    expect(new Map(heldUnits(config).map((h) => [h.path, h.flag]))).toEqual(dropIns);
  });

  it('lists every held unit and state directory for the postinst, one line each', () => {
    const list = renderTemplateGuardList(config);
    const lines = list.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines).toEqual([
      ...heldUnits(config).map((h) => `stop ${h.path} ${h.flag}`),
      ...heldStateDirs(config).map((d) => `clean ${d.path} ${d.flag}`),
    ]);
    for (const l of lines) expect(l.split(' ')).toHaveLength(3);
  });

  it('cleans the router state that bind-dirs would copy into the gateway', () => {
    const cleaned = heldStateDirs(config).map((d) => d.path);
    const router = persistentDirs(config).filter((d) => d !== '/var/lib/qubes-i2p-gateway');
    expect(cleaned).toEqual(expect.arrayContaining(router));
  });

  it('install.sls holds every held unit before the dependencies go in', () => {
    const sls = load(new TextDecoder().decode(renderInstall(config, { debFileName: 'x.deb', debVersion: '0.1.0', dependencies: ['tor'] }).data)) as Record<string, Record<string, unknown[]>>;
    const deps = sls['i2p-gateway-dependencies']?.['pkg.installed'] ?? [];
    const requires = (deps.find((a) => typeof a === 'object' && a !== null && 'require' in a) as { require: Array<{ file: string }> } | undefined)?.require ?? [];
    for (const h of heldUnits(config)) {
      const entry = Object.entries(sls).find(([, body]) => JSON.stringify(body).includes(holdPath(h.path)));
      expect(entry, `a file.managed for ${holdPath(h.path)}`).toBeDefined();
      const [id, body] = entry!;
      expect(requires).toContainEqual({ file: id });
      expect(JSON.stringify(body['file.managed'])).toContain(`ConditionPathExists=${h.flag}\\n`);
      expect(holdPath(h.path)).toMatch(/^\/run\/systemd\/system\//);
    }
  });
});

it('the Java router: its unit is held to the gateway flag, as its drop-in (which needs the keyring to render) says', () => {
  const config = configOf({ i2p: { router: 'i2p' } });
  expect(heldUnits(config)[0]).toEqual({ path: 'i2p.service', flag: '/run/qubes-service/i2p' });
  expect(renderI2pDropIn(config)).toContain('ConditionPathExists=/run/qubes-service/i2p\n');
  expect(heldStateDirs(config)[0]).toEqual({ path: '/var/lib/i2p', flag: '/run/qubes-service/i2p' });
});

it('the default list, as the postinst reads it', () => {
  const list = renderTemplateGuardList(configOf({}));
  expect(list.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([
    'stop i2pd.service /run/qubes-service/i2p',
    'stop tor.service /run/qubes-service/tor',
    'stop tor@default.service /run/qubes-service/tor',
    'stop tinyproxy.service /run/qubes-service/tinyproxy',
    'clean /var/lib/i2pd /run/qubes-service/i2p',
    'clean /var/lib/tor /run/qubes-service/tor',
    'clean /var/lib/qubes-i2p-gateway/tor /run/qubes-service/i2p',
  ]);
  expect(text(renderGateway(configOf({}), { programs: PROGRAMS }), '/usr/share/qubes-i2p-gateway/template-guard')).toBe(list);
});
