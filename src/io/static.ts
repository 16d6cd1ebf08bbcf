/**
 * The project's static inputs to a build (the spec, the minion.d file), read once from the source tree.
 * The renderers stay pure: they receive these texts, never paths.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface StaticSources {
  readonly rpmSpec: string;
  readonly minionConf: string;
}

export function readStaticSources(root: string = PROJECT_ROOT): StaticSources {
  return {
    rpmSpec: readFileSync(join(root, 'rpm/qubes-mgmt-salt-i2p-gateway.spec'), 'utf8'),
    minionConf: readFileSync(join(root, 'salt/i2p-gateway-formula.conf'), 'utf8'),
  };
}
