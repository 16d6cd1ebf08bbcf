// A bounded DNS load generator for the benchmark: keeps WINDOW queries in flight on each of SOCKETS UDP
// sockets for DURATION ms, and counts the answers that are NOERROR with at least one answer record. A query
// without an answer after 250 ms is counted lost and replaced. Prints one JSON line.
//
// usage: node dns-load.mjs SERVER PORT NAME DURATION_MS [SOCKETS] [WINDOW]
import { createSocket } from 'node:dgram';
import { aQuery } from './dns-query.mjs';

const [server, portText, name, durText, socketsText = '4', windowText = '16'] = process.argv.slice(2);
if (server === undefined || portText === undefined || name === undefined || durText === undefined) {
  process.stderr.write('usage: dns-load.mjs SERVER PORT NAME DURATION_MS [SOCKETS] [WINDOW]\n');
  process.exit(2);
}
const port = Number(portText);
const duration = Math.min(Number(durText), 60_000);
const nSockets = Number(socketsText);
const windowSize = Number(windowText);
const LOST_MS = 250;

const query = (id) => aQuery(name, id);

let sent = 0;
let answered = 0;
let bad = 0;
let lost = 0;
let running = true;
const start = process.hrtime.bigint();
const elapsedMs = () => Number(process.hrtime.bigint() - start) / 1e6;
const sockets = [];

for (let s = 0; s < nSockets; s++) {
  const sock = createSocket('udp4');
  const inflight = new Map();
  let next = (s * 8192) & 0xffff;
  const send = () => {
    if (!running) return;
    let id = next;
    for (let k = 0; k < 65536 && inflight.has(id); k++) id = (id + 1) & 0xffff;
    next = (id + 1) & 0xffff;
    inflight.set(id, elapsedMs());
    sent++;
    sock.send(query(id), port, server);
  };
  sock.on('message', (msg) => {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    if (!inflight.delete(id)) return;
    const rcode = msg[3] & 0x0f;
    const ancount = msg.readUInt16BE(6);
    if (rcode === 0 && ancount > 0) answered++;
    else bad++;
    send();
  });
  sock.on('error', () => {});
  sockets.push({ sock, inflight, send });
  sock.bind(0, () => {
    for (let i = 0; i < windowSize; i++) send();
  });
}

const sweep = setInterval(() => {
  const now = elapsedMs();
  for (const s of sockets) {
    for (const [id, t] of s.inflight) {
      if (now - t > LOST_MS) {
        s.inflight.delete(id);
        lost++;
        s.send();
      }
    }
  }
}, 50);

setTimeout(() => {
  running = false;
  const seconds = elapsedMs() / 1000;
  clearInterval(sweep);
  for (const s of sockets) s.sock.close();
  process.stdout.write(JSON.stringify({ sent, answered, bad, lost, seconds, answersPerSecond: answered / seconds }) + '\n');
}, duration);
