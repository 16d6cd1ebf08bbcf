/**
 * The I2P repository keyring: accepted only if it holds the I2P signing key and nothing else that could sign.
 *
 * A minimal OpenPGP reader (RFC 4880 §4.2 packet framing, §5.5.2 key packets, §12.2 v4 fingerprints; RFC 4880
 * §6 ASCII armor): it walks every packet, collects the primary public keys (tag 6) and computes their v4
 * fingerprints, SHA-1 over 0x99, the two-octet body length and the body. It does not verify signatures: apt
 * (gpgv) does that with the keyring; what this guards is *which* key apt is told to trust for the repository.
 * A keyring with a second primary key would let that key sign for deb.i2p.net too, so every primary key must be
 * the expected one; a secret key is refused outright.
 */
import { createHash } from 'node:crypto';
import { I2P_REPO_FINGERPRINT } from '../../config/routers.ts';

const TAG_SECRET_KEY = 5;
const TAG_PUBLIC_KEY = 6;
const TAG_SECRET_SUBKEY = 7;

export interface Packet {
  readonly tag: number;
  readonly body: Uint8Array;
}

export interface PrimaryKey {
  readonly version: number;
  /** Upper-case hex, no spaces (v4 keys only; empty for other versions). */
  readonly fingerprint: string;
}

function fail(why: string): never {
  throw new Error(`I2P keyring: ${why}`);
}

/** Split binary OpenPGP data into packets, old and new header formats. Throws on truncation or partial lengths. */
export function readPackets(data: Uint8Array): Packet[] {
  const packets: Packet[] = [];
  let at = 0;
  const byte = (i: number): number => {
    const b = data[i];
    if (b === undefined) fail(`the data ends inside a packet header at byte ${i}`);
    return b;
  };
  while (at < data.length) {
    const start = at;
    const first = byte(at++);
    if ((first & 0x80) === 0) fail(`byte ${start} is not an OpenPGP packet header (0x${first.toString(16).padStart(2, '0')})`);
    let tag: number;
    let length: number;
    if ((first & 0x40) !== 0) {
      // New format: tag in the low six bits, then a one-, two- or five-octet length.
      tag = first & 0x3f;
      const o1 = byte(at++);
      if (o1 < 192) {
        length = o1;
      } else if (o1 < 224) {
        length = ((o1 - 192) << 8) + byte(at++) + 192;
      } else if (o1 === 255) {
        length = ((byte(at) << 24) | (byte(at + 1) << 16) | (byte(at + 2) << 8) | byte(at + 3)) >>> 0;
        at += 4;
      } else {
        fail(`packet at byte ${start} uses a partial body length, which key material never does`);
      }
    } else {
      // Old format: tag in bits 5-2, length type in bits 1-0 (one, two or four octets; 3 = indeterminate).
      tag = (first >> 2) & 0x0f;
      switch (first & 0x03) {
        case 0:
          length = byte(at++);
          break;
        case 1:
          length = (byte(at) << 8) | byte(at + 1);
          at += 2;
          break;
        case 2:
          length = ((byte(at) << 24) | (byte(at + 1) << 16) | (byte(at + 2) << 8) | byte(at + 3)) >>> 0;
          at += 4;
          break;
        default:
          length = data.length - at;
      }
    }
    if (at + length > data.length) fail(`packet at byte ${start} claims ${length} bytes but only ${data.length - at} remain`);
    packets.push({ tag, body: data.subarray(at, at + length) });
    at += length;
  }
  return packets;
}

/** The v4 fingerprint of a public-key packet body: SHA-1(0x99 || len16 || body). */
export function v4Fingerprint(body: Uint8Array): string {
  if (body.length > 0xffff) fail('a public-key packet longer than 65535 bytes cannot have a v4 fingerprint');
  const prefix = Uint8Array.of(0x99, (body.length >> 8) & 0xff, body.length & 0xff);
  return createHash('sha1').update(prefix).update(body).digest('hex').toUpperCase();
}

export function primaryKeys(data: Uint8Array): PrimaryKey[] {
  return readPackets(data)
    .filter((p) => p.tag === TAG_PUBLIC_KEY)
    .map((p) => {
      const version = p.body[0] ?? 0;
      return { version, fingerprint: version === 4 ? v4Fingerprint(p.body) : '' };
    });
}

/** `7840E761...` → `7840 E761 0F28 B904 7535  49D7 67EC E560 5BCF 1346`, as gpg prints it. */
export function formatFingerprint(hex: string): string {
  const groups = hex.match(/.{1,4}/g) ?? [];
  return groups.length === 10 ? `${groups.slice(0, 5).join(' ')}  ${groups.slice(5).join(' ')}` : groups.join(' ');
}

const CRC24_INIT = 0xb704ce;
const CRC24_POLY = 0x1864cfb;

function crc24(data: Uint8Array): number {
  let crc = CRC24_INIT;
  for (const b of data) {
    crc ^= b << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= CRC24_POLY;
    }
  }
  return crc & 0xffffff;
}

const ARMOR_BEGIN = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const ARMOR_END = '-----END PGP PUBLIC KEY BLOCK-----';

export function isArmored(data: Uint8Array): boolean {
  const head = new TextDecoder('latin1').decode(data.subarray(0, 200)).trimStart();
  return head.startsWith('-----BEGIN PGP ');
}

/** ASCII armor → binary (RFC 4880 §6.2): headers up to the first blank line, base64, optional =CRC24. */
export function dearmor(data: Uint8Array): Uint8Array {
  const lines = new TextDecoder('latin1').decode(data).split(/\r?\n/).map((l) => l.trimEnd());
  const begin = lines.findIndex((l) => l.trim() === ARMOR_BEGIN);
  if (begin < 0) fail(`armored data is not a public key block (no "${ARMOR_BEGIN}" line)`);
  const end = lines.findIndex((l, i) => i > begin && l.trim() === ARMOR_END);
  if (end < 0) fail(`armored data has no "${ARMOR_END}" line`);
  let i = begin + 1;
  // Armor headers ("Version: ...", "Comment: ...") run up to the first blank line.
  while (i < end && lines[i] !== '' && /^[A-Za-z][A-Za-z0-9-]*: /.test(lines[i] ?? '')) i++;
  let base64 = '';
  let checksum: string | undefined;
  for (; i < end; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '') continue;
    if (line.startsWith('=') && line.length === 5) {
      checksum = line.slice(1);
      continue;
    }
    if (!/^[A-Za-z0-9+/=]+$/.test(line)) fail(`armored data has a line that is not base64: ${JSON.stringify(line.slice(0, 40))}`);
    base64 += line;
  }
  const bytes = new Uint8Array(Buffer.from(base64, 'base64'));
  if (checksum !== undefined) {
    const want = Buffer.from(checksum, 'base64');
    const got = crc24(bytes);
    const expected = ((want[0] ?? 0) << 16) | ((want[1] ?? 0) << 8) | (want[2] ?? 0);
    if (want.length !== 3 || got !== expected) fail('the armor checksum does not match its data (damaged or edited file)');
  }
  return bytes;
}

/**
 * Check a keyring (binary, or ASCII-armored) and return it as binary, ready for apt's Signed-By: every
 * primary key must be a v4 key with the expected fingerprint, and there must be at least one.
 */
export function checkRepoKeyring(input: Uint8Array, expected: string = I2P_REPO_FINGERPRINT): Uint8Array {
  if (input.length === 0) fail('the file is empty. Fix: give the binary keyring from https://geti2p.net/_static/i2p-archive-keyring.gpg');
  const data = isArmored(input) ? dearmor(input) : input;
  const packets = readPackets(data);
  if (packets.some((p) => p.tag === TAG_SECRET_KEY || p.tag === TAG_SECRET_SUBKEY)) {
    fail('the file contains a SECRET key. Fix: export only the public key; never ship a secret key in a package');
  }
  const keys = primaryKeys(data);
  const want = formatFingerprint(expected);
  if (keys.length === 0) fail(`no public key found (expected the I2P repository key ${want})`);
  for (const k of keys) {
    if (k.version !== 4) fail(`found a version ${k.version} primary key; expected the v4 key ${want}`);
    if (k.fingerprint !== expected) {
      fail(
        `found primary key ${formatFingerprint(k.fingerprint)}, expected the I2P repository key ${want}. ` +
          'Fix: download https://geti2p.net/_static/i2p-archive-keyring.gpg, check its fingerprint, and point i2p.keyring at it',
      );
    }
  }
  return data;
}
