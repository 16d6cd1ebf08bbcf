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
 *
 * Upgrades. Salt's pkg.installed with `sources` reads the file's version (lowpkg.bin_pkg_info) and installs it
 * (`dpkg -i --force-confold`) when the installed version differs; a package of the same name and version is
 * skipped, and `version:` is ignored with `sources` (salt/states/pkg.py, `_find_install_targets`). Every build
 * whose inputs changed has a new version (src/version.ts), so the new file is installed; a second state then pins
 * the exact version (a `pkgs` entry with a version, which Salt only reports as installed when it is), so a file
 * that did not land fails the run loudly instead of leaving the old gateway in place. When the package changed,
 * a notification says that a running gateway qube keeps its old files until it restarts (its root file system
 * is the template's as it was when the qube started): restarting it cuts every client's connections, so the
 * user chooses the moment; states that run in the template cannot restart a qube anyway.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { ROUTERS } from '../../config/routers.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { PACKAGE } from '../gateway/common.ts';
import { FILES_DIR, FORMULA, ID, STATE } from './names.ts';
import { slsText } from './yaml.ts';

export interface InstallInputs {
  /** File name of the template package inside files/. */
  readonly debFileName: string;
  /** The template package's version (src/version.ts). */
  readonly debVersion: string;
  /** Package names the template package depends on (from its control file). */
  readonly dependencies: readonly string[];
}

/** The dom0 command that restarts the gateway; --force because its running clients would make qvm-shutdown refuse. */
export function restartCommand(c: GatewayConfig): string {
  return `qvm-shutdown --wait --force ${c.qubes.gateway} && qvm-start ${c.qubes.gateway}`;
}

/** What a user must do after install.sls changed the template: the state's output and the README say it. */
export function restartAdvice(c: GatewayConfig): string {
  const q = c.qubes;
  return (
    `A running ${q.gateway} keeps the gateway files it started with: restart it to use the new ones, once ${q.template} ` +
    `has shut down (qubesctl shuts it down after applying, if it was not running before). In dom0: ` +
    `${restartCommand(c)}. Its client qubes have no network meanwhile ` +
    '(the gateway fails closed) and are reconnected when it is back.'
  );
}

export function renderInstall(c: GatewayConfig, inputs: InstallInputs): RenderedFile {
  const data: Record<string, unknown> = {
    [ID.dependencies]: {
      'pkg.installed': [{ pkgs: [...inputs.dependencies] }, { refresh: true }],
    },
    [ID.package]: {
      'pkg.installed': [
        { sources: [{ [PACKAGE]: `salt://${FILES_DIR}/${inputs.debFileName}` }] },
        { require: [{ pkg: ID.dependencies }] },
      ],
    },
    [ID.packageVersion]: {
      'pkg.installed': [{ pkgs: [{ [PACKAGE]: inputs.debVersion }] }, { refresh: false }, { require: [{ pkg: ID.package }] }],
    },
    [ID.restartNotice]: {
      'test.show_notification': [
        { text: `${PACKAGE} ${inputs.debVersion} is installed in ${c.qubes.template}. ${restartAdvice(c)}` },
        { onchanges: [{ pkg: ID.package }] },
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
      // Only the router, not i2p-keyring: our package ships the repository key under a name of its own, which our
      // source's Signed-By names (i2p-keyring would add the same key at another path, and nothing else).
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
        `${ID.packageVersion} fails the run unless ${PACKAGE} ${inputs.debVersion} is what is installed.`,
        `After a change, ${ID.restartNotice} says to restart ${c.qubes.gateway}, which keeps its old files until then.`,
      ],
      data,
    ),
  );
}
