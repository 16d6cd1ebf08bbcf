/**
 * Install test (`npm run test:install`, root only): the gateway .deb in a Debian 13 (trixie) chroot with its real
 * dependencies from the Debian mirror this machine uses, and a dummy qubes-core-agent-networking.
 *
 * For each variant (default i2pd; Java router with the real I2P keyring): install, remove, purge; each stage
 * compared with a twin run of a file-less, script-less shadow package (lifecycle.ts, suite.ts), so anything our
 * files or our maintainer scripts add, change, start or leave behind shows up by path.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseConfigValue } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import { renderDebPackage } from '../../src/render/deb/package.ts';
import { must, type Chroot } from '../util/chroot.ts';
import { buildDeb } from './lifecycle.ts';
import { lifecycle, SOURCE_DATE_EPOCH } from './suite.ts';
import { readStaticSources } from '../../src/io/static.ts';

const DEB_STATICS = readStaticSources().deb;

/** The real I2P repository keyring: the fixture (origin in test/fixtures/README.md). */
const I2P_KEYRING_SRC = join(import.meta.dirname, '..', 'fixtures', 'i2p-archive-keyring.gpg');
const I2P_FPR = '7840E7610F28B904753549D767ECE5605BCF1346';
const I2P_KEYRING = '/usr/share/keyrings/i2p-archive-keyring.gpg';
const I2P_SOURCES = '/etc/apt/sources.list.d/i2p.sources';

function configOf(value: unknown): GatewayConfig {
  const r = parseConfigValue(value);
  if (!r.ok) throw new Error(`test config rejected: ${JSON.stringify(r.issues)}`);
  return r.config;
}

/** The primary-key fingerprints of a keyring file, read by the host's gpg in a throw-away home. */
async function keyringFingerprints(path: string): Promise<string[]> {
  const home = mkdtempSync(join(tmpdir(), 'qig-gpg-'));
  try {
    const r = await must('gpg', ['--homedir', home, '--batch', '--with-colons', '--show-keys', path]);
    const fprs: string[] = [];
    let primary = false;
    for (const line of r.stdout.split('\n')) {
      const f = line.split(':');
      if (f[0] === 'pub') primary = true;
      else if (f[0] === 'sub') primary = false;
      else if (f[0] === 'fpr' && primary) fprs.push(f[9] ?? '');
    }
    return fprs;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** deb822 fields of a one-stanza file, keys lower-cased. */
function deb822(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const x = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
    if (x !== null) m.set((x[1] ?? '').toLowerCase(), (x[2] ?? '').trim());
  }
  return m;
}

/** The index files the next `apt-get update` would fetch, printed, not fetched (deb.i2p.net is unreachable here). */
async function updateUris(c: Chroot): Promise<string> {
  return (await c.must(['apt-get', '--print-uris', 'update'])).stdout;
}

lifecycle('default gateway (i2pd)', () => {
  const { meta, files } = renderDebPackage(configOf({}), { sourceDateEpoch: SOURCE_DATE_EPOCH, statics: DEB_STATICS });
  return buildDeb(meta, files, SOURCE_DATE_EPOCH);
});

lifecycle(
  'Java router variant (I2P apt source, real keyring)',
  () => {
    const keyring = new Uint8Array(readFileSync(I2P_KEYRING_SRC));
    const config = configOf({ i2p: { router: 'i2p' } });
    const { meta, files } = renderDebPackage(config, { keyring, sourceDateEpoch: SOURCE_DATE_EPOCH, statics: DEB_STATICS });
    return buildDeb(meta, files, SOURCE_DATE_EPOCH);
  },
  {
    async afterInstall(c) {
      const keyring = readFileSync(c.path(I2P_KEYRING));
      // apt (gpgv) reads a `.gpg` keyring only in binary form: an old-format (0x99) or new-format (0xc6) key packet.
      expect([0x99, 0xc6]).toContain(keyring[0]);
      expect(await keyringFingerprints(c.path(I2P_KEYRING))).toEqual([I2P_FPR]);
      const src = deb822(readFileSync(c.path(I2P_SOURCES), 'utf8'));
      expect(src.get('types')).toBe('deb');
      expect(src.get('uris')).toBe('https://deb.i2p.net/');
      expect(src.get('suites')).toBe('trixie');
      expect(src.get('components')).toBe('main');
      expect(src.get('signed-by')).toBe(I2P_KEYRING);
      // apt itself reads the new source: the next update would fetch the I2P repository's index.
      expect(await updateUris(c)).toMatch(/'https:\/\/deb\.i2p\.net\/dists\/trixie\/InRelease'/);
    },
    async afterPurge(c) {
      expect(existsSync(c.path(I2P_KEYRING))).toBe(false);
      expect(existsSync(c.path(I2P_SOURCES))).toBe(false);
      expect(await updateUris(c)).not.toMatch(/deb\.i2p\.net/);
    },
  },
);
