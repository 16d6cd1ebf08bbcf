/**
 * Facts about the two I2P routers the gateway can run: who runs them and where they listen. Public facts from
 * the i2pd and I2P documentation; the config chooses a router, it never restates these.
 */
export interface RouterFacts {
  /** Debian package that provides the router. */
  readonly package: string;
  /** systemd unit of the distro's router service. */
  readonly unit: string;
  /** System user the router runs as (the firewall lets this user reach the network). */
  readonly user: string;
  /** The HTTP proxy tinyproxy forwards .i2p requests to, on 127.0.0.1. */
  readonly httpProxyPort: number;
  /** Ports that may be exposed on the virtual IP, by config key. */
  readonly exposable: { readonly console: number; readonly irc: number; readonly i2cp: number };
  /** Every port the router listens on by default: the gateway's own listeners must avoid them all. */
  readonly listens: readonly number[];
  /** Whether the package comes from the official I2P apt repository (then a keyring is needed). */
  readonly fromI2pRepo: boolean;
}

export const ROUTERS = {
  i2pd: {
    package: 'i2pd',
    unit: 'i2pd.service',
    user: 'i2pd',
    httpProxyPort: 4444,
    exposable: { console: 7070, irc: 6668, i2cp: 7654 },
    // HTTP proxy, SOCKS, console, IRC tunnel, I2CP, SAM, BOB, I2PControl
    listens: [4444, 4447, 7070, 6668, 7654, 7656, 2827, 7650],
    fromI2pRepo: false,
  },
  i2p: {
    package: 'i2p',
    unit: 'i2p.service',
    user: 'i2psvc',
    httpProxyPort: 4444,
    exposable: { console: 7657, irc: 6668, i2cp: 7654 },
    // HTTP proxy, HTTPS proxy, console, IRC tunnel, I2CP, SAM, eepsite, I2PControl
    listens: [4444, 4445, 7657, 6668, 7654, 7656, 7658, 7650],
    fromI2pRepo: true,
  },
} as const satisfies Record<string, RouterFacts>;

/**
 * Router i2pd only: where the waiting page's relay (gateway/i2p-wait-page) listens on loopback, between tinyproxy
 * and i2pd's HTTP proxy. Not a port either router uses.
 */
export const WAIT_PAGE_PORT = 4446;

/** The primary-key fingerprint of the official I2P Debian repository's signing key. */
export const I2P_REPO_FINGERPRINT = '7840E7610F28B904753549D767ECE5605BCF1346';
export const I2P_REPO_URL = 'https://deb.i2p.net/';

/**
 * Loopback ports of the client qubes' own i2pd HTTP proxies (one per client address, the lowest free one when its
 * interface appears: gateway/i2pd-client-proxies). Above i2pd's own random transport ports (9111-30777) and below
 * Linux's ephemeral range (32768-60999), so neither i2pd nor an outgoing connection holds one first.
 */
export const CLIENT_PROXY_PORTS = { first: 31000, count: 1024 } as const;

/** Whether each client qube gets its own I2P destination: per-client by default with i2pd, shared with the Java router. */
export function clientDestinations(c: { readonly i2p: { readonly router: keyof typeof ROUTERS; readonly clientDestinations?: 'per-client' | 'shared' | undefined } }): 'per-client' | 'shared' {
  return c.i2p.clientDestinations ?? (c.i2p.router === 'i2pd' ? 'per-client' : 'shared');
}
