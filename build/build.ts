/**
 * The command line: `npm run build` renders the gateway into dist/; `npm run validate` only checks a config.
 * Wires config loading, the pure pipeline and the atomic writer together; nothing else lives here.
 */
import { dirname, resolve, isAbsolute } from 'node:path';
import { parseArgs } from 'node:util';
import { formatIssues, formatWarnings } from '../src/config/format.ts';
import { parseConfigText, readConfigFile, type LoadResult } from '../src/config/load.ts';
import { ROUTERS } from '../src/config/routers.ts';
import { checkRepoKeyring } from '../src/render/gateway/keyring.ts';
import type { GatewayConfig } from '../src/config/schema.ts';
import { resolveBuildTimes } from '../src/epoch.ts';
import { InputFileError, readRegularFile } from '../src/io/read.ts';
import { writeTreeAtomically } from '../src/io/atomic.ts';
import { PROJECT_ROOT, readStaticSources } from '../src/io/static.ts';
import { build } from '../src/pipeline.ts';

const USAGE = `Usage:
  npm run build -- [--config FILE] [--out DIR] [--keyring FILE]
  npm run validate -- [--config FILE]

Builds the Qubes I2P + Tor gateway from one YAML file (all settings have defaults; with no --config the
defaults are used) into DIR (default: dist/): the dom0 Salt formula, the template .deb and the dom0 .rpm.

Options:
  --config FILE    the gateway config (YAML; see examples/gateway.yaml)
  --out DIR        where to write (default: dist). Written atomically: a failed build leaves DIR as it was.
  --keyring FILE   the I2P repository keyring, for i2p.router: i2p (overrides i2p.keyring)
  --help           this text

Exit status: 0 built (or valid), 2 the config or the command line is wrong (nothing written), 1 the build failed.
Environment: SOURCE_DATE_EPOCH sets every time stamp and the version's times (default: the latest of the last
commit's time and the config's and keyring's modification times; see README, "Versions").`;

/** The I2P keyring is 14 KiB; a keyring larger than this is not the one, and is never read past it. */
const MAX_KEYRING_BYTES = 64 * 1024;

class UsageError extends Error {}

function loadConfig(path: string | undefined): { result: LoadResult; name: string; source?: string; mtimeSeconds?: number } {
  if (path === undefined) return { result: parseConfigText(''), name: '(defaults)' };
  const { source, mtimeSeconds, ...result } = readConfigFile(path);
  return {
    result,
    name: path,
    ...(source === undefined ? {} : { source }),
    ...(mtimeSeconds === undefined ? {} : { mtimeSeconds }),
  };
}

function readKeyring(config: GatewayConfig, configPath: string | undefined, flag: string | undefined): { bytes: Uint8Array; mtimeSeconds: number } | undefined {
  const router = ROUTERS[config.i2p.router];
  const given = flag ?? config.i2p.keyring;
  const field = flag !== undefined ? '--keyring' : 'i2p.keyring';
  if (!router.fromI2pRepo) {
    if (flag !== undefined) throw new UsageError(`--keyring: is only used with i2p.router: i2p. Fix: drop --keyring, or set the router to i2p`);
    return undefined;
  }
  if (given === undefined) {
    throw new UsageError(
      'i2p.keyring: router i2p (the Java router) is installed from the I2P apt repository and needs its signing keyring. ' +
        'Fix: fetch https://geti2p.net/_static/i2p-archive-keyring.gpg, then pass --keyring FILE or set i2p.keyring',
    );
  }
  const base = flag !== undefined || configPath === undefined ? process.cwd() : dirname(resolve(configPath));
  const path = isAbsolute(given) ? given : resolve(base, given);
  let read: ReturnType<typeof readRegularFile>;
  try {
    // Only a regular file of at most 64 KiB, read with that cap: a FIFO, /dev/zero or a huge file is refused at once.
    read = readRegularFile(path, MAX_KEYRING_BYTES);
  } catch (e) {
    if (!(e instanceof InputFileError)) throw e;
    throw new UsageError(`${field}: ${JSON.stringify(given)} ${e.message}. Fix: give the path of the I2P repository keyring file (i2p-archive-keyring.gpg, about 14 KiB)`);
  }
  const bytes = read.bytes;
  try {
    // Checked here too (the renderer checks again) so a wrong key is bad input (exit 2), not a failed build.
    checkRepoKeyring(bytes);
  } catch (e) {
    throw new UsageError(`${field}: ${JSON.stringify(given)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { bytes, mtimeSeconds: read.mtimeSeconds };
}

function main(argv: string[]): number {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        out: { type: 'string' },
        keyring: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = args;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const command = positionals[0] ?? 'build';
  if (positionals.length > 1 || (command !== 'build' && command !== 'validate')) {
    process.stderr.write(`unknown command: ${positionals.join(' ')}\n\n${USAGE}\n`);
    return 2;
  }

  const { result, name, source, mtimeSeconds } = loadConfig(values.config);
  if (!result.ok) {
    process.stderr.write(`${formatIssues(result.issues, name, source)}\n`);
    return 2;
  }
  if (result.warnings.length > 0) process.stderr.write(`${formatWarnings(result.warnings, name, source)}\n`);
  try {
    const keyring = readKeyring(result.config, values.config, values.keyring);
    const inputMtimes = [mtimeSeconds, keyring?.mtimeSeconds].filter((t): t is number => t !== undefined);
    const { epoch, source: epochSource, sourceTime } = resolveBuildTimes(process.env, PROJECT_ROOT, inputMtimes);
    const out = build({
      config: result.config,
      sourceDateEpoch: epoch,
      sourceTime,
      sources: readStaticSources(),
      ...(keyring === undefined ? {} : { keyring: keyring.bytes }),
    });
    if (command === 'validate') {
      process.stdout.write(`${name}: valid (${result.config.qubes.gateway} from ${result.config.qubes.template}, router ${result.config.i2p.router}, Tor ${result.config.tor.enabled ? 'on' : 'off'})\n`);
      return 0;
    }
    const outDir = values.out ?? 'dist';
    writeTreeAtomically(outDir, out.outputs);
    process.stdout.write(
      `built ${outDir}/ from ${name}, version ${out.version} (SOURCE_DATE_EPOCH=${epoch}, from ${epochSource}):\n` +
        `  ${out.debFileName}\n  ${out.rpmFileName}\n  formula/ (${out.outputs.filter((o) => o.path.startsWith('formula/')).length} files), minion.d/\n`,
    );
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${name}: ${e.message}\nNothing was written.\n`);
      return 2;
    }
    process.stderr.write(`build failed: ${e instanceof Error ? e.message : String(e)}\nNothing was written.\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
