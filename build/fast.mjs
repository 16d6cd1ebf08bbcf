#!/usr/bin/env node
// The build CLI (build/build.ts) without tsx at run time: `node build/fast.mjs [build|validate] [--config F] ...`
// takes the same arguments and writes the same bytes (npm run repro checks it).
//
// tsx starts a second Node process and compiles every module on each run; that start-up was most of a cold
// build (npm run bench, P1). Here build/build.ts and everything it imports are bundled once with esbuild (which
// tsx already brings) into .cache/entry/node<major>/build.cjs, and rebundled whenever a source file,
// package-lock.json or this launcher changes. The bundle runs from V8's code cache (build.v8cache beside it,
// written after the first run; V8 rejects it if it does not match, and it is then rewritten), so it is not
// even compiled again. Each Node major has its own directory: a cache one major wrote is never handed to
// another (npm run repro builds with Node 20, 22 and 24 from one tree and checks the directories). Every
// `import.meta.url` in the bundle is the original source file's URL: it reads the same files at run time as
// the sources do. Plain JavaScript on purpose: Node 20 cannot run .ts by itself.
//
// Fresh or not: the stamp lists the bundle's own inputs with their sizes, mtimes and one content hash; when a
// size or mtime differs, the contents decide (a touched but unchanged file does not cost a rebundle).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = join(ROOT, 'build', 'build.ts');
const MAJOR = process.versions.node.split('.')[0];
const OUT_DIR = join(ROOT, '.cache', 'entry', `node${MAJOR}`);
const BUNDLE = join(OUT_DIR, 'build.cjs');
const CODE_CACHE = join(OUT_DIR, 'build.v8cache');
const STAMP = join(OUT_DIR, 'build.stamp.json');
const SELF = fileURLToPath(import.meta.url);
const LOCK = join(ROOT, 'package-lock.json');

function readOrMissing(f) {
  try {
    return readFileSync(f);
  } catch {
    return '(missing)';
  }
}

/** [size, mtime] of a file, or null: the cheap first check. */
function statOf(f) {
  try {
    const st = statSync(f);
    return [st.size, st.mtimeMs];
  } catch {
    return null;
  }
}

/**
 * One hash over the project's own inputs (node_modules stands in as package-lock.json) and the toolchain.
 * `contents` maps an input to the bytes the bundle was made from; without it the files are read now.
 */
function inputsKey(files, contents) {
  const h = createHash('sha256');
  h.update(`node ${MAJOR}\0root ${ROOT}\0`);
  for (const f of files) h.update(f).update('\0').update(contents?.get(f) ?? readOrMissing(f)).update('\0');
  return h.digest('hex');
}

function watched(inputs) {
  return [SELF, LOCK, ...inputs.map((f) => join(ROOT, f))];
}

function fresh() {
  if (!existsSync(BUNDLE) || !existsSync(STAMP)) return false;
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return false;
  }
  if (!Array.isArray(stamp.inputs) || !stamp.inputs.includes('build/build.ts') || !Array.isArray(stamp.stats)) return false;
  const files = watched(stamp.inputs);
  const stats = files.map(statOf);
  if (stats.every((st, i) => JSON.stringify(st) === JSON.stringify(stamp.stats[i]))) return true;
  if (stamp.key !== inputsKey(files)) return false;
  // Touched, not changed (a checkout, a save without edits): remember the new times, best effort.
  try {
    writeFileSync(`${STAMP}.${process.pid}.tmp`, `${JSON.stringify({ ...stamp, stats }, null, 1)}\n`);
    renameSync(`${STAMP}.${process.pid}.tmp`, STAMP);
  } catch {
    // read-only: the contents are checked again next time
  }
  return true;
}

async function bundle() {
  const { build } = await import(pathToFileURL(join(ROOT, 'node_modules', 'esbuild', 'lib', 'main.js')).href).catch((e) => {
    throw new Error(`esbuild is missing (run npm ci): ${e.message}`);
  });
  const ownFile = (path) => !path.includes(`${sep}node_modules${sep}`) && path.startsWith(ROOT);
  // Our own files are read here, not by esbuild: the stamp's hash is then over exactly what was bundled.
  const seen = new Map();
  const stats = new Map();
  const ownSources = {
    name: 'own-sources',
    setup(b) {
      b.onLoad({ filter: /\.(?:[cm]?[jt]s|json)$/ }, (args) => {
        if (!ownFile(args.path)) return undefined;
        stats.set(args.path, statOf(args.path));
        const bytes = readFileSync(args.path);
        seen.set(args.path, bytes);
        const text = bytes.toString('utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href));
        return { contents: text, loader: args.path.endsWith('.json') ? 'json' : /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js' };
      });
    },
  };
  const selfStat = [statOf(SELF), statOf(LOCK)];
  seen.set(SELF, readOrMissing(SELF));
  seen.set(LOCK, readOrMissing(LOCK));
  mkdirSync(OUT_DIR, { recursive: true });
  const tmp = `${BUNDLE}.${process.pid}.tmp`;
  const result = await build({
    entryPoints: [ENTRY],
    absWorkingDir: ROOT,
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    metafile: true,
    logLevel: 'error',
    plugins: [ownSources],
  });
  const inputs = Object.keys(result.metafile.inputs)
    .map((p) => join(ROOT, p))
    .filter(ownFile)
    .map((p) => relative(ROOT, p))
    .sort();
  if (!inputs.includes('build/build.ts')) throw new Error(`esbuild listed no inputs under ${ROOT}`);
  const files = watched(inputs);
  const stamp = { key: inputsKey(files, seen), inputs, stats: [...selfStat, ...inputs.map((f) => stats.get(join(ROOT, f)) ?? null)] };
  // Atomic: a concurrent run sees the old bundle or the new one, never half of one. The old code cache goes.
  rmSync(CODE_CACHE, { force: true });
  renameSync(tmp, BUNDLE);
  writeFileSync(`${STAMP}.${process.pid}.tmp`, `${JSON.stringify(stamp, null, 1)}\n`);
  renameSync(`${STAMP}.${process.pid}.tmp`, STAMP);
}

if (!fresh()) {
  try {
    await bundle();
  } catch (e) {
    process.stderr.write(`build/fast.mjs: cannot bundle ${relative(ROOT, ENTRY)}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}

// Run the bundle as CommonJS through vm.Script, which (unlike an ES module in Node 20) takes V8's code cache.
const code = readFileSync(BUNDLE, 'utf8');
let cachedData;
try {
  cachedData = readFileSync(CODE_CACHE);
} catch {
  cachedData = undefined;
}
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${code}\n})`, {
  filename: BUNDLE,
  ...(cachedData === undefined ? {} : { cachedData }),
});
if (cachedData === undefined || script.cachedDataRejected) {
  // After the run, so that the functions it compiled lazily are in the cache too.
  process.once('exit', () => {
    try {
      const tmp = `${CODE_CACHE}.${process.pid}.tmp`;
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, CODE_CACHE);
    } catch {
      // a read-only checkout: run without the cache
    }
  });
}
const module = { exports: {} };
script.runInThisContext().call(module.exports, module.exports, createRequire(BUNDLE), module, BUNDLE, OUT_DIR);
