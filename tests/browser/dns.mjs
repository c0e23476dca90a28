// A DNS responder for the browser tests, which need a TURN server's host name to resolve
// inside a network namespace: Chromium's WebRTC looks TURN hosts up with DNS queries
// only (not /etc/hosts, not --host-resolver-rules). node dns.mjs '<json>' with
// {"listen": "IP", "port": 53, "names": {"host.example": "IP"}}: answers A queries for
// those names (case-insensitive), NODATA for their other types, NXDOMAIN for the rest.
// Prints "listening" once bound, and each query on stderr; runs until killed.
import dgram from 'node:dgram';

const { listen, port, names } = JSON.parse(process.argv[2]);
const table = new Map(Object.entries(names).map(([n, ip]) => [n.toLowerCase().replace(/\.$/, ''), ip]));
const sock = dgram.createSocket('udp4');
sock.on('message', (q, from) => {
  if (q.length < 12 || (q[2] & 0x80) !== 0 || q.readUInt16BE(4) !== 1) return;
  // The one question: labels, then QTYPE and QCLASS.
  const labels = [];
  let i = 12;
  while (i < q.length && q[i] !== 0) {
    if ((q[i] & 0xc0) !== 0 || i + 1 + q[i] > q.length) return;
    labels.push(q.subarray(i + 1, i + 1 + q[i]).toString('latin1'));
    i += 1 + q[i];
  }
  if (i + 5 > q.length) return;
  const question = q.subarray(12, i + 5);
  const qtype = q.readUInt16BE(i + 1);
  const ip = table.get(labels.join('.').toLowerCase());
  const answer = ip && qtype === 1;
  console.error(`${from.address}:${from.port} ${labels.join('.')} type ${qtype}: ${answer ? ip : ip ? 'no data' : 'NXDOMAIN'}`);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(q.readUInt16BE(0), 0);
  // QR, the query's opcode and RD, AA, RA; NXDOMAIN (3) for names not in the table.
  head[2] = 0x80 | (q[2] & 0x79) | 0x04;
  head[3] = 0x80 | (ip ? 0 : 3);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answer ? 1 : 0, 6);
  const parts = [head, question];
  if (answer) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6); // TTL
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((b, k) => { rr[12 + k] = Number(b); });
    parts.push(rr);
  }
  sock.send(Buffer.concat(parts), from.port, from.address);
});
sock.bind(port, listen, () => console.log('listening'));
