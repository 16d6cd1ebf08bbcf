import { defineConfig } from 'vitest/config';

/**
 * The install tests (`npm run test:install`): install, remove and purge the .deb in a Debian 13 (trixie) chroot, the release of debian-13-minimal.
 * Root only. Measured: about 3.5 min on a cold cache (debootstrap about 1.5 min, then downloads), about
 * 1.5 min once `.cache/chroot-trixie` is warm, plus about 1.5 min for piuparts (test/install/piuparts.test.ts).
 * One file at a time: the tests mount overlays and share the apt caches.
 */
export default defineConfig({
  test: {
    include: ['test/install/**/*.test.ts'],
    // The Debian 13 pristine root, made before the files start; prints its dpkg, apt and systemd.
    globalSetup: ['test/util/setup-pristine.ts'],
    testTimeout: 20 * 60_000,
    hookTimeout: 30 * 60_000,
    fileParallelism: false,
    maxWorkers: 1,
    maxConcurrency: 1,
    reporters: ['default', 'json'],
    outputFile: { json: '.cache/vitest-install.json' },
  },
});
