/**
 * The template package, built with writeDeb, against dpkg-deb, dpkg-parsechangelog and lintian (0 errors, 0
 * warnings: `--fail-on error,warning`; the one override carries its reason in the package), for the default
 * config, Tor off with every router port exposed, and the Java router with the real I2P keyring (the fixture
 * test/fixtures/i2p-archive-keyring.gpg).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { debFileName, writeDeb } from '../../src/pack/deb.ts';
import { renderDebPackage } from '../../src/render/deb/package.ts';
import { configOf, must, REAL_KEYRING, run, Scratch } from '../render/helpers.ts';
import { lintian } from '../lintian.ts';
import { readStaticSources } from '../../src/io/static.ts';
import { ROUTERS } from '../../src/config/routers.ts';
import { DROPIN, PATHS, UNITS } from '../../src/render/gateway/common.ts';
import { disabledUnits } from '../../src/render/salt/install.ts';

const DEB_STATICS = readStaticSources().deb;

const EPOCH = 1_700_000_000;
const scratch = new Scratch();
afterAll(async () => {
  await scratch.cleanup();
});

function build(value: unknown, keyring?: Uint8Array): { path: string; pkg: ReturnType<typeof renderDebPackage> } {
  const pkg = renderDebPackage(configOf(value), keyring === undefined ? { sourceDateEpoch: EPOCH, statics: DEB_STATICS } : { sourceDateEpoch: EPOCH, statics: DEB_STATICS, keyring });
  const path = join(scratch.dir('deb'), debFileName(pkg.meta));
  writeFileSync(path, writeDeb(pkg.meta, pkg.files, { sourceDateEpoch: EPOCH }));
  return { path, pkg };
}

const realKeyring = (): Uint8Array => new Uint8Array(readFileSync(REAL_KEYRING));

const VARIANTS: ReadonlyArray<[string, unknown, boolean]> = [
  ['default (i2pd, Tor on)', {}, false],
  ['Tor off, every router port a client may reach (IRC, SAM and I2CP granted to one client)', { tor: { enabled: false }, qubes: { clients: ['torrents'] }, i2p: { apps: { irc: ['torrents'], sam: ['torrents'], i2cp: ['torrents'] } } }, false],
  ['Java router with the real keyring', { i2p: { router: 'i2p' } }, true],
  ['a published service (I2P site and onion service)', { publish: [{ name: 'wiki', qube: 'webapp', port: 8080, onion: true }] }, false],
];

describe.each(VARIANTS)('%s', (_name, value, withKeyring) => {
  const { path, pkg } = build(value, withKeyring ? realKeyring() : undefined);

  it('is clean under Debian 13\'s lintian (no errors, no warnings)', async () => {
    const r = await lintian(['--fail-on', 'error,warning', '--tag-display-limit', '0', path]);
    const problems = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
    expect(problems).toEqual([]);
    expect(r.code).toBe(0);
  });

  it('lists every file under /etc as a conffile, and only those (none but the Java router\'s apt source)', () => {
    const etc = pkg.files.filter((f) => f.path.startsWith('/etc/') && (f.kind === 'config' || f.kind === 'file')).map((f) => f.path).sort();
    const info = run(['dpkg-deb', '--info', path, 'conffiles']);
    if (etc.length === 0) {
      // No conffiles member at all: dpkg-deb says so.
      expect(info.code).not.toBe(0);
      expect(info.stderr).toContain('conffiles');
    } else {
      expect(info.stdout.trim().split('\n').sort()).toEqual(etc);
    }
    expect(pkg.files.filter((f) => f.path.startsWith('/etc/') && f.kind === 'file')).toEqual([]);
    expect(etc.every((p) => p.startsWith('/etc/apt/'))).toBe(true);
  });

  it('has the contents dpkg-deb shows: the hook executable, the target enabled by a link, root-owned', () => {
    const contents = must(['dpkg-deb', '--contents', path]).stdout;
    expect(contents).toMatch(/^-rwxr-xr-x root\/root .* \.\/usr\/libexec\/qubes-i2p-gateway\/firewall-hook$/m);
    expect(contents).toMatch(/^lrwxrwxrwx root\/root .* \.\/etc\/qubes\/qubes-firewall\.d\/50-qubes-i2p-gateway -> \/usr\/libexec\/qubes-i2p-gateway\/firewall-hook$/m);
    expect(contents).toContain('./usr/lib/systemd/system/multi-user.target.wants/qubes-i2p-gateway.target -> ../qubes-i2p-gateway.target');
    expect(contents).toMatch(/\.\/usr\/share\/doc\/qubes-i2p-gateway\/copyright$/m);
    // The status command, with the manual page lintian wants for a program in /usr/bin, and its data.
    expect(contents).toMatch(/^-rwxr-xr-x root\/root .* \.\/usr\/bin\/qubes-i2p-gateway$/m);
    expect(contents).toMatch(/^-rw-r--r-- root\/root .* \.\/usr\/share\/man\/man1\/qubes-i2p-gateway\.1\.gz$/m);
    expect(contents).toMatch(/^-rw-r--r-- root\/root .* \.\/usr\/share\/qubes-i2p-gateway\/status\.json$/m);
    expect(contents).toMatch(/\.\/usr\/share\/doc\/qubes-i2p-gateway\/changelog\.gz$/m);
    for (const line of contents.trim().split('\n')) expect(line).toContain(' root/root ');
  });

  it('has maintainer scripts that parse, enable and start nothing, and restart only what runs, on upgrade', () => {
    const scripts = { postinst: pkg.meta.scripts?.postinst, postrm: pkg.meta.scripts?.postrm };
    const code = (text: string | undefined): string => (text ?? '').split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n');
    for (const [name, script] of Object.entries(scripts)) {
      expect(script, name).toBeDefined();
      expect(run(['sh', '-n'], { input: script ?? '' }).code, name).toBe(0);
      expect(run(['dash', '-n'], { input: script ?? '' }).code, name).toBe(0);
      expect(code(script), name).not.toMatch(/systemctl\s+(enable|start|restart|preset|mask)|deb-systemd-(helper|invoke\s+(start|restart))/);
    }
    // postinst: in a running systemd only; on configure from an old version only, the hook first, then a
    // try-restart of each of our units (and the routers' units we configure) that is active.
    const postinst = code(scripts.postinst);
    expect(postinst).toContain('[ -d /run/systemd/system ]');
    expect(postinst).toContain('[ "$1" = configure ] && [ -n "${2:-}" ]');
    expect(postinst).toContain(`HOOK=${PATHS.hookProgram}\n`);
    const units = /UNITS="([^"]*)"/.exec(postinst)?.[1]?.split(' ');
    expect(units).toEqual([UNITS.noForward, UNITS.tor, UNITS.dnsRelay, UNITS.dnsmasq, UNITS.tinyproxy, UNITS.waitPage, ROUTERS.i2pd.unit, ROUTERS.i2p.unit]);
    expect(postinst.indexOf('"$HOOK"')).toBeLessThan(postinst.indexOf('try-restart'));
    expect(postinst).toMatch(/if systemctl --quiet is-active "\$unit"; then\n(\s+#.*\n)?\s+deb-systemd-invoke try-restart "\$unit"/);
    // No prerm, and no maintainer script enables or disables another package's unit: the removal changes nothing
    // other packages own (piuparts: "files disappeared after purge: .../multi-user.target.wants/tor.service").
    // install.sls disables the distribution's daemons in the template instead (test/salt, test/boot).
    expect(pkg.meta.scripts?.prerm).toBeUndefined();
    for (const [name, script] of Object.entries(scripts)) {
      if (script === undefined) continue;
      expect(code(script), name).not.toMatch(/systemctl\s+(disable|enable|mask|unmask)|deb-systemd-helper/);
    }
  });

  it("install.sls disables every distribution unit this build drops in on and installs (not the other router's, not static tor@default)", () => {
    const c = configOf(value);
    const dropped = pkg.files
      .map((f) => new RegExp(`^/usr/lib/systemd/system/([^/]+\\.service)\\.d/${DROPIN}$`).exec(f.path)?.[1])
      .filter((u): u is string => u !== undefined && !u.startsWith('qubes-i2p-gateway') && u !== 'tor@default.service')
      .filter((u) => u !== ROUTERS[c.i2p.router === 'i2pd' ? 'i2p' : 'i2pd'].unit);
    expect(disabledUnits(c).sort()).toEqual(dropped.sort());
  });

  it('has a changelog dpkg-parsechangelog reads, dated from SOURCE_DATE_EPOCH, compressed like gzip -9n', () => {
    const gz = pkg.files.find((f) => f.path === '/usr/share/doc/qubes-i2p-gateway/changelog.gz');
    expect(gz).toBeDefined();
    const bytes = gz?.data ?? new Uint8Array();
    expect([...bytes.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    const changelog = join(scratch.dir('changelog'), 'changelog');
    writeFileSync(changelog, gunzipSync(bytes));
    const parsed = must(['dpkg-parsechangelog', '-l', changelog]).stdout;
    expect(parsed).toContain('Source: qubes-i2p-gateway\n');
    expect(parsed).toContain(`Version: ${pkg.meta.version}\n`);
    expect(parsed).toContain('Date: Tue, 14 Nov 2023 22:13:20 +0000\n');
  });
});

describe('control fields', () => {
  it('depend on what the config uses', () => {
    expect(build({}).pkg.meta.depends).toEqual(['tor', 'python3', 'tinyproxy', 'dnsmasq-base', 'nftables', 'i2pd', 'qubes-core-agent-networking']);
    expect(build({ tor: { enabled: false } }).pkg.meta.depends).toEqual(['python3', 'tinyproxy', 'dnsmasq-base', 'nftables', 'i2pd', 'qubes-core-agent-networking']);
    expect(build({ i2p: { router: 'i2p' } }, realKeyring()).pkg.meta.depends).toEqual(['tor', 'python3', 'tinyproxy', 'dnsmasq-base', 'nftables', 'qubes-core-agent-networking']);
  });

  it('describe the package as dpkg-deb shows it', () => {
    const { path } = build({});
    const fields = must(['dpkg-deb', '--field', path, 'Package', 'Version', 'Architecture', 'Section', 'Priority']).stdout;
    expect(fields).toBe('Package: qubes-i2p-gateway\nVersion: 0.1.0\nArchitecture: all\nSection: net\nPriority: optional\n');
    expect(debFileName(build({}).pkg.meta)).toBe('qubes-i2p-gateway_0.1.0_all.deb');
  });
});

describe('the Java router', () => {
  it('ships the keyring as given and an apt source pinned to it', () => {
    const { pkg } = build({ i2p: { router: 'i2p' }, debian: { release: 'trixie' } }, realKeyring());
    const keyring = pkg.files.find((f) => f.path === '/etc/apt/keyrings/qubes-i2p-gateway-i2p-archive-keyring.gpg');
    expect(keyring?.data).toEqual(realKeyring());
    // A conffile, like the source: the two are kept (remove) and removed (purge) together.
    expect(keyring?.kind).toBe('config');
    const sources = new TextDecoder().decode(pkg.files.find((f) => f.path === '/etc/apt/sources.list.d/i2p.sources')?.data);
    expect(sources).toContain('Types: deb\nURIs: https://deb.i2p.net/\nSuites: trixie\nComponents: main\nSigned-By: /etc/apt/keyrings/qubes-i2p-gateway-i2p-archive-keyring.gpg\n');
  });

  it('refuses to build without a keyring', () => {
    expect(() => build({ i2p: { router: 'i2p' } })).toThrow('router i2p needs the I2P repository keyring');
  });

  it('refuses a keyring for router i2pd', () => {
    expect(() => build({}, realKeyring())).toThrow('router i2pd comes from Debian and needs none');
  });
});
