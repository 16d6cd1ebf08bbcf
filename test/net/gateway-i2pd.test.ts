/**
 * The default build (router i2pd from Debian), end to end: the package's own units and hook, the real tor,
 * dnsmasq, tinyproxy and i2pd, and recorders where a test needs to see exactly what arrived.
 */
import { gatewaySuite } from './lib/suite.ts';

gatewaySuite({
  title: 'default build (i2pd)',
  config: {},
  realRouter: true,
  // i2psvc does not exist in this build; these do and must stay off the network.
  otherUsers: ['nobody', 'tinyproxy', 'dnsmasq'],
});
