/**
 * The I2P keyring check against the real key (the fixture test/fixtures/i2p-archive-keyring.gpg) and a key
 * made here with gpg: accepted only with the I2P fingerprint, in binary or armored form, and refused with a
 * message naming the fingerprint found and the one expected.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { I2P_REPO_FINGERPRINT } from '../../src/config/routers.ts';
import { checkRepoKeyring, dearmor, formatFingerprint, primaryKeys, readPackets, v4Fingerprint } from '../../src/render/gateway/keyring.ts';
import { must, REAL_KEYRING, REAL_KEYRING_ASC, run, Scratch } from './helpers.ts';

const scratch = new Scratch();
let home = '';
let ownBinary = new Uint8Array();
let ownArmored = new Uint8Array();
let ownSecret = new Uint8Array();
let ownFingerprint = '';

const real = (): Uint8Array => new Uint8Array(readFileSync(REAL_KEYRING));

beforeAll(() => {
  home = scratch.dir('gnupg');
  const gpg = ['gpg', '--homedir', home, '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', ''];
  must([...gpg, '--quick-gen-key', 'qubes-i2p-gateway test key <test@example.invalid>', 'ed25519', 'sign', 'never']);
  const listing = must([...gpg, '--with-colons', '--list-keys']).stdout;
  ownFingerprint = listing.split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9] ?? '';
  ownBinary = new Uint8Array(readExport([...gpg, '--export']));
  ownArmored = new Uint8Array(Buffer.from(must([...gpg, '--armor', '--export']).stdout, 'utf8'));
  ownSecret = new Uint8Array(readExport([...gpg, '--export-secret-keys']));
});

/** gpg's binary output, captured as bytes (spawnSync with utf8 would mangle it). */
function readExport(argv: string[]): Buffer {
  const out = join(home, `export-${argv.length}-${Math.random().toString(36).slice(2)}.gpg`);
  must([...argv, '--output', out]);
  return readFileSync(out);
}

afterAll(async () => {
  if (home !== '') run(['gpgconf', '--homedir', home, '--kill', 'all']);
  await scratch.cleanup();
});

describe('the real I2P repository key', () => {
  it('is accepted in binary form and passed through unchanged', () => {
    const bytes = real();
    expect(checkRepoKeyring(bytes)).toEqual(bytes);
    expect(primaryKeys(bytes)).toEqual([{ version: 4, fingerprint: I2P_REPO_FINGERPRINT }]);
  });

  it('is accepted ASCII-armored and returned as binary', () => {
    const armored = new Uint8Array(readFileSync(REAL_KEYRING_ASC));
    const out = checkRepoKeyring(armored);
    expect(out[0]! & 0x80).toBe(0x80);
    expect(primaryKeys(out).map((k) => k.fingerprint)).toEqual([I2P_REPO_FINGERPRINT]);
  });

  it('gives the same fingerprint when its key packet is re-framed in the new packet format', () => {
    const first = readPackets(real())[0]!;
    expect(first.tag).toBe(6);
    const len = first.body.length;
    // New format, tag 6, two-octet length (192..8383).
    const o1 = ((len - 192) >> 8) + 192;
    const o2 = (len - 192) & 0xff;
    const reframed = new Uint8Array([0xc0 | 6, o1, o2, ...first.body]);
    expect(primaryKeys(reframed)).toEqual([{ version: 4, fingerprint: I2P_REPO_FINGERPRINT }]);
    expect(v4Fingerprint(first.body)).toBe(I2P_REPO_FINGERPRINT);
  });
});

describe('a key made here with gpg', () => {
  it('has the fingerprint gpg reports', () => {
    expect(ownFingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(primaryKeys(ownBinary).map((k) => k.fingerprint)).toEqual([ownFingerprint]);
  });

  it('is refused, naming the fingerprint found and the one expected', () => {
    expect(() => checkRepoKeyring(ownBinary)).toThrow(
      `I2P keyring: found primary key ${formatFingerprint(ownFingerprint)}, expected the I2P repository key ${formatFingerprint(I2P_REPO_FINGERPRINT)}`,
    );
  });

  it('is refused armored too', () => {
    expect(() => checkRepoKeyring(ownArmored)).toThrow(formatFingerprint(ownFingerprint));
  });

  it('is refused when appended to the real key (it could then sign for the repository)', () => {
    const both = new Uint8Array([...real(), ...ownBinary]);
    expect(() => checkRepoKeyring(both)).toThrow(formatFingerprint(ownFingerprint));
  });

  it('is refused as a secret key, before anything else is looked at', () => {
    expect(() => checkRepoKeyring(ownSecret)).toThrow('the file contains a SECRET key');
  });
});

describe('damaged input', () => {
  it('refuses an empty file', () => {
    expect(() => checkRepoKeyring(new Uint8Array())).toThrow('the file is empty');
  });

  it('refuses a truncated keyring', () => {
    expect(() => checkRepoKeyring(real().subarray(0, 100))).toThrow(/claims \d+ bytes but only \d+ remain/);
  });

  it('refuses bytes that are not OpenPGP', () => {
    expect(() => checkRepoKeyring(new TextEncoder().encode('hello'))).toThrow('is not an OpenPGP packet header');
  });

  it('refuses an armored key whose checksum does not match', () => {
    const lines = readFileSync(REAL_KEYRING_ASC, 'utf8').split('\n');
    const at = lines.findIndex((l) => /^[A-Za-z0-9+/]{60,}$/.test(l));
    const line = lines[at]!;
    lines[at] = (line[0] === 'A' ? 'B' : 'A') + line.slice(1);
    expect(() => dearmor(new TextEncoder().encode(lines.join('\n')))).toThrow('the armor checksum does not match');
  });
});
