/**
 * The programs that run in the gateway (gateway/): placed into the package byte for byte, with the data they read
 * agreeing with the configs they describe; the status command's own unit tests (test/gateway/test_status.py,
 * Python's unittest, against captures of the real daemons and a stand-in gateway) under Debian 13's python3;
 * and the command run for real in a Debian 13 machine that is not a gateway. The relay runs against real daemons
 * in test/render/daemons.test.ts, the status command in the datapath lab (test/net/status.test.ts).
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, readStaticSources } from '../../src/io/static.ts';
import { dropInPath, PATHS, UNITS, unitPath } from '../../src/render/gateway/common.ts';
import { renderGateway } from '../../src/render/gateway/index.ts';
import { renderStatusFacts } from '../../src/render/gateway/status.ts';
import { parseSpec } from '../../src/render/rpm/spec.ts';
import { dom0StatusCommand, renderDom0Readme } from '../../src/render/salt/readme.ts';
import { configOf, PROGRAMS, run, Scratch, text } from '../render/helpers.ts';
import { Trixie } from '../util/trixie.ts';

const scratch = new Scratch();
afterAll(async () => {
  await scratch.cleanup();
});

/** Debian 13's python3 (test/util/trixie.ts): each command a fresh machine over the oracles root. */
const trixie = await Trixie.open(scratch.dir('machines'));
const T = (): string[] => trixie.prefix();

/** The programs, their tests and fixtures, copied where the machines see them (a temp dir), in the repo's layout. */
const REPO = scratch.dir('repo');
for (const d of ['gateway', 'test/gateway', 'test/fixtures/i2pd-console', 'test/fixtures/tor-control']) {
  cpSync(join(PROJECT_ROOT, d), join(REPO, d), { recursive: true, filter: (src) => !src.endsWith('.ts') });
}
const COMMAND = join(REPO, 'gateway', 'qubes-i2p-gateway');
const RELAY = join(REPO, 'gateway', 'dns-relay');

const BUILDS = {
  default: {},
  'tor-off': { tor: { enabled: false } },
  java: { i2p: { router: 'i2p' } },
  publish: { publish: [{ name: 'wiki', qube: 'webapp', port: 8080, onion: true }, { name: 'blog', qube: 'blogvm', port: 80 }] },
} as const;

function factsDir(): string {
  const dir = scratch.dir('facts');
  for (const [name, value] of Object.entries(BUILDS)) writeFileSync(join(dir, `${name}.json`), renderStatusFacts(configOf(value)));
  return dir;
}

interface Facts {
  readonly serviceFlag: string;
  readonly virtualIp: string;
  readonly tor: { enabled: boolean; transPort?: { address: string; port: number }; dnsPort?: { address: string; port: number } };
  readonly dnsRelay?: { listen: { address: string; port: number } };
  readonly tinyproxy: { listen: { port: number } };
  readonly router: { httpProxy: { address: string; port: number }; console: { address: string; port: number; user?: string; passwordFile?: string } };
}

describe('the programs in the package', () => {
  const files = renderGateway(configOf(), { programs: PROGRAMS });

  it('are gateway/qubes-i2p-gateway, gateway/dns-relay, gateway/i2pd-client-proxies and gateway/i2p-wait-page byte for byte, executable, run by python3 -I', () => {
    for (const [path, source] of [[PATHS.command, 'gateway/qubes-i2p-gateway'], [PATHS.dnsRelay, 'gateway/dns-relay'], [PATHS.clientProxies, 'gateway/i2pd-client-proxies'], [PATHS.waitPage, 'gateway/i2p-wait-page']] as const) {
      const f = files.find((x) => x.path === path);
      expect(f?.mode, path).toBe(0o755);
      expect(text(files, path)).toBe(run(['cat', join(PROJECT_ROOT, source)]).stdout);
      expect(text(files, path).split('\n')[0]).toBe('#!/usr/bin/python3 -I');
    }
  });

  it('are gateway/firewall-hook and gateway/i2pd-console-auth byte for byte, executable, parsed by Debian 13\'s sh', () => {
    for (const [path, source] of [[PATHS.hookProgram, 'gateway/firewall-hook'], [PATHS.i2pdConsoleAuth, 'gateway/i2pd-console-auth']] as const) {
      const f = files.find((x) => x.path === path);
      expect(f?.mode, path).toBe(0o755);
      expect(text(files, path)).toBe(run(['cat', join(PROJECT_ROOT, source)]).stdout);
      expect(text(files, path).split('\n')[0]).toBe('#!/bin/sh');
      expect(run(['sh', '-n', join(PROJECT_ROOT, source)]).code, path).toBe(0);
    }
    expect(files.find((x) => x.path === PATHS.hook)).toMatchObject({ kind: 'symlink', target: PATHS.hookProgram });
  });

  it('firewall-hook.conf names exactly the keys the hook reads, with this config\'s values', () => {
    const config = configOf({ qubes: { service: 'i2pgw', gateway: 'gw-x', template: 'tpl-x' } });
    const conf = text(renderGateway(config, { programs: PROGRAMS }), PATHS.hookConf);
    const pairs = conf.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split('='));
    const keys = new Set(pairs.map(([k]) => k));
    const hook = readFileSync(join(PROJECT_ROOT, 'gateway/firewall-hook'), 'utf8');
    const read = new Set([...hook.matchAll(/^\t([A-Z_]+)\) /gm)].map((m) => m[1]));
    expect([...keys].sort()).toEqual([...read].sort());
    expect(Object.fromEntries(pairs.filter(([k]) => k !== 'USER' && k !== 'NETWORK_FLAG'))).toMatchObject({
      FLAG: '/run/qubes-service/i2pgw', SERVICE: 'i2pgw', GATEWAY: 'gw-x', TEMPLATE: 'tpl-x', RULESET: PATHS.ruleset, ROUTE_LOCALNET: 'yes',
    });
    expect(pairs.filter(([k]) => k === 'USER').map(([, v]) => v)).toEqual(['debian-tor:tor', 'i2pd:i2pd']);
  });

  it('status.json agrees with the configs it describes, for ports other than the defaults too', () => {
    const config = configOf({ tor: { transPort: 9140, dnsPort: 5454 }, tinyproxy: { port: 8899 }, network: { virtualIp: '10.100.1.2' }, qubes: { service: 'i2pgw' } });
    const tree = renderGateway(config, { programs: PROGRAMS });
    const facts = JSON.parse(text(tree, PATHS.statusFacts)) as Facts;
    const torrc = text(tree, PATHS.torrc);
    expect(torrc).toContain(`\nTransPort ${facts.tor.transPort?.address}:${facts.tor.transPort?.port} IsolateClientAddr\n`);
    expect(torrc).toContain(`\nDNSPort ${facts.tor.dnsPort?.address}:${facts.tor.dnsPort?.port}\n`);
    expect(facts.tor.transPort?.port).toBe(9140);
    expect(text(tree, unitPath(UNITS.dnsRelay))).toContain(`--listen ${facts.dnsRelay?.listen.address}:${facts.dnsRelay?.listen.port} `);
    expect(text(tree, PATHS.tinyproxyConf)).toContain(`\nPort ${facts.tinyproxy.listen.port}\n`);
    const i2pd = text(tree, PATHS.i2pdConf);
    expect(i2pd).toMatch(new RegExp(`\\n\\[http\\]\\n(#.*\\n)*enabled = true\\naddress = ${facts.router.console.address}\\nport = ${facts.router.console.port}\\n`));
    // The console's password: the file and user the router's unit gives i2pd-console-auth.
    expect(text(tree, dropInPath('i2pd.service'))).toContain(` ${facts.router.console.passwordFile} ${facts.router.console.user} ${PATHS.i2pdData}\n`);
    expect(i2pd).toContain(`\naddress = ${facts.router.httpProxy.address}\nport = ${facts.router.httpProxy.port}\n`);
    expect(text(tree, PATHS.dnsmasqConf)).toContain(`address=/i2p/${facts.virtualIp}\n`);
    expect(facts.serviceFlag).toBe('/run/qubes-service/i2pgw');
    expect(text(tree, unitPath(UNITS.tor))).toContain(`ConditionPathExists=${facts.serviceFlag}\n`);
  });

  it('ship the command\'s manual page, gzipped', () => {
    const man = files.find((f) => f.path === PATHS.commandManPage);
    expect(man?.data.slice(0, 2)).toEqual(new Uint8Array([0x1f, 0x8b]));
  });
});

describe('from dom0: the formula README and the rpm\'s %post show the command, with the configured gateway', () => {
  it('README step 6 (after publishing, step 5) has the command for the gateway of the config, and %post prints exactly that line last', () => {
    const config = configOf({ qubes: { gateway: 'my-i2p-gw' } });
    const readme = new TextDecoder().decode(renderDom0Readme(config).data);
    expect(dom0StatusCommand(config)).toBe("qvm-run -p --no-gui my-i2p-gw 'qubes-i2p-gateway status'");
    expect(readme).toContain(`\n       ${dom0StatusCommand(config)}\n`);
    expect(readme).toContain(`\`${dom0StatusCommand(config, true)}\``);
    // The grep patterns of %post (extended regular expressions, which these are in JavaScript too) against the README.
    const post = parseSpec(readStaticSources().rpmSpec).scripts.post ?? '';
    const patterns = [...post.matchAll(/grep -E '([^']+)' /g)].map((m) => new RegExp(m[1] ?? ''));
    expect(patterns.length).toBe(2);
    const printed = readme.split('\n').filter((l) => patterns.some((p) => p.test(l))).map((l) => l.trim());
    expect(printed.at(-1)).toBe(dom0StatusCommand(config));
    expect(printed.filter((l) => l.startsWith('qvm-run'))).toHaveLength(1);
  });
});

describe('the project README', () => {
  it('shows the lab\'s real healthy and broken outputs (test/golden/status/, written by test/net/status.test.ts)', () => {
    const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
    for (const name of ['healthy.txt', 'broken.txt']) {
      const golden = readFileSync(join(PROJECT_ROOT, 'test', 'golden', 'status', name), 'utf8');
      expect(readme, `README.md lacks test/golden/status/${name}: copy it in`).toContain('```\n' + golden + '```\n');
    }
  });
});

describe('qubes-i2p-gateway status: unit tests (python3 -m unittest, Debian 13)', () => {
  it('passes every test in test/gateway/test_status.py', () => {
    const r = run([...T(), 'python3', '-m', 'unittest', 'discover', '-s', join(REPO, 'test', 'gateway'), '-p', 'test_*.py', '-v'], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', QIG_FACTS_DIR: factsDir(), LC_ALL: 'C.UTF-8' },
      timeoutMs: 60_000,
    });
    const ran = Number(/^Ran (\d+) tests? in /m.exec(r.stderr)?.[1] ?? 0);
    expect(r.stderr, r.stderr).toMatch(/\n\nOK\n$/);
    expect(r.code).toBe(0);
    // Every test ran: none skipped, none quietly missing.
    expect(r.stderr).not.toMatch(/skipped/);
    expect(ran).toBeGreaterThanOrEqual(45);
    // gateway/i2p-wait-page's tests (test_wait_page.py) are among them.
    expect(r.stderr).toMatch(/^test_page_while_not_integrated \(test_wait_page\.Relay/m);
    expect(r.stderr).toMatch(/^test_names_not_fetched \(test_wait_page\.Verdicts/m);
  });
});

describe('qubes-i2p-gateway status, run in a Debian 13 machine that is not a gateway (no service flag)', () => {
  const facts = join(factsDir(), 'default.json');

  it('fails on the missing service flag with its fix, exit 2, and checks nothing else', () => {
    const r = run([...T(), COMMAND, 'status', '--facts', facts]);
    expect(r.code).toBe(2);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('qubes-i2p-gateway status: sys-i2p (router i2pd, Tor on)');
    expect(lines).toContain('qube');
    expect(r.stdout).toMatch(/\[FAIL\] service flag +\/run\/qubes-service\/i2p is missing/);
    expect(r.stdout).toContain('fix: in dom0: qvm-service --enable sys-i2p i2p, then restart sys-i2p');
    expect(r.stdout).not.toMatch(/^firewall$|^daemon$/m);
    expect(r.stdout).not.toContain('\u001b[');
    expect(lines.at(-2)).toMatch(/^FAIL: the gateway is broken: 1 failing.* \(exit 2\)$/);
    expect(r.stderr).toBe('');
  });

  it('--json gives the same verdict as one document', () => {
    const r = run([...T(), COMMAND, 'status', '--json', '--facts', facts]);
    const doc = JSON.parse(r.stdout) as { verdict: string; exit: number; checks: Array<{ id: string; status: string }> };
    expect([r.code, doc.verdict, doc.exit]).toEqual([2, 'fail', 2]);
    expect(doc.checks[0]).toMatchObject({ id: 'qube.service', status: 'fail' });
  });

  it('colours only when asked (or on a terminal)', () => {
    expect(run([...T(), COMMAND, 'status', '--color', 'always', '--facts', facts]).stdout).toContain('\u001b[31;1mFAIL\u001b[0m');
    expect(run([...T(), COMMAND, 'status', '--color', 'never', '--facts', facts]).stdout).not.toContain('\u001b[');
  });

  it('refuses a missing or foreign data file and an unknown command (exit 2, no trace)', () => {
    const missing = run([...T(), COMMAND, 'status', '--facts', '/nonexistent/status.json']);
    expect([missing.code, missing.stdout]).toEqual([2, '']);
    expect(missing.stderr).toMatch(/^qubes-i2p-gateway: cannot read the package's data file: .*No such file/);
    const other = join(scratch.dir('foreign'), 'status.json');
    writeFileSync(other, '{"format": 2}');
    expect(run([...T(), COMMAND, 'status', '--facts', other]).stderr).toContain('has format 2; this program reads format 1');
    const none = run([...T(), COMMAND]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('usage: qubes-i2p-gateway');
    expect(run([...T(), COMMAND, 'frobnicate']).code).toBe(2);
  });

  it('cannot be hijacked by the caller\'s environment: python3 -I ignores PYTHONPATH and the current directory', () => {
    // A root user's `qubes-i2p-gateway status` must not run a module some other user planted.
    const trap = scratch.dir('trap');
    mkdirSync(join(trap, 'json'));
    writeFileSync(join(trap, 'json', '__init__.py'), 'raise SystemExit("HIJACKED")\n');
    writeFileSync(join(trap, 'socket.py'), 'raise SystemExit("HIJACKED")\n');
    for (const program of [COMMAND, RELAY]) {
      const r = run([...T(), 'sh', '-c', 'cd "$1" && exec "$2" --help', 'sh', trap, program], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', PYTHONPATH: trap, PYTHONSTARTUP: join(trap, 'socket.py') } });
      expect(r.stdout + r.stderr, program).not.toContain('HIJACKED');
      expect(r.code, program).toBe(0);
    }
  });
});
