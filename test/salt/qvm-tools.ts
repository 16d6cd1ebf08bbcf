/**
 * Stand-ins for dom0's qvm-check, qvm-prefs, qvm-features, qubes-prefs and qvm-start, for the scripts our states
 * run (salt/client-netvm, `onlyif:` commands). One program, called by the name it is invoked as; it loads the
 * FakeDom0 from $QIG_FAKE_DOM0 (JSON), acts on it with the fake's rules, and writes it back. The options and
 * outputs are those of qubes-core-admin-client's tools (qubesadmin/tools/qvm_*.py) for the forms the scripts use:
 *
 *   qvm-check [--running] [-q] VM...     exit 0 if all exist (and run), 1 if none, 3 if some; prints nothing
 *   qvm-prefs [--hide-default] VM PROP   prints the value (nothing for none; nothing for a default with
 *                                        --hide-default); qvm-prefs VM PROP VALUE sets; --default VM PROP resets
 *   qvm-features VM FEATURE [VALUE]      prints the value, exit 1 when unset; sets; --unset VM FEATURE
 *   qubes-prefs PROP                     prints a global property
 *   qvm-start VM                         starts it (and its netvm); an error if it runs
 *   qvm-firewall --raw VM list           prints the rules, one raw rule a line (Qubes' default: action=accept)
 *   qvm-firewall VM add [--before N] RULE...   inserts the rule (its words joined) at N, else appends it
 *   qvm-firewall VM del RULE...          removes the first equal rule (an error when there is none)
 *
 * An unknown form is an error, so a script that used one the stand-in does not model fails its test.
 * Bundled by apply.ts with esbuild into a temporary .mjs (this file's main runs only there).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { FakeDom0, QubesError } from './dom0-fake.ts';

export function qvmTool(dom0: FakeDom0, tool: string, argv: readonly string[]): { code: number; stdout: string; stderr: string } {
  if (tool === 'qvm-firewall') return qvmFirewall(dom0, argv);
  const flags = argv.filter((a) => a.startsWith('-'));
  const args = argv.filter((a) => !a.startsWith('-') || a === '');
  const out = (stdout: string, code = 0): { code: number; stdout: string; stderr: string } => ({ code, stdout, stderr: '' });
  const usage = (): never => {
    throw new QubesError(`${tool}: the stand-in does not model ${JSON.stringify(argv)}`);
  };
  const known = (allowed: readonly string[]): void => {
    for (const f of flags) if (!allowed.includes(f)) usage();
  };
  try {
    switch (tool) {
      case 'qvm-check': {
        known(['--running', '-q', '--quiet']);
        if (args.length === 0) usage();
        const ok = args.filter((n) => dom0.has(n) && (!flags.includes('--running') || dom0.isRunning(n)));
        return out('', ok.length === args.length ? 0 : ok.length === 0 ? 1 : 3);
      }
      case 'qvm-prefs': {
        known(['--hide-default', '--default', '-D']);
        const [vm, prop, value] = args;
        if (vm === undefined || prop === undefined || args.length > 3) usage();
        const key = prop!.replace(/_/g, '-');
        dom0.get(vm!);
        if (flags.includes('--default') || flags.includes('-D')) {
          if (value !== undefined) usage();
          dom0.setPref(vm!, key, '*default*');
          return out('');
        }
        if (value !== undefined) {
          dom0.setPref(vm!, key, value.toLowerCase() === 'none' ? '' : value);
          return out('');
        }
        if (flags.includes('--hide-default') && !(key in dom0.get(vm!).prefs)) return out('');
        const v = dom0.effectivePref(vm!, key);
        return out(v === '' ? '' : `${v}\n`);
      }
      case 'qvm-features': {
        known(['--unset', '--default', '--delete', '-D']);
        const [vm, feature, value] = args;
        if (vm === undefined || feature === undefined || args.length > 3) usage();
        if (flags.length > 0) {
          if (value !== undefined) throw new QubesError('qvm-features: error: cannot both set and unset a value');
          dom0.unsetFeature(vm!, feature!);
          return out('');
        }
        if (value !== undefined) {
          dom0.setFeature(vm!, feature!, value);
          return out('');
        }
        const v = dom0.getFeature(vm!, feature!);
        return v === undefined ? out('', 1) : out(`${v}\n`);
      }
      case 'qubes-prefs': {
        known([]);
        if (args.length !== 1) usage();
        const v = dom0.global[args[0]!.replace(/-/g, '_')];
        if (v === undefined) throw new QubesError(`qubes-prefs: error: no such property: '${args[0]!}'`);
        return out(v === '' ? '' : `${v}\n`);
      }
      case 'qvm-start': {
        known([]);
        if (args.length !== 1) usage();
        dom0.start(args[0]!);
        return out('');
      }
      default:
        return { code: 127, stdout: '', stderr: `${tool}: not modelled by the stand-in\n` };
    }
  } catch (e) {
    if (e instanceof QubesError) return { code: e.message.startsWith('no such domain') ? 2 : 1, stdout: '', stderr: `${tool}: error: ${e.message}\n` };
    throw e;
  }
}

/** qubes-core-admin-client release4.3 qubesadmin/tools/qvm_firewall.py, for the forms salt/client-netvm uses. */
function qvmFirewall(dom0: FakeDom0, argv: readonly string[]): { code: number; stdout: string; stderr: string } {
  const fail = (msg: string, code = 1): { code: number; stdout: string; stderr: string } => ({ code, stdout: '', stderr: `qvm-firewall: error: ${msg}\n` });
  const raw = argv[0] === '--raw';
  const [vm, command, ...rest] = raw ? argv.slice(1) : argv;
  if (vm === undefined || !dom0.has(vm)) return fail(`no such domain: '${vm ?? ''}'`, 2);
  const rules = dom0.firewallRules(vm);
  if (command === 'list' && rest.length === 0) return { code: 0, stdout: raw ? rules.map((r) => `${r}\n`).join('') : usage('table listing'), stderr: '' };
  if (raw) return fail(`the stand-in does not model ${JSON.stringify(argv)}`);
  if (command === 'add') {
    let at = rules.length;
    let words = rest;
    if (words[0] === '--before') {
      at = Number(words[1]);
      words = words.slice(2);
    }
    if (words.length === 0 || !Number.isInteger(at)) return fail(`the stand-in does not model ${JSON.stringify(argv)}`);
    rules.splice(at, 0, words.join(' '));
    dom0.setFirewall(vm, rules, `qvm-firewall ${argv.join(' ')}`);
    return { code: 0, stdout: '', stderr: '' };
  }
  if (command === 'del' && rest.length > 0 && !rest[0]!.startsWith('-')) {
    const i = rules.indexOf(rest.join(' '));
    if (i < 0) return fail('list.remove(x): x not in list');
    rules.splice(i, 1);
    dom0.setFirewall(vm, rules, `qvm-firewall ${argv.join(' ')}`);
    return { code: 0, stdout: '', stderr: '' };
  }
  return fail(`the stand-in does not model ${JSON.stringify(argv)}`);
}

function usage(what: string): never {
  throw new Error(`qvm-firewall stand-in: ${what} is not modelled`);
}

/** The bundled program's entry: argv[2] is the tool name (the wrapper scripts pass it). */
export function main(): void {
  const statePath = process.env['QIG_FAKE_DOM0'];
  if (statePath === undefined) throw new Error('QIG_FAKE_DOM0 is not set');
  const dom0 = FakeDom0.fromJSON(JSON.parse(readFileSync(statePath, 'utf8')) as Parameters<typeof FakeDom0.fromJSON>[0]);
  const [tool, ...argv] = process.argv.slice(2);
  const r = qvmTool(dom0, tool ?? '', argv);
  writeFileSync(statePath, JSON.stringify(dom0.toJSON()));
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  process.exitCode = r.code;
}
