import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { ISubackPacket, IUnsubackPacket } from 'mqtt-packet';
import { Message } from '../../../host/core/model/message.js';
import { collect, expectSilence, roundTrip, startCoreBroker, type TestBroker } from '../../helpers/broker.js';

describe('SUBSCRIBE and UNSUBSCRIBE', () => {
  let b: TestBroker;
  beforeEach(async () => {
    b = await startCoreBroker();
  });
  afterEach(() => b.close());

  it('matches + and # per the specification, sport/# including sport [MQTT-4.7.1-2]', async () => {
    const sub = await b.client();
    await sub.subscribeAsync(['sport/#', 'finance/+/price', '+/+']);
    const pub = await b.client();
    const topics = ['sport', 'sport/tennis/player1', 'finance/eur/price', 'finance/eur/volume', 'a/b', 'a/b/c', 'x'];
    // sport → sport/#; sport/tennis/player1 → sport/#; finance/eur/price → finance/+/price; a/b → +/+
    const got = collect(sub, 4);
    for (const t of topics) pub.publish(t, t);
    const received = (await got).map((m) => m.topic).sort();
    assert.deepEqual(received, ['a/b', 'finance/eur/price', 'sport', 'sport/tennis/player1']);
    await expectSilence(sub, pub);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('does not match topics starting with $ by filters starting with a wildcard [MQTT-4.7.2-1]', async () => {
    const sub = await b.client();
    await sub.subscribeAsync(['#', '+/info']);
    const sys = await b.client();
    await sys.subscribeAsync('$test/#');
    const got = collect(sys, 2);
    // Clients may not publish to $ topics (the server refuses them), so the broker itself does.
    const broker = b.broker;
    for (const [topic, payload] of [['$test/info', 'x'], ['$test', 'y']] as const) {
      const message = Message.create(broker.core, topic, new TextEncoder().encode(payload), 0, false)!;
      broker.router.publish(message, null);
      message.unref();
    }
    assert.deepEqual((await got).map((m) => m.topic).sort(), ['$test', '$test/info']);
    await expectSilence(sub);
    await Promise.all([sub.endAsync(), sys.endAsync()]);
  });

  it('sends one copy at the highest QoS of overlapping subscriptions of one client [MQTT-3.3.4-2]', async () => {
    const sub = await b.client();
    await sub.subscribeAsync({ 'ov/#': { qos: 0 }, 'ov/+': { qos: 2 }, 'ov/x': { qos: 1 } });
    const pub = await b.client();
    const got = collect(sub, 1);
    pub.publish('ov/x', 'm', { qos: 2 });
    const [m] = await got;
    assert.equal(m!.packet.qos, 2);
    await expectSilence(sub, pub);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('carries every matching subscription identifier in the one copy (5.0) [MQTT-3.3.4-3]', async () => {
    const sub = await b.client({ protocolVersion: 5 });
    await sub.subscribeAsync('sid/#', { qos: 1, properties: { subscriptionIdentifier: 11 } });
    await sub.subscribeAsync('sid/+', { qos: 0, properties: { subscriptionIdentifier: 22 } });
    await sub.subscribeAsync('sid/a', { qos: 0 });
    const pub = await b.client({ protocolVersion: 5 });
    const got = collect(sub, 1);
    pub.publish('sid/a', 'm', { qos: 1 });
    const [m] = await got;
    const ids = m!.packet.properties?.subscriptionIdentifier;
    assert.deepEqual((Array.isArray(ids) ? ids : [ids]).sort((x, y) => Number(x) - Number(y)), [11, 22]);
    assert.equal(m!.packet.qos, 1);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('replaces an identical subscription instead of adding a second one [MQTT-3.8.4-3]', async () => {
    const sub = await b.client();
    await sub.subscribeAsync('rep/t', { qos: 0 });
    await sub.subscribeAsync('rep/t', { qos: 1 });
    const pub = await b.client();
    const got = collect(sub, 1);
    pub.publish('rep/t', 'm', { qos: 1 });
    assert.equal((await got)[0]!.packet.qos, 1);
    await expectSilence(sub, pub);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('stops delivery after UNSUBSCRIBE and acknowledges with the packet identifier [MQTT-3.10.4-4]', async () => {
    const sub = await b.client();
    await sub.subscribeAsync('uns/t');
    await sub.unsubscribeAsync('uns/t');
    const pub = await b.client();
    pub.publish('uns/t', 'm');
    await expectSilence(sub, pub);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('answers UNSUBSCRIBE of an unknown filter with 0x11 No subscription existed (5.0)', async () => {
    const raw = await b.raw();
    await raw.handshake({ protocolVersion: 5 });
    raw.sendPacket({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'u/a', qos: 0 }] }, 5);
    await raw.next('suback');
    raw.sendPacket({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['u/a', 'u/b'] }, 5);
    const ack = (await raw.next('unsuback')) as IUnsubackPacket;
    assert.equal(ack.messageId, 4);
    assert.deepEqual(ack.granted, [0x00, 0x11]);
    raw.destroy();
  });

  it('refuses invalid filters in SUBACK: 0x80 in 3.1.1, 0x8F in 5.0, granting the valid ones [MQTT-3.8.4-6]', async () => {
    for (const protocolVersion of [4, 5] as const) {
      const raw = await b.raw();
      await raw.handshake({ protocolVersion });
      raw.sendPacket(
        { cmd: 'subscribe', messageId: 9, subscriptions: [{ topic: 'ok/#', qos: 1 }, { topic: 'bad/#/x', qos: 0 }, { topic: 'a+', qos: 2 }, { topic: '$share//x', qos: 0 }] },
        protocolVersion,
      );
      const ack = (await raw.next('suback')) as ISubackPacket;
      const bad = protocolVersion === 5 ? 0x8f : 0x80;
      assert.deepEqual(ack.granted, [1, bad, bad, bad]);
      raw.destroy();
    }
  });

  it('delivers each message of a $share group to exactly one member, round-robin', async () => {
    const members = await Promise.all([0, 1, 2].map(() => b.client({ protocolVersion: 5 })));
    for (const m of members) await m.subscribeAsync('$share/g1/work/+');
    const plain = await b.client({ protocolVersion: 5 });
    await plain.subscribeAsync('work/#');
    const counts = [0, 0, 0];
    members.forEach((m, i) => m.on('message', () => counts[i]!++));
    const all = collect(plain, 30);
    const pub = await b.client({ protocolVersion: 5 });
    for (let i = 0; i < 30; i++) pub.publish(`work/${i}`, String(i));
    await all;
    await roundTrip(pub, ...members);
    assert.deepEqual(counts, [10, 10, 10]);
    await Promise.all([...members, plain, pub].map((c) => c.endAsync()));
  });

  it('closes a 5.0 connection that sets No Local on a shared subscription [MQTT-3.8.3-4]', async () => {
    const raw = await b.raw();
    await raw.handshake({ protocolVersion: 5 });
    raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/x', qos: 0, nl: true }] }, 5);
    const d = await raw.next('disconnect');
    assert.equal((d as { reasonCode: number }).reasonCode, 0x82);
    await raw.expectClosed();
  });

  it('closes a connection that sends SUBSCRIBE without any filter [MQTT-3.8.3-3]', async () => {
    const raw = await b.raw();
    await raw.handshake();
    raw.send([0x82, 2, 0, 1]);
    await raw.expectClosed();
  });
});
