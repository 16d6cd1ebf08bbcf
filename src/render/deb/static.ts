/**
 * The package's static parts, kept as plain files under debian/ so they read (and diff) as what they are:
 * the maintainer scripts and the machine-readable copyright. There is no prerm: the package starts and enables
 * nothing, so there is nothing to stop or disable before removal (lintian flags a script with nothing to do). The only disk access of the .deb renderer;
 * package.ts takes these texts as data.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DEBIAN_DIR = fileURLToPath(new URL('../../../debian/', import.meta.url));

export interface DebStatics {
  readonly postinst: string;
  readonly postrm: string;
  /** DEP-5 copyright, installed as /usr/share/doc/<package>/copyright. */
  readonly copyright: string;
}

let cached: DebStatics | undefined;

export function readDebStatics(dir: string = DEBIAN_DIR): DebStatics {
  const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
  return { postinst: read('postinst'), postrm: read('postrm'), copyright: read('copyright') };
}

/** The statics of this checkout, read once. */
export function projectDebStatics(): DebStatics {
  cached ??= readDebStatics();
  return cached;
}
