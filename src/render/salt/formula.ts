/**
 * The whole dom0 formula as a file tree relative to the formula root
 * (/srv/formulas/base/i2p-gateway-formula in dom0): states, tops, README, and in files/ the template package and
 * the dom0 script the clients and remove states run.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { binaryFile, textFile, type RenderedFile } from '../../files.ts';
import { renderClients } from './clients.ts';
import { renderClone } from './clone.ts';
import { renderCreate } from './create.ts';
import { renderInstall } from './install.ts';
import { CLIENT_NETVM, FILES_DIR } from './names.ts';
import { renderPublishStates } from './publish.ts';
import { renderDom0Readme } from './readme.ts';
import { renderRemove } from './remove.ts';
import { renderTops } from './tops.ts';

export interface FormulaInputs {
  readonly debFileName: string;
  readonly debBytes: Uint8Array;
  /** The template package's version (src/version.ts). */
  readonly debVersion: string;
  readonly dependencies: readonly string[];
  /** Text of salt/client-netvm, the dom0 script of clients.sls and remove.sls. */
  readonly clientNetvm: string;
}

export function renderFormula(c: GatewayConfig, inputs: FormulaInputs): RenderedFile[] {
  return [
    renderClone(c),
    renderInstall(c, { debFileName: inputs.debFileName, debVersion: inputs.debVersion, dependencies: inputs.dependencies }),
    renderCreate(c),
    renderClients(c),
    renderRemove(c),
    ...renderPublishStates(c),
    ...renderTops(c),
    renderDom0Readme(c),
    binaryFile(`${FILES_DIR}/${inputs.debFileName}`, inputs.debBytes),
    // A script, so executable (rpmlint: non-executable-script), though cmd.script runs a private copy anyway.
    textFile(CLIENT_NETVM.path, inputs.clientNetvm, 0o755),
  ];
}
