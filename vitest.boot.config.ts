import { defineConfig } from 'vitest/config';

/**
 * The booted suite (`npm run test:boot`, test/boot): the Debian 13 root booted with systemd-nspawn as the
 * template (install.sls performed inside it) and as gateways joined to the datapath lab's gateway namespace.
 * Root only, serial (the boots share the apt cache and the lab's namespaces). Needs systemd-nspawn (Debian
 * package systemd-container, installed by test/oracles.sh).
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
