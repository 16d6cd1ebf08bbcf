/**
 * The template package's runtime files: every gateway renderer, merged into one tree (mergeTrees refuses two
 * renderers writing one path). Find a file's renderer by its path:
 *
 *   /usr/share/qubes-i2p-gateway/torrc, /etc/qubes-i2p-gateway/torrc.d/,
 *     qubes-i2p-gateway-tor.service, tor*.service.d/                                  tor.ts
 *   /usr/share/qubes-i2p-gateway/dnsmasq.conf, qubes-i2p-gateway-dnsmasq.service    dnsmasq.ts
 *   /usr/libexec/qubes-i2p-gateway/dns-relay, qubes-i2p-gateway-dns-relay.service dns-relay.ts
 *   /usr/bin/qubes-i2p-gateway, its man page, /usr/share/qubes-i2p-gateway/status.json status.ts
 *   /usr/share/qubes-i2p-gateway/tinyproxy.*, qubes-i2p-gateway-tinyproxy.service, ... tinyproxy.ts
 *   /usr/share/qubes-i2p-gateway/i2pd.conf, i2pd.service.d/                          i2pd.ts
 *   /etc/apt/keyrings/qubes-i2p-gateway-i2p-archive-keyring.gpg, i2p.sources, i2p.service.d/ java-router.ts
 *   /usr/share/qubes-i2p-gateway/firewall.nft                                         firewall.ts
 *   /usr/libexec/qubes-i2p-gateway/firewall-hook, its link in /etc/qubes/qubes-firewall.d/ firewall-hook.ts
 *   /usr/share/qubes-i2p-gateway/lockdown.nft, off.nft, qubes-i2p-gateway-lockdown.service lockdown.ts
 *   /usr/share/qubes-i2p-gateway/no-forward.conf, qubes-i2p-gateway-no-forward.service, its udev rule no-forward.ts
 *   /usr/libexec/qubes-i2p-gateway/i2pd-console-auth                                 i2pd.ts
 *   /usr/libexec/qubes-i2p-gateway/i2pd-client-proxies, client-proxies.json, its unit client-proxies.ts
 *   /usr/libexec/qubes-i2p-gateway/i2p-wait-page, qubes-i2p-gateway-wait-page.service, -http@.service wait-page.ts
 *   qubes-i2p-gateway.target and its multi-user.target.wants/ link                    target.ts
 *   /usr/lib/qubes-bind-dirs.d/, /var/lib/qubes-i2p-gateway                           persistence.ts
 *   qubes-i2p-gateway-publish-*.socket, -publish-*@.service, /usr/share/qubes-i2p-gateway/i2pd-tunnels.conf
 *     and its link in /etc/i2pd/tunnels.d/ (the published services; their onion lines are in torrc)  publish.ts
 *   /usr/share/qubes-i2p-gateway/template-guard (read by the postinst)                template-guard.ts
 *
 * The programs that run in the gateway (the relay, the status command, the firewall hook, i2pd's console password)
 * are source files of their own under
 * gateway/ in the repository, read by src/io/static.ts and handed in here as text: the renderers place them,
 * they never write code.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { mergeTrees, type RenderedFile } from '../../files.ts';
import { renderClientProxies } from './client-proxies.ts';
import { renderDnsmasq } from './dnsmasq.ts';
import { renderDnsRelay } from './dns-relay.ts';
import { renderFirewallRuleset } from './firewall.ts';
import { renderFirewallHook } from './firewall-hook.ts';
import { renderI2pd } from './i2pd.ts';
import { renderJavaRouter } from './java-router.ts';
import { renderLockdown } from './lockdown.ts';
import { renderNoForward } from './no-forward.ts';
import { renderPersistence } from './persistence.ts';
import { renderPublish } from './publish.ts';
import { renderTarget } from './target.ts';
import { renderStatus, type StatusProgram } from './status.ts';
import { renderTemplateGuard } from './template-guard.ts';
import { renderTinyproxy } from './tinyproxy.ts';
import { renderTor } from './tor.ts';
import { renderWaitPage } from './wait-page.ts';

/** The programs under gateway/ (read by src/io/static.ts), as they are placed into the package. */
export interface GatewayPrograms {
  /** gateway/dns-relay */
  readonly dnsRelay: string;
  /** gateway/qubes-i2p-gateway and gateway/qubes-i2p-gateway.1 */
  readonly status: StatusProgram;
  /** gateway/firewall-hook */
  readonly firewallHook: string;
  /** gateway/i2pd-console-auth */
  readonly i2pdConsoleAuth: string;
  /** gateway/i2pd-client-proxies */
  readonly i2pdClientProxies: string;
  /** gateway/i2p-wait-page */
  readonly waitPage: string;
}

export interface GatewayRenderOptions {
  readonly programs: GatewayPrograms;
  /** The I2P repository keyring (router i2p only), binary or ASCII-armored; checked before use. */
  readonly keyring?: Uint8Array;
}

/** Service names whose flag already means something else here (our drop-ins for the distro's units use them). */
const TAKEN_SERVICES = ['tor', 'tinyproxy'];

export function renderGateway(config: GatewayConfig, opts: GatewayRenderOptions): RenderedFile[] {
  if (TAKEN_SERVICES.includes(config.qubes.service)) {
    throw new Error(
      `qubes.service "${config.qubes.service}" would also start the distribution's ${config.qubes.service} in the gateway. Fix: choose another name, e.g. i2p`,
    );
  }
  if (config.i2p.router === 'i2pd' && opts.keyring !== undefined) {
    throw new Error('a keyring was given, but router i2pd comes from Debian and needs none. Fix: remove i2p.keyring or set i2p.router: i2p');
  }
  return mergeTrees(
    renderTor(config),
    renderDnsmasq(config),
    renderDnsRelay(config, opts.programs.dnsRelay),
    renderStatus(config, opts.programs.status),
    renderTinyproxy(config),
    renderWaitPage(config, opts.programs.waitPage),
    config.i2p.router === 'i2pd' ? renderI2pd(config, opts.programs.i2pdConsoleAuth) : renderJavaRouter(config, opts.keyring),
    renderFirewallRuleset(config),
    renderFirewallHook(config, opts.programs.firewallHook),
    renderLockdown(config),
    renderNoForward(config),
    renderClientProxies(config, opts.programs.i2pdClientProxies),
    renderTarget(config),
    renderPersistence(config),
    renderPublish(config),
    renderTemplateGuard(config),
  );
}
