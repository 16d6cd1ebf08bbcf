/**
 * The dom0 package installed, upgraded and erased by rpm 4.18 in a scratch root, with its scriptlets run for real
 * (root.ts says how the root is made and why), against a recording stand-in for qubesctl:
 * - install A ($1 = 1): the %post prints the README's commands in order and calls qubesctl zero times; apart from
 *   the package's own files nothing in the root changes; `rpm -V` finds nothing;
 * - `rpm -U` B, a build of a changed config (so a newer version): $1 = 2 for %post, which prints the README's
 *   section "After an upgrade" (the states to apply again, the gateway's restart); B's files replace A's, no call;
 * - `rpm -U` A again over B: refused (A is older), nothing changed;
 * - erase ($1 = 0): %preun disables each top the formula ships (`qubesctl top.disable NAME`) and prints the
 *   README's section "Remove" in full, which names the configured qubes: it stays on the screen after the package
 *   and its README are gone. The root is as it was before the install, but for the stand-in's record of calls.
 * Run with bash as /bin/sh (as dom0, Fedora) and with dash (the scriptlets are plain POSIX sh).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dom0Commands, dom0StatusCommand } from '../../src/render/salt/readme.ts';
import { buildDom0, DOC_DIR, EPOCH, lines, NAME, ok, packagedFiles, run, sha256, tempDir, topNames, type Dom0Build, type PackagedFile } from './dom0.ts';
import { CALLS_LOG, changes, makeMinimalRoot, snapshot } from './root.ts';

/**
 * rpm's stderr less the notice Debian's rpm prints on every install and erase ("RPM should not be used directly
 * install RPM packages, use Alien instead!" / "However assuming you know what you are doing..."): anything else
 * there (a scriptlet's error, a warning) fails the test.
 */
function quiet(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => !/^rpm: (RPM should not be used directly|However assuming you know what you are doing)/.test(l))
    .join('\n')
    .trim();
}

/** B's config: more clients and IRC for one of them, as a user changes it on day two. */
const CHANGED = { qubes: { clients: ['work', 'personal'] }, i2p: { apps: { irc: ['personal'] } } };

describe.each(['bash', 'dash'] as const)('rpm -i / -U / -e with the scriptlets run by %s as /bin/sh', (shell) => {
  let tmp: ReturnType<typeof tempDir>;
  let root: string;
  let db: string[];
  let b1: Dom0Build;
  let b2: Dom0Build;
  let pkg1: string;
  let pkg2: string;
  let files: PackagedFile[];
  let files2: PackagedFile[];
  let pristine: Map<string, string>;
  let installed: Map<string, string>;

  const calls = (): string[] => (existsSync(join(root, CALLS_LOG)) ? lines(readFileSync(join(root, CALLS_LOG), 'utf8')) : []);

  beforeAll(() => {
    tmp = tempDir(`install-${shell}`);
    root = join(tmp.dir, 'root');
    // Debian's rpm keeps its database in ~/.rpmdb unless told: pin it inside the root.
    db = ['--root', root, '--dbpath', '/var/lib/rpm'];
    b1 = buildDom0();
    // The config changed an hour later (its file's time is the build's input time), the same project code: a
    // newer version by its input delay (src/version.ts).
    b2 = buildDom0(CHANGED, EPOCH + 3600, EPOCH);
    expect(b2.version).not.toBe(b1.version);
    expect([b1.version.split('.')[3], b2.version.split('.')[3]]).toEqual(['0', '3600']);
    pkg1 = join(tmp.dir, b1.rpmName);
    pkg2 = join(tmp.dir, b2.rpmName);
    writeFileSync(pkg1, b1.rpm);
    writeFileSync(pkg2, b2.rpm);
    files = packagedFiles(b1.outputs);
    files2 = packagedFiles(b2.outputs);
    ok('mkdir', [root]);
    makeMinimalRoot(root, shell);
    ok('rpm', [...db, '--initdb']);
    pristine = snapshot(root);
  });
  afterAll(() => tmp.cleanup());

  it('the root runs scripts: its /bin/sh and grep work chrooted (so a silent scriptlet is really silent)', () => {
    const r = run('chroot', [root, '/bin/sh', '-c', `echo ok | grep -E '^o{1}k$'; PATH=/usr/bin qubesctl probe >/dev/null; grep . ${CALLS_LOG}`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\nprobe\n');
    ok('rm', [join(root, CALLS_LOG)]);
    expect(snapshot(root)).toEqual(pristine);
  });

  it('install ($1 = 1): prints the README commands in order, calls qubesctl zero times, changes nothing but its own files', () => {
    const r = run('rpm', [...db, '--nodeps', '-i', pkg1]);
    expect(r.status, r.stderr).toBe(0);
    expect(quiet(r.stderr)).toBe('');
    const out = lines(r.stdout);
    expect(out[0]).toMatch(/^qubes-mgmt-salt-i2p-gateway: formula installed; no qube has been changed\. Apply it in this order:$/);
    // ...then how to ask the gateway whether it works, with the configured gateway's name.
    expect(out.slice(1, -1).map((l) => l.trim())).toEqual([...dom0Commands(b1.config), dom0StatusCommand(b1.config)]);
    expect(out.at(-1)).toBe(`Details: ${DOC_DIR}/README.md`);
    expect(calls()).toEqual([]);

    installed = snapshot(root);
    const diff = changes(pristine, installed);
    expect(diff.removed).toEqual([]);
    expect(diff.changed).toEqual([]);
    expect(diff.added.sort()).toEqual(files.map((f) => f.path).sort());
    for (const f of files) {
      const want = f.kind === 'dir' ? 'dir 755' : `file ${f.mode.toString(8)} ${sha256(f.data)}`;
      expect(installed.get(f.path), f.path).toBe(want);
    }
    expect(ok('rpm', [...db, '-q', NAME]).trim()).toBe(`${NAME}-${b1.version}-1.noarch`);
  });

  it('rpm -V --nodeps: nothing differs from the package', () => {
    const v = run('rpm', [...db, '-V', '--nodeps', NAME]);
    expect(v.stdout).toBe('');
    expect(v.status, v.stderr).toBe(0);
  });

  it('rpm -U B (a changed config): %post says the formula was upgraded and prints the README section on what to do next', () => {
    const r = run('rpm', [...db, '--nodeps', '-U', pkg2]);
    expect(r.status, r.stderr).toBe(0);
    expect(quiet(r.stderr)).toBe('');
    expect(calls()).toEqual([]);
    const section = readmeSection(b2, '## After an upgrade');
    expect(r.stdout).toBe(`qubes-mgmt-salt-i2p-gateway: formula upgraded; no qube has been changed yet.\n${section}`);
    // What the section tells: the states to apply again, and to restart the gateway.
    for (const cmd of dom0Commands(b2.config).slice(1)) expect(section).toContain(`    ${cmd}\n`);
    expect(section).toContain('qvm-shutdown --wait --force sys-i2p && qvm-start sys-i2p');
    expect(lines(ok('rpm', [...db, '-qa']))).toEqual([`${NAME}-${b2.version}-1.noarch`]);
    const now = snapshot(root);
    for (const f of files2) {
      const want = f.kind === 'dir' ? 'dir 755' : `file ${f.mode.toString(8)} ${sha256(f.data)}`;
      expect(now.get(f.path), f.path).toBe(want);
    }
    // A's template package is gone from the formula, B's is there: install.sls names B's.
    for (const f of files.filter((x) => x.path.endsWith('.deb'))) expect(now.has(f.path), f.path).toBe(false);
    expect(run('rpm', [...db, '-V', '--nodeps', NAME]).stdout).toBe('');
  });

  it('rpm -U A again over B: refused (A is older), nothing changed', () => {
    const before = snapshot(root);
    const r = run('rpm', [...db, '--nodeps', '-U', pkg1]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`package ${NAME}-${b2.version}-1.noarch (which is newer than ${NAME}-${b1.version}-1.noarch) is already installed`);
    expect(r.stdout).toBe('');
    expect(calls()).toEqual([]);
    expect(snapshot(root)).toEqual(before);
  });

  it('erase ($1 = 0): top.disable for each top, prints the README\'s removal section naming the configured qubes, leaves no file of ours', () => {
    const section = readmeSection(b2, '## Remove');
    const r = run('rpm', [...db, '-e', NAME]);
    expect(r.status, r.stderr).toBe(0);
    expect(quiet(r.stderr)).toBe('');
    expect(r.stdout).toBe(`qubes-mgmt-salt-i2p-gateway: tops disabled; no qube has been changed.\n${section}`);
    // The configured qubes by name, and the state that removes them; all of it on screen, the README gone.
    for (const name of ['sys-i2p', 'debian-13-i2p', 'debian-13-minimal', 'work, personal', 'i2p-gateway.previous-netvm']) expect(section).toContain(name);
    expect(section).toContain('sudo qubesctl --show-output state.sls i2p-gateway.remove');
    expect(section).not.toContain('sys-firewall     # for each client');
    expect(existsSync(join(root, DOC_DIR, 'README.md'))).toBe(false);
    const tops = topNames(files2);
    expect(tops.sort()).toEqual(['i2p-gateway', 'i2p-gateway.clients', 'i2p-gateway.clone', 'i2p-gateway.create', 'i2p-gateway.install', 'i2p-gateway.publish', 'i2p-gateway.remove']);
    expect(calls().sort()).toEqual(tops.map((t) => `top.disable ${t}`).sort());

    const after = snapshot(root);
    const diff = changes(pristine, after);
    expect(diff.added).toEqual([CALLS_LOG]);
    expect(diff.changed).toEqual([]);
    expect(diff.removed).toEqual([]);
    for (const f of files2) expect(existsSync(join(root, f.path)), f.path).toBe(false);
    expect(run('rpm', [...db, '-q', NAME]).status).not.toBe(0);
  });
});

/** A section of a build's README, from its heading to the next "## " heading (what the scriptlets print). */
function readmeSection(b: Dom0Build, heading: string): string {
  const readme = new TextDecoder().decode(b.outputs.find((o) => o.path === 'formula/README.md')!.data);
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + heading.length + 2);
  return readme.slice(start + 1, end < 0 ? undefined : end + 1);
}
