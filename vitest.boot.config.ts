import { defineConfig } from 'vitest/config';

/**
 * The booted suite (`npm run test:boot`, test/boot): the Debian 13 root booted with systemd-nspawn as the
 * template (install.sls performed inside it) and as gateways joined to the datapath lab's gateway namespace.
 * Root only, serial (the boots share the apt cache and the lab's namespaces). Needs systemd-nspawn (Debian
 * package systemd-container, installed by test/oracles.sh).
 * Measured here (2 cores): about 1 min 40 s on a cold cache (debootstrap of the Debian 13 root about 30 s, the
 * packages a few seconds from this machine's mirror), about 1 min 15 s once `.cache/chroot-trixie` is warm;
 * most of it is the gateway's i2pd, which opens its proxies only after its first reseed attempts (some 5 s a
 * boot). Both files share the cached root with test:install.
 */
export default defineConfig({
  test: {
    include: ['test/boot/**/*.test.ts'],
    testTimeout: 10 * 60_000,
    hookTimeout: 20 * 60_000,
    fileParallelism: false,
    maxWorkers: 1,
    maxConcurrency: 1,
    sequence: { concurrent: false },
    reporters: ['default', 'json'],
    outputFile: { json: '.cache/vitest-boot.json' },
  },
});
