/**
 * i2p-gateway/remove.sls (dom0): undo what the other states did, in the one order Qubes accepts.
 *
 * The removal is one list of steps (REMOVE_STEPS), run in order: every state of a step requires every state of
 * the step before it, so a failure stops what comes after (a gateway still in use is never removed, its template
 * never before it). Another state's cleanup (a qrexec policy of i2p-gateway.publish, say) is one more entry in the
 * list, at its place: before the qubes that it refers to are removed.
 *
 * 1. clients: each configured client that still uses the gateway gets back the netvm recorded by clients.sls
 *    (no netvm when none was recorded: the client was on the gateway before clients.sls, and the system default
 *    may be the clear net it was kept from), that netvm started first when the client runs.
 * 2. the published services' qrexec policy (i2p-gateway.publish): removed, so the gateway reaches no service qube
 *    any more, whatever build wrote it (the step runs with `publish` empty too).
 * 3. the gateway qube: shut down and removed. Qubes refuses while any qube (a client wired by hand, say) still
 *    uses it as netvm: the state fails and names nothing, so the README says how to find them.
 * 4. its template: removed; Qubes refuses while a qube is based on it.
 *
 * The source template (qubes.sourceTemplate) stays: other qubes may use it, and qvm-template installs it again
 * in a minute. Every step is a no-op once done, so the state is safe to apply twice.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { CLIENT_NETVM, FORMULA, ID, PUBLISH_POLICY, STATE } from './names.ts';
import { slsText } from './yaml.ts';

/** One Salt state: its id, its function (`qvm.vm`, `cmd.script`) and its arguments, without requisites. */
export interface SlsState {
  readonly id: string;
  readonly fn: string;
  readonly args: readonly Record<string, unknown>[];
}

export interface RemoveStep {
  /** One line for the file's header. */
  readonly what: (c: GatewayConfig) => string;
  readonly states: (c: GatewayConfig) => readonly SlsState[];
}

export const REMOVE_STEPS: readonly RemoveStep[] = [
  {
    what: (c) => `Clients back on their netvm from before ${c.qubes.gateway} (recorded by ${STATE.clients}; none recorded: no netvm).`,
    states: (c) =>
      c.qubes.clients.map((client) => ({
        id: ID.clientRestore(client),
        fn: 'cmd.script',
        args: [{ name: `client-netvm restore ${client} ${c.qubes.gateway}` }, { source: CLIENT_NETVM.source }, { stateful: true }],
      })),
  },
  {
    what: (c) => `The published services' qrexec policy removed (${PUBLISH_POLICY}): ${c.qubes.gateway} reaches no service qube.`,
    states: () => [{ id: ID.removePublishPolicy, fn: 'file.absent', args: [{ name: PUBLISH_POLICY }] }],
  },
  {
    what: (c) => `${c.qubes.gateway} shut down and removed (Qubes refuses while a qube still uses it as netvm).`,
    states: (c) => [{ id: ID.removeQube, fn: 'qvm.vm', args: [{ name: c.qubes.gateway }, { absent: [] }] }],
  },
  {
    what: (c) => `${c.qubes.template} removed (Qubes refuses while a qube is based on it); ${c.qubes.sourceTemplate} stays.`,
    states: (c) => [{ id: ID.removeTemplate, fn: 'qvm.vm', args: [{ name: c.qubes.template }, { absent: [] }] }],
  },
];

/** The steps as Salt data: each state requires every state of the nearest earlier step that has any. */
export function removeStates(c: GatewayConfig, steps: readonly RemoveStep[] = REMOVE_STEPS): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  let previous: readonly SlsState[] = [];
  for (const step of steps) {
    const states = step.states(c);
    for (const s of states) {
      const require = previous.map((p) => ({ [p.fn.split('.')[0]!]: p.id }));
      data[s.id] = { [s.fn]: [...s.args, ...(require.length > 0 ? [{ require }] : [])] };
    }
    if (states.length > 0) previous = states;
  }
  return data;
}

export function renderRemove(c: GatewayConfig): RenderedFile {
  return textFile(
    `${FORMULA}/remove.sls`,
    slsText(
      [
        `${STATE.remove} (dom0): take the gateway away again, in this order:`,
        ...REMOVE_STEPS.map((s, i) => `  ${i + 1}. ${s.what(c)}`),
        `Run: sudo qubesctl --show-output state.sls ${STATE.remove}   (safe to run again; a failed step stops the later ones)`,
        `Disable enabled tops first (sudo qubesctl top.disable ${FORMULA}), or a later state.apply builds it all again.`,
      ],
      removeStates(c),
    ),
  );
}
