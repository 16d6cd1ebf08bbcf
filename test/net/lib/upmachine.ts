/**
 * Machines of the private networks (lib/i2pnet.ts, lib/torenet.ts): each program a fresh Debian 13 machine of the
 * oracles root (test/util/machine-view.sh) in a network namespace, a host directory shared at its own path.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const VIEW = join(import.meta.dirname, '..', '..', 'util', 'machine-view.sh');

export class UpMachines {
  private counter = 0;

  /** `base`: where the machines' upper layers and /run dirs go (removed by the caller). */
  constructor(
    private readonly ns: string,
    private readonly base: string,
    readonly root: string,
    private readonly share: string,
  ) {}

  /** argv prefix that runs a command in a fresh machine in the namespace. */
  argv(name: string): string[] {
    const n = `${name}-${++this.counter}`;
    const runDir = join(this.base, 'machines', `run-${n}`);
    mkdirSync(runDir, { recursive: true, mode: 0o755 });
    return ['ip', 'netns', 'exec', this.ns, 'unshare', '-m', '--propagation', 'private', 'sh', VIEW, n, this.base, runDir, this.root, this.share];
  }

  /** uid and primary gid of a user of the root. */
  account(user: string): { uid: number; gid: number } {
    const f = readFileSync(join(this.root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${user}:`))?.split(':');
    if (f === undefined) throw new Error(`no user ${user} in ${this.root}/etc/passwd`);
    return { uid: Number(f[2]), gid: Number(f[3]) };
  }

  /** argv prefix of setpriv to `user` (inside the machine). */
  asUser(user: string): string[] {
    const a = this.account(user);
    return ['setpriv', `--reuid=${a.uid}`, `--regid=${a.gid}`, '--clear-groups'];
  }
}
