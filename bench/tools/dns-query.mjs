// One DNS query in wire format (RFC 1035 4.1): header with RD set and one question, type A, class IN. Shared by
// the benchmark's DNS tools (dns-load.mjs, first-answer.mjs), which are copied beside it into the lab.
export function aQuery(name, id) {
  const labels = name.split('.').filter((l) => l !== '');
  const q = Buffer.alloc(12 + labels.reduce((n, l) => n + l.length + 1, 0) + 1 + 4);
  q.writeUInt16BE(id, 0);
  q.writeUInt16BE(0x0100, 2); // RD
  q.writeUInt16BE(1, 4); // QDCOUNT
  let o = 12;
  for (const l of labels) {
    q[o++] = l.length;
    o += q.write(l, o, 'ascii');
  }
  q[o++] = 0;
  q.writeUInt16BE(1, o); // A
  q.writeUInt16BE(1, o + 2); // IN
  return q;
}
