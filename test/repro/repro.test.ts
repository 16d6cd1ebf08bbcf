/**
 * Reproducibility: `npm run repro` itself (two builds under different conditions, byte-identical, every time
 * stamp the epoch, the same bytes from Node 20, 22 and 24, another epoch changes the packages), and the readers it uses to name the first member that
 * differs, checked on packages that differ on purpose. No timing assertions.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectTimes, firstDifference, readAr, readRpm } from '../../build/repro-unpack.ts';
import { compareTrees, readTree, type ReproResult } from '../../build/repro.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { writeTreeAtomically } from '../../src/io/atomic.ts';
import { readStaticSources } from '../../src/io/static.ts';
import { build } from '../../src/pipeline.ts';
import { configFile, textFile, type RenderedFile } from '../../src/files.ts';
import { writeDeb, type DebMeta } from '../../src/pack/deb.ts';
import { writeRpm, type RpmMeta } from '../../src/pack/rpm/index.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const EPOCH = 1_700_000_000;

const DEB: DebMeta = {
  package: 'demo-repro',
  version: '1.0',
  architecture: 'all',
  maintainer: 'Test <test@example.org>',
  section: 'net',
  priority: 'optional',
  depends: ['tor'],
  description: { summary: 'demo', extended: ['A demo package.'] },
};

const RPM: RpmMeta = {
  name: 'demo-repro',
  version: '1.0',
  release: '1',
  summary: 'demo',
  description: 'A demo package.',
  license: 'GPL-3.0-or-later',
};

const FILES: RenderedFile[] = [
  configFile('/etc/demo/demo.conf', 'a = 1\nb = 2\n'),
  textFile('/usr/share/doc/demo-repro/README', 'read me\n'),
];
const CHANGED: RenderedFile[] = [configFile('/etc/demo/demo.conf', 'a = 1\nb = 3\n'), FILES[1]!];

describe('naming the first difference', () => {
  it('finds a changed file inside data.tar.gz of a .deb, with the line', () => {
    const a = writeDeb(DEB, FILES, { sourceDateEpoch: EPOCH });
    const b = writeDeb(DEB, CHANGED, { sourceDateEpoch: EPOCH });
    const d = firstDifference('demo.deb', a, b);
    // control.tar.gz differs first (md5sums), so compare data only by giving equal control members
    expect(d).toMatch(/^demo\.deb › control\.tar\.gz › control\.tar \(gunzipped\) › \.\/md5sums: content line 1:/);
    const data = (x: Uint8Array): Uint8Array => readAr(x).find((m) => m.name === 'data.tar.gz')!.data;
    expect(firstDifference('data.tar.gz', data(a), data(b))).toBe(
      'data.tar.gz › data.tar (gunzipped) › ./etc/demo/demo.conf: content line 2: "b = 2" vs "b = 3"',
    );
  });

  it('names the ar header when only the epoch differs, and is silent for equal bytes', () => {
    const a = writeDeb(DEB, FILES, { sourceDateEpoch: EPOCH });
    const b = writeDeb(DEB, FILES, { sourceDateEpoch: EPOCH + 1 });
    expect(firstDifference('demo.deb', a, b)).toMatch(/^demo\.deb › debian-binary: header "mtime 1700000000 .*" vs "mtime 1700000001 /);
    expect(firstDifference('demo.deb', a, writeDeb(DEB, FILES, { sourceDateEpoch: EPOCH }))).toBeUndefined();
  });

  it('reads an .rpm tag by tag: a different epoch shows in the main header BUILDTIME', () => {
    const a = writeRpm(RPM, FILES, { sourceDateEpoch: EPOCH });
    const b = writeRpm(RPM, FILES, { sourceDateEpoch: EPOCH + 60 });
    expect(readRpm(a).map((m) => m.name)).toEqual(['lead', 'signature header', 'main header', 'payload']);
    const d = firstDifference('demo.rpm', a, b);
    // the signature header holds digests of the main header, so it differs first
    expect(d).toMatch(/^demo\.rpm › signature header › tag \d+ \w+:/);
    const main = (x: Uint8Array): Uint8Array => readRpm(x).find((m) => m.name === 'main header')!.data;
    expect(firstDifference('main.rpmheader', main(a), main(b))).toMatch(/^main\.rpmheader: byte \d+/);
    const c = writeRpm(RPM, CHANGED, { sourceDateEpoch: EPOCH });
    const payload = (x: Uint8Array): Uint8Array => readRpm(x).find((m) => m.name === 'payload')!.data;
    expect(firstDifference('payload.cpio.gz', payload(a), payload(c))).toBe(
      'payload.cpio.gz › payload.cpio (gunzipped) › ./etc/demo/demo.conf: content line 2: "b = 2" vs "b = 3"',
    );
  });

  it('collects every time stamp of a .deb and an .rpm, and all are the epoch', () => {
    for (const [name, bytes] of [
      ['demo.deb', writeDeb(DEB, FILES, { sourceDateEpoch: EPOCH })],
      ['demo.rpm', writeRpm(RPM, FILES, { sourceDateEpoch: EPOCH })],
    ] as const) {
      const times = collectTimes(name, bytes);
      expect(times.length).toBeGreaterThan(4);
      expect(times.filter((t) => t.value !== EPOCH)).toEqual([]);
    }
  });
});

describe('comparing two output trees', () => {
  let dir = '';
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('names each artifact that differs and its first differing member; formula files without time stamps stay equal', () => {
    dir = mkdtempSync(join(tmpdir(), 'qig-repro-trees-'));
    const loaded = parseConfigText('');
    if (!loaded.ok) throw new Error('defaults do not parse');
    const sources = readStaticSources();
    // Another epoch also changes the version, so the file names: B is A's tree with the package bytes of a build
    // at another epoch put under A's names, as a package that changed but kept its name would look.
    const a = build({ config: loaded.config, sourceDateEpoch: EPOCH, sources });
    const b = build({ config: loaded.config, sourceDateEpoch: EPOCH + 86_400, sources });
    const bytesOf = (r: typeof a, ext: string): Uint8Array => r.outputs.find((o) => o.path === (ext === '.deb' ? r.debFileName : r.rpmFileName))!.data;
    writeTreeAtomically(join(dir, 'a'), a.outputs);
    writeTreeAtomically(
      join(dir, 'b'),
      a.outputs.map((o) => (o.path.endsWith('.deb') ? { ...o, data: bytesOf(b, '.deb') } : o.path.endsWith('.rpm') ? { ...o, data: bytesOf(b, '.rpm') } : o)),
    );
    const { rows } = compareTrees(readTree(join(dir, 'a')), readTree(join(dir, 'b')));
    const differing = rows.filter((r) => !r.same).map((r) => r.path);
    expect(differing.filter((p) => p.endsWith('.deb'))).toHaveLength(2);
    expect(differing.filter((p) => p.endsWith('.rpm'))).toHaveLength(1);
    expect(differing.filter((p) => !/\.(deb|rpm)$/.test(p))).toEqual([]);
    const deb = rows.find((r) => /^[^/]+\.deb$/.test(r.path));
    expect(deb?.firstDifference).toMatch(/^qubes-i2p-gateway_.*\.deb › debian-binary: header "mtime 1700000000 /);
  });
});

describe('npm run repro', () => {
  let dir = '';
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  // The other Node majors come from the npm registry on the first run (build/node-majors.ts: each fetch is
  // bounded to 180 s), then from .cache/node/. A run that cannot fetch one fails with npm's reason.
  it('builds twice under different conditions and gets the same bytes, also through build/fast.mjs and with Node 20, 22 and 24; another epoch changes the packages', () => {
    dir = mkdtempSync(join(tmpdir(), 'qig-repro-test-'));
    const json = join(dir, 'repro.json');
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'build/repro.ts'), '--no-diffoscope', '--json', json], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 480_000,
      maxBuffer: 64 << 20,
    });
    const how = r.error !== undefined ? `${String(r.error)} (limit 480 s)` : r.signal !== null ? `killed by ${r.signal}` : `exit ${r.status}`;
    expect(r.status, `npm run repro: ${how}\n${r.stdout}\n${r.stderr}`).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as ReproResult;
    expect(result.ok).toBe(true);
    expect(result.configs.length).toBeGreaterThanOrEqual(2);
    for (const c of result.configs) {
      expect(c.identical, c.config).toBe(true);
      expect(c.timeProblems).toEqual([]);
      expect(c.timesChecked).toBeGreaterThan(10);
      const paths = c.rows.map((row) => row.path);
      expect(paths.some((p) => /^[^/]+\.deb$/.test(p))).toBe(true);
      expect(paths.some((p) => /^[^/]+\.rpm$/.test(p))).toBe(true);
      expect(paths.some((p) => p.startsWith('formula/'))).toBe(true);
      expect(paths).toContain('minion.d/i2p-gateway-formula.conf');
    }
    expect(result.fastEntry?.identical).toBe(true);
    const majors = result.majors;
    expect(majors?.nodes.map((n) => n.major).sort((a, b) => a - b)).toEqual([20, 22, 24]);
    expect(majors?.nodes.map((n) => n.source).filter((s) => s === 'running')).toHaveLength(1);
    expect(majors?.builds).toHaveLength(2 * result.configs.length);
    for (const b of majors?.builds ?? []) {
      expect(b.identical, `Node ${b.major}, ${b.config}`).toBe(true);
      expect(b.rows.filter((row) => /^[^/]+\.(deb|rpm)$/.test(row.path)).map((row) => row.path.split('.').pop()).sort()).toEqual(['deb', 'rpm']);
    }
    expect(majors?.entryCaches).toEqual(['node20', 'node22', 'node24']);
    expect(result.sanity?.debDiffers).toBe(true);
    expect(result.sanity?.rpmDiffers).toBe(true);
  }, 500_000);
});
