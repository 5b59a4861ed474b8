import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connect as connectTls } from 'node:tls';
import mqttPacket from 'mqtt-packet';
import { LogAggregator } from '../../host/core/model/log-aggregator.js';
import type { Transport } from '../../host/core/transport.js';
import { ConnectionGate } from '../../host/node/connection-gate.js';
import type { RunningListener } from '../../host/node/listener-options.js';
import { SocketTransport } from '../../host/node/socket-transport.js';
import { listenTcp } from '../../host/node/tcp-listener.js';
import { startBroker } from '../helpers/broker.js';
import { createPki } from '../helpers/certificates.js';
import { connectBytes } from '../helpers/peer.js';
import { until } from '../helpers/wait.js';

/** One accepted transport as a test sees it: every chunk's memory and a copy of its bytes, taken during the call. */
interface Received {
  transport: Transport;
  buffers: Set<ArrayBufferLike>;
  bytes: Buffer[];
  length: number;
  closed: boolean;
}

/** A real listener (listenTcp) whose gate hands each transport to the test instead of a broker. */
async function listener(tls?: { certFile: string; keyFile: string }, host = '127.0.0.1'): Promise<{ port: number; accepted: Received[]; close(): Promise<void> }> {
  const accepted: Received[] = [];
  const gate = new ConnectionGate(
    (transport) => {
      const r: Received = { transport, buffers: new Set(), bytes: [], length: 0, closed: false };
      accepted.push(r);
      transport.attach({
        received(chunk) {
          r.buffers.add(chunk.buffer);
          r.bytes.push(Buffer.from(chunk));
          r.length += chunk.length;
        },
        closed() {
          r.closed = true;
        },
      });
    },
    0,
    new LogAggregator(() => undefined),
  );
  const spec = tls ? { protocol: 'mqtts' as const, port: 0, host, ...tls } : { port: 0, host };
  const running: RunningListener = await listenTcp(spec, gate, new LogAggregator(() => undefined), 'listeners[0]', 5000);
  return {
    port: running.address().port,
    accepted,
    async close() {
      for (const r of accepted) r.transport.destroy();
      await running.close();
    },
  };
}

/** Connections share one callback per event and find their transport through their handle or socket. */
describe('plain TCP connections on libuv handles (HandleTransport)', () => {
  it("keeps each connection's bytes its own when many clients send at once, in pieces", async () => {
    const b = await startBroker();
    try {
      const clients = 40;
      const messages = 20;
      const peers = await Promise.all(Array.from({ length: clients }, () => b.raw()));
      // Each client's whole conversation as one byte string: CONNECT, SUBSCRIBE to its own topic,
      // then QoS 1 PUBLISHes to that topic, each payload naming the client and the message.
      const streams = peers.map((_, i) =>
        Buffer.concat([
          connectBytes({ clientId: `own-${i}` }),
          mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `own/${i}`, qos: 1 }] }),
          ...Array.from({ length: messages }, (_, k) =>
            mqttPacket.generate({ cmd: 'publish', topic: `own/${i}`, payload: Buffer.from(`${i}:${k}`), qos: 1, messageId: k + 2, dup: false, retain: false }),
          ),
        ]),
      );
      // Interleaved over all clients in pieces of 1 to 13 bytes, cutting packets anywhere: the
      // broker reads many sockets in each turn, each holding part of a packet of its own.
      const sent = streams.map(() => 0);
      for (let round = 0; sent.some((n, i) => n < streams[i]!.length); round++) {
        streams.forEach((stream, i) => {
          const size = 1 + ((round * 7 + i * 5) % 13);
          if (sent[i]! < stream.length) peers[i]!.send(stream.subarray(sent[i], sent[i]! + size));
          sent[i] = Math.min(stream.length, sent[i]! + size);
        });
      }
      await Promise.all(
        peers.map(async (p, i) => {
          assert.equal((await p.next<mqttPacket.IConnackPacket>('connack', 10_000)).returnCode, 0);
          assert.deepEqual((await p.next<mqttPacket.ISubackPacket>('suback')).granted, [1]);
          for (let k = 0; k < messages; k++) {
            assert.equal((await p.next<mqttPacket.IPubackPacket>('puback')).messageId, k + 2);
            const publish = await p.next<mqttPacket.IPublishPacket>('publish');
            assert.equal(publish.topic, `own/${i}`);
            assert.equal(publish.payload.toString(), `${i}:${k}`);
            p.sendPacket({ cmd: 'puback', messageId: publish.messageId! });
          }
          await p.roundTrip();
          assert.deepEqual(p.packets, [], `client ${i} received more than its own`);
          p.checkWire();
        }),
      );
      assert.equal(b.broker.metrics.protocolErrors, 0);
    } finally {
      await b.close();
    }
  });

  it("reads every plain TCP socket into one buffer they share, each chunk valid only during its call: two clients sending 2 MiB at once each arrive whole and in order", async () => {
    const l = await listener();
    const clients: Socket[] = [];
    try {
      const sent = [randomBytes(2 << 20), randomBytes(2 << 20)];
      for (let i = 0; i < sent.length; i++) {
        const socket = connect(l.port, '127.0.0.1');
        clients.push(socket);
        await until(() => l.accepted.length === i + 1, 'the connection accepted');
      }
      // Interleaved in 16 KiB writes, so that the listener reads both sockets in the same turns.
      for (let at = 0; at < sent[0]!.length; at += 16 << 10) for (const [i, socket] of clients.entries()) socket.write(sent[i]!.subarray(at, at + (16 << 10)));
      await until(() => l.accepted.every((r) => r.length === 2 << 20), 'every byte received', 30_000);
      for (const [i, r] of l.accepted.entries()) assert.ok(Buffer.concat(r.bytes).equals(sent[i]!), `connection ${i}: bytes differ from its client's`);
      assert.ok(l.accepted.every((r) => r.bytes.length > 1), 'more than one read per connection');
      const memory = new Set(l.accepted.flatMap((r) => [...r.buffers]));
      assert.equal(memory.size, 1, `${memory.size} distinct buffers read into`);
    } finally {
      for (const c of clients) c.destroy();
      await l.close();
    }
  });

  it("reads nothing from a paused plain TCP socket while another one is read, and everything once it is resumed (the broker's back-pressure on a publisher)", async () => {
    const l = await listener();
    const paused = connect(l.port, '127.0.0.1');
    let control: Socket | undefined;
    try {
      await until(() => l.accepted.length === 1, 'the first connection accepted');
      control = connect(l.port, '127.0.0.1');
      await until(() => l.accepted.length === 2, 'the second connection accepted');
      const [held, read] = l.accepted as [Received, Received];
      held.transport.pause();
      const sent = randomBytes(8 << 20);
      // In 64 KiB writes: a client's writableLength falls as the kernel takes each one.
      for (let at = 0; at < sent.length; at += 64 << 10) for (const socket of [paused, control]) socket.write(sent.subarray(at, at + (64 << 10)));
      // The paused socket's bytes are in the kernel, unread, while the listener reads the other one.
      await until(() => sent.length - paused.writableLength >= 1 << 20 && read.length >= 1 << 20, 'both clients sending, the other socket read', 30_000);
      assert.equal(held.length, 0, `${held.length} bytes read while paused`);
      held.transport.resume();
      await until(() => held.length === sent.length && read.length === sent.length, 'every byte after resume', 30_000);
      assert.ok(Buffer.concat(held.bytes).equals(sent));
      assert.ok(Buffer.concat(read.bytes).equals(sent));
    } finally {
      paused.destroy();
      control?.destroy();
      await l.close();
    }
  });

  it('writes each batch in order and completes every write exactly once, also the ones a close cancels', async () => {
    const l = await listener();
    const client = connect(l.port, '127.0.0.1');
    try {
      await until(() => l.accepted.length === 1, 'the connection accepted');
      const { transport } = l.accepted[0]!;
      let completed = 0;
      const chunks = Array.from({ length: 3 }, (_, i) => Buffer.alloc(64 << 10, i));
      const got: Buffer[] = [];
      client.on('data', (d: Buffer) => got.push(d));
      transport.write(chunks, () => completed++);
      await until(() => completed === 1 && Buffer.concat(got).length === 3 * (64 << 10), 'the batch written and read');
      assert.ok(Buffer.concat(got).equals(Buffer.concat(chunks)), 'the chunks in order');
      // The client stops reading: the kernel's buffers fill and the writes queue in libuv.
      client.pause();
      const pending = 64;
      for (let i = 0; i < pending; i++) transport.write([Buffer.alloc(256 << 10, i)], () => completed++);
      await until(() => transport.writableLength > 0, 'writes queued behind the full socket');
      transport.destroy();
      // libuv completes a closing handle's queued writes (cancelled) before it reports the close.
      await until(() => l.accepted[0]!.closed, 'the close');
      assert.equal(completed, 1 + pending, 'each write completed exactly once');
      assert.equal(transport.writableLength, 0);
    } finally {
      client.destroy();
      await l.close();
    }
  });

  it('a listener on a host name takes Node\'s sockets (SocketTransport) and reads the same bytes', async () => {
    const l = await listener(undefined, 'localhost');
    const client = connect(l.port, 'localhost');
    try {
      await until(() => l.accepted.length === 1, 'the connection accepted');
      assert.ok(l.accepted[0]!.transport instanceof SocketTransport);
      client.write('over a net.Socket');
      await until(() => l.accepted[0]!.length === 17, 'the bytes');
      assert.equal(Buffer.concat(l.accepted[0]!.bytes).toString(), 'over a net.Socket');
    } finally {
      client.destroy();
      await l.close();
    }
  });

  it('a port already taken is refused at start with the listener and the error named', async () => {
    const l = await listener();
    try {
      await assert.rejects(
        listenTcp({ port: l.port, host: '127.0.0.1' }, new ConnectionGate(() => undefined, 0, new LogAggregator(() => undefined)), new LogAggregator(() => undefined), 'listeners[1]', 5000),
        new RegExp(`^Error: listeners\\[1\\] cannot listen on 127\\.0\\.0\\.1:${l.port}: .*EADDRINUSE`),
      );
    } finally {
      await l.close();
    }
  });
});

describe('TLS connections (SocketTransport)', () => {
  it("reads a TLS socket through Node's own buffers: 2 MiB arrive whole and in order", async () => {
    const pki = await createPki();
    const l = await listener(pki);
    const client = connectTls({ port: l.port, host: '127.0.0.1', ca: await readFile(pki.caFile) });
    try {
      await new Promise((resolve) => client.once('secureConnect', resolve));
      const sent = randomBytes(2 << 20);
      client.write(sent);
      await until(() => l.accepted.length === 1 && l.accepted[0]!.length === sent.length, 'every byte over TLS', 30_000);
      assert.ok(Buffer.concat(l.accepted[0]!.bytes).equals(sent));
    } finally {
      client.destroy();
      await l.close();
      await pki.remove();
    }
  });
});
