/**
 * Router i2p (the Java router from the official I2P apt repository): the repository's keyring and deb822
 * source, both conffiles so they are kept and removed together, so Salt can `apt-get install i2p` in the template
 * once this package is in, and a drop-in that runs i2p.service only in the gateway qube.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { I2P_REPO_FINGERPRINT, I2P_REPO_URL, ROUTERS } from '../../config/routers.ts';
import { configFile, textFile, type RenderedFile } from '../../files.ts';
import { comment, dropInPath, gatewayFlag, generatedHeader, PATHS, UNITS } from './common.ts';
import { checkRepoKeyring, formatFingerprint } from './keyring.ts';

const RELEASES: Readonly<Record<GatewayConfig['debian']['release'], string>> = { bookworm: 'bookworm', trixie: 'trixie' };

export function renderI2pSources(config: GatewayConfig): string {
  const suite = RELEASES[config.debian.release];
  return (
    generatedHeader('The official I2P Debian repository, for the Java I2P router (package i2p).') +
    comment([
      `Signed-By pins it to the I2P signing key alone (${formatFingerprint(I2P_REPO_FINGERPRINT)}), shipped by`,
      'this package after its fingerprint was checked at build time: no other key apt trusts can sign for this',
      'repository, and this key is trusted for nothing else.',
    ]) +
    'Types: deb\n' +
    `URIs: ${I2P_REPO_URL}\n` +
    `Suites: ${suite}\n` +
    'Components: main\n' +
    `Signed-By: ${PATHS.keyring}\n`
  );
}

export function renderI2pDropIn(config: GatewayConfig): string {
  return (
    comment([
      'qubes-i2p-gateway: the Java I2P router runs only in the gateway qube (its qvm-service), never in the template',
      'or other qubes built from it.',
    ]) +
    '[Unit]\n' +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    comment(['After the firewall hook has restricted the gateway\'s own traffic.']) +
    'After=qubes-firewall.service\n' +
    `PartOf=${UNITS.target}\n` +
    '\n[Service]\n' +
    comment([
      'Restarted when it fails: without a router every client qube is without I2P until the gateway restarts. Not',
      'after a clean exit: the router\'s own console restarts and stops it that way (and is not exposed to clients).',
    ]) +
    'Restart=on-failure\n' +
    'RestartSec=5\n'
  );
}

/**
 * A drop-in for the router this build does not run (i2p.service in an i2pd build, i2pd.service in a Java one):
 * a former build may have left it installed, and it must not start in the gateway and compete for port 4444 with
 * our router. Other qubes built from the template keep the distribution's behaviour.
 */
export function renderOtherRouterDropIn(config: GatewayConfig, unit: string): string {
  return (
    comment([
      `qubes-i2p-gateway: ${unit} is not this gateway's I2P router (i2p.router: ${config.i2p.router}); should a former build have`,
      'left it installed, it never starts in the gateway qube beside the router the gateway runs.',
    ]) +
    '[Unit]\n' +
    `ConditionPathExists=!${gatewayFlag(config)}\n`
  );
}

/** The keyring bytes are required: the Java router cannot be installed without a trusted repository key. */
export function renderJavaRouter(config: GatewayConfig, keyring: Uint8Array | undefined): readonly RenderedFile[] {
  if (keyring === undefined) {
    throw new Error(
      'router i2p needs the I2P repository keyring. Fix: set i2p.keyring to the file from https://geti2p.net/_static/i2p-archive-keyring.gpg',
    );
  }
  return [
    // A conffile like the source (see PATHS.keyring); dpkg replaces an unmodified one when the key is renewed.
    { path: PATHS.keyring, kind: 'config', mode: 0o644, data: checkRepoKeyring(keyring) },
    configFile(PATHS.aptSources, renderI2pSources(config)),
    textFile(dropInPath(ROUTERS.i2p.unit), renderI2pDropIn(config)),
    textFile(dropInPath(ROUTERS.i2pd.unit), renderOtherRouterDropIn(config, ROUTERS.i2pd.unit)),
  ];
}
