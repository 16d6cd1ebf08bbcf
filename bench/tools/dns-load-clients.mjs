// A bounded DNS load generator from many client addresses, for the benchmark's P3: SLOTS UDP sockets (default 4),
// each bound to one source address of SOURCES_FILE (one address a line) with WINDOW queries in flight (default 16,
// as dns-load.mjs), that sends at most BUDGET queries and then hands over to the next unused address. It stops
// after DURATION ms or when every address has spent its budget, whichever comes first. Counts the answers that are NOERROR with at least one
// answer record; a query without an answer after 250 ms is counted lost and sent again (within the budget).
// With BUDGET below the gateway's per-client DNS burst, no address is ever limited: the load is many clients'.
// Prints one JSON line.
//
// usage: node dns-load-clients.mjs SERVER PORT NAME DURATION_MS SOURCES_FILE BUDGET [SLOTS] [WINDOW]
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { aQuery } from './dns-query.mjs';

const [server, portText, name, durText, sourcesFile, budgetText, slotsText = '4', windowText = '16'] = process.argv.slice(2);
if (server === undefined || portText === undefined || name === undefined || durText === undefined || sourcesFile === undefined || budgetText === undefined) {
  process.stderr.write('usage: dns-load-clients.mjs SERVER PORT NAME DURATION_MS SOURCES_FILE BUDGET [SLOTS] [WINDOW]\n');
  process.exit(2);
}
const port = Number(portText);
const duration = Math.min(Number(durText), 60_000);
const budget = Number(budgetText);
const nSlots = Number(slotsText);
const windowSize = Number(windowText);
const sources = readFileSync(sourcesFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
const LOST_MS = 250;

let sent = 0;
let answered = 0;
let bad = 0;
let lost = 0;
let used = 0;
let running = true;
let active = 0;
let finish;
const start = process.hrtime.bigint();
const elapsedMs = () => Number(process.hrtime.bigint() - start) / 1e6;

/**
 * One slot: a socket on one address at a time with up to WINDOW queries in flight; once the address has sent its
 * budget and every answer is in (or lost), the socket closes and the slot takes the next address.
 */
function slot() {
  if (!running || used >= sources.length) return;
  const addr = sources[used++];
  active++;
  const sock = createSocket('udp4');
  const inflight = new Map();
  let left = budget;
  let next = (used * 7919) & 0xffff;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(sweep);
    sock.close();
    active--;
    if (running && used < sources.length) slot();
    else if (active === 0) finish();
  };
  const send = () => {
    if (!running || left === 0) {
      if (inflight.size === 0) close();
      return;
    }
    left--;
    let id = next;
    while (inflight.has(id)) id = (id + 1) & 0xffff;
    next = (id + 1) & 0xffff;
    inflight.set(id, elapsedMs());
    sent++;
    sock.send(aQuery(name, id), port, server);
  };
  const sweep = setInterval(() => {
    const now = elapsedMs();
    for (const [id, t] of inflight) {
      if (now - t > LOST_MS) {
        inflight.delete(id);
        lost++;
        send();
      }
    }
  }, 50);
  sock.on('message', (msg) => {
    if (msg.length < 12) return;
    if (!inflight.delete(msg.readUInt16BE(0))) return;
    const rcode = msg[3] & 0x0f;
    if (rcode === 0 && msg.readUInt16BE(6) > 0) answered++;
    else bad++;
    send();
  });
  sock.on('error', () => {});
  sock.bind({ address: addr, port: 0 }, () => {
    for (let i = 0; i < windowSize && left > 0; i++) send();
  });
}

const done = new Promise((resolve) => (finish = resolve));
const bound = setTimeout(() => {
  running = false;
  finish();
}, duration);
for (let i = 0; i < nSlots; i++) slot();
await done;
running = false;
clearTimeout(bound);
const seconds = elapsedMs() / 1000;
process.stdout.write(JSON.stringify({ sent, answered, bad, lost, seconds, answersPerSecond: answered / seconds, addresses: used }) + '\n');
process.exit(0);
