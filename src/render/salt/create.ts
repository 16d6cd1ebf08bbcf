/**
 * i2p-gateway/create.sls (dom0): the network-providing gateway qube, its prefs, its qvm-service and features.
 *
 * `present` creates the qube only when missing; `prefs` then makes an existing one match, so edits to the
 * config take effect on the next run. Values are typed as qvm.prefs compares them (memory: 400, not "400"),
 * so a second run reports no changes.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { FORMULA, ID, STATE } from './names.ts';
import { slsText } from './yaml.ts';

export function renderCreate(c: GatewayConfig): RenderedFile {
  const q = c.qubes;
  const data = {
    include: [STATE.clone],
    [ID.qube]: {
      'qvm.vm': [
        { name: q.gateway },
        // qvm.present takes `mem`, not `memory`, and reports success without a label although qvm-create refused.
        { present: [{ template: q.template }, { label: q.label }, { mem: q.memory }] },
        {
          prefs: [
            { template: q.template },
            { label: q.label },
            { memory: q.memory },
            { maxmem: q.maxmem },
            { vcpus: q.vcpus },
            { netvm: q.netvm },
            { 'provides-network': true },
            { autostart: q.autostart },
          ],
        },
        { service: [{ enable: [q.service] }] },
        { features: [{ enable: ['servicevm'] }] },
        { require: [{ qvm: ID.template }] },
      ],
    },
  };
  return textFile(
    `${FORMULA}/create.sls`,
    slsText(
      [
        `${STATE.create} (dom0): create ${q.gateway} from ${q.template}, providing network, with qvm-service ${q.service}.`,
        `Run: sudo qubesctl state.sls ${STATE.create}`,
        `Install the package into ${q.template} (${STATE.install}) before you start ${q.gateway}.`,
      ],
      data,
    ),
  );
}
