/**
 * Nothing of the gateway may run in the template, and nothing a daemon writes when it runs may end up there.
 *
 * The package keeps the distribution's i2pd (or the Java router), Tor and tinyproxy off in every qube but the one
 * a flag names (drop-ins with ConditionPathExists=). But apt configures a package's dependencies before the
 * package itself, and Debian's postinsts start their daemons as soon as they are configured: in a booted template
 * i2pd starts before our drop-in exists and writes its router identity (router.keys, the NTCP2/SSU2 keys, a
 * netDb) into /var/lib/i2pd; Tor writes its state into /var/lib/tor. Every qube made from the template starts
 * from that root, and bind-dirs copies /var/lib/i2pd into each gateway's /rw on its first boot: every gateway
 * would share one router identity, linkable across qubes and machines.
 *
 * Two defences, from the same list of held units (heldUnits):
 *   - install.sls (src/render/salt/install.ts) writes runtime drop-ins with these conditions into
 *     /run/systemd/system before it installs the dependencies, so no daemon starts at all while the formula
 *     installs (and /run is gone at the template's next boot, when the package's own drop-ins are in);
 *   - for every other way the package gets in (apt-get install by hand, a template where a daemon ran before),
 *     the postinst (debian/postinst) reads /usr/share/qubes-i2p-gateway/template-guard, rendered here: it stops a
 *     held unit that runs although its flag is absent, then empties the state directories of what no package
 *     ships, again only where the directory's flag is absent. In the gateway qube (flag present) it touches
 *     nothing: there the state is the gateway's own, kept under /rw.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { ROUTERS } from '../../config/routers.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, qubesServiceFlag } from './common.ts';
import { routerStateDir } from './persistence.ts';

export interface Held {
  /** A distribution unit (held) or a state directory (cleaned). */
  readonly path: string;
  /** The file that marks the one qube where it may run, or where its state is that qube's own. */
  readonly flag: string;
}

/** The distribution's units the package holds to a flag (each has one of our drop-ins with that condition). */
export function heldUnits(config: GatewayConfig): Held[] {
  return [
    { path: ROUTERS[config.i2p.router].unit, flag: gatewayFlag(config) },
    ...(config.tor.enabled
      ? ['tor.service', 'tor@default.service'].map((unit) => ({ path: unit, flag: qubesServiceFlag('tor') }))
      : []),
    { path: 'tinyproxy.service', flag: qubesServiceFlag('tinyproxy') },
  ];
}

/** Where the held daemons (and our own Tor) write their state when they run. */
export function heldStateDirs(config: GatewayConfig): Held[] {
  return [
    { path: routerStateDir(config), flag: gatewayFlag(config) },
    ...(config.tor.enabled
      ? [
          { path: '/var/lib/tor', flag: qubesServiceFlag('tor') },
          { path: PATHS.torData, flag: gatewayFlag(config) },
        ]
      : []),
  ];
}

export function renderTemplateGuardList(config: GatewayConfig): string {
  return (
    generatedHeader('qubes-i2p-gateway: what the postinst undoes in every qube but the one each line names.') +
    comment([
      '',
      'Debian\'s postinsts start i2pd, Tor and tinyproxy as soon as apt configures them, before this package\'s',
      'drop-ins exist that keep them off; in a template, i2pd then writes a router identity that bind-dirs would',
      'copy into every gateway made from it. The postinst reads this list at every configure (install, upgrade):',
      '',
      'stop UNIT FLAG: stop UNIT if it runs and FLAG does not exist (it started before our drop-in was there).',
      'clean DIR FLAG: if FLAG does not exist, remove from DIR every entry that no installed package ships',
      '(identity, keys, netDb, state): it was written outside the qube it belongs to.',
    ]) +
    heldUnits(config).map((u) => `stop ${u.path} ${u.flag}\n`).join('') +
    heldStateDirs(config).map((d) => `clean ${d.path} ${d.flag}\n`).join('')
  );
}

export function renderTemplateGuard(config: GatewayConfig): readonly RenderedFile[] {
  return [textFile(PATHS.templateGuard, renderTemplateGuardList(config))];
}
