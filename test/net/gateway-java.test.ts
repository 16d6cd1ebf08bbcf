/**
 * The Java router build (router i2p, from the I2P repository, which is not in Debian): the same suite, with
 * the router replaced by a stand-in that listens where the I2P package's router listens (HTTP proxy
 * 127.0.0.1:4444, console 127.0.0.1:7657) and runs as the router's user, i2psvc, created in the gateway machine
 * for this file (the firewall's output rule names that user). Its console cannot be exposed (a config error:
 * this build cannot give it a password); the exposed-port path is proved with i2pd in gateway-security.test.ts.
 *
 * The keyring is the real one, the fixture test/fixtures/i2p-archive-keyring.gpg (origin in test/fixtures/README.md).
 */
import { join } from 'node:path';
import { gatewaySuite } from './lib/suite.ts';

const KEYRING = join(import.meta.dirname, '..', 'fixtures', 'i2p-archive-keyring.gpg');

gatewaySuite({
  title: 'Java router build (i2p, stand-in router)',
  config: { i2p: { router: 'i2p', keyring: KEYRING } },
  realRouter: false,
  // i2pd exists here but is not this build's router: its output must be refused like any other user's.
  otherUsers: ['nobody', 'tinyproxy', 'dnsmasq', 'i2pd'],
  // Only the I2P repository's package creates it: made in the gateway machine for this file, never on the host.
  users: ['i2psvc'],
});
