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
 *
 * An unknown form is an error, so a script that used one the stand-in does not model fails its test.
 * Bundled by apply.ts with esbuild into a temporary .mjs (this file's main runs only there).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { FakeDom0, QubesError } from './dom0-fake.ts';

export function qvmTool(dom0: FakeDom0, tool: string, argv: readonly string[]): { code: number; stdout: string; stderr: string } {
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
