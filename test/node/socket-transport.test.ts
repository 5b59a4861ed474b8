import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { startBroker } from '../helpers/broker.js';
import { connectBytes } from '../helpers/peer.js';

/** Sockets share one listener function per event and find their connection through the socket itself. */
describe('SocketTransport over TCP', () => {
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
});
