/**
 * For the vitest globalSetup of the suites that run Debian's own programs (datapath: setup-oracles.ts; install:
 * setup-pristine.ts): make the cached Debian 13
 * roots before any test file starts (once, not per file), and print the versions under test, so every run's log
 * says which tor, i2pd, tinyproxy, dnsmasq, nft and python3 it judged.
 */
import { CODENAME, describeVersions, ensureOracles, ensurePristine, ORACLE_PACKAGES } from './chroot.ts';

const say = (line: string): void => {
  process.stdout.write(`[versions under test] ${line}\n`);
};

export async function printVersions(which: 'oracles' | 'pristine'): Promise<void> {
  if (process.getuid?.() !== 0) return; // the suites themselves say they need root
  if (which === 'pristine') {
    const pristine = await ensurePristine(say);
    say(`${CODENAME} pristine root (${pristine}): ${await describeVersions(pristine, ['dpkg', 'apt', 'systemd'])}`);
    say('the package\'s dependencies come from the same mirror at test time; each test logs what apt installed');
  } else {
    const oracles = await ensureOracles(say);
    say(`${CODENAME} oracles root (${oracles}): ${await describeVersions(oracles, [...ORACLE_PACKAGES])}`);
  }
}
