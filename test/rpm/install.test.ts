/**
 * The dom0 package installed, upgraded and erased by rpm 4.18 in a scratch root, with its scriptlets run for real
 * (root.ts says how the root is made and why), against a recording stand-in for qubesctl:
 * - install ($1 = 1): the %post prints the README's commands in order and calls qubesctl zero times; apart from
 *   the package's own files nothing in the root changes; `rpm -V` finds nothing;
 * - upgrade to release 2 ($1 = 2 for %post, 1 for the old %preun): no output, no call, nothing changed;
 * - erase ($1 = 0): %preun disables each top the formula ships (`qubesctl top.disable NAME`), says the qubes
 *   stay, and the root is as it was before the install, but for the stand-in's record of the calls.
 * Run with bash as /bin/sh (as dom0, Fedora) and with dash (the scriptlets are plain POSIX sh).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dom0Commands, dom0StatusCommand } from '../../src/render/salt/readme.ts';
import { buildDom0, DOC_DIR, lines, NAME, ok, packagedFiles, run, sha256, tempDir, topNames, type Dom0Build, type PackagedFile } from './dom0.ts';
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

describe.each(['bash', 'dash'] as const)('rpm -i / -U / -e with the scriptlets run by %s as /bin/sh', (shell) => {
  let tmp: ReturnType<typeof tempDir>;
  let root: string;
  let db: string[];
  let b1: Dom0Build;
  let pkg1: string;
  let pkg2: string;
  let files: PackagedFile[];
  let pristine: Map<string, string>;
  let installed: Map<string, string>;

  const calls = (): string[] => (existsSync(join(root, CALLS_LOG)) ? lines(readFileSync(join(root, CALLS_LOG), 'utf8')) : []);

  beforeAll(() => {
    tmp = tempDir(`install-${shell}`);
    root = join(tmp.dir, 'root');
    // Debian's rpm keeps its database in ~/.rpmdb unless told: pin it inside the root.
    db = ['--root', root, '--dbpath', '/var/lib/rpm'];
    b1 = buildDom0();
    const b2 = buildDom0({ package: { release: 2 } });
    expect(b2.rpmName).toBe(`${NAME}-0.1.0-2.noarch.rpm`);
    pkg1 = join(tmp.dir, b1.rpmName);
    pkg2 = join(tmp.dir, b2.rpmName);
    writeFileSync(pkg1, b1.rpm);
    writeFileSync(pkg2, b2.rpm);
    files = packagedFiles(b1.outputs);
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
      const want = f.kind === 'dir' ? 'dir 755' : `file 644 ${sha256(f.data)}`;
      expect(installed.get(f.path), f.path).toBe(want);
    }
    expect(ok('rpm', [...db, '-q', NAME]).trim()).toBe(`${NAME}-0.1.0-1.noarch`);
  });

  it('rpm -V --nodeps: nothing differs from the package', () => {
    const v = run('rpm', [...db, '-V', '--nodeps', NAME]);
    expect(v.stdout).toBe('');
    expect(v.status, v.stderr).toBe(0);
  });

  it('upgrade to release 2 ($1 = 2): prints nothing, calls nothing, files unchanged', () => {
    const r = run('rpm', [...db, '--nodeps', '-U', pkg2]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(quiet(r.stderr)).toBe('');
    expect(calls()).toEqual([]);
    expect(snapshot(root)).toEqual(installed);
    expect(lines(ok('rpm', [...db, '-qa']))).toEqual([`${NAME}-0.1.0-2.noarch`]);
    expect(run('rpm', [...db, '-V', '--nodeps', NAME]).stdout).toBe('');
  });

  it('erase ($1 = 0): top.disable for each top, says the qubes stay, leaves no file of ours', () => {
    const r = run('rpm', [...db, '-e', NAME]);
    expect(r.status, r.stderr).toBe(0);
    expect(quiet(r.stderr)).toBe('');
    expect(lines(r.stdout)).toEqual([
      'qubes-mgmt-salt-i2p-gateway: tops disabled; the gateway qubes stay (see the README to remove them).',
    ]);
    const tops = topNames(files);
    expect(tops.sort()).toEqual(['i2p-gateway', 'i2p-gateway.clients', 'i2p-gateway.clone', 'i2p-gateway.create', 'i2p-gateway.install']);
    expect(calls().sort()).toEqual(tops.map((t) => `top.disable ${t}`).sort());

    const after = snapshot(root);
    const diff = changes(pristine, after);
    expect(diff.added).toEqual([CALLS_LOG]);
    expect(diff.changed).toEqual([]);
    expect(diff.removed).toEqual([]);
    for (const f of files) expect(existsSync(join(root, f.path)), f.path).toBe(false);
    expect(run('rpm', [...db, '-q', NAME]).status).not.toBe(0);
  });
});
