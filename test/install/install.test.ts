/**
 * Install test (`npm run test:install`, root only): the gateway .deb in a Debian 13 (trixie) chroot with its real
 * dependencies from the Debian mirror this machine uses, and a dummy qubes-core-agent-networking.
 *
 * For each variant (default i2pd; Java router with the real I2P keyring): install, remove, purge; each stage
 * compared with a twin run of a file-less, script-less shadow package (lifecycle.ts, suite.ts), so anything our
 * files or our maintainer scripts add, change, start or leave behind shows up by path.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
/** Written out, not imported from PATHS, so the test checks them: a name of our own, a conffile like the source. */
const I2P_KEYRING = '/etc/apt/keyrings/qubes-i2p-gateway-i2p-archive-keyring.gpg';
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

/**
 * `apt-get update` with no network at all (a network namespace of its own): it may only say that it cannot
 * reach the mirrors. apt reads a source's Signed-By key only once it has fetched the InRelease, so offline it
 * cannot see a missing key by itself: every Signed-By of every source is checked to exist and hold the I2P key.
 */
async function offlineUpdate(c: Chroot): Promise<string> {
  const r = await c.exec(['unshare', '--net', 'apt-get', '-q', 'update']);
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.code, out).toBe(0);
  const warnings = out.split('\n').filter((l) => /^(W|E|N):/.test(l));
  const unreachable = /^W: (Failed to fetch \S+ +(Temporary failure resolving|Could not resolve) '[^']+'|Some index files failed to download\. They have been ignored, or old ones used instead\.)$/;
  expect(warnings.filter((l) => !unreachable.test(l)), 'apt messages other than "cannot reach"').toEqual([]);
  expect(out).not.toMatch(/not signed|NO_PUBKEY|Signed-By|keyring|Malformed|Conflicting|EXPKEYSIG/i);
  for (const f of readdirSync(c.path('/etc/apt/sources.list.d'))) {
    const signedBy = deb822(readFileSync(c.path(`/etc/apt/sources.list.d/${f}`), 'utf8')).get('signed-by');
    if (signedBy === undefined || !signedBy.startsWith('/')) continue;
    expect(existsSync(c.path(signedBy)), `${f}: Signed-By ${signedBy} exists`).toBe(true);
  }
  return out;
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
    async afterRemove(c) {
      // Both conffiles kept together: the source still names a key that is there, so apt keeps working.
      expect(deb822(readFileSync(c.path(I2P_SOURCES), 'utf8')).get('signed-by')).toBe(I2P_KEYRING);
      expect(await keyringFingerprints(c.path(I2P_KEYRING))).toEqual([I2P_FPR]);
      expect(await offlineUpdate(c)).toMatch(/deb\.i2p\.net/);
    },
    async afterPurge(c) {
      expect(existsSync(c.path(I2P_KEYRING))).toBe(false);
      expect(existsSync(c.path(I2P_SOURCES))).toBe(false);
      expect(await updateUris(c)).not.toMatch(/deb\.i2p\.net/);
      expect(await offlineUpdate(c)).not.toMatch(/deb\.i2p\.net/);
    },
  },
);
