/**
 * A minimal root for `rpm --root DIR` in which the package's scriptlets really run.
 *
 * rpm runs each scriptlet chrooted into --root, as `/bin/sh` with PATH=/sbin:/bin:/usr/sbin:/usr/bin, so the root
 * needs a shell, the tools the scriptlets call (grep, awk) and the libraries those load, plus /dev/null (the %preun
 * sends qubesctl's output there; without the device a failed redirection would skip the command and the test would
 * see no call). Rather than a debootstrap or a busybox package, the root gets copies of this machine's own shell
 * grep and awk and of exactly the shared objects `ldd` names for them: nothing to install, and the real GNU grep
 * and bash that dom0 (Fedora, /bin/sh = bash) uses. awk is this machine's (mawk on Debian; dom0 has gawk): the
 * scriptlets use only POSIX awk. /dev/null is made with mknod (the tests run as root, which
 * `rpm --root` needs anyway for chroot).
 *
 * In place of dom0's qubesctl, /usr/bin/qubesctl is a stub that appends its arguments to /var/log/qubesctl.calls
 * (one call a line) and answers like a successful Salt call. The folders that qubes-mgmt-salt and the base system
 * own in dom0 (/srv/formulas/base, /etc/salt/minion.d, /usr/share/doc) exist before the install, so after an
 * erase the tree must be exactly what it was before the install.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const CALLS_LOG = '/var/log/qubesctl.calls';

const QUBESCTL_STUB = `#!/bin/sh
# Test stand-in for dom0's qubesctl: records the call, changes nothing, succeeds.
printf '%s\\n' "$*" >> ${CALLS_LOG}
echo 'local:'
echo '    True'
`;

/** Where a host program lives (resolved through symlinks). */
function hostProgram(name: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || path === '') throw new Error(`${name} is not installed on this machine`);
  return realpathSync(path);
}

/** The shared objects a program loads, as `ldd` names them (the paths the dynamic loader will open). */
function sharedObjects(program: string): string[] {
  const r = spawnSync('ldd', [program], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ldd ${program}: ${r.stderr}`);
  const paths: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)/.exec(line);
    if (m) paths.push(m[1]!);
  }
  return paths;
}

function copyInto(root: string, hostPath: string, at: string = hostPath): void {
  const dest = join(root, at);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(realpathSync(hostPath), dest);
  chmodSync(dest, 0o755);
}

/**
 * Make the root in `root` (an empty folder). `shell` is the host program that becomes /bin/sh (bash, as in
 * Fedora's dom0, or dash to prove the scriptlets are plain POSIX sh).
 */
export function makeMinimalRoot(root: string, shell: 'bash' | 'dash'): void {
  for (const d of ['usr/bin', 'usr/sbin', 'etc/salt/minion.d', 'srv/formulas/base', 'usr/share/doc', 'var/log', 'var/tmp', 'tmp', 'dev']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  chmodSync(join(root, 'tmp'), 0o1777);
  chmodSync(join(root, 'var/tmp'), 0o1777);
  // usr-merged like Fedora: /bin and /sbin are links into /usr.
  symlinkSync('usr/bin', join(root, 'bin'));
  symlinkSync('usr/sbin', join(root, 'sbin'));

  const sh = hostProgram(shell);
  const grep = hostProgram('grep');
  const awk = hostProgram('awk');
  copyInto(root, sh, `/usr/bin/${shell}`);
  symlinkSync(shell, join(root, 'usr/bin/sh'));
  copyInto(root, grep, '/usr/bin/grep');
  copyInto(root, awk, '/usr/bin/awk');
  for (const so of new Set([...sharedObjects(sh), ...sharedObjects(grep), ...sharedObjects(awk)])) copyInto(root, so);

  const nul = spawnSync('mknod', ['-m', '666', join(root, 'dev/null'), 'c', '1', '3'], { encoding: 'utf8' });
  if (nul.status !== 0) throw new Error(`mknod /dev/null in the test root: ${nul.stderr}`);
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(root, 'usr/bin/qubesctl'), QUBESCTL_STUB, { mode: 0o755 });
}

/** Every path under `root` with its type, mode and content hash (or link target); rpm's database left out. */
export function snapshot(root: string, skip: readonly string[] = ['/var/lib/rpm']): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = `${rel}/${name}`;
      if (skip.some((s) => path === s || path.startsWith(`${s}/`))) continue;
      const st = lstatSync(join(root, path));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(path, `link ${readlinkSync(join(root, path))}`);
      else if (st.isDirectory()) {
        out.set(path, `dir ${mode}`);
        walk(path);
      } else if (st.isFile()) {
        out.set(path, `file ${mode} ${createHash('sha256').update(readFileSync(join(root, path))).digest('hex')}`);
      } else out.set(path, `other ${st.mode.toString(8)}`);
    }
  };
  walk('');
  return out;
}

/** The entries of `after` that are new or changed compared with `before`, and those that went away. */
export function changes(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): { added: string[]; changed: string[]; removed: string[] } {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [p, v] of after) {
    const old = before.get(p);
    if (old === undefined) added.push(p);
    else if (old !== v) changed.push(p);
  }
  for (const p of before.keys()) if (!after.has(p)) removed.push(p);
  return { added, changed, removed };
}
