/**
 * The gateway tree as a whole: which files exist for which config, their kinds, and the guards that keep
 * unvalidated values out of generated scripts and rulesets.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../../src/config/schema.ts';
import { renderRuleset } from '../../src/render/gateway/firewall.ts';
import { renderHookConf } from '../../src/render/gateway/firewall-hook.ts';
import { renderGateway } from '../../src/render/gateway/index.ts';
import { configOf, PROGRAMS, REAL_KEYRING, text } from './helpers.ts';

describe('the gateway tree', () => {
  it('generates no conffile for i2pd: the configuration is package data, replaced whole on every upgrade; the hook is linked', () => {
    for (const value of [{}, { tor: { enabled: false } }]) {
      const files = renderGateway(configOf(value), { programs: PROGRAMS });
      expect(files.filter((x) => x.kind === 'config').map((f) => f.path)).toEqual([]);
      // In /etc only what is not a regular file: the hook's link, and the admin's (empty) torrc.d with Tor on.
      expect(files.filter((x) => x.path.startsWith('/etc/')).map((f) => `${f.kind} ${f.path}`)).toEqual([
        ...(value.tor === undefined ? ['dir /etc/qubes-i2p-gateway/torrc.d'] : []),
        'symlink /etc/qubes/qubes-firewall.d/50-qubes-i2p-gateway',
      ]);
      expect(files.find((f) => f.path === '/etc/qubes/qubes-firewall.d/50-qubes-i2p-gateway')?.target).toBe('/usr/libexec/qubes-i2p-gateway/firewall-hook');
      expect(files.find((f) => f.path === '/usr/libexec/qubes-i2p-gateway/firewall-hook')?.mode).toBe(0o755);
    }
  });

  it('ships the Java router\'s apt source and keyring only for router i2p', () => {
    const i2pd = renderGateway(configOf(), { programs: PROGRAMS }).map((f) => f.path);
    expect(i2pd).not.toContain('/etc/apt/sources.list.d/i2p.sources');
    expect(i2pd).toContain('/usr/share/qubes-i2p-gateway/i2pd.conf');
    const java = renderGateway(configOf({ i2p: { router: 'i2p' } }), { programs: PROGRAMS, keyring: new Uint8Array(readFileSync(REAL_KEYRING)) }).map((f) => f.path);
    expect(java).toContain('/etc/apt/sources.list.d/i2p.sources');
    expect(java).toContain('/etc/apt/keyrings/qubes-i2p-gateway-i2p-archive-keyring.gpg');
    expect(java).toContain('/usr/lib/systemd/system/i2p.service.d/50-qubes-i2p-gateway.conf');
    expect(java).not.toContain('/etc/qubes-i2p-gateway/i2pd.conf');
  });

  it('keeps the state of Tor and the router across reboots, in the gateway qube only', () => {
    const bind = text(renderGateway(configOf(), { programs: PROGRAMS }), '/usr/lib/qubes-bind-dirs.d/50_qubes-i2p-gateway.conf');
    expect(bind).toContain("if [ -e /run/qubes-service/i2p ]; then\n\tbinds+=( '/var/lib/qubes-i2p-gateway' '/var/lib/i2pd' )\nfi\n");
    const noTor = text(renderGateway(configOf({ tor: { enabled: false } }), { programs: PROGRAMS }), '/usr/lib/qubes-bind-dirs.d/50_qubes-i2p-gateway.conf');
    expect(noTor).toContain("binds+=( '/var/lib/i2pd' )");
  });

  it('refuses a gateway service name that would also start the distribution\'s tor or tinyproxy', () => {
    for (const service of ['tor', 'tinyproxy']) {
      // the config rule refuses it first (test/config); the renderer still guards against a config built in code
      const base = configOf();
      expect(() => renderGateway({ ...base, qubes: { ...base.qubes, service } }, { programs: PROGRAMS })).toThrow(`qubes.service "${service}" would also start the distribution's ${service}`);
    }
  });
});

describe('values reaching scripts and rulesets', () => {
  const tampered = (patch: (c: GatewayConfig) => GatewayConfig): GatewayConfig => patch(configOf());

  it('refuses a virtual IP that is not an address', () => {
    const c = tampered((c) => ({ ...c, network: { ...c.network, virtualIp: '10.0.0.1 accept; flush ruleset' } }));
    expect(() => renderRuleset(c)).toThrow('IPv4 address "10.0.0.1 accept; flush ruleset" is not valid here');
  });

  it('refuses a port that is not a port', () => {
    const c = tampered((c) => ({ ...c, tinyproxy: { port: 70000 } }));
    expect(() => renderRuleset(c)).toThrow('port 70000 is not valid here');
  });

  it('refuses a service or qube name that could break out of the hook\'s config lines', () => {
    const c = tampered((c) => ({ ...c, qubes: { ...c.qubes, service: 'i2p; rm -rf /' } }));
    expect(() => renderHookConf(c)).toThrow('qvm-service name "i2p; rm -rf /" is not valid here');
    const g = tampered((c) => ({ ...c, qubes: { ...c.qubes, gateway: 'sys-i2p\nRULESET=/tmp/evil.nft' } }));
    expect(() => renderHookConf(g)).toThrow('qube name "sys-i2p\\nRULESET=/tmp/evil.nft" is not valid here');
  });
});
