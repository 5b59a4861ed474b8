import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IPublishPacket, IPubrecPacket, IDisconnectPacket, IPubackPacket } from 'mqtt-packet';
import { ackReason, collect, expectSilence, startCoreBroker, type TestBroker } from '../../helpers/broker.js';

describe('PUBLISH', () => {
  let b: TestBroker;
  beforeEach(async () => {
    b = await startCoreBroker({ maxPacketSize: 4096 });
  });
  afterEach(() => b.close());

  for (const protocolVersion of [4, 5] as const) {
    for (const pubQos of [0, 1, 2] as const) {
      for (const subQos of [0, 1, 2] as const) {
        it(`delivers a QoS ${pubQos} publish to a QoS ${subQos} subscription at QoS ${Math.min(pubQos, subQos)} (v${protocolVersion})`, async () => {
          const topic = `q/${protocolVersion}/${pubQos}/${subQos}`;
          const sub = await b.client({ protocolVersion });
          await sub.subscribeAsync(topic, { qos: subQos });
          const pub = await b.client({ protocolVersion });
          const got = collect(sub, 1);
          await pub.publishAsync(topic, Buffer.from('hello'), { qos: pubQos });
          const [m] = await got;
          assert.equal(m!.payload.toString(), 'hello');
          assert.equal(m!.packet.qos, Math.min(pubQos, subQos));
          assert.equal(m!.packet.retain, false);
          await Promise.all([sub.endAsync(), pub.endAsync()]);
        });
      }
    }
  }

  for (const qos of [0, 1, 2] as const) {
    it(`delivers a subscriber every QoS ${qos} message of a publisher in order, past the inflight window [MQTT-4.6.0-6]`, async () => {
      const sub = await b.client();
      await sub.subscribeAsync('order/#', { qos: 2 });
      const pub = await b.client();
      const got = collect(sub, 500, 5000);
      for (let i = 0; i < 500; i++) pub.publish(`order/${i % 7}`, String(i), { qos });
      const messages = await got;
      assert.deepEqual(messages.map((m) => Number(m.payload.toString())), [...Array(500).keys()]);
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    });
  }

  for (const protocolVersion of [4, 5] as const) {
    it(`routes a client's $ topics other than $SYS, never to filters starting with a wildcard, and keeps $SYS read-only (v${protocolVersion}) [MQTT-4.7.2-1]`, async () => {
      const sub = await b.client({ protocolVersion });
      await sub.subscribeAsync(['#', '+/B', '$TopicA/#', '$aws/things/+/shadow/update', '$SYS/fake'], { qos: 1 });
      const pub = await b.client({ protocolVersion });
      assert.equal(await ackReason(pub.publishAsync('$TopicA/B', 'a', { qos: 1 })), 0);
      assert.equal(await ackReason(pub.publishAsync('$aws/things/t1/shadow/update', 'b', { qos: 1 })), 0);
      // $SYS stays the broker's: 5.0 hears 0x87, a 3.1.1 publish is acknowledged and dropped.
      assert.equal(await ackReason(pub.publishAsync('$SYS/fake', 'c', { qos: 1 })), protocolVersion === 5 ? 0x87 : 0);
      await pub.publishAsync('plain/B', 'd', { qos: 1 });
      assert.deepEqual((await collect(sub, 3)).map((m) => m.topic), ['$TopicA/B', '$aws/things/t1/shadow/update', 'plain/B']);
      await expectSilence(sub);
    });
  }

  it('delivers large payloads across every arena tier intact', async () => {
    const sub = await b.client();
    await sub.subscribeAsync('big');
    const pub = await b.client();
    const sizes = [0, 1, 1000, 4000];
    const got = collect(sub, sizes.length);
    for (const size of sizes) pub.publish('big', Buffer.alloc(size, size % 251));
    const messages = await got;
    assert.deepEqual(messages.map((m) => m.payload.length), sizes);
    for (const m of messages) assert.ok(m.payload.every((x) => x === m.payload.length % 251));
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('delivers a QoS 2 message once although the client resends the PUBLISH before PUBREL [MQTT-4.3.3-10]', async () => {
    const sub = await b.client();
    await sub.subscribeAsync('once', { qos: 2 });
    const raw = await b.raw();
    await raw.handshake();
    const publish = { cmd: 'publish', topic: 'once', payload: Buffer.from('x'), qos: 2, messageId: 7, dup: false, retain: false } as const;
    raw.sendPacket(publish);
    assert.equal(((await raw.next('pubrec')) as IPubrecPacket).messageId, 7);
    raw.sendPacket({ ...publish, dup: true });
    assert.equal(((await raw.next('pubrec')) as IPubrecPacket).messageId, 7);
    raw.sendPacket({ cmd: 'pubrel', messageId: 7 });
    await raw.next('pubcomp');
    const got = await collect(sub, 1);
    assert.equal(got.length, 1);
    await expectSilence(sub);
    raw.destroy();
    await sub.endAsync();
  });

  it('acknowledges QoS 1 with PUBACK carrying the packet identifier [MQTT-3.3.4-1]', async () => {
    const raw = await b.raw();
    await raw.handshake();
    raw.sendPacket({ cmd: 'publish', topic: 'ack/1', payload: Buffer.from('x'), qos: 1, messageId: 4242, dup: false, retain: false });
    assert.equal(((await raw.next('puback')) as IPubackPacket).messageId, 4242);
    raw.destroy();
  });

  it('sends QoS 2 outbound through PUBLISH, PUBREC, PUBREL, PUBCOMP [MQTT-4.3.3-1]', async () => {
    const raw = await b.raw();
    await raw.handshake();
    raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'out/2', qos: 2 }] });
    await raw.next('suback');
    const pub = await b.client();
    await pub.publishAsync('out/2', 'payload', { qos: 2 });
    const p = (await raw.next('publish')) as IPublishPacket;
    assert.equal(p.qos, 2);
    raw.sendPacket({ cmd: 'pubrec', messageId: p.messageId! });
    const rel = await raw.next('pubrel');
    assert.equal((rel as { messageId: number }).messageId, p.messageId);
    raw.sendPacket({ cmd: 'pubcomp', messageId: p.messageId! });
    raw.destroy();
    await pub.endAsync();
  });

  it('does not send a message back to a no-local subscription of its publisher (5.0) [MQTT-3.8.3-3]', async () => {
    const c = await b.client({ protocolVersion: 5 });
    await c.subscribeAsync('nl/t', { qos: 0, nl: true });
    const other = await b.client({ protocolVersion: 5 });
    await other.subscribeAsync('nl/t');
    const got = collect(other, 1);
    c.publish('nl/t', 'mine');
    await got;
    await expectSilence(c);
    await Promise.all([c.endAsync(), other.endAsync()]);
  });

  describe('bad input closes the connection and the broker keeps serving others', () => {
    const cases: [string, number[], number][] = [
      // PUBLISH, QoS 0, topic "a+b"
      ['a wildcard in the topic name [MQTT-3.3.2-2]', [0x30, 5, 0, 3, 0x61, 0x2b, 0x62], 0x90],
      ['a # in the topic name [MQTT-3.3.2-2]', [0x30, 3, 0, 1, 0x23], 0x90],
      ['invalid UTF-8 in the topic name [MQTT-1.5.4-1]', [0x30, 4, 0, 2, 0xc3, 0x28], 0x81],
      ['U+0000 in the topic name [MQTT-1.5.4-2]', [0x30, 5, 0, 3, 0x61, 0x00, 0x62], 0x81],
      ['QoS 3 [MQTT-3.3.1-4]', [0x36, 5, 0, 1, 0x61, 0, 1], 0x81],
      ['DUP on QoS 0 [MQTT-3.3.1-2]', [0x38, 3, 0, 1, 0x61], 0x81],
      ['a topic length running past the packet', [0x30, 3, 0, 9, 0x61], 0x81],
      ['packet identifier 0 on QoS 1 [MQTT-2.3.1-1]', [0x32, 5, 0, 1, 0x61, 0, 0], 0x81],
      ['a reserved packet type 0', [0x00, 0], 0x81],
      ['a server-only packet type (CONNACK)', [0x20, 2, 0, 0], 0x81],
      ['wrong reserved flags on SUBSCRIBE [MQTT-3.8.1-1]', [0x80, 6, 0, 1, 0, 1, 0x61, 0], 0x81],
      ['a PINGREQ with a body', [0xc0, 1, 0], 0x81],
    ];
    for (const [what, bytes, reason] of cases) {
      for (const protocolVersion of [4, 5] as const) {
        it(`${what} (v${protocolVersion}${protocolVersion === 5 ? `, DISCONNECT 0x${reason.toString(16)}` : ''})`, async () => {
          const bystander = await b.client();
          await bystander.subscribeAsync('alive');
          const raw = await b.raw();
          await raw.handshake({ protocolVersion });
          const packet = [...bytes];
          if (protocolVersion === 5 && bytes[0]! >> 4 === 3) {
            // 5.0 PUBLISH carries a property length after the topic (and packet id): add an empty one.
            const qos = (bytes[0]! >> 1) & 3;
            const topicLen = (bytes[2]! << 8) | bytes[3]!;
            const at = 4 + topicLen + (qos > 0 && qos < 3 ? 2 : 0);
            if (at <= packet.length && !what.includes('past the packet')) {
              packet.splice(at, 0, 0);
              packet[1]! += 1;
            }
          }
          raw.send(packet);
          if (protocolVersion === 5) {
            const d = (await raw.next('disconnect')) as IDisconnectPacket;
            assert.equal(d.reasonCode, reason);
          }
          await raw.expectClosed();
          const got = collect(bystander, 1);
          bystander.publish('alive', 'yes');
          assert.equal((await got)[0]!.payload.toString(), 'yes');
          await bystander.endAsync();
        });
      }
    }

    it('a packet over the maximum packet size (5.0: DISCONNECT 0x95)', async () => {
      const raw = await b.raw();
      await raw.handshake({ protocolVersion: 5 });
      raw.sendPacket({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(5000), qos: 0, dup: false, retain: false }, 5);
      const d = (await raw.next('disconnect')) as IDisconnectPacket;
      assert.equal(d.reasonCode, 0x95);
      await raw.expectClosed();
    });

    it('a packet over the maximum packet size (3.1.1: closed)', async () => {
      const raw = await b.raw();
      await raw.handshake();
      raw.sendPacket({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(5000), qos: 0, dup: false, retain: false });
      await raw.expectClosed();
    });
  });
});
