/**
 * i2p-gateway/install.sls (the gateway's template): the gateway package from the formula's files/, after its
 * Debian dependencies; for the Java router, the `i2p` package once our apt source and keyring are in place.
 *
 * Salt installs a package given by `sources` with dpkg, which does not resolve dependencies, so they are
 * installed by name first, from the same list as the package's Depends.
 *
 * Before them, one runtime drop-in per distribution unit the package holds to a flag (template-guard.ts): the
 * template is a booted system, and Debian's postinsts start i2pd, Tor and tinyproxy the moment apt configures
 * them, before our package (and its drop-ins) can be there. A router started in the template writes the
 * identity every gateway made from it would copy. The drop-ins live in /run/systemd/system, so they are gone at
 * the template's next boot, when the package's own drop-ins say the same; a second run finds them unchanged.
 *
 * The router this build does not run is purged (i2pd for the Java router, i2p for i2pd): a template switched from
 * one router to the other would otherwise keep the first, whose unit could start beside ours and compete for
 * port 4444 (the package's drop-in for it keeps it from starting in the gateway; this removes it altogether).
 * The purge requires the new package at its exact version and the new router: apt removes an i2pd build's
 * gateway package with i2pd, so purging first would leave a template without the gateway package after a failed
 * install (and a gateway qube without its lockdown).
 *
 * The distribution daemons this state installs (Tor, tinyproxy, the router) are disabled in the template
 * (service.disabled: `systemctl disable` when `systemctl is-enabled` says enabled, so a second run changes
 * nothing): their packages' postinsts enable them, and once our package is removed (by hand, or by apt with one
 * of them) nothing else would keep them from starting in the template and every qube made from it. The gateway
 * does not need them enabled: its target's Wants= starts the router's unit, and Tor and tinyproxy run as units
 * of our own. Disabling is the template owner's choice, made here, not by the package: its maintainer scripts
 * change nothing other packages own (a package's removal that disabled them would, which piuparts reports).
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
import { heldUnits } from '../gateway/template-guard.ts';

/** The distribution's units this build installs the packages of, each disabled in the template by install.sls. */
export function disabledUnits(c: GatewayConfig): string[] {
  return [...(c.tor.enabled ? ['tor.service'] : []), 'tinyproxy.service', ROUTERS[c.i2p.router].unit];
}
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

/** Where install.sls holds a unit while it installs: a runtime drop-in, named apart from the package's own. */
export function holdPath(unit: string): string {
  return `/run/systemd/system/${unit}.d/10-qubes-i2p-gateway-install.conf`;
}

export function holdDropIn(unit: string, flag: string): string {
  return [
    `# qubes-i2p-gateway (${STATE.install}): ${unit} starts only where ${flag} exists.`,
    '# Written before apt installs its package, whose postinst would start it at once; gone at the next boot,',
    '# when the package\'s own drop-in says the same.',
    '[Unit]',
    `ConditionPathExists=${flag}`,
    '',
  ].join('\n');
}

export function renderInstall(c: GatewayConfig, inputs: InstallInputs): RenderedFile {
  const held = heldUnits(c);
  const data: Record<string, unknown> = {};
  for (const h of held) {
    data[ID.hold(h.path)] = {
      'file.managed': [{ name: holdPath(h.path) }, { contents: holdDropIn(h.path, h.flag) }, { mode: '0644' }, { makedirs: true }],
    };
  }
  Object.assign(data, {
    [ID.dependencies]: {
      'pkg.installed': [{ pkgs: [...inputs.dependencies] }, { refresh: true }, { require: held.map((h) => ({ file: ID.hold(h.path) })) }],
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
  });
  const router = ROUTERS[c.i2p.router];
  const other = ROUTERS[c.i2p.router === 'i2pd' ? 'i2p' : 'i2pd'];
  if (router.fromI2pRepo) {
    data[ID.router] = {
      // Only the router, not i2p-keyring: our package ships the repository key under a name of its own, which our
      // source's Signed-By names (i2p-keyring would add the same key at another path, and nothing else).
      'pkg.installed': [{ pkgs: [router.package] }, { refresh: true }, { install_recommends: false }, { require: [{ pkg: ID.package }] }],
    };
  }
  // The old router goes only once the new package (the exact version) and the new router are in: purging i2pd
  // also removes every package that depends on it, the gateway package of an i2pd build among them, so a failed
  // switch must leave the old package and its router as they were.
  for (const unit of disabledUnits(c)) {
    data[ID.disabled(unit)] = {
      'service.disabled': [{ name: unit }, { require: [{ pkg: ID.dependencies }, ...(router.fromI2pRepo ? [{ pkg: ID.router }] : [])] }],
    };
  }
  data[ID.otherRouter] = {
    'pkg.purged': [{ pkgs: [other.package] }, { require: [{ pkg: ID.packageVersion }, ...(router.fromI2pRepo ? [{ pkg: ID.router }] : [])] }],
  };
  return textFile(
    `${FORMULA}/install.sls`,
    slsText(
      [
        `${STATE.install} (template ${c.qubes.template}): install the gateway package into the template.`,
        `Run: sudo qubesctl --skip-dom0 --targets=${c.qubes.template} state.sls ${STATE.install}`,
        'Nothing in the package runs in the template: every unit waits for the qube\'s qvm-service. The',
        'dependencies\' daemons are held off while they install (drop-ins under /run, gone at the next boot),',
        `then disabled (${disabledUnits(c).join(', ')}): the gateway starts them itself, and none starts anywhere once the package is removed.`,
        `${ID.packageVersion} fails the run unless ${PACKAGE} ${inputs.debVersion} is what is installed.`,
        `After a change, ${ID.restartNotice} says to restart ${c.qubes.gateway}, which keeps its old files until then.`,
      ],
      data,
    ),
  );
}
