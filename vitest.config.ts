import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/net/**', 'test/install/**', 'test/boot/**'],
    // The render and deb tests run Debian 13's daemons, nft, systemd-analyze and lintian from the cached oracles
    // root: made once here (as root), before the files start in parallel; prints its versions.
    globalSetup: ['test/util/setup-oracles.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.cache/vitest-results.json' },
  },
});
