/**
 * Debian 13's programs for the tests outside the datapath lab (render and deb tests): each command runs in a
 * throw-away machine (machine-view.sh) over the cached oracles root, optionally with a rendered tree layered on
 * top as if the package were installed, so tor, dnsmasq, tinyproxy, i2pd, nft, systemd-analyze, lintian and
 * python3 are the versions a debian-13-minimal template has. Host temp dirs (os.tmpdir()) appear at the same
 * path inside, so a test's scratch files need no copying. Users and ids are the root's own.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureOracles } from './chroot.ts';

const VIEW = join(import.meta.dirname, 'machine-view.sh');

export interface RootAccount {
  readonly uid: number;
  readonly gid: number;
  /** Name of the primary group. */
  readonly group: string;
}

export class Trixie {
  private counter = 0;

  private constructor(
    /** The oracles root on the host (read-only to the tests: every machine writes to its own upper layer). */
    readonly root: string,
    /** Where the machines' upper layers and /run dirs go (a temp dir of the caller's, removed with it). */
    private readonly state: string,
  ) {}

  /** The oracles root, made on first use (debootstrap; root only). `state`: a temp dir the caller removes. */
  static async open(state: string): Promise<Trixie> {
    return new Trixie(await ensureOracles(), state);
  }

  /**
   * argv prefix that runs a command in a fresh Debian 13 machine, `layers` (host dirs, e.g. a rendered tree)
   * over the root. Put `ip netns exec NS` before it to run it in a network namespace.
   */
  prefix(layers: readonly string[] = []): string[] {
    const name = `m${++this.counter}`;
    const run = join(this.state, `run-${name}`);
    mkdirSync(run, { recursive: true, mode: 0o755 });
    return ['unshare', '-m', '--propagation', 'private', 'sh', VIEW, name, this.state, run, [...layers, this.root].join(':'), tmpdir()];
  }

  /** A user of the root (its /etc/passwd), for chown and setpriv. */
  account(user: string): RootAccount {
    const f = readFileSync(join(this.root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${user}:`))?.split(':');
    if (f === undefined) throw new Error(`no user ${user} in ${this.root}/etc/passwd`);
    const gid = Number(f[3]);
    const group = readFileSync(join(this.root, 'etc/group'), 'utf8').split('\n').find((l) => l.split(':')[2] === String(gid))?.split(':')[0];
    return { uid: Number(f[2]), gid, group: group ?? String(gid) };
  }
}

/** A temp dir for Trixie's machines, under os.tmpdir() (so it is shared into them too). */
export function machineState(tag: string): string {
  return mkdtempSync(join(tmpdir(), `qig-${tag}-machines-`));
}
