// The moment a DNS name first resolves: sends one A query for NAME to SERVER:53 every INTERVAL ms (a new id each
// time, on one UDP socket) until an answer with an A record arrives, then prints one JSON line with the time of
// that answer on CLOCK_MONOTONIC in microseconds (process.hrtime, the clock systemd and the journal use, so the
// caller can compare it with a container's start), the address answered and how many queries it took. Gives up
// after TIMEOUT ms (exit 1). For the benchmark's P5: run in the client's namespace while the gateway boots.
//
// usage: node first-answer.mjs SERVER NAME TIMEOUT_MS [INTERVAL_MS]
import { createSocket } from 'node:dgram';
import { aQuery } from './dns-query.mjs';

const [server, name, timeoutText, intervalText = '10'] = process.argv.slice(2);
if (server === undefined || name === undefined || timeoutText === undefined) {
  process.stderr.write('usage: first-answer.mjs SERVER NAME TIMEOUT_MS [INTERVAL_MS]\n');
  process.exit(2);
}
const interval = Math.max(1, Number(intervalText));
const timeout = Math.min(Number(timeoutText), 120_000);

const query = (id) => aQuery(name, id);

/** The first A record of an answer (the answer section follows our one question; names are compressed or not). */
function firstA(msg) {
  let o = 12;
  while (o < msg.length && msg[o] !== 0) o += msg[o] + 1; // the question's name
  o += 1 + 4;
  const ancount = msg.readUInt16BE(6);
  for (let i = 0; i < ancount && o < msg.length; i++) {
    if ((msg[o] & 0xc0) === 0xc0) o += 2;
    else {
      while (o < msg.length && msg[o] !== 0) o += msg[o] + 1;
      o += 1;
    }
    const type = msg.readUInt16BE(o);
    const len = msg.readUInt16BE(o + 8);
    if (type === 1 && len === 4) return [...msg.subarray(o + 10, o + 14)].join('.');
    o += 10 + len;
  }
  return undefined;
}

const sock = createSocket('udp4');
let sent = 0;
let id = 1;
const tick = setInterval(() => {
  id = (id + 1) & 0xffff;
  sent++;
  sock.send(query(id), 53, server);
}, interval);
sock.on('error', () => {}); // "port unreachable" while nothing listens yet: keep asking
sock.on('message', (msg) => {
  if (msg.length < 12 || (msg[3] & 0x0f) !== 0) return;
  const address = firstA(msg);
  if (address === undefined) return;
  const at = Number(process.hrtime.bigint() / 1000n);
  clearInterval(tick);
  sock.close();
  process.stdout.write(JSON.stringify({ monotonicUs: at, address, queries: sent }) + '\n');
  process.exit(0);
});
setTimeout(() => {
  process.stderr.write(`no answer for ${name} from ${server} in ${timeout} ms (${sent} queries)\n`);
  process.exit(1);
}, timeout);
