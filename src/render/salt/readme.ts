/** The formula's README for dom0: the commands, in the order that never exposes a half-built gateway. */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { FORMULA, FORMULA_ROOT, STATE } from './names.ts';

export function dom0Commands(c: GatewayConfig): string[] {
  const q = c.qubes;
  return [
    `sudo qubesctl --show-output state.sls ${STATE.clone}`,
    `sudo qubesctl --show-output --skip-dom0 --targets=${q.template} state.sls ${STATE.install}`,
    `sudo qubesctl --show-output state.sls ${STATE.create}`,
    `sudo qubesctl --show-output state.sls ${STATE.clients}`,
  ];
}

/**
 * How dom0 asks the gateway whether it works: `qubes-i2p-gateway status` in the gateway (the template package's
 * command). As the qube's default user; the checks that need root there say so, and `-u root` runs them too.
 */
export function dom0StatusCommand(c: GatewayConfig, root = false): string {
  return `qvm-run -p --no-gui ${root ? '-u root ' : ''}${c.qubes.gateway} 'qubes-i2p-gateway status'`;
}

export function renderDom0Readme(c: GatewayConfig): RenderedFile {
  const q = c.qubes;
  const steps = dom0Commands(c);
  const text = `# i2p-gateway formula (dom0)

Builds the transparent I2P${c.tor.enabled ? ' + Tor' : ''} gateway qube \`${q.gateway}\`.
Formula files: \`${FORMULA_ROOT}/${FORMULA}/\`.

## Apply, in this order

1. Clone \`${q.sourceTemplate}\` to \`${q.template}\` (installs the source template if missing):

       ${steps[0]}

2. Install the gateway package into the template (it arrives with this formula; nothing runs in the template):

       ${steps[1]}

3. Create \`${q.gateway}\` (network-providing, netvm \`${q.netvm}\`, qvm-service \`${q.service}\`):

       ${steps[2]}

4. Point the client qubes at it${q.clients.length > 0 ? ` (${q.clients.join(', ')})` : ' (none configured: set a qube\'s netvm to ' + q.gateway + ' by hand)'}:

       ${steps[3]}

5. Check the gateway: one line per part (the qube, its firewall, each daemon, Tor, the I2P router, DNS, a leak
   self-test), each OK, WAIT (still starting) or FAIL, and the fix for anything not OK; exit status 0 all OK,
   1 still starting, 2 broken, 3 some checks left out:

       ${dom0StatusCommand(c)}

   The firewall and Tor's progress can be read by root only: those lines say so, and the same command with
   \`-u root\` checks them too (\`${dom0StatusCommand(c, true)}\`). A new gateway's I2P router needs some
   minutes to integrate into the network: its line says WAIT until then.

Or steps 1-3 at once, then step 4:

    sudo qubesctl top.enable ${FORMULA}
    sudo qubesctl --show-output --targets=${q.template} state.apply
    ${steps[3]}

Every state is safe to run again: a second run reports no changes.

## Remove

Removing the package (\`sudo dnf remove qubes-mgmt-salt-i2p-gateway\`) disables the top but leaves the qubes in
place. To remove them too, point the clients elsewhere, then remove the gateway and its template:

    qvm-prefs CLIENT netvm sys-firewall     # for each client
    qvm-shutdown --wait ${q.gateway}
    qvm-remove ${q.gateway}
    qvm-remove ${q.template}
`;
  return textFile('README.md', text);
}
