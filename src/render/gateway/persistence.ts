/**
 * Persistence: an app qube's /var is reset from the template at every boot. Tor's state (its guards) and the
 * I2P router's (its identity, peers and network database) must survive reboots, or the gateway picks new
 * guards and rebuilds its view of I2P every time: slower, and weaker anonymity. Qubes' bind-dirs keeps them
 * under /rw/bind-dirs in the gateway qube only.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { dirEntry, textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, STATE_DIR } from './common.ts';

const ROUTER_STATE: Readonly<Record<GatewayConfig['i2p']['router'], string>> = {
  i2pd: '/var/lib/i2pd',
  // The Java router's home (user i2psvc) in the I2P repository's package.
  i2p: '/var/lib/i2p',
};

/** The router's data directory: its identity, keys, netDb and peer profiles. */
export function routerStateDir(config: GatewayConfig): string {
  return ROUTER_STATE[config.i2p.router];
}

export function persistentDirs(config: GatewayConfig): string[] {
  return [...(config.tor.enabled ? [STATE_DIR] : []), routerStateDir(config)];
}

export function renderBindDirs(config: GatewayConfig): string {
  const dirs = persistentDirs(config).map((d) => `'${d}'`).join(' ');
  return (
    generatedHeader("qubes-i2p-gateway: keep Tor's and the I2P router's state across reboots of the gateway qube.") +
    comment([
      'Sourced (bash) by Qubes\' bind-dirs.sh, which runs after qubes-sysinit has created /run/qubes-service: so only',
      'the gateway qube binds anything; other qubes built from this template keep their /var as it is.',
    ]) +
    `if [ -e ${gatewayFlag(config)} ]; then\n` +
    `\tbinds+=( ${dirs} )\n` +
    'fi\n'
  );
}

export function renderPersistence(config: GatewayConfig): readonly RenderedFile[] {
  return [textFile(PATHS.bindDirs, renderBindDirs(config)), ...(config.tor.enabled ? [dirEntry(STATE_DIR)] : [])];
}
