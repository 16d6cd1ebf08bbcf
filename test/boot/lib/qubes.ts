/**
 * The Qubes parts of a booted root, from the stand-ins of test/boot/stand-ins (see its README), split the way
 * Qubes packages the real ones:
 *   - qubes-core-agent, in every template from the start: qubes-sysinit and bind-dirs, copied into the root
 *     before its first boot (enabled as Qubes' preset enables the real units);
 *   - qubes-core-agent-networking: qubes-iptables (with Qubes' base tables), qubes-network and qubes-firewall,
 *     shipped in the dummy package of that name (test/install/dummy.ts), which Depends on nftables as the real
 *     one does, so they arrive when the template gets the networking agent.
 * Plus the qube's "qubesdb" (what dom0 tells this qube: its type, persistence and services) for qubes-sysinit's
 * stand-in to read.
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binaryFile, symlink, textFile, type RenderedFile } from '../../../src/files.ts';
import { QUBES_BASE_NFT, TOOLS } from '../../net/lib/lab.ts';
import { buildDummyDeb } from '../../install/dummy.ts';

const STAND_INS = join(import.meta.dirname, '..', 'stand-ins');
export const SCRIPT_DIR = '/usr/lib/qig-stand-ins';
export const QUBESDB = '/etc/qig-stand-ins/qubesdb';

/** qubes-core-agent's stand-ins: [unit, its script, where it is enabled]. */
const CORE: ReadonlyArray<readonly [string, string, string]> = [
  ['qubes-sysinit.service', 'qubes-sysinit.sh', 'sysinit.target.wants'],
  ['qubes-bind-dirs.service', 'bind-dirs.sh', 'multi-user.target.wants'],
];

/** qubes-core-agent-networking's stand-ins: [unit, its script or '', where it is enabled]. */
const NETWORKING: ReadonlyArray<readonly [string, string, string]> = [
  ['qubes-iptables.service', '', 'network-pre.target.requires'],
  ['qubes-network.service', '', 'multi-user.target.wants'],
  ['qubes-firewall.service', 'qubes-firewall.sh', 'multi-user.target.wants'],
];

/** Copy qubes-core-agent's stand-ins into `root` (a host path), under /etc/systemd/system, enabled. */
export function installCoreAgentStandIns(root: string): void {
  const units = join(root, 'etc/systemd/system');
  mkdirSync(join(root, SCRIPT_DIR), { recursive: true });
  for (const [unit, script, wants] of CORE) {
    copyFileSync(join(STAND_INS, unit), join(units, unit));
    copyFileSync(join(STAND_INS, script), join(root, SCRIPT_DIR, script));
    chmodSync(join(root, SCRIPT_DIR, script), 0o755);
    mkdirSync(join(units, wants), { recursive: true });
    symlinkSync(`/etc/systemd/system/${unit}`, join(units, wants, unit));
  }
}

/** The dummy qubes-core-agent-networking with its stand-ins, where Qubes installs the real units. */
export function networkingDummyDeb(sourceDateEpoch: number): { fileName: string; bytes: Uint8Array } {
  const unitDir = '/usr/lib/systemd/system';
  const files: RenderedFile[] = [binaryFile(`${SCRIPT_DIR}/qubes-base.nft`, new Uint8Array(readFileSync(QUBES_BASE_NFT)))];
  for (const [unit, script, wants] of NETWORKING) {
    files.push(textFile(`${unitDir}/${unit}`, readFileSync(join(STAND_INS, unit), 'utf8')));
    files.push(symlink(`${unitDir}/${wants}/${unit}`, `../${unit}`));
    if (script !== '') files.push(textFile(`${SCRIPT_DIR}/${script}`, readFileSync(join(STAND_INS, script), 'utf8'), 0o755));
  }
  return buildDummyDeb(sourceDateEpoch, { files, depends: ['nftables'] });
}

/** qubes-core-qrexec, which the package Depends on when the config publishes a service. */
export const QREXEC_PACKAGE = 'qubes-core-qrexec';

/**
 * A dummy qubes-core-qrexec carrying the lab's qrexec-client-vm (test/net/tools/qrexec-client-vm: the real
 * program's command line, talking to the agent socket's stand-in, test/net/tools/qrexec-dom0.py) where the real
 * package installs it, /usr/bin/qrexec-client-vm. Python 3, as the stand-in is.
 */
export function qrexecDummyDeb(sourceDateEpoch: number): { fileName: string; bytes: Uint8Array } {
  const files: RenderedFile[] = [textFile('/usr/bin/qrexec-client-vm', readFileSync(join(TOOLS, 'qrexec-client-vm'), 'utf8'), 0o755)];
  return buildDummyDeb(sourceDateEpoch, { package: { name: QREXEC_PACKAGE, summary: 'test dummy standing in for Qubes qrexec' }, files, depends: ['python3'] });
}

/** The dummy Qubes packages a release's template needs: the networking agent, and qrexec when the package depends on it. */
export function dummyDebsFor(depends: readonly string[], sourceDateEpoch: number): Array<{ fileName: string; bytes: Uint8Array }> {
  return [networkingDummyDeb(sourceDateEpoch), ...(depends.includes(QREXEC_PACKAGE) ? [qrexecDummyDeb(sourceDateEpoch)] : [])];
}

export interface QubesDb {
  readonly type: 'AppVM' | 'TemplateVM';
  /** `full` for a template (its root persists), `rw-only` for a qube based on one (only /rw persists). */
  readonly persistence: 'full' | 'rw-only';
  /** The services dom0 enabled for this qube (qvm-service), each a /run/qubes-service/<name> at boot. */
  readonly services: readonly string[];
}

/** Write the qube's qubesdb stand-in into `root` (a host path); read at boot by qubes-sysinit's stand-in. */
export function writeQubesDb(root: string, db: QubesDb): void {
  for (const s of db.services) if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(s)) throw new Error(`bad service name ${s}`);
  mkdirSync(join(root, QUBESDB, '..'), { recursive: true });
  writeFileSync(
    join(root, QUBESDB),
    "# What dom0 would put in this qube's qubesdb (/qubes-vm-type, /qubes-vm-persistence, /qubes-service/).\n" +
      `QUBES_VM_TYPE=${db.type}\nQUBES_VM_PERSISTENCE=${db.persistence}\nQUBES_SERVICES="${db.services.join(' ')}"\n`,
  );
}
