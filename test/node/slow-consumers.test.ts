import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { collect, type ServerTestBroker, startBroker } from '../helpers/broker.js';

// A consumer that stops reading is a property of the socket under it: proven over real TCP.

describe('slow consumers', () => {
  let b: ServerTestBroker;
  afterEach(() => b.close());

  it('drops QoS 0 for a subscriber that stops reading (counted), bounds what it holds, and keeps serving others', async () => {
    b = await startBroker({ maxWriteBufferBytes: 256 * 1024 });
    const stalled = await b.raw();
    await stalled.handshake({ clientId: 'stalled' });
    stalled.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood/#', qos: 0 }] });
    await stalled.next('suback');
    stalled.stopReading(); // the kernel buffers fill, then the broker's
    const healthy = await b.client();
    await healthy.subscribeAsync('flood/#');
    const pub = await b.client();
    // 32 MB in all: more than loopback's kernel socket buffers can absorb for the stalled reader.
    const payload = Buffer.alloc(16 * 1024, 7);
    // Paced so that a reading subscriber keeps up; the stalled one falls further behind each round.
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 10; i++) pub.publish('flood/t', payload);
      await collect(healthy, 10, 5000);
    }
    const broker = b.broker;
    assert.ok(broker.metrics.qos0Dropped > 0, 'the stalled subscriber lost QoS 0 messages by policy');
    // What the broker holds for the stalled client stays near its limit, not 32 MB.
    const held = broker.core.arenaStats().bytesInUse;
    assert.ok(held < 2 * 1024 * 1024, `arena holds ${held} bytes`);
    stalled.destroy();
  });

  it('delivers every QoS 0 message of a burst larger than maxWriteBufferBytes to a subscriber that keeps up: large messages go by reference, and only what its socket leaves unwritten counts', async () => {
    b = await startBroker({ maxWriteBufferBytes: 64 * 1024 });
    const sub = await b.client();
    await sub.subscribeAsync('burst/#');
    const pub = await b.raw();
    await pub.handshake({ clientId: 'burster' });
    // 16 × 32 KiB in one write: the broker routes several of them in one turn, past 64 KiB for the subscriber.
    const payload = Buffer.alloc(32 * 1024, 3);
    pub.send(...Array.from({ length: 16 }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic: `burst/${i}`, payload, qos: 0, retain: false, dup: false })));
    const got = await collect(sub, 16, 5000);
    assert.deepEqual(
      got.map((m) => m.topic),
      Array.from({ length: 16 }, (_, i) => `burst/${i}`),
    );
    assert.equal(b.broker.metrics.qos0Dropped, 0);
    pub.destroy();
  });
});
