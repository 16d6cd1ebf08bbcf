/** vitest globalSetup of the datapath suite: the Debian 13 oracles root, made once, and its versions printed. */
import { printVersions } from './versions.ts';

export const setup = (): Promise<void> => printVersions('oracles');
