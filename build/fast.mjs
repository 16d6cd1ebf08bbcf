#!/usr/bin/env node
// The build CLI (build/build.ts) without tsx at run time: `node build/fast.mjs [build|validate] [--config F] ...`
// takes the same arguments and writes the same bytes (npm run repro checks it).
//
// tsx starts a second Node process and compiles every module on each run; that start-up is most of a cold
// build (npm run bench, P1). Here build/build.ts and everything it imports are bundled once with esbuild (which
// tsx already brings) into .cache/entry/build.mjs, and rebundled whenever a source file, package-lock.json,
// this launcher or the Node major changes (a content hash over the bundle's own input list; a few ms). The
// bundle reads the same files at run time as the sources do: every `import.meta.url` in it is the original
// source file's URL. Plain JavaScript on purpose: Node 20 cannot run a .ts file without a loader.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = join(ROOT, 'build', 'build.ts');
const OUT_DIR = join(ROOT, '.cache', 'entry');
const BUNDLE = join(OUT_DIR, 'build.mjs');
const STAMP = join(OUT_DIR, 'build.stamp.json');
const SELF = fileURLToPath(import.meta.url);

function readOrMissing(f) {
  try {
    return readFileSync(f);
  } catch {
    return '(missing)';
  }
}

/**
 * One hash over the project's own inputs (node_modules stands in as package-lock.json) and the toolchain.
 * `contents` maps an input to the bytes the bundle was made from; without it the files are read now.
 */
function inputsKey(inputs, contents) {
  const h = createHash('sha256');
  h.update(`node ${process.versions.node.split('.')[0]}\0root ${ROOT}\0`);
  for (const f of [SELF, join(ROOT, 'package-lock.json'), ...inputs]) {
    h.update(f).update('\0').update(contents?.get(f) ?? readOrMissing(f)).update('\0');
  }
  return h.digest('hex');
}

function fresh() {
  if (!existsSync(BUNDLE) || !existsSync(STAMP)) return false;
  try {
    const stamp = JSON.parse(readFileSync(STAMP, 'utf8'));
    return Array.isArray(stamp.inputs) && stamp.key === inputsKey(stamp.inputs.map((f) => join(ROOT, f)));
  } catch {
    return false;
  }
}

async function bundle() {
  const { build } = await import(pathToFileURL(join(ROOT, 'node_modules', 'esbuild', 'lib', 'main.js')).href).catch((e) => {
    throw new Error(`esbuild is missing (run npm ci): ${e.message}`);
  });
  const ownFile = (path) => !path.includes(`${sep}node_modules${sep}`) && path.startsWith(ROOT);
  // Our own files are read here, not by esbuild: the stamp's hash is then over exactly what was bundled.
  const seen = new Map();
  const ownSources = {
    name: 'own-sources',
    setup(b) {
      b.onLoad({ filter: /\.(?:[cm]?[jt]s|json)$/ }, (args) => {
        if (!ownFile(args.path)) return undefined;
        const bytes = readFileSync(args.path);
        seen.set(args.path, bytes);
        const text = bytes.toString('utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href));
        return { contents: text, loader: args.path.endsWith('.json') ? 'json' : /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js' };
      });
    },
  };
  mkdirSync(OUT_DIR, { recursive: true });
  const tmp = `${BUNDLE}.${process.pid}.tmp`;
  const result = await build({
    entryPoints: [ENTRY],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    metafile: true,
    logLevel: 'warning',
    plugins: [ownSources],
    // CommonJS dependencies inside an ES module bundle still need require().
    banner: { js: "import { createRequire as __qigCreateRequire } from 'node:module'; const require = __qigCreateRequire(import.meta.url);" },
  });
  const inputs = Object.keys(result.metafile.inputs)
    .map((p) => join(ROOT, p))
    .filter(ownFile)
    .map((p) => relative(ROOT, p))
    .sort();
  const stamp = { key: inputsKey(inputs.map((f) => join(ROOT, f)), seen), inputs };
  // Atomic: a concurrent run sees the old bundle or the new one, never half of one.
  renameSync(tmp, BUNDLE);
  writeFileSync(`${STAMP}.${process.pid}.tmp`, `${JSON.stringify(stamp, null, 1)}\n`);
  renameSync(`${STAMP}.${process.pid}.tmp`, STAMP);
  rmSync(tmp, { force: true });
}

if (!fresh()) {
  try {
    await bundle();
  } catch (e) {
    process.stderr.write(`build/fast.mjs: cannot bundle ${relative(ROOT, ENTRY)}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
await import(pathToFileURL(BUNDLE).href);
