/**
 * Facts about published services that the config rules and the renderers share: where in the gateway each
 * service's loopback listener sits. The user never chooses these ports; they follow from the service's place in
 * the `publish` list, so one config always gives the same ports, and rules.ts checks them against every other
 * listener of the gateway.
 */
import type { GatewayConfig } from './schema.ts';

/**
 * The first listener port: below Linux's ephemeral range (32768-60999), so no outgoing connection of the gateway
 * ever holds it, and away from the routers' and Tor's defaults (routers.ts, schema.ts).
 */
export const PUBLISH_LISTEN_BASE = 28080;

/** The loopback port of the service at `index` in `publish`. */
export function publishListenPort(index: number): number {
  return PUBLISH_LISTEN_BASE + index;
}

export type PublishedService = GatewayConfig['publish'][number] & {
  /** 127.0.0.1:<listen> in the gateway: the listener whose connections qrexec carries to the service qube. */
  readonly listen: number;
};

export function publishedServices(config: GatewayConfig): PublishedService[] {
  return config.publish.map((s, i) => ({ ...s, listen: publishListenPort(i) }));
}
