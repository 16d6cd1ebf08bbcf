/**
 * The tops: one per state, and init.top targeting dom0 and the template at once.
 *
 * init.top leaves out the clients on purpose: qubesctl runs dom0's states before the template's, and pointing a
 * running client at the gateway starts the gateway; started before its template has the package, it would be a
 * plain network qube forwarding in the clear. The clients come last, on their own.
 *
 * init.top does include the published services' policy (publish.sls): it only writes a dom0 file, starts nothing,
 * and with nothing published removes the file.
 */
import { dump } from 'js-yaml';
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { FORMULA, STATE } from './names.ts';

const DOM0 = { match: 'nodegroup' } as const;

function top(path: string, what: string, targets: Record<string, unknown[]>): RenderedFile {
  return textFile(path, `# ${what}\n\n${dump({ base: targets }, { lineWidth: -1, noRefs: true })}`);
}

export function renderTops(c: GatewayConfig): RenderedFile[] {
  const t = c.qubes.template;
  return [
    top(`${FORMULA}/clone.top`, `Enable with: sudo qubesctl top.enable ${STATE.clone}`, { dom0: [DOM0, STATE.clone] }),
    top(`${FORMULA}/install.top`, `Enable with: sudo qubesctl top.enable ${STATE.install}`, { [t]: [STATE.install] }),
    top(`${FORMULA}/create.top`, `Enable with: sudo qubesctl top.enable ${STATE.create}`, { dom0: [DOM0, STATE.create] }),
    top(`${FORMULA}/clients.top`, `Enable with: sudo qubesctl top.enable ${STATE.clients}`, { dom0: [DOM0, STATE.clients] }),
    top(`${FORMULA}/publish.top`, `Enable with: sudo qubesctl top.enable ${STATE.publish}`, { dom0: [DOM0, STATE.publish] }),
    top(
      `${FORMULA}/remove.top`,
      `Takes the gateway away (never together with the other tops).\n# Enable with: sudo qubesctl top.enable ${STATE.remove}; usually run once instead: sudo qubesctl state.sls ${STATE.remove}`,
      { dom0: [DOM0, STATE.remove] },
    ),
    top(
      `${FORMULA}/init.top`,
      `Template, package and gateway qube (not the clients: apply ${STATE.clients} after this has run).\n# Enable with: sudo qubesctl top.enable ${FORMULA}; then: sudo qubesctl --show-output --targets=${t} state.apply`,
      { dom0: [DOM0, STATE.clone, STATE.create, STATE.publish], [t]: [STATE.install] },
    ),
  ];
}
