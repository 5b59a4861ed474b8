import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BenchConn, connectClient } from '../../../bench/load/conn.js';
import { publishPacket } from '../../../bench/load/packets.js';
import { until } from '../../helpers/wait.js';

/** A peer that answers CONNECT with CONNACK and then sends what the test writes, as the test cuts it. */
async function listen(): Promise<{ server: Server; port: number; peer: Promise<Socket> }> {
  const server = createServer({ noDelay: true });
  let accepted!: (s: Socket) => void;
  const peer = new Promise<Socket>((resolve) => (accepted = resolve));
  server.on('connection', (socket) => {
    socket.once('data', () => socket.write(Buffer.from([0x20, 2, 0, 0])));
    accepted(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, peer };
}

describe('BenchConn (the load generator connection)', () => {
  let server: Server;
  let conn: BenchConn;
  let peer: Socket;

  before(async () => {
    const l = await listen();
    server = l.server;
    conn = await connectClient(l.port, 'bench-conn-test');
    peer = await l.peer;
  });

  after(() => {
    conn.close();
    server.close();
  });

  it('hands over every PUBLISH whole however the reads cut it: inside the fixed header, inside the payload, several per read, one across many reads', async () => {
    const sizes = [0, 5, 200, 300 * 1024, 17, 1024 * 1024 + 3, 64 * 1024, 1];
    const packets = sizes.map((n, i) => publishPacket(`t/${i}`, Buffer.alloc(n, i + 1), 0));
    const stream = Buffer.concat(packets);
    const starts = packets.map((_, i) => packets.slice(0, i).reduce((a, p) => a + p.length, 0));
    // Cuts: after a packet's first byte and within its Remaining Length, mid-payload, and none at all
    // between the small packets (several arrive in one read).
    const cuts = [
      starts[1]! + 1,
      starts[3]! + 2,
      starts[3]! + 3,
      starts[3]! + 100_000,
      starts[3]! + 250_000,
      starts[5]! + 1,
      starts[5]! + 500_000,
      starts[5]! + 900_000,
      starts[6]! + 4,
      starts[7]!,
    ];
    const got: { topic: string; length: number; fill: boolean }[] = [];
    conn.onPublish = (buf, start, end) => {
      const topicLength = buf.readUInt16BE(start);
      const topic = buf.toString('utf8', start + 2, start + 2 + topicLength);
      const payload = buf.subarray(start + 2 + topicLength, end);
      const i = Number(topic.slice(2));
      got.push({ topic, length: payload.length, fill: payload.every((b) => b === i + 1) });
    };
    let sent = 0;
    for (const cut of [...cuts, stream.length]) {
      peer.write(stream.subarray(sent, cut));
      sent = cut;
      // Each piece is read before the next is sent, so each cut is the end of a read.
      await until(() => conn.socket.bytesRead >= 4 + sent, `the client to read ${sent} bytes`);
    }
    assert.deepEqual(
      got,
      sizes.map((n, i) => ({ topic: `t/${i}`, length: n, fill: true })),
    );
    assert.ok(conn.lost === null, `connection lost: ${conn.lost}`);
  });

  it('writeAll sends its packets whole and in order, large and small, one packet or many', async () => {
    const sizes = [64 * 1024, 3, 256 * 1024, 0, 1024 * 1024];
    const packets = sizes.map((n, i) => publishPacket(`w/${i}`, Buffer.alloc(n, i + 1), 1, i + 1));
    const expected = Buffer.concat([packets[0]!, ...packets]);
    const chunks: Buffer[] = [];
    let got = 0;
    peer.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
    });
    conn.writeAll([packets[0]!]);
    conn.writeAll(packets);
    await until(() => got >= expected.length, `the peer to read ${expected.length} bytes`);
    assert.ok(Buffer.concat(chunks).equals(expected), 'the bytes the peer read are the packets in the order written');
  });
});
