/**
 * Router i2pd from Debian with one destination for all clients (`i2p.clientDestinations: shared`: the virtual IP's
 * HTTP through tinyproxy to i2pd's one proxy; the default, a destination per client, is client-destinations.test.ts), end to end: the package's own units and hook, the real tor,
 * dnsmasq, tinyproxy and i2pd, and recorders where a test needs to see exactly what arrived.
 */
import { SHARED_DESTINATION } from './lib/world.ts';
import { gatewaySuite } from './lib/suite.ts';

gatewaySuite({
  title: 'default build (i2pd)',
  config: SHARED_DESTINATION,
  realRouter: true,
  // i2psvc does not exist in this build; these do and must stay off the network.
  otherUsers: ['nobody', 'tinyproxy', 'dnsmasq'],
});
