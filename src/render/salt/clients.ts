/**
 * i2p-gateway/clients.sls (dom0): each configured app qube's netvm set to the gateway.
 *
 * - Qubes refuses to attach a running qube to a halted netvm ("Cannot dynamically attach to stopped qube"), and
 *   the gateway is halted after create.sls (autostart is off by default, and nothing starts it). So when any
 *   client runs, the gateway is started first; when none runs, nothing starts (a halted client's netvm is only
 *   a setting, and Qubes starts the gateway with the client later).
 * - Before a client is pointed at the gateway, its netvm is recorded in one of its features (salt/client-netvm),
 *   so i2p-gateway.remove can give it back.
 * - Before it too, the client's qvm-firewall gets one rule first, drop (salt/client-netvm close): Qubes applies
 *   a client's firewall in its netvm's forward path. The gateway package redirects all of a client's traffic to
 *   the gateway's daemons and forwards nothing, so the rule never sees a packet; a gateway qube whose template
 *   lost the package (removed by hand, or by apt with tor, i2pd or dnsmasq-base) is a plain Qubes router, and
 *   then its qubes-firewall drops the client's traffic instead of routing it to the clear net. This holds outside
 *   the package, in dom0's settings. i2p-gateway.remove deletes the rule; the client's own rules stay after it.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { CLIENT_NETVM, FORMULA, ID, STATE } from './names.ts';
import { slsText } from './yaml.ts';

/** `onlyif` for the gateway's start: true when any client runs (qvm-check --running exits 0 for a running qube). */
export function anyClientRuns(clients: readonly string[]): string {
  return clients.map((c) => `qvm-check --running ${c}`).join(' || ');
}

export function renderClients(c: GatewayConfig): RenderedFile {
  const q = c.qubes;
  const data: Record<string, unknown> = { include: [STATE.create] };
  if (q.clients.length > 0) {
    data[ID.startForClients] = {
      'qvm.vm': [{ name: q.gateway }, { start: [] }, { onlyif: anyClientRuns(q.clients) }, { require: [{ qvm: ID.qube }] }],
    };
  }
  for (const client of q.clients) {
    data[ID.clientRecord(client)] = {
      'cmd.script': [
        // cmd.script's name is "command args...": the command word is not used, the rest are the arguments.
        { name: `client-netvm record ${client} ${q.gateway}` },
        { source: CLIENT_NETVM.source },
        { stateful: true },
        { require: [{ qvm: ID.qube }] },
      ],
    };
    data[ID.clientClosed(client)] = {
      'cmd.script': [{ name: `client-netvm close ${client} ${q.gateway}` }, { source: CLIENT_NETVM.source }, { stateful: true }, { require: [{ qvm: ID.qube }] }],
    };
    data[ID.client(client)] = {
      'qvm.prefs': [
        { name: client },
        { netvm: q.gateway },
        { require: [{ qvm: ID.startForClients }, { cmd: ID.clientRecord(client) }, { cmd: ID.clientClosed(client) }] },
      ],
    };
  }
  // I2P applications for one client qube each (i2p.apps): the gateway learns the granted qube's address from its own
  // qubesdb, where this writes it (a vm-config feature of the gateway); an app granted to nobody is unset.
  for (const app of ['sam', 'i2cp', 'socks', 'irc'] as const) {
    const qube = c.i2p.apps[app].length > 0 ? c.i2p.apps[app].join(',') : undefined;
    data[ID.appGrant(app)] = {
      'cmd.script': [
        { name: qube !== undefined ? `client-netvm grant-${app} ${qube} ${q.gateway}` : `client-netvm revoke-${app} - ${q.gateway}` },
        { source: CLIENT_NETVM.source },
        { stateful: true },
        { require: [{ qvm: ID.qube }] },
      ],
    };
  }
  const note =
    q.clients.length === 0
      ? ["No client qubes are configured (qubes.clients): set a qube's netvm to the gateway by hand, or list it."]
      : [
          `Clients: ${q.clients.join(', ')}.`,
          `If any of them runs, ${q.gateway} is started first: Qubes cannot attach a running qube to a halted netvm.`,
          `Each client's netvm from before is kept in its feature ${CLIENT_NETVM.feature}, for ${STATE.remove}.`,
          `Each client's qvm-firewall gets a first rule "drop" (comment qubes-i2p-gateway-fail-closed): ${q.gateway} with`,
          'the gateway package never forwards, so the rule never applies; without the package it drops instead of routing.',
        ];
  return textFile(
    `${FORMULA}/clients.sls`,
    slsText(
      [
        `${STATE.clients} (dom0): point the client qubes' netvm at ${q.gateway}.`,
        `Run: sudo qubesctl state.sls ${STATE.clients}`,
        ...note,
      ],
      data,
    ),
  );
}
