/** i2p-gateway/clone.sls (dom0): the source template installed, then cloned into the gateway's own template. */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { FORMULA, ID, STATE } from './names.ts';
import { slsText } from './yaml.ts';

export function renderClone(c: GatewayConfig): RenderedFile {
  const q = c.qubes;
  const data = {
    [ID.sourceTemplate]: {
      'qvm.template_installed': [{ name: q.sourceTemplate }],
    },
    [ID.template]: {
      'qvm.clone': [{ name: q.template }, { source: q.sourceTemplate }, { require: [{ qvm: ID.sourceTemplate }] }],
    },
  };
  return textFile(
    `${FORMULA}/clone.sls`,
    slsText(
      [
        `${STATE.clone} (dom0): install ${q.sourceTemplate} if missing and clone it to ${q.template}.`,
        `Run: sudo qubesctl state.sls ${STATE.clone}`,
        'Both states skip when their qube already exists, so a second run changes nothing.',
      ],
      data,
    ),
  );
}
