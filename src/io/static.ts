/**
 * The project's static inputs to a build, read once from the source tree: the rpm spec, the minion.d file, the
 * .deb's maintainer scripts and copyright under debian/, the programs that run in the gateway under gateway/
 * (the DNS TCP relay, the status command and its manual page), and the formula's dom0 script under salt/. The
 * renderers stay pure: they receive these texts, never paths.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { DebStatics } from '../render/deb/package.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface StaticSources {
  readonly rpmSpec: string;
  readonly minionConf: string;
  /** salt/client-netvm: the dom0 script the formula's clients and remove states run. */
  readonly clientNetvm: string;
  readonly deb: DebStatics;
}

export function readStaticSources(root: string = PROJECT_ROOT): StaticSources {
  const read = (path: string): string => readFileSync(join(root, path), 'utf8');
  return {
    rpmSpec: read('rpm/qubes-mgmt-salt-i2p-gateway.spec'),
    minionConf: read('salt/i2p-gateway-formula.conf'),
    clientNetvm: read('salt/client-netvm'),
    // No prerm: the removal changes nothing other packages own (install.sls disables the distribution's daemons).
    deb: {
      postinst: read('debian/postinst'),
      postrm: read('debian/postrm'),
      copyright: read('debian/copyright'),
      programs: {
        dnsRelay: read('gateway/dns-relay'),
        firewallHook: read('gateway/firewall-hook'),
        i2pdConsoleAuth: read('gateway/i2pd-console-auth'),
        i2pdClientProxies: read('gateway/i2pd-client-proxies'),
        waitPage: read('gateway/i2p-wait-page'),
        status: { command: read('gateway/qubes-i2p-gateway'), manPage: read('gateway/qubes-i2p-gateway.1') },
      },
    },
  };
}
