/**
 * The formula's README for dom0: the commands, in the order that never exposes a half-built gateway; what to do
 * after an upgrade; how to take it all away. The dom0 package's scriptlets print parts of it (rpm/*.spec): the
 * numbered steps' commands on first install (lines indented 7), the section "After an upgrade" on upgrade, and the
 * section "Remove" in full when the package is removed, so that text names the configured qubes and is still on
 * the user's screen after the package and this file are gone. The headings are the scriptlets' markers.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { publishedServices } from '../../config/publish.ts';
import { disabledUnits } from './install.ts';
import { PATHS } from '../gateway/common.ts';
import { CONSOLE_USER } from '../gateway/i2pd.ts';
import { i2pdTunnelName, onionDir } from '../gateway/publish.ts';
import { restartCommand } from './install.ts';
import { CLIENT_NETVM, FORMULA, FORMULA_ROOT, PUBLISH_POLICY, STATE } from './names.ts';

/** Section headings the rpm scriptlets look for (`sed -n '/^## After an upgrade/,/^## /p'`). */
export const README_SECTIONS = { upgrade: '## After an upgrade', remove: '## Remove' } as const;

export function dom0Commands(c: GatewayConfig): string[] {
  const q = c.qubes;
  return [
    `sudo qubesctl --show-output state.sls ${STATE.clone}`,
    `sudo qubesctl --show-output --skip-dom0 --targets=${q.template} state.sls ${STATE.install}`,
    `sudo qubesctl --show-output state.sls ${STATE.create}`,
    `sudo qubesctl --show-output state.sls ${STATE.clients}`,
    `sudo qubesctl --show-output state.sls ${STATE.publish}`,
  ];
}

/**
 * How dom0 asks the gateway whether it works: `qubes-i2p-gateway status` in the gateway (the template package's
 * command). As the qube's default user; the checks that need root there say so, and `-u root` runs them too.
 */
export function dom0StatusCommand(c: GatewayConfig, root = false): string {
  return `qvm-run -p --no-gui ${root ? '-u root ' : ''}${c.qubes.gateway} 'qubes-i2p-gateway status'`;
}

export function removeCommand(): string {
  return `sudo qubesctl --show-output state.sls ${STATE.remove}`;
}

/** The README's walk-through of the published services (config `publish`), or how to start one. */
function publishSection(c: GatewayConfig, step: string): string {
  const q = c.qubes;
  const services = publishedServices(c);
  const example = services[0] ?? { name: 'wiki', qube: 'webapp', port: 8080, i2p: true, onion: false, listen: 28080 };
  const onion = services.find((s) => s.onion);
  const i2p = services.find((s) => s.i2p);
  const indent = (text: string): string => text.split('\n').map((l) => (l === '' ? '' : `   ${l}`)).join('\n');
  const listed =
    services.length === 0
      ? `Nothing is published (config \`publish\` is empty); this state removes the policy file if an earlier build wrote one.
To publish a web application that runs in a qube of its own, say \`${example.qube}\` on port ${example.port}, add to the config

    publish:
      - { name: ${example.name}, qube: ${example.qube}, port: ${example.port} }   # i2p: true by default; onion: true needs Tor

and rebuild; then follow the steps below.`
      : `Published, each through a loopback listener of its own in \`${q.gateway}\`:

${services.map((s) => `- \`${s.name}\`: qube \`${s.qube}\`, port ${s.port}${s.i2p ? ', an I2P site' : ''}${s.onion ? ', an onion service' : ''}`).join('\n')}`;
  return `${step}. Publish web applications of service qubes through \`${q.gateway}\` (config \`publish\`).

${indent(listed)}

   The service qube must have no netvm (any outgoing request of its application would reveal your address): this
   state sets each service qube's netvm to none first (\`qvm-prefs ${example.qube} netvm ''\`), and fails, writing no
   policy, while the qube does not exist (\`qvm-create --label red ${example.qube}\`); unpublishing leaves it without
   one. A service qube cannot also be a client (a config error). Its application listens on its own
   127.0.0.1:${example.port}. The gateway reaches it only through qrexec: this state then
   writes \`${PUBLISH_POLICY}\`, which allows \`${q.gateway}\` exactly \`qubes.ConnectTCP +<port>\` to each
   service's qube and nothing more (a call starts the qube if it is not running):

       ${dom0Commands(c)[4]}

   The listeners, the I2P tunnels and the onion services are in the gateway package: after a rebuild, install it into
   \`${q.template}\` again (step 2) and restart \`${q.gateway}\` (\`qvm-shutdown --wait ${q.gateway}; qvm-start ${q.gateway}\`).
   The addresses, in a terminal of \`${q.gateway}\` (or from dom0: \`qvm-run --pass-io ${q.gateway} '…'\`):

   - I2P: i2pd makes the site's keys at its first start (\`/var/lib/i2pd/${i2pdTunnelName((i2p ?? example).name)}.dat\`, kept
     across reboots, never in the template); its \`.b32.i2p\` address is on the console's tunnels page,
     \`curl -s -u ${CONSOLE_USER}:"$(sudo cat ${PATHS.consolePassword})" 'http://127.0.0.1:7070/?page=i2p_tunnels'\`.
     Other routers find the site once i2pd has integrated (minutes).
   - Onion: \`sudo cat ${onionDir((onion ?? example).name)}/hostname\`${c.tor.enabled ? '' : ' (Tor is off in this build: no onion services)'}.

   The application sees the Host header the visitor sent (its \`.b32.i2p\` or \`.onion\` name) and no header that
   reveals the visitor, except what i2pd adds to I2P visits: \`X-I2P-DestB32\`, \`X-I2P-DestHash\`, \`X-I2P-DestB64\`,
   the visitor's I2P destination (never a network address). To withdraw every service, apply
   \`sudo qubesctl --show-output state.sls ${STATE.unpublish}\` (or empty \`publish\` and apply this state again).
`;
}

export function renderDom0Readme(c: GatewayConfig): RenderedFile {
  const q = c.qubes;
  const steps = dom0Commands(c);
  const clients = q.clients.length > 0 ? q.clients.join(', ') : undefined;
  const text = `# i2p-gateway formula (dom0)

Builds the transparent I2P${c.tor.enabled ? ' + Tor' : ''} gateway qube \`${q.gateway}\`, for Qubes OS 4.3 with a Debian ${c.debian.release === 'trixie' ? '13 (trixie)' : '12 (bookworm, no longer supported by Qubes)'} template.
Formula files: \`${FORMULA_ROOT}/${FORMULA}/\`.

## Apply, in this order

1. Clone \`${q.sourceTemplate}\` to \`${q.template}\` (installs the source template if missing):

       ${steps[0]}

2. Install the gateway package into the template (it arrives with this formula; nothing runs in the template):

       ${steps[1]}

   It also disables Debian's own units of the daemons it installs (${disabledUnits(c).join(', ')}): the gateway
   starts them itself, and none of them starts in the template or another qube should the package be removed.
   If you want one of them elsewhere, \`systemctl enable\` it in a template of its own. A switch of
   \`i2p.router\` purges the other router only once the new package and router are installed.

3. Create \`${q.gateway}\` (network-providing, netvm \`${q.netvm}\`, qvm-service \`${q.service}\`):

       ${steps[2]}

4. Point the client qubes at it${clients !== undefined ? ` (${clients})` : ` (none configured: set a qube's netvm to ${q.gateway} by hand)`}:

       ${steps[3]}

   When a client runs, this starts \`${q.gateway}\` first (Qubes cannot attach a running qube to a halted netvm).
   Each client's netvm from before is kept in its feature \`${CLIENT_NETVM.feature}\` for the removal.
   Each client's \`qvm-firewall\` gets one rule first, \`action=drop comment=qubes-i2p-gateway-fail-closed\`: with the
   gateway package \`${q.gateway}\` forwards nothing, so the rule never applies; should the package leave
   \`${q.template}\`, \`${q.gateway}\` is a plain Qubes router, and the rule keeps the client off the clear net.
   The removal deletes it; the client's own rules stay after it. A qube pointed at \`${q.gateway}\` by hand has none.

${publishSection(c, '5')}
6. Check the gateway: one line per part (the qube, its firewall, each daemon, Tor, the I2P router, DNS, a leak
   self-test, each published service with its addresses and whether its application answers), each OK, WAIT (still starting) or FAIL, and the fix for anything not OK; exit status 0 all OK,
   1 still starting, 2 broken, 3 some checks left out:

       ${dom0StatusCommand(c)}

   The firewall and Tor's progress can be read by root only: those lines say so, and the same command with
   \`-u root\` checks them too (\`${dom0StatusCommand(c, true)}\`). A new gateway's I2P router needs some
   minutes to integrate into the network: its line says WAIT until then.

Or steps 1-3 (and 5) at once, then step 4:

    sudo qubesctl top.enable ${FORMULA}
    sudo qubesctl --show-output --targets=${q.template} state.apply
    ${steps[3]}

Every state is safe to run again: a second run reports no changes.

${README_SECTIONS.upgrade}

A new build (another config, or a newer qubes-i2p-gateway) has a newer version; after \`sudo dnf upgrade ./<new>.rpm\`
(or \`dnf install\`), apply the states again, in the same order:

    ${steps[1]}
    ${steps[2]}
    ${steps[3]}
    ${steps[4]}

The first puts the new gateway package into \`${q.template}\` (its output says so when it changed it); the others
bring \`${q.gateway}\`, the clients and the published services' qrexec policy to the new config. A running \`${q.gateway}\` keeps the gateway files it
started with (its root file system is the template's as it was then): restart it to use the new ones, once
\`${q.template}\` has shut down (qubesctl shuts a template down after applying, unless it was running before):

    ${restartCommand(c)}

Its client qubes have no network meanwhile (the gateway fails closed) and are reconnected when it is back.

## Remove

Removing the package (\`sudo dnf remove qubes-mgmt-salt-i2p-gateway\`) changes no qube: it disables the tops and
leaves \`${q.gateway}\`, \`${q.template}\` and the clients as they are (this section is printed then, so it stays on
your screen). To take the qubes away too, run the removal state while the package is installed (if it is gone
already: install it again, or follow "By hand" below):

    sudo qubesctl top.disable ${FORMULA}
    ${removeCommand()}

That puts each client${clients !== undefined ? ` (${clients})` : ''} back on the netvm it had before (the feature
\`${CLIENT_NETVM.feature}\`; no netvm at all when none was recorded, never the clear net by guess), removes the published services' qrexec
policy (\`${PUBLISH_POLICY}\`, if a build wrote one), then removes \`${q.gateway}\` and then
\`${q.template}\`; \`${q.sourceTemplate}\` stays. It is safe to run twice. It stops before removing \`${q.gateway}\`
while another qube still uses it as netvm: \`qvm-ls --raw-data --fields name,netvm | grep '|${q.gateway}$'\` lists them.

By hand, with the package already gone:

    qvm-features CLIENT ${CLIENT_NETVM.feature}    # the client's netvm before ${q.gateway}, if recorded
    qvm-prefs CLIENT netvm QUBE    # that netvm; for *default*: qvm-prefs --default CLIENT netvm; none recorded: qvm-prefs CLIENT netvm ''
    qvm-features --unset CLIENT ${CLIENT_NETVM.feature}
    qvm-firewall CLIENT del action=drop comment=qubes-i2p-gateway-fail-closed    # the fail-closed rule
    sudo rm -f ${PUBLISH_POLICY}    # the published services' qrexec policy, if a build wrote one
    qvm-shutdown --wait --force ${q.gateway}
    qvm-remove ${q.gateway}
    qvm-remove ${q.template}
`;
  return textFile('README.md', text);
}
