// A stand-in for the I2P router's HTTP proxy, for the benchmark: answers every request (absolute-form, as a
// proxy gets it, or origin-form with a Host header) with a small 200 and closes the connection, as i2pd's
// proxy does. Logs nothing per request. Prints READY once every listener is bound.
//
// usage: node http-standin.mjs HOST:PORT [HOST:PORT ...]
import { createServer } from 'node:http';

const body = Buffer.from('qig-bench-standin ok\n');
let pending = process.argv.length - 2;
if (pending <= 0) {
  process.stderr.write('usage: http-standin.mjs HOST:PORT...\n');
  process.exit(2);
}
for (const hp of process.argv.slice(2)) {
  const at = hp.lastIndexOf(':');
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length, Connection: 'close', 'X-Standin-Url': req.url ?? '' });
    res.end(body);
  });
  server.keepAliveTimeout = 0;
  server.listen({ host: hp.slice(0, at), port: Number(hp.slice(at + 1)), backlog: 4096 }, () => {
    if (--pending === 0) process.stdout.write('READY\n');
  });
}
