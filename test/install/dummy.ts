/**
 * A stand-in for `qubes-core-agent-networking`, which exists only in the Qubes repository: an empty
 * Architecture: all package, built with our own .deb writer, so the gateway package's real Depends line
 * can be satisfied in a plain Debian chroot. It ships only its copyright file and provides nothing else.
 */
import { textFile, type RenderedFile } from '../../src/files.ts';
import { debFileName, writeDeb, type DebMeta } from '../../src/pack/deb.ts';

export const DUMMY_PACKAGE = 'qubes-core-agent-networking';
/** High enough for any `(>= 4.x)` the gateway may ask for; the suffix marks it as a test dummy. */
export const DUMMY_VERSION = '4.999+qig.dummy1';

export const dummyMeta: DebMeta = {
  package: DUMMY_PACKAGE,
  version: DUMMY_VERSION,
  architecture: 'all',
  maintainer: 'qubes-i2p-gateway tests <tests@invalid>',
  section: 'misc',
  priority: 'optional',
  depends: [],
  description: {
    summary: 'test dummy standing in for the Qubes networking agent',
    extended: [
      'Empty package used by the qubes-i2p-gateway install tests in a plain Debian chroot,',
      'where the real package from the Qubes repository is not available. Ships no files',
      'besides this copyright notice. Never install it in a real system.',
    ],
  },
};

const COPYRIGHT = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ${DUMMY_PACKAGE} (test dummy of qubes-i2p-gateway)

Files: *
Copyright: qubes-i2p-gateway contributors
License: GPL-3.0-or-later
 On Debian systems, the full text of the GNU General Public License version 3
 can be found in the file /usr/share/common-licenses/GPL-3.
`;

export interface DummyExtras {
  /** Another Qubes package than the networking agent (the booted tests' qubes-core-qrexec), with its summary. */
  readonly package?: { readonly name: string; readonly summary: string };
  /** More files (the booted tests' stand-ins for the real package's units). */
  readonly files?: readonly RenderedFile[];
  /** Depends of the real package that the extra files need (nftables for its firewall units). */
  readonly depends?: readonly string[];
}

export function buildDummyDeb(sourceDateEpoch: number, extras: DummyExtras = {}): { fileName: string; bytes: Uint8Array } {
  const name = extras.package?.name ?? DUMMY_PACKAGE;
  const copyright = COPYRIGHT.replace(`Upstream-Name: ${DUMMY_PACKAGE} `, `Upstream-Name: ${name} `);
  const files = [textFile(`/usr/share/doc/${name}/copyright`, copyright), ...(extras.files ?? [])];
  const withStandIns: DebMeta['description'] = {
    summary: extras.package?.summary ?? 'test dummy standing in for the Qubes networking agent',
    extended: [
      'Package used by the qubes-i2p-gateway booted tests in a plain Debian root, where the real',
      'package from the Qubes repository is not available. Ships small stand-ins of the real',
      "package's units (test/boot/stand-ins). Never install it in a real system.",
    ],
  };
  const meta: DebMeta = {
    ...dummyMeta,
    package: name,
    depends: [...(extras.depends ?? [])],
    ...(extras.files !== undefined && extras.files.length > 0 ? { description: withStandIns } : {}),
  };
  return { fileName: debFileName(meta), bytes: writeDeb(meta, files, { sourceDateEpoch }) };
}
