/**
 * The units and drop-ins against systemd-analyze verify (systemd 252): each of our units, and the
 * distribution's units our drop-ins change, loaded from a temp copy of the rendered tree placed first on the
 * unit path (SYSTEMD_UNIT_PATH=dir: keeps the system's units after it). Units it cannot find (qubes-firewall,
 * Qubes' own) only order ours, so verify may mention them; nothing may be said about our files.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROUTERS } from '../../src/config/routers.ts';
import type { RenderedFile } from '../../src/files.ts';
import { UNIT_DIR, UNITS } from '../../src/render/gateway/common.ts';
import { renderGateway } from '../../src/render/gateway/index.ts';
import { LOCKDOWN_UNIT } from '../../src/render/gateway/lockdown.ts';
import { targetWants } from '../../src/render/gateway/target.ts';
import { configOf, run, Scratch, text } from './helpers.ts';

const scratch = new Scratch();
afterAll(async () => {
  await scratch.cleanup();
});

const LIBEXEC_OVERLAY = 'mount -t overlay qig-libexec -o "lowerdir=$1/usr/libexec:/usr/libexec" /usr/libexec && shift && exec "$@"';

function verify(files: readonly RenderedFile[], units: readonly string[]): { code: number | null; output: string } {
  const root = scratch.tree(files);
  const dir = join(root, UNIT_DIR);
  const ours = units.map((u) => (existsSync(join(dir, u)) ? join(dir, u) : u));
  // verify checks that ExecStart's program exists: our own (/usr/libexec/qubes-i2p-gateway) is served from the
  // rendered tree by an overlay on /usr/libexec, in a private mount namespace (the host's is not touched).
  const argv = existsSync(join(root, 'usr/libexec'))
    ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', LIBEXEC_OVERLAY, 'sh', root, 'systemd-analyze', 'verify', ...ours]
    : ['systemd-analyze', 'verify', ...ours];
  const r = run(argv, { env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:`, SYSTEMD_LOG_COLOR: '0' }, cwd: root });
  return { code: r.code, output: r.stdout + r.stderr };
}

describe('systemd-analyze verify', () => {
  it('accepts the units and drop-ins of the default gateway (i2pd, Tor on)', () => {
    const config = configOf();
    const files = renderGateway(config);
    const units = [UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, UNITS.target, LOCKDOWN_UNIT, 'i2pd.service', 'tor.service', 'tor@default.service', 'tinyproxy.service'];
    const r = verify(files, units);
    expect(r.output).not.toMatch(/qubes-i2p-gateway|50-qubes-i2p-gateway|i2pd\.service|tinyproxy\.service|tor(@default)?\.service/);
    expect(r.code).toBe(0);
  });

  it('accepts the units without Tor', () => {
    const files = renderGateway(configOf({ tor: { enabled: false } }));
    const r = verify(files, [UNITS.dnsmasq, UNITS.tinyproxy, UNITS.target, LOCKDOWN_UNIT, 'i2pd.service']);
    expect(r.output).not.toMatch(/qubes-i2p-gateway|i2pd\.service/);
    expect(r.code).toBe(0);
  });
});

describe('the units', () => {
  const config = configOf();
  const files = renderGateway(config);
  const unit = (name: string): string => text(files, `${UNIT_DIR}/${name}`);

  it('run only in the gateway qube', () => {
    for (const u of [UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, UNITS.target, LOCKDOWN_UNIT, 'i2pd.service.d/50-qubes-i2p-gateway.conf']) {
      expect(unit(u), u).toContain('ConditionPathExists=/run/qubes-service/i2p\n');
    }
  });

  it('use plain ExecStart lines (no specifiers, no shell): our programs by absolute path, the distribution\'s by bare name', () => {
    for (const u of [UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, LOCKDOWN_UNIT, 'i2pd.service.d/50-qubes-i2p-gateway.conf']) {
      const lines = unit(u).split('\n').filter((l) => l.startsWith('ExecStart=') && l !== 'ExecStart=');
      expect(lines, u).toHaveLength(1);
      expect(lines[0], u).toMatch(/^ExecStart=[^%$;|&'"]*$/);
      // A distribution's binary moves between releases (i2pd: /usr/sbin on Debian 12, /usr/bin on 13): name it bare
      // and let systemd search. Our own programs have one place, so they are named by it.
      const cmd = lines[0]!.slice('ExecStart='.length).split(' ')[0]!;
      if (cmd.startsWith('/')) expect(cmd, u).toMatch(/^\/usr\/libexec\/qubes-i2p-gateway\//);
      else expect(['tor', 'dnsmasq', 'tinyproxy', 'nft', 'i2pd'], u).toContain(cmd);
      expect(lines[0], u).not.toMatch(/\bsh -c\b/);
    }
  });

  it('the target wants every part of the gateway and is enabled by a shipped link', () => {
    expect(targetWants(config)).toEqual([LOCKDOWN_UNIT, UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, ROUTERS.i2pd.unit]);
    expect(unit(UNITS.target)).toContain(`Wants=${targetWants(config).join(' ')}\n`);
    const link = files.find((f) => f.path === `${UNIT_DIR}/multi-user.target.wants/${UNITS.target}`);
    expect(link).toMatchObject({ kind: 'symlink', target: `../${UNITS.target}` });
  });

  it('wants the DNS TCP relay only with Tor, and starts dnsmasq after it', () => {
    expect(targetWants(configOf({ tor: { enabled: false } }))).not.toContain(UNITS.dnsRelay);
    expect(unit(UNITS.dnsmasq)).toMatch(new RegExp(`^After=.* ${UNITS.dnsRelay.replace(/\./g, '\\.')}$`, 'm'));
  });

  it('wants the Java router\'s unit for router i2p', () => {
    expect(targetWants(configOf({ i2p: { router: 'i2p' } }))).toContain('i2p.service');
  });
});
