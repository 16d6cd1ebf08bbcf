/**
 * A stand-in for dom0's qrexec policy evaluation, for the lines our formula writes: Qubes 4.x's format
 * (QubesOS/qubes-core-qrexec, doc/multifile-policy.markdown and qrexec/policy/parser.py):
 * `SERVICE +ARGUMENT SOURCE DESTINATION ACTION [PARAM=VALUE ...]`, `#` comments on lines of their own, files in
 * /etc/qubes/policy.d named `[0-9a-z_.-]+.policy` read in "C" order, the first matching line decides. It knows only
 * what our lines and the default deny use: literal qube names, `@anyvm`, `*` for service or argument, allow and
 * deny; anything else is refused rather than guessed at.
 */
export interface PolicyLine {
  readonly service: string;
  readonly argument: string;
  readonly source: string;
  readonly destination: string;
  readonly action: 'allow' | 'deny';
  readonly params: readonly string[];
}

/** What Qubes 4.3 dom0 ships in 90-default.policy for qubes.ConnectTCP (qubes-core-admin, qubes-rpc-policy/). */
export const DEFAULT_CONNECT_TCP = 'qubes.ConnectTCP * @anyvm @anyvm deny\n';

export const POLICY_FILE_NAME = /^[0-9a-z_.-]+\.policy$/;

export function parsePolicy(text: string): PolicyLine[] {
  const out: PolicyLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (raw.includes('#')) throw new Error(`line ${i + 1}: inline comments are not allowed: ${raw}`);
    const [service, argument, source, destination, action, ...params] = line.split(/\s+/);
    if (service === undefined || argument === undefined || source === undefined || destination === undefined || action === undefined) {
      throw new Error(`line ${i + 1}: expected SERVICE ARGUMENT SOURCE DESTINATION ACTION: ${raw}`);
    }
    if (!(argument === '*' || argument.startsWith('+'))) throw new Error(`line ${i + 1}: argument must be * or +ARG: ${argument}`);
    if (service === '*' && argument !== '*') throw new Error(`line ${i + 1}: service * needs argument *`);
    if (action !== 'allow' && action !== 'deny') throw new Error(`line ${i + 1}: this stand-in knows allow and deny only, not ${action}`);
    for (const q of [source, destination]) {
      if (q.startsWith('@') && q !== '@anyvm') throw new Error(`line ${i + 1}: this stand-in knows literal names and @anyvm only, not ${q}`);
    }
    if (action === 'deny' && params.length > 0) throw new Error(`line ${i + 1}: deny takes no parameters`);
    out.push({ service, argument, source, destination, action, params });
  });
  return out;
}

/** The decision for a call `qrexec-client-vm TARGET SERVICE+ARG` from SOURCE, over files in their order. */
export function evaluate(files: readonly string[], call: { source: string; target: string; service: string; argument: string }): 'allow' | 'deny' {
  for (const text of files) {
    for (const l of parsePolicy(text)) {
      const serviceOk = l.service === '*' || l.service === call.service;
      const argOk = l.argument === '*' || l.argument === `+${call.argument}`;
      const srcOk = l.source === call.source || (l.source === '@anyvm' && call.source !== 'dom0');
      // A literal destination matches the name the caller gave; @anyvm any qube but dom0 (and not @default).
      const dstOk = l.destination === call.target || (l.destination === '@anyvm' && call.target !== 'dom0' && !call.target.startsWith('@') && call.target !== '');
      if (serviceOk && argOk && srcOk && dstOk) return l.action;
    }
  }
  return 'deny';
}
