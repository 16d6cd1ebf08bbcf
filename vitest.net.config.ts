import { defineConfig } from 'vitest/config';

/**
 * The datapath and leak suite (test/net): real daemons in network namespaces, so root only and serial.
 * Files share nothing at run time, but each one builds a whole topology; running them one after another
 * keeps the machine quiet and the logs readable.
 */
export default defineConfig({
  test: {
    include: ['test/net/**/*.test.ts'],
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.cache/vitest-net.json' },
  },
});
