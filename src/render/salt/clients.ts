/** i2p-gateway/clients.sls (dom0): each configured app qube's netvm set to the gateway. */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { FORMULA, ID, STATE } from './names.ts';
import { slsText } from './yaml.ts';

export function renderClients(c: GatewayConfig): RenderedFile {
  const q = c.qubes;
  const data: Record<string, unknown> = { include: [STATE.create] };
  for (const client of q.clients) {
    data[ID.client(client)] = {
      'qvm.prefs': [{ name: client }, { netvm: q.gateway }, { require: [{ qvm: ID.qube }] }],
    };
  }
  const note =
    q.clients.length === 0
      ? 'No client qubes are configured (qubes.clients): set a qube\'s netvm to the gateway by hand, or list it.'
      : `Clients: ${q.clients.join(', ')}.`;
  return textFile(
    `${FORMULA}/clients.sls`,
    slsText(
      [
        `${STATE.clients} (dom0): point the client qubes' netvm at ${q.gateway}.`,
        `Run: sudo qubesctl state.sls ${STATE.clients}`,
        note,
      ],
      data,
    ),
  );
}
