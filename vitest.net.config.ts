import { defineConfig } from 'vitest/config';

/**
 * The datapath and leak suite (test/net): real daemons in network namespaces, so root only and serial. Every
 * daemon and tool inside the lab's machines is Debian 13's, from the cached oracles root (test/util/chroot.ts).
 * Files share nothing at run time, but each one builds a whole topology; running them one after another
 * keeps the machine quiet and the logs readable.
 */
export default defineConfig({
  test: {
    include: ['test/net/**/*.test.ts'],
    // The Debian 13 oracles root every lab machine runs from, made before the files start; prints its versions.
    globalSetup: ['test/util/setup-oracles.ts'],
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.cache/vitest-net.json' },
  },
});
