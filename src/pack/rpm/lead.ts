/**
 * The 96-byte lead that opens every .rpm. rpm 4.x reads it only to check the magic, the major version and
 * the signature type; `file(1)` and old tools read the rest. All the real metadata lives in the headers.
 *
 *   0  magic ED AB EE DB          4  major 3, minor 0        6  type (0 = binary)
 *   8  archnum                    10 name, 66 bytes, NUL-padded (NAME-VERSION-RELEASE)
 *   76 osnum (1 = Linux)          78 signature type (5 = "header-style" signature header follows)
 *   80 16 reserved zero bytes
 */
import { OSNUM_LINUX } from './tags.ts';

export const LEAD_SIZE = 96;
const NAME_FIELD = 66;
const RPMSIGTYPE_HEADERSIG = 5;
/**
 * rpm has no arch number for noarch; rpmbuild writes its *build host's* number there (1 on x86_64, the arch of
 * Qubes dom0). We write that fixed value so the lead does not depend on the machine that builds.
 */
const ARCHNUM = 1;

export function writeLead(nevr: string): Uint8Array {
  const lead = new Uint8Array(LEAD_SIZE);
  const view = new DataView(lead.buffer);
  lead.set([0xed, 0xab, 0xee, 0xdb, 3, 0], 0);
  view.setUint16(6, 0);
  view.setUint16(8, ARCHNUM);
  // At most 65 bytes of the name, so the field always ends with a NUL.
  const name = new TextEncoder().encode(nevr).subarray(0, NAME_FIELD - 1);
  lead.set(name, 10);
  view.setUint16(76, OSNUM_LINUX);
  view.setUint16(78, RPMSIGTYPE_HEADERSIG);
  return lead;
}
