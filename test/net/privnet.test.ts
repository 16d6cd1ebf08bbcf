/**
 * Private networks in the lab's "clearnet" namespace (issue 21): real Debian 13 i2pd routers forming their own
 * I2P network (lib/i2pnet.ts), an eepsite on one router fetched by its b32 through another router's HTTP proxy.
 * Nothing of the gateway yet: this proves the network the gateway will join.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EEPSITE_MARKER, I2pNet } from './lib/i2pnet.ts';
import { Lab } from './lib/lab.ts';
import { TorNet, WEB_MARKER, WEB_NAME, WEB_PORT } from './lib/torenet.ts';

let lab: Lab | undefined;
let i2p: I2pNet | undefined;
let i2pStartMs = 0;
let tor: TorNet | undefined;
let torStartMs = 0;

beforeAll(async () => {
  lab = await Lab.create({ sanctionedUsers: [] });
  const t0 = Date.now();
  i2p = await I2pNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 60_000 });
  i2pStartMs = Date.now() - t0;
  const t1 = Date.now();
  tor = await TorNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 150_000 });
  torStartMs = Date.now() - t1;
}, 240_000);

afterAll(async () => {
  await tor?.stop();
  await i2p?.stop();
  await lab?.destroy();
});

describe('a private I2P network of Debian 13 i2pd routers in up', () => {
  it('serves an eepsite on one router, fetched by its b32 through another router\'s HTTP proxy', async () => {
    const net = i2p as I2pNet;
    expect(net.b32).toMatch(/^[a-z2-7]{52}\.b32\.i2p$/);
    const url = `http://${net.b32}/`;
    const firstMs = await net.fetchUntil(url, EEPSITE_MARKER, 150_000);
    const t1 = Date.now();
    const again = await net.fetch(url);
    const laterMs = Date.now() - t1;
    console.log(`i2pnet: ${net.routers.length} routers up in ${i2pStartMs} ms (round 2: ${net.startedMs} ms); first page ${firstMs} ms after; a later fetch ${laterMs} ms (with curl's machine)`);
    expect(again.status).toBe('200');
    expect(again.body).toContain(EEPSITE_MARKER);
  }, 200_000);

  it('a destination nobody publishes is not served (the page above came through the network, not a stand-in)', async () => {
    const net = i2p as I2pNet;
    const unknown = `${'a'.repeat(52)}.b32.i2p`;
    const r = await net.fetch(`http://${unknown}/`, 20);
    expect(r.body).not.toContain(EEPSITE_MARKER);
    expect(r.status).not.toBe('200');
  }, 40_000);
});

describe('a private Tor network of Debian 13 tor in up (3 authorities that are relays, 1 exit, 1 client)', () => {
  it('loads a "clearnet" page by name through the client\'s SocksPort: the exit resolves it and connects', async () => {
    const net = tor as TorNet;
    const url = `http://${WEB_NAME}:${WEB_PORT}/`;
    const t0 = Date.now();
    let last = await net.fetch(url);
    while (!(last.status === '200' && last.body.includes(WEB_MARKER)) && Date.now() - t0 < 90_000) {
      await new Promise((r) => setTimeout(r, 1000));
      last = await net.fetch(url);
    }
    const firstMs = Date.now() - t0;
    console.log(`tornet: keys ${net.keysMs} ms, bootstrapped ${net.bootstrapMs} ms after the start (whole start ${torStartMs} ms); first page ${firstMs} ms after`);
    expect(last.status, `${last.err}\n${last.body}\n${net.logs()}`).toBe('200');
    expect(last.body).toContain(WEB_MARKER);
    // The web server saw the exit's address, never the client's (the client has no ORPort and its own address).
    const peers = new Set(net.webRequests().map((r) => r.peer));
    expect([...peers]).toEqual([net.exit.addr]);
  }, 120_000);

  it('a name the clearnet DNS does not know is not served', async () => {
    const net = tor as TorNet;
    const r = await net.fetch(`http://unknown.qig-clearnet.test:${WEB_PORT}/`, 20);
    expect(r.body).not.toContain(WEB_MARKER);
    expect(r.status).not.toBe('200');
  }, 40_000);
});
