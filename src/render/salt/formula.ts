/**
 * The whole dom0 formula as a file tree relative to the formula root
 * (/srv/formulas/base/i2p-gateway-formula in dom0): states, tops, README and the template package in files/.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { binaryFile, type RenderedFile } from '../../files.ts';
import { renderClients } from './clients.ts';
import { renderClone } from './clone.ts';
import { renderCreate } from './create.ts';
import { renderInstall } from './install.ts';
import { FILES_DIR } from './names.ts';
import { renderDom0Readme } from './readme.ts';
import { renderTops } from './tops.ts';

export interface FormulaInputs {
  readonly debFileName: string;
  readonly debBytes: Uint8Array;
  readonly dependencies: readonly string[];
}

export function renderFormula(c: GatewayConfig, inputs: FormulaInputs): RenderedFile[] {
  return [
    renderClone(c),
    renderInstall(c, { debFileName: inputs.debFileName, dependencies: inputs.dependencies }),
    renderCreate(c),
    renderClients(c),
    ...renderTops(c),
    renderDom0Readme(c),
    binaryFile(`${FILES_DIR}/${inputs.debFileName}`, inputs.debBytes),
  ];
}
