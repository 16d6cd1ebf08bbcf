/**
 * The dom0 package qubes-mgmt-salt-i2p-gateway: the formula under /srv/formulas/base/i2p-gateway-formula
 * (with the template .deb in files/), the minion.d file that adds it to Salt's file roots, and the README.
 * Its description, requirements and scriptlets come from rpm/qubes-mgmt-salt-i2p-gateway.spec (parsed by
 * spec.ts) so rpmbuild users get the same package.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { configFile, dirEntry, type RenderedFile } from '../../files.ts';
import type { RpmMeta } from '../../pack/rpm/index.ts';
import { FORMULA, FORMULA_ROOT, MINION_CONF } from '../salt/names.ts';
import type { SpecFacts } from './spec.ts';

export const RPM_NAME = 'qubes-mgmt-salt-i2p-gateway';
export const RPM_DOC_DIR = `/usr/share/doc/${RPM_NAME}`;

export interface RpmPackageInputs {
  readonly spec: SpecFacts;
  /** The formula tree relative to the formula root (from renderFormula). */
  readonly formula: readonly RenderedFile[];
  /** Text of salt/i2p-gateway-formula.conf. */
  readonly minionConf: string;
  /** The package version (src/version.ts), the same as the template package's; package.version when not given. */
  readonly version?: string;
}

export function renderRpmPackage(c: GatewayConfig, inputs: RpmPackageInputs): { meta: RpmMeta; files: RenderedFile[] } {
  const s = inputs.spec;
  const meta: RpmMeta = {
    name: RPM_NAME,
    version: inputs.version ?? c.package.version,
    release: String(c.package.release),
    summary: s.summary,
    description: s.description,
    license: s.license,
    group: s.group,
    url: s.url,
    packager: c.package.maintainer,
    requires: s.requires,
    scripts: s.scripts,
    changelog: s.changelog,
  };
  const files: RenderedFile[] = [
    dirEntry(FORMULA_ROOT),
    dirEntry(`${FORMULA_ROOT}/${FORMULA}`),
    dirEntry(`${FORMULA_ROOT}/${FORMULA}/files`),
    dirEntry(RPM_DOC_DIR),
    configFile(MINION_CONF, inputs.minionConf),
  ];
  for (const f of inputs.formula) {
    if (f.path === 'README.md') {
      files.push({ ...f, path: `${RPM_DOC_DIR}/README.md` });
    } else {
      files.push({ ...f, path: `${FORMULA_ROOT}/${f.path}` });
    }
  }
  return { meta, files };
}

