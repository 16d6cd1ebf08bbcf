/**
 * config → rendered file trees → packed bytes: the whole build as one pure function. Only build/ and src/io/
 * touch the disk; this returns the output tree for them to write atomically.
 */
import type { GatewayConfig } from './config/schema.ts';
import type { RenderedFile } from './files.ts';
import type { OutputFile } from './io/atomic.ts';
import type { StaticSources } from './io/static.ts';
import { debFileName, writeDeb } from './pack/deb.ts';
import { rpmFileName, writeRpm } from './pack/rpm/index.ts';
import { renderDebPackage } from './render/deb/package.ts';
import { renderRpmPackage } from './render/rpm/package.ts';
import { parseSpec } from './render/rpm/spec.ts';
import { renderFormula } from './render/salt/formula.ts';
import { renderGateway } from './render/gateway/index.ts';
import { packageVersion } from './version.ts';

export interface BuildInputs {
  readonly config: GatewayConfig;
  /** The I2P repository keyring (router i2p only), already read from disk. */
  readonly keyring?: Uint8Array;
  readonly sourceDateEpoch: number;
  /** HEAD's commit time, the version's source time (src/version.ts); SOURCE_DATE_EPOCH when not given. */
  readonly sourceTime?: number;
  readonly sources: StaticSources;
}

export interface BuildResult {
  /** The packages' version (src/version.ts); the .rpm adds its release. */
  readonly version: string;
  readonly debFileName: string;
  readonly rpmFileName: string;
  /** Everything under dist/, sorted by path. */
  readonly outputs: readonly OutputFile[];
}

/** Package names out of Depends items (`foo (>= 1) | bar` → `foo`), for Salt to install before the .deb. */
export function dependencyNames(depends: readonly string[]): string[] {
  return depends.map((d) => (d.split('|')[0] ?? '').trim().split(/[\s(]/)[0] ?? '').filter((n) => n !== '');
}

export function build(inputs: BuildInputs): BuildResult {
  const { config, sourceDateEpoch } = inputs;
  const programs = inputs.sources.deb.programs;
  // The gateway's files are rendered once: the version's digest covers them, and the .deb ships them.
  const gatewayFiles = renderGateway(config, inputs.keyring === undefined ? { programs } : { programs, keyring: inputs.keyring });
  const version = packageVersion({
    config,
    ...(inputs.keyring === undefined ? {} : { keyring: inputs.keyring }),
    gatewayFiles,
    sourceTime: inputs.sourceTime ?? sourceDateEpoch,
    inputTime: sourceDateEpoch,
  });
  const debOpts = { sourceDateEpoch, statics: inputs.sources.deb, version, gatewayFiles };
  const deb = renderDebPackage(config, inputs.keyring === undefined ? debOpts : { ...debOpts, keyring: inputs.keyring });
  const debName = debFileName(deb.meta);
  const debBytes = writeDeb(deb.meta, deb.files, { sourceDateEpoch });

  const formula = renderFormula(config, { debFileName: debName, debBytes, debVersion: version, dependencies: dependencyNames(deb.meta.depends), clientNetvm: inputs.sources.clientNetvm });
  const rpm = renderRpmPackage(config, { spec: parseSpec(inputs.sources.rpmSpec), formula, minionConf: inputs.sources.minionConf, version });
  const rpmName = rpmFileName(rpm.meta);
  const rpmBytes = writeRpm(rpm.meta, rpm.files, { sourceDateEpoch });

  const outputs: OutputFile[] = [
    { path: debName, data: debBytes, mode: 0o644 },
    { path: rpmName, data: rpmBytes, mode: 0o644 },
    { path: 'minion.d/i2p-gateway-formula.conf', data: new TextEncoder().encode(inputs.sources.minionConf), mode: 0o644 },
    ...formula.map((f: RenderedFile) => ({ path: `formula/${f.path}`, data: f.data, mode: f.mode })),
  ];
  outputs.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return { version, debFileName: debName, rpmFileName: rpmName, outputs };
}
