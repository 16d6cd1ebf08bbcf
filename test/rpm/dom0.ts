/**
 * Shared by the dom0 package tests: build the dom0 .rpm for a config the way `npm run build` does, lay the
 * build's output tree out on disk, say independently of src/render/rpm which files the package must hold, and run
 * rpm's tools in a fixed locale and time zone.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { parseConfigValue } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import type { OutputFile } from '../../src/io/atomic.ts';
import { readStaticSources } from '../../src/io/static.ts';

/** SOURCE_DATE_EPOCH of every build here: Tue Nov 14 22:13:20 2023 UTC. */
export const EPOCH = 1_700_000_000;
export const EPOCH_DATE = 'Tue Nov 14 22:13:20 2023';

export const NAME = 'qubes-mgmt-salt-i2p-gateway';
/** Where the issue and Qubes' convention put things; written out here, not imported, so the tests check them. */
export const FORMULA_ROOT = '/srv/formulas/base/i2p-gateway-formula';
export const MINION_CONF = '/etc/salt/minion.d/i2p-gateway-formula.conf';
export const DOC_DIR = `/usr/share/doc/${NAME}`;
export const DEB_NAME = 'qubes-i2p-gateway_0.1.0_all.deb';

const root = join(import.meta.dirname, '..', '..');
export const SPEC = join(root, 'rpm', `${NAME}.spec`);

export function config(value: unknown = {}): GatewayConfig {
  const r = parseConfigValue(value);
  if (!r.ok) throw new Error(`test config rejected: ${JSON.stringify(r.issues)}`);
  return r.config;
}

export interface Dom0Build {
  readonly config: GatewayConfig;
  readonly rpmName: string;
  readonly rpm: Uint8Array;
  /** The whole dist/ tree of that build: the .deb, the .rpm, formula/…, minion.d/…. */
  readonly outputs: readonly OutputFile[];
}

/**
 * The build as `npm run build` does it: the pure pipeline (src/pipeline.ts) that the CLI calls. Until the
 * template package's renderer (src/render/deb/package.ts) exists the pipeline cannot load; then the same steps are
 * done here by hand, with a small .deb made by writeDeb standing in for the template package.
 */
export async function buildDom0(value: unknown = {}, sourceDateEpoch = EPOCH): Promise<Dom0Build> {
  const c = config(value);
  const sources = readStaticSources();
  if (existsSync(join(root, 'src', 'render', 'deb', 'package.ts'))) {
    const { build } = await import('../../src/pipeline.ts');
    const out = build({ config: c, sourceDateEpoch, sources });
    const rpm = out.outputs.find((o) => o.path === out.rpmFileName);
    if (rpm === undefined) throw new Error(`the build wrote no ${out.rpmFileName}`);
    return { config: c, rpmName: out.rpmFileName, rpm: rpm.data, outputs: out.outputs };
  }
  const [{ writeDeb, debFileName }, { writeRpm, rpmFileName }, { renderFormula }, { renderRpmPackage }, { parseSpec }, { textFile }] =
    await Promise.all([
      import('../../src/pack/deb.ts'),
      import('../../src/pack/rpm/index.ts'),
      import('../../src/render/salt/formula.ts'),
      import('../../src/render/rpm/package.ts'),
      import('../../src/render/rpm/spec.ts'),
      import('../../src/files.ts'),
    ]);
  const debMeta = {
    package: 'qubes-i2p-gateway',
    version: c.package.version,
    architecture: 'all',
    maintainer: c.package.maintainer,
    section: 'net',
    priority: 'optional',
    depends: ['tor'],
    description: { summary: 'stand-in for the template package', extended: ['Made by the dom0 package tests.'] },
  };
  const debName = debFileName(debMeta);
  const debBytes = writeDeb(debMeta, [textFile('/usr/share/doc/qubes-i2p-gateway/README', 'stand-in\n')], { sourceDateEpoch });
  const formula = renderFormula(c, { debFileName: debName, debBytes, dependencies: ['tor'] });
  const pkg = renderRpmPackage(c, { spec: parseSpec(sources.rpmSpec), formula, minionConf: sources.minionConf });
  const rpmName = rpmFileName(pkg.meta);
  const rpm = writeRpm(pkg.meta, pkg.files, { sourceDateEpoch });
  const outputs: OutputFile[] = [
    { path: debName, data: debBytes, mode: 0o644 },
    { path: rpmName, data: rpm, mode: 0o644 },
    { path: 'minion.d/i2p-gateway-formula.conf', data: new TextEncoder().encode(sources.minionConf), mode: 0o644 },
    ...formula.map((f) => ({ path: `formula/${f.path}`, data: f.data, mode: f.mode })),
  ];
  return { config: c, rpmName, rpm, outputs };
}

/** Write a build's output tree under `dir`, as the CLI writes dist/. */
export function writeTree(dir: string, outputs: readonly OutputFile[]): void {
  for (const o of outputs) {
    const p = join(dir, o.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, o.data, { mode: o.mode });
  }
}

export interface PackagedFile {
  readonly path: string;
  readonly kind: 'file' | 'dir';
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
    files.push({ path, kind: 'file', data: o.data, flag });
  }
  for (const d of dirs) files.push({ path: d, kind: 'dir', data: new Uint8Array(0), flag: '' });
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
