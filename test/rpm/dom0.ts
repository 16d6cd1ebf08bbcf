/**
 * Shared by the dom0 package tests: build the dom0 .rpm for a config as `npm run build` does (in process, or by
 * running the CLI), say independently of src/render/rpm which files the package must hold, and run rpm's tools
 * in a fixed locale and time zone.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { dump as dumpYaml } from 'js-yaml';
import { expect } from 'vitest';
import { parseConfigValue } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import type { OutputFile } from '../../src/io/atomic.ts';
import { readStaticSources } from '../../src/io/static.ts';
import { build } from '../../src/pipeline.ts';

/** SOURCE_DATE_EPOCH of every build here: Tue Nov 14 22:13:20 2023 UTC. */
export const EPOCH = 1_700_000_000;
export const EPOCH_DATE = 'Tue Nov 14 22:13:20 2023';

export const NAME = 'qubes-mgmt-salt-i2p-gateway';
/** Where the issue and Qubes' convention put things; written out here, not imported, so the tests check them. */
export const FORMULA_ROOT = '/srv/formulas/base/i2p-gateway-formula';
export const MINION_CONF = '/etc/salt/minion.d/i2p-gateway-formula.conf';
export const DOC_DIR = `/usr/share/doc/${NAME}`;
/** The version of a build at EPOCH of the default config's package.version: both times 2023-11-14 22:13:20 UTC. */
export const VERSION_AT_EPOCH = /^0\.1\.0\+20231114221320\.0\.[0-9a-f]{8}$/;

const root = join(import.meta.dirname, '..', '..');
export const SPEC = join(root, 'rpm', `${NAME}.spec`);

export function config(value: unknown = {}): GatewayConfig {
  const r = parseConfigValue(value);
  if (!r.ok) throw new Error(`test config rejected: ${JSON.stringify(r.issues)}`);
  return r.config;
}

export interface Dom0Build {
  readonly config: GatewayConfig;
  /** The packages' version (src/version.ts); the .rpm's release follows it. */
  readonly version: string;
  readonly debName: string;
  readonly rpmName: string;
  readonly rpm: Uint8Array;
  /** The whole dist/ tree of that build: the .deb, the .rpm, formula/…, minion.d/…. */
  readonly outputs: readonly OutputFile[];
}

/** The build as `npm run build` does it, in process: the pure pipeline (src/pipeline.ts) the CLI calls. */
export function buildDom0(value: unknown = {}, sourceDateEpoch = EPOCH, sourceTime = sourceDateEpoch): Dom0Build {
  const c = config(value);
  const out = build({ config: c, sourceDateEpoch, sourceTime, sources: readStaticSources() });
  const rpm = out.outputs.find((o) => o.path === out.rpmFileName);
  if (rpm === undefined) throw new Error(`the build wrote no ${out.rpmFileName}`);
  return { config: c, version: out.version, debName: out.debFileName, rpmName: out.rpmFileName, rpm: rpm.data, outputs: out.outputs };
}

/**
 * `npm run build -- --config FILE --out DIR` for real (the CLI, through tsx), with SOURCE_DATE_EPOCH set; the
 * config is written as YAML next to DIR. Returns DIR's files as the build wrote them.
 */
export function buildDom0WithCli(value: unknown, outDir: string, sourceDateEpoch = EPOCH): OutputFile[] {
  const configPath = `${outDir}.yaml`;
  writeFileSync(configPath, dumpYaml(value));
  const r = run(join(root, 'node_modules', '.bin', 'tsx'), [join(root, 'build', 'build.ts'), '--config', configPath, '--out', outDir], {
    cwd: root,
    env: { ...ENV, SOURCE_DATE_EPOCH: String(sourceDateEpoch) },
  });
  if (r.status !== 0) throw new Error(`npm run build failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const files: OutputFile[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(outDir, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = statSync(join(outDir, path));
      if (st.isDirectory()) walk(path);
      else files.push({ path, data: new Uint8Array(readFileSync(join(outDir, path))), mode: st.mode & 0o777 });
    }
  };
  walk('');
  return files.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

export interface PackagedFile {
  readonly path: string;
  readonly kind: 'file' | 'dir';
  /** 0644 for every file but the formula's script (0755), 0755 for directories. */
  readonly mode: number;
  readonly data: Uint8Array;
  /** `c` = %config(noreplace), `d` = %doc, `` = plain. */
  readonly flag: 'config' | 'doc' | '';
}

/**
 * What the package must install, derived from the build's output tree alone: formula/README.md is the package's
 * doc, every other formula/ file goes under the formula root, the minion.d file to /etc/salt/minion.d; the package
 * owns the formula's folders and its doc folder, and no folder of another package (/srv/formulas/base, /etc/salt).
 */
export function packagedFiles(outputs: readonly OutputFile[]): PackagedFile[] {
  const files: PackagedFile[] = [];
  const dirs = new Set<string>([FORMULA_ROOT, DOC_DIR]);
  for (const o of outputs) {
    let path: string;
    let flag: PackagedFile['flag'] = '';
    if (o.path === 'formula/README.md') {
      path = `${DOC_DIR}/README.md`;
      flag = 'doc';
    } else if (o.path.startsWith('formula/')) {
      path = `${FORMULA_ROOT}/${o.path.slice('formula/'.length)}`;
      for (let d = dirname(path); d !== FORMULA_ROOT; d = dirname(d)) dirs.add(d);
    } else if (o.path.startsWith('minion.d/')) {
      path = `/etc/salt/${o.path}`;
      flag = 'config';
    } else {
      continue; // the .deb and the .rpm themselves
    }
    files.push({ path, kind: 'file', mode: path.endsWith('/files/client-netvm') ? 0o755 : 0o644, data: o.data, flag });
  }
  for (const d of dirs) files.push({ path: d, kind: 'dir', mode: 0o755, data: new Uint8Array(0), flag: '' });
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

// ---------------------------------------------------------------------------------------------------------------
// Running tools

/** rpm prints dates with strftime and sorts with the locale: pin both. */
export const ENV: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC', LC_ALL: 'C' };

export interface Run {
  readonly stdout: string;
  readonly stderr: string;
  readonly status: number;
}

export function run(cmd: string, args: readonly string[], opts: { input?: Uint8Array; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Run {
  const r = spawnSync(cmd, args, {
    env: opts.env ?? ENV,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? -1 };
}

/** Run, expect exit 0, return stdout. */
export function ok(cmd: string, args: readonly string[], opts: { input?: Uint8Array; env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
  const r = run(cmd, args, opts);
  expect(r.status, `${cmd} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `qig-rpm-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `rpm -qpl --dump` as records. */
export interface DumpRecord {
  readonly path: string;
  readonly size: number;
  readonly mtime: number;
  readonly digest: string;
  readonly mode: string;
  readonly owner: string;
  readonly group: string;
  readonly isConfig: boolean;
  readonly isDoc: boolean;
  readonly rdev: string;
  readonly linkto: string;
}

export function dump(pkg: string): DumpRecord[] {
  return lines(ok('rpm', ['-qpl', '--dump', pkg])).map((l) => {
    const f = l.split(' ');
    if (f.length !== 11) throw new Error(`unexpected --dump line: ${l}`);
    return {
      path: f[0]!,
      size: Number(f[1]),
      mtime: Number(f[2]),
      digest: f[3]!,
      mode: f[4]!,
      owner: f[5]!,
      group: f[6]!,
      isConfig: f[7] === '1',
      isDoc: f[8] === '1',
      rdev: f[9]!,
      linkto: f[10]!,
    };
  });
}

/** The tops the formula ships, by the name `qubesctl top.enable` takes: `<formula>/init.top` is `<formula>`. */
export function topNames(files: readonly PackagedFile[]): string[] {
  const prefix = `${FORMULA_ROOT}/`;
  return files
    .filter((f) => f.kind === 'file' && f.path.startsWith(prefix) && f.path.endsWith('.top'))
    .map((f) => f.path.slice(prefix.length, -'.top'.length).replace(/\/init$/, '').replace(/\//g, '.'));
}
