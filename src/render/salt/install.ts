/**
 * i2p-gateway/install.sls (the gateway's template): the gateway package from the formula's files/, after its
 * Debian dependencies; for the Java router, the `i2p` package once our apt source and keyring are in place.
 *
 * Salt installs a package given by `sources` with dpkg, which does not resolve dependencies, so they are
 * installed by name first, from the same list as the package's Depends.
 *
 * The router this build does not run is purged (i2pd for the Java router, i2p for i2pd): a template switched from
 * one router to the other would otherwise keep the first, whose unit could start beside ours and compete for
 * port 4444 (the package's drop-in for it keeps it from starting in the gateway; this removes it altogether).
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { ROUTERS } from '../../config/routers.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { FILES_DIR, FORMULA, ID, STATE } from './names.ts';
import { slsText } from './yaml.ts';

export interface InstallInputs {
  /** File name of the template package inside files/. */
  readonly debFileName: string;
  /** Package names the template package depends on (from its control file). */
  readonly dependencies: readonly string[];
}

export function renderInstall(c: GatewayConfig, inputs: InstallInputs): RenderedFile {
  const data: Record<string, unknown> = {
    [ID.dependencies]: {
      'pkg.installed': [{ pkgs: [...inputs.dependencies] }, { refresh: true }],
    },
    [ID.package]: {
      'pkg.installed': [
        { sources: [{ 'qubes-i2p-gateway': `salt://${FILES_DIR}/${inputs.debFileName}` }] },
        { require: [{ pkg: ID.dependencies }] },
      ],
    },
  };
  const router = ROUTERS[c.i2p.router];
  const other = ROUTERS[c.i2p.router === 'i2pd' ? 'i2p' : 'i2pd'];
  data[ID.otherRouter] = {
    'pkg.purged': [{ pkgs: [other.package] }],
  };
  if (router.fromI2pRepo) {
    data[ID.router] = {
      // Only the router: our package already ships the repository keyring at the path i2p-keyring would use.
      'pkg.installed': [{ pkgs: [router.package] }, { refresh: true }, { install_recommends: false }, { require: [{ pkg: ID.package }] }],
    };
  }
  return textFile(
    `${FORMULA}/install.sls`,
    slsText(
      [
        `${STATE.install} (template ${c.qubes.template}): install the gateway package into the template.`,
        `Run: sudo qubesctl --skip-dom0 --targets=${c.qubes.template} state.sls ${STATE.install}`,
        'Nothing in the package runs in the template: every unit waits for the qube\'s qvm-service.',
      ],
      data,
    ),
  );
}
