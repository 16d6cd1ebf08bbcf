/** vitest globalSetup of the install suite: the Debian 13 pristine root, made once, and its versions printed. */
import { printVersions } from './versions.ts';

export const setup = (): Promise<void> => printVersions('pristine');
