import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ackReason, collect, startCoreBroker, type TestBroker } from '../helpers/broker.js';

describe('session queues', () => {
  let b: TestBroker;
  afterEach(() => b.close());

  it('caps a session queue: beyond maxQueuedMessages messages are dropped, counted, and a 5.0 publisher hears 0x97 Quota exceeded', async () => {
    b = await startCoreBroker({ maxQueuedMessages: 3 });
    const sub = await b.connect({ clientId: 'capped', clean: false });
    await sub.subscribeAsync('cap/#', { qos: 1 });
    await sub.endAsync();
    const pub = await b.client({ protocolVersion: 5 });
    const reasons: number[] = [];
    for (let i = 0; i < 5; i++) {
      reasons.push(await ackReason(pub.publishAsync(`cap/${i}`, String(i), { qos: 1 })));
    }
    assert.deepEqual(reasons, [0, 0, 0, 0x97, 0x97]);
    assert.equal(b.broker.metrics.queueDropped, 2);
    const back = await b.connect({ clientId: 'capped', clean: false });
    const got = await collect(back, 3);
    assert.deepEqual(got.map((m) => m.payload.toString()), ['0', '1', '2']);
    await back.endAsync();
    const clean = await b.client({ clientId: 'capped', clean: true });
    await clean.endAsync();
  });

  it('a QoS 2 PUBLISH answered PUBREC 0x97 (a queue full) ends its flow: its identifier is free again, and thirty such never add up to a Receive Maximum of 10 [MQTT-4.3.3-9] [MQTT-3.3.4-7]', { timeout: 20_000 }, async () => {
    // Found by the soak: the identifiers were kept for a PUBREL that never comes, until the publisher was disconnected with 0x93.
    b = await startCoreBroker({ maxQueuedMessages: 1, receiveMaximum: 10 });
    const sub = await b.connect({ clientId: 'full', clean: false });
    await sub.subscribeAsync('full/#', { qos: 2 });
    await sub.endAsync();
    const pub = await b.client({ protocolVersion: 5 });
    const reasons = new Set<number>();
    for (let i = 0; i < 30; i++) reasons.add(await ackReason(pub.publishAsync('full/t', String(i), { qos: 2 })));
    assert.deepEqual([...reasons], [0, 0x97]);
    assert.equal(b.broker.sessions.get(pub.options.clientId!)!.incomingQos2.size, 0, 'no identifier waits for a PUBREL');
    const watcher = await b.client({ protocolVersion: 5 });
    await watcher.subscribeAsync('other/#', { qos: 2 });
    await pub.publishAsync('other/t', 'after', { qos: 2 });
    assert.equal((await collect(watcher, 1))[0]!.payload.toString(), 'after');
    const clean = await b.client({ clientId: 'full', clean: true });
    await clean.endAsync();
  });

  it('caps a session queue by bytes too (maxQueuedBytes)', async () => {
    b = await startCoreBroker({ maxQueuedBytes: 2500 });
    const sub = await b.connect({ clientId: 'bytes', clean: false });
    await sub.subscribeAsync('by/#', { qos: 1 });
    await sub.endAsync();
    const pub = await b.client({ protocolVersion: 5 });
    const reasons: number[] = [];
    for (let i = 0; i < 3; i++) {
      reasons.push(await ackReason(pub.publishAsync('by/t', Buffer.alloc(1000), { qos: 1 })));
    }
    assert.deepEqual(reasons, [0, 0, 0x97]);
    const clean = await b.client({ clientId: 'bytes', clean: true });
    await clean.endAsync();
  });

  it('never has more unacknowledged QoS 1 messages out than the client Receive Maximum [MQTT-3.3.4-9]', async () => {
    b = await startCoreBroker();
    const raw = await b.raw();
    await raw.handshake({ protocolVersion: 5, properties: { receiveMaximum: 2 } });
    raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rw/#', qos: 1 }] }, 5);
    await raw.next('suback');
    const pub = await b.client({ protocolVersion: 5 });
    for (let i = 0; i < 5; i++) await pub.publishAsync(`rw/${i}`, String(i), { qos: 1 });
    const first = [await raw.next('publish'), await raw.next('publish')];
    await assert.rejects(raw.next('publish', 200), /no publish/);
    raw.sendPacket({ cmd: 'puback', messageId: (first[0] as { messageId: number }).messageId }, 5);
    await raw.next('publish');
    await assert.rejects(raw.next('publish', 200), /no publish/);
    raw.destroy();
  });
});
