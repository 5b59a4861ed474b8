// MQTT 5.0 conformance: PUBLISH (§3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4–3.7).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type TestBroker } from '../../helpers/broker.js';
import {
  ack,
  brokerTime,
  client,
  drop,
  hex,
  lasting,
  P,
  packet,
  type Peer,
  pingreq,
  prop,
  propOf,
  propsOf,
  publish,
  REASONS,
  str,
  subOpts,
  subscribe,
  T,
  u16,
  uniqueId,
  unsubscribe,
  useBroker,
  userProps,
} from './helpers.js';

async function subscriber(b: TestBroker, filter: string, options: number, o: Parameters<typeof client>[1] = {}): Promise<Peer> {
  const s = await client(b, o);
  await s.sub(filter, options);
  return s;
}


describe('MQTT 5.0 §3.3 PUBLISH', () => {
  const broker = useBroker();

  describe('fixed header', () => {
    for (const qos of [1, 2]) {
      it(`[MQTT-3.3.1-1] sets DUP 1 when it re-delivers a QoS ${qos} PUBLISH, and 0 the first time`, async () => {
        const b = broker();
        const id = uniqueId();
        const s = await subscriber(b, 'dup/t', subOpts(qos), lasting(id));
        const pub = await client(b);
        await pub.pub('dup/t', 'x', { qos });
        const first = await s.publishFrame();
        assert.equal(first.dup, false);
        await drop(s);
        const again = await client(b, lasting(id));
        const resent = await again.publishFrame();
        assert.deepEqual([resent.dup, resent.id, resent.qos, resent.payload.toString()], [true, first.id, qos, 'x']);
      });
    }

    it('[MQTT-3.3.1-2] sends every QoS 0 PUBLISH with DUP 0, also one downgraded from a retransmitted QoS 1 PUBLISH', async () => {
      const b = broker();
      const s = await subscriber(b, 'dup0/t', subOpts(0));
      const pub = await client(b);
      await pub.pub('dup0/t', 'a', { qos: 1, dup: true });
      await pub.pub('dup0/t', 'b', { qos: 0 });
      for (let i = 0; i < 2; i++) {
        const m = await s.publishFrame();
        assert.deepEqual([m.qos, m.dup], [0, false]);
      }
    });

    it('[MQTT-3.3.1-2] closes the connection of a client that sends a QoS 0 PUBLISH with DUP 1', async () => {
      const c = await client(broker());
      c.send(publish({ topic: 't', dup: true }));
      await c.expectDisconnect([0x81, 0x82]);
    });

    it('[MQTT-3.3.1-3] sets DUP on the outgoing PUBLISH by its own retransmission only, not by the incoming DUP', async () => {
      const b = broker();
      const s = await subscriber(b, 'dup3/#', subOpts(2));
      const pub = await client(b);
      await pub.pub('dup3/1', 'a', { qos: 1, dup: true });
      await pub.pub('dup3/2', 'b', { qos: 2, dup: true });
      for (let i = 0; i < 2; i++) assert.equal((await s.publishFrame()).dup, false);
    });

    it('[MQTT-3.3.1-4] treats a PUBLISH with both QoS bits set as malformed: DISCONNECT 0x81, nothing delivered', async () => {
      const b = broker();
      const s = await subscriber(b, '#', subOpts(2));
      const c = await client(b);
      c.send(packet(0x36, str('q3'), u16(1), [0]));
      await c.expectDisconnect(0x81);
      await s.none(T.PUBLISH);
    });
  });

  describe('retained messages', () => {
    it('[MQTT-3.3.1-5] replaces the retained message of the topic with a new RETAIN 1 PUBLISH', async () => {
      const b = broker();
      const pub = await client(b);
      await pub.pub('ret/5', 'old', { retain: true, qos: 1 });
      await pub.pub('ret/5', 'new', { retain: true, qos: 1 });
      const s = await subscriber(b, 'ret/5', subOpts(1));
      const m = await s.publishFrame();
      assert.deepEqual([m.payload.toString(), m.retain], ['new', true]);
      await s.none(T.PUBLISH);
    });

    it('[MQTT-3.3.1-6] removes the retained message on a zero-byte RETAIN 1 PUBLISH, which is delivered normally', async () => {
      const b = broker();
      const pub = await client(b);
      await pub.pub('ret/6', 'kept', { retain: true, qos: 1 });
      const live = await subscriber(b, 'ret/6', subOpts(1, { rh: 2 }));
      await pub.pub('ret/6', '', { retain: true, qos: 1 });
      const m = await live.publishFrame();
      assert.equal(m.payload.length, 0);
      const late = await subscriber(b, 'ret/6', subOpts(1));
      await late.none(T.PUBLISH);
    });

    it('[MQTT-3.3.1-7] does not store a zero-byte retained message', async () => {
      const b = broker();
      const pub = await client(b);
      await pub.pub('ret/7', '', { retain: true, qos: 1 });
      const late = await subscriber(b, 'ret/#', subOpts(1));
      await late.none(T.PUBLISH);
    });

    it('[MQTT-3.3.1-8] neither stores nor removes nor replaces a retained message for a RETAIN 0 PUBLISH', async () => {
      const b = broker();
      const pub = await client(b);
      await pub.pub('ret/8/a', 'retained', { retain: true, qos: 1 });
      await pub.pub('ret/8/a', 'not retained', { qos: 1 });
      await pub.pub('ret/8/a', '', { qos: 1 });
      await pub.pub('ret/8/b', 'not retained either', { qos: 1 });
      const late = await subscriber(b, 'ret/8/#', subOpts(1));
      const m = await late.publishFrame();
      assert.deepEqual([m.topic, m.payload.toString(), m.retain], ['ret/8/a', 'retained', true]);
      await late.none(T.PUBLISH);
    });

    it('[MQTT-3.3.1-9] sends matching retained messages on every SUBSCRIBE with Retain Handling 0, with RETAIN 1', async () => {
      const b = broker();
      const pub = await client(b);
      await pub.pub('rh0/a', 'A', { retain: true, qos: 1 });
      await pub.pub('rh0/b', 'B', { retain: true, qos: 1 });
      const s = await client(b);
      for (let round = 0; round < 2; round++) {
        await s.sub('rh0/+', subOpts(1, { rh: 0 }));
        const got = [await s.publishFrame(), await s.publishFrame()];
        assert.deepEqual(got.map((m) => `${m.topic}=${m.payload}`).sort(), ['rh0/a=A', 'rh0/b=B']);
        assert.ok(got.every((m) => m.retain));
      }
    });

    it('[MQTT-3.3.1-10] with Retain Handling 1 sends retained messages only when the subscription is new', async () => {
      const b = broker();
      const pub = await client(b);
      await pub.pub('rh1/t', 'R', { retain: true, qos: 1 });
      const id = uniqueId();
      const s = await client(b, lasting(id));
      await s.sub('rh1/t', subOpts(1, { rh: 1 }));
      const m = await s.publishFrame();
      assert.equal(m.retain, true);
      s.send(ack(T.PUBACK, m.id));
      await s.sub('rh1/t', subOpts(1, { rh: 1 }));
      await s.none(T.PUBLISH);
      // Still existing in the resumed session.
      await drop(s);
      const again = await client(b, lasting(id));
      assert.equal(again.connack.sessionPresent, true);
      await again.sub('rh1/t', subOpts(1, { rh: 1 }));
      await again.none(T.PUBLISH);
    });

    it('[MQTT-3.3.1-11] with Retain Handling 2 sends no retained messages', async () => {
      const b = broker();
      const pub = await client(b);
      await pub.pub('rh2/t', 'R', { retain: true, qos: 1 });
      const s = await client(b);
      await s.sub('rh2/#', subOpts(1, { rh: 2 }));
      await s.none(T.PUBLISH);
      await pub.pub('rh2/t', 'live', { qos: 1 });
      assert.equal((await s.publishFrame()).payload.toString(), 'live');
    });

    it('[MQTT-3.3.1-12] forwards with RETAIN 0 when Retain As Published is 0', async () => {
      const b = broker();
      const s = await subscriber(b, 'rap0/t', subOpts(1, { rap: false }));
      const pub = await client(b);
      await pub.pub('rap0/t', 'x', { retain: true, qos: 1 });
      assert.equal((await s.publishFrame()).retain, false);
    });

    it('[MQTT-3.3.1-13] forwards with the RETAIN flag as received when Retain As Published is 1', async () => {
      const b = broker();
      const s = await subscriber(b, 'rap1/t', subOpts(1, { rap: true }));
      const pub = await client(b);
      await pub.pub('rap1/t', 'x', { retain: true, qos: 1 });
      await pub.pub('rap1/t', 'y', { retain: false, qos: 1 });
      assert.equal((await s.publishFrame()).retain, true);
      assert.equal((await s.publishFrame()).retain, false);
    });
  });

  describe('variable header', () => {
    it('[MQTT-3.3.2-1] treats a PUBLISH without a complete Topic Name as malformed: DISCONNECT 0x81', async () => {
      const c = await client(broker());
      c.send(packet(0x30, [0, 9], Buffer.from('abc')));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-3.3.2-1] treats a Topic Name that is not UTF-8 as malformed: DISCONNECT 0x81', async () => {
      const c = await client(broker());
      c.send(publish({ topic: Uint8Array.from([0x74, 0x80]), qos: 1, id: 1 }));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-3.3.2-2] refuses a Topic Name with "#": DISCONNECT 0x90 (Topic Name invalid), nothing delivered', async () => {
      const b = broker();
      const s = await subscriber(b, '#', subOpts(1));
      const c = await client(b);
      c.send(publish({ topic: 'a/#', qos: 1, id: 5 }));
      await c.expectDisconnect(0x90);
      await s.none(T.PUBLISH);
    });

    it('[MQTT-3.3.2-3] sends each message with a Topic Name that matches the subscription filter', async () => {
      const b = broker();
      const s = await client(b);
      await s.sub([['m/+/c', 1], ['x/#', 1]]);
      const pub = await client(b);
      const topics = ['m/b/c', 'm/b/c/d', 'm//c', 'x', 'x/y/z', 'y/x', 'm/c'];
      for (const t of topics) await pub.pub(t, t, { qos: 1 });
      const got = (await s.publishes()).map((m) => m.topic);
      assert.deepEqual(got, ['m/b/c', 'm//c', 'x', 'x/y/z']);
    });

    it('[MQTT-3.3.2-4] forwards the Payload Format Indicator unaltered to every subscriber', async () => {
      const b = broker();
      const s1 = await subscriber(b, 'pfi/#', subOpts(1));
      const s2 = await subscriber(b, 'pfi/+', subOpts(0));
      const pub = await client(b);
      await pub.pub('pfi/1', 'text ✓', { qos: 1, props: [prop.payloadFormat(1)] });
      await pub.pub('pfi/0', Buffer.from([0xff, 0xfe]), { qos: 1, props: [prop.payloadFormat(0)] });
      await pub.pub('pfi/none', 'x', { qos: 1 });
      for (const s of [s1, s2]) {
        const got = [await s.publishFrame(), await s.publishFrame(), await s.publishFrame()];
        assert.deepEqual(
          got.map((m) => propOf(m.props, P.PayloadFormatIndicator)),
          [1, 0, undefined],
        );
      }
    });

    it('[MQTT-3.3.2-5] deletes a message whose expiry passed before delivery started, queued or retained', async () => {
      const b = broker();
      const id = uniqueId();
      const s = await subscriber(b, 'exp/#', subOpts(1), lasting(id));
      await drop(s);
      // Online, but with its receive window full: later messages wait in the server.
      const full = await subscriber(b, 'exp/q', subOpts(1), { props: [prop.receiveMaximum(1)] });
      const pub = await client(b);
      await pub.pub('exp/q', 'first', { qos: 1 });
      await pub.pub('exp/q', 'expires', { qos: 1, props: [prop.messageExpiry(1)] });
      await pub.pub('exp/q', 'stays', { qos: 1 });
      await pub.pub('exp/r', 'retained, expires', { qos: 1, retain: true, props: [prop.messageExpiry(1)] });
      const expired = await brokerTime(b, 1);
      const first = await full.publishFrame();
      await expired();
      full.send(ack(T.PUBACK, first.id));
      assert.equal((await full.publishFrame()).payload.toString(), 'stays');
      const again = await client(b, lasting(id));
      assert.deepEqual((await again.publishes()).map((m) => m.payload.toString()), ['first', 'stays']);
      const late = await subscriber(b, 'exp/r', subOpts(1));
      await late.none(T.PUBLISH);
    });

    it('[MQTT-3.3.2-6] sends the Message Expiry Interval minus the time the message waited in the server', async () => {
      const b = broker();
      const id = uniqueId();
      const live = await subscriber(b, 'exp6/#', subOpts(1));
      const s = await subscriber(b, 'exp6/#', subOpts(1), lasting(id));
      await drop(s);
      const pub = await client(b);
      await pub.pub('exp6/q', 'x', { qos: 1, props: [prop.messageExpiry(10)] });
      await pub.pub('exp6/r', 'y', { qos: 1, retain: true, props: [prop.messageExpiry(10)] });
      for (let i = 0; i < 2; i++) {
        const e = propOf<number>((await live.publishFrame()).props, P.MessageExpiryInterval)!;
        assert.ok(e >= 9 && e <= 10, `immediate delivery with ${e}`);
      }
      await (await brokerTime(b, 1))();
      const again = await client(b, lasting(id));
      const late = await subscriber(b, 'exp6/r', subOpts(1));
      for (const m of [await again.publishFrame(), await again.publishFrame(), await late.publishFrame()]) {
        const e = propOf<number>(m.props, P.MessageExpiryInterval)!;
        assert.ok(e >= 8 && e <= 9, `${m.topic} after waiting over 1 s carries ${e}`);
      }
    });
  });

  describe('topic aliases from the client', () => {
    it('[MQTT-3.3.2-7] does not carry a Topic Alias mapping over to a new connection: using it is a Protocol Error', async () => {
      const b = broker();
      const s = await subscriber(b, 'alias/#', subOpts(1));
      const id = uniqueId();
      const c = await client(b, lasting(id));
      await c.pub('alias/7', 'set', { qos: 1, props: [prop.topicAlias(3)] });
      await c.pub('', 'used', { qos: 1, props: [prop.topicAlias(3)] });
      assert.deepEqual([(await s.publishFrame()).topic, (await s.publishFrame()).topic], ['alias/7', 'alias/7']);
      await drop(c);
      const again = await client(b, lasting(id));
      again.send(publish({ topic: '', qos: 1, id: 9, props: [prop.topicAlias(3)] }));
      await again.expectDisconnect(0x82);
      await s.none(T.PUBLISH);
    });

    it('[MQTT-3.3.2-8] refuses a Topic Alias of 0: DISCONNECT (Topic Alias invalid / Protocol Error)', async () => {
      const b = broker();
      const s = await subscriber(b, '#', subOpts(1));
      const c = await client(b);
      c.send(publish({ topic: 'alias/0', qos: 1, id: 1, props: [prop.topicAlias(0)] }));
      await c.expectDisconnect([0x94, 0x82]);
      await s.none(T.PUBLISH);
    });

    it('[MQTT-3.3.2-12] accepts every Topic Alias from 1 to the Topic Alias Maximum it sent, and remapping', async () => {
      const b = broker();
      const s = await subscriber(b, 'ta/#', subOpts(1));
      const c = await client(b);
      const max = propOf<number>(c.connack.props, P.TopicAliasMaximum)!;
      assert.equal(max, 64);
      await c.pub('ta/one', '1', { qos: 1, props: [prop.topicAlias(1)] });
      await c.pub('ta/max', '2', { qos: 1, props: [prop.topicAlias(max)] });
      await c.pub('', '3', { qos: 1, props: [prop.topicAlias(1)] });
      await c.pub('', '4', { qos: 1, props: [prop.topicAlias(max)] });
      await c.pub('ta/remapped', '5', { qos: 1, props: [prop.topicAlias(1)] });
      await c.pub('', '6', { qos: 1, props: [prop.topicAlias(1)] });
      await c.pub('', '7', { qos: 1, retain: true, props: [prop.topicAlias(max)] });
      const got = (await s.publishes()).map((m) => `${m.topic}=${m.payload}`);
      assert.deepEqual(got, ['ta/one=1', 'ta/max=2', 'ta/one=3', 'ta/max=4', 'ta/remapped=5', 'ta/remapped=6', 'ta/max=7']);
      const late = await subscriber(b, 'ta/max', subOpts(1));
      assert.equal((await late.publishFrame()).payload.toString(), '7', 'a message sent with only an alias is retained under its topic');
      // The alias itself is not forwarded (the broker sends no aliases to a client that allowed none).
      c.assertOpen();
    });

    it('[MQTT-3.3.2-12] [MQTT-3.3.2-9] [MQTT-3.2.2-17] refuses a Topic Alias above its Topic Alias Maximum with DISCONNECT 0x94', async () => {
      const c = await client(broker());
      c.send(publish({ topic: 'ta/65', qos: 1, id: 1, props: [prop.topicAlias(65)] }));
      await c.expectDisconnect([0x94, 0x82]);
    });
  });

  describe('response topic, correlation data, user properties, content type', () => {
    it('[MQTT-3.3.2-13] treats a Response Topic that is not UTF-8 as malformed: DISCONNECT 0x81', async () => {
      const c = await client(broker());
      c.send(publish({ topic: 't', qos: 1, id: 1, props: [prop.responseTopic(Uint8Array.from([0x72, 0xe0, 0x80, 0x80]))] }));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-3.3.2-14] neither accepts nor forwards a Response Topic containing wildcards: DISCONNECT 0x82', async () => {
      const b = broker();
      const s = await subscriber(b, 'rt/#', subOpts(1));
      for (const rt of ['reply/+', 'reply/#']) {
        const c = await client(b);
        c.send(publish({ topic: 'rt/t', qos: 1, id: 1, props: [prop.responseTopic(rt)] }));
        await c.expectDisconnect(0x82);
      }
      await s.none(T.PUBLISH);
    });

    it('[MQTT-3.3.2-15] [MQTT-3.3.2-16] forwards Response Topic and Correlation Data unaltered to every subscriber', async () => {
      const b = broker();
      const subs = [await subscriber(b, 'rr/+', subOpts(0)), await subscriber(b, 'rr/#', subOpts(2))];
      const corr = Buffer.from([0, 0xff, 0x10, 0, 0x7f]);
      const pub = await client(b);
      await pub.pub('rr/req', 'q', { qos: 1, props: [prop.responseTopic('rr/reply/✓/\uFEFF'), prop.correlationData(corr)] });
      for (const s of subs) {
        const m = await s.publishFrame();
        assert.equal(propOf(m.props, P.ResponseTopic), 'rr/reply/✓/\uFEFF');
        assert.deepEqual(propOf(m.props, P.CorrelationData), corr);
      }
    });

    it('[MQTT-3.3.2-16] forwards empty Correlation Data unaltered', async () => {
      const b = broker();
      const s = await subscriber(b, 'cd/t', subOpts(1));
      const pub = await client(b);
      await pub.pub('cd/t', 'q', { qos: 1, props: [prop.correlationData(new Uint8Array(0))] });
      assert.deepEqual(propOf((await s.publishFrame()).props, P.CorrelationData), Buffer.alloc(0));
    });

    it('[MQTT-3.3.2-17] forwards all User Properties unaltered, duplicates and empty strings included', async () => {
      const b = broker();
      const subs = [await subscriber(b, 'up/t', subOpts(1)), await subscriber(b, 'up/#', subOpts(0))];
      const pairs: [string, string][] = [['k', 'v'], ['k', 'v'], ['', ''], ['ключ', '值 😀'], ['k', '']];
      const pub = await client(b);
      await pub.pub('up/t', 'x', { qos: 2, props: pairs.map(([k, v]) => prop.user(k, v)) });
      for (const s of subs) assert.deepEqual(userProps((await s.publishFrame()).props), pairs);
    });

    it('[MQTT-3.3.2-18] keeps the order of User Properties, interleaved names included', async () => {
      const b = broker();
      const s = await subscriber(b, 'upo/t', subOpts(1));
      const pairs: [string, string][] = [['b', '1'], ['a', '2'], ['b', '3'], ['c', '4'], ['a', '5'], ['b', '0']];
      const pub = await client(b);
      await pub.pub('upo/t', 'x', {
        qos: 1,
        props: [prop.user('b', '1'), prop.messageExpiry(100), prop.user('a', '2'), prop.contentType('c'), ...pairs.slice(2).map(([k, v]) => prop.user(k, v))],
      });
      assert.deepEqual(userProps((await s.publishFrame()).props), pairs);
    });

    it('[MQTT-3.3.2-19] treats a Content Type that is not UTF-8 (or holds U+0000) as malformed: DISCONNECT 0x81', async () => {
      const b = broker();
      for (const ct of [Uint8Array.from([0x61, 0xc3]), Uint8Array.from([0x61, 0x00])]) {
        const c = await client(b);
        c.send(publish({ topic: 't', props: [prop.contentType(ct)] }));
        await c.expectDisconnect(0x81);
      }
    });

    it('[MQTT-3.3.2-20] forwards the Content Type unaltered to every subscriber', async () => {
      const b = broker();
      const subs = [await subscriber(b, 'ct/t', subOpts(1)), await subscriber(b, 'ct/+', subOpts(2))];
      const pub = await client(b);
      await pub.pub('ct/t', '{}', { qos: 2, props: [prop.contentType('application/json; charset=utf-8 ✓')] });
      for (const s of subs) assert.equal(propOf((await s.publishFrame()).props, P.ContentType), 'application/json; charset=utf-8 ✓');
    });
  });

  describe('actions', () => {
    it('[MQTT-3.3.4-1] answers QoS 0 with nothing, QoS 1 with PUBACK, QoS 2 with PUBREC', async () => {
      const c = await client(broker());
      c.send(publish({ topic: 'a/0' }), publish({ topic: 'a/1', qos: 1, id: 11 }), publish({ topic: 'a/2', qos: 2, id: 12 }));
      assert.equal((await c.ack(T.PUBACK)).id, 11);
      assert.equal((await c.ack(T.PUBREC)).id, 12);
      await c.none(undefined);
    });

    it('[MQTT-3.3.4-2] delivers a message matching overlapping subscriptions at the maximum of their QoS', async () => {
      const b = broker();
      const s = await client(b);
      await s.sub([['ov/#', 0], ['ov/+/t', 2], ['ov/a/t', 1]]);
      const pub = await client(b);
      await pub.pub('ov/a/t', 'x', { qos: 2 });
      const copies = await s.publishes();
      assert.ok(copies.length >= 1);
      assert.equal(Math.max(...copies.map((m) => m.qos)), 2);
    });

    it('[MQTT-3.3.4-3] [MQTT-3.3.4-4] sends the Subscription Identifiers of all overlapping subscriptions', async () => {
      const b = broker();
      const s = await client(b);
      await s.sub('sid/#', subOpts(1), [prop.subscriptionId(1)]);
      await s.sub('sid/+/t', subOpts(1), [prop.subscriptionId(268435455)]);
      await s.sub('sid/a/t', subOpts(0));
      await s.sub('sid/a/+', subOpts(0), [prop.subscriptionId(7)]);
      const pub = await client(b);
      await pub.pub('sid/a/t', 'x', { qos: 1 });
      const copies = await s.publishes();
      const all = copies.flatMap((m) => propsOf<number>(m.props, P.SubscriptionIdentifier));
      assert.deepEqual([...new Set(all)].sort((x, y) => x - y), [1, 7, 268435455]);
      assert.equal(copies.length, 1, 'overlapping subscriptions of one client: one copy');
      assert.equal(all.length, 3, 'one copy carries every identifier once');
    });

    it('[MQTT-3.3.4-3] keeps sending the Subscription Identifier in a resumed session', async () => {
      const b = broker();
      const id = uniqueId();
      const s = await client(b, lasting(id));
      await s.sub('sidk/t', subOpts(1), [prop.subscriptionId(9)]);
      await drop(s);
      const pub = await client(b);
      await pub.pub('sidk/t', 'queued', { qos: 1 });
      const again = await client(b, lasting(id));
      assert.deepEqual(propsOf((await again.publishFrame()).props, P.SubscriptionIdentifier), [9]);
      await pub.pub('sidk/t', 'live', { qos: 1 });
      assert.deepEqual(propsOf((await again.publishFrame()).props, P.SubscriptionIdentifier), [9]);
    });

    it('[MQTT-3.3.4-3] sends the Subscription Identifier with retained messages sent because of the subscription', async () => {
      const b = broker();
      const pub = await client(b);
      await pub.pub('sidr/t', 'kept', { qos: 1, retain: true });
      const s = await client(b);
      await s.sub('sidr/#', subOpts(1), [prop.subscriptionId(42)]);
      const m = await s.publishFrame();
      assert.deepEqual([m.retain, propsOf(m.props, P.SubscriptionIdentifier)], [true, [42]]);
    });

    it('[MQTT-3.3.4-5] puts in each of several copies the Subscription Identifier of its own subscription', async () => {
      const b = broker();
      const s = await client(b);
      await s.sub('$share/g/sh/t', subOpts(1), [prop.subscriptionId(3)]);
      await s.sub('sh/#', subOpts(1), [prop.subscriptionId(4)]);
      const pub = await client(b);
      await pub.pub('sh/t', 'x', { qos: 1 });
      const copies = await s.publishes();
      // A shared subscription's copy is its own: one copy for it, one for the other subscription.
      const ids = copies.map((m) => propsOf<number>(m.props, P.SubscriptionIdentifier).sort());
      assert.deepEqual(ids.map((x) => x.join()).sort(), ['3', '4']);
    });

    it('[MQTT-3.3.4-9] sends no more unacknowledged QoS 1 PUBLISH packets than the client Receive Maximum', async () => {
      const b = broker();
      const s = await subscriber(b, 'rm/1', subOpts(1), { props: [prop.receiveMaximum(2)] });
      const pub = await client(b);
      for (let i = 0; i < 5; i++) await pub.pub('rm/1', String(i), { qos: 1 });
      const got = await s.publishes();
      assert.deepEqual(got.map((m) => m.payload.toString()), ['0', '1']);
      s.send(ack(T.PUBACK, got[0]!.id));
      const third = await s.publishFrame();
      assert.equal(third.payload.toString(), '2');
      await s.none(T.PUBLISH);
      s.send(ack(T.PUBACK, got[1]!.id), ack(T.PUBACK, third.id));
      assert.deepEqual((await s.publishes()).map((m) => m.payload.toString()), ['3', '4']);
    });

    it('[MQTT-3.3.4-9] applies the client Receive Maximum to retained messages sent on SUBSCRIBE too', async () => {
      const b = broker();
      const pub = await client(b);
      for (let i = 0; i < 5; i++) await pub.pub(`rmr/${i}`, String(i), { qos: 1, retain: true });
      const s = await client(b, { props: [prop.receiveMaximum(2)] });
      await s.sub('rmr/#', subOpts(1));
      const got = await s.publishes();
      assert.equal(got.length, 2);
      s.send(ack(T.PUBACK, got[0]!.id), ack(T.PUBACK, got[1]!.id));
      assert.equal((await s.publishes()).length, 2);
    });

    it('[MQTT-3.3.4-9] counts a QoS 2 PUBLISH until PUBCOMP (or a PUBREC ≥ 0x80) against the Receive Maximum', async () => {
      const b = broker();
      const s = await subscriber(b, 'rm/2', subOpts(2), { props: [prop.receiveMaximum(2)] });
      const pub = await client(b);
      for (let i = 0; i < 4; i++) await pub.pub('rm/2', String(i), { qos: 2 });
      const [m0, m1] = await s.publishes();
      assert.ok(m0 && m1 && s.queued.every((f) => f.type !== T.PUBLISH));
      s.send(ack(T.PUBREC, m0.id));
      assert.equal((await s.ack(T.PUBREL)).id, m0.id);
      await s.none(T.PUBLISH);
      s.send(ack(T.PUBCOMP, m0.id));
      const m2 = await s.publishFrame();
      assert.equal(m2.payload.toString(), '2');
      s.send(ack(T.PUBREC, m1.id, 0x80));
      const m3 = await s.publishFrame();
      assert.equal(m3.payload.toString(), '3');
      await s.none(T.PUBREL);
    });

    it('[MQTT-3.3.4-10] does not hold back packets other than PUBLISH while the Receive Maximum is used up', async () => {
      const b = broker();
      const s = await subscriber(b, 'full/t', subOpts(1), { props: [prop.receiveMaximum(1)] });
      const pub = await client(b);
      await pub.pub('full/t', '1', { qos: 1 });
      await pub.pub('full/t', '2', { qos: 1 });
      await s.publishFrame();
      s.send(pingreq(), subscribe(40, [['other', 1]]), unsubscribe(41, ['other']), publish({ topic: 'own/1', qos: 1, id: 42 }), publish({ topic: 'own/2', qos: 2, id: 43 }));
      await s.next(T.PINGRESP);
      await s.next(T.SUBACK);
      await s.next(T.UNSUBACK);
      assert.equal((await s.ack(T.PUBACK)).id, 42);
      assert.equal((await s.ack(T.PUBREC)).id, 43);
      s.send(ack(T.PUBREL, 43));
      assert.equal((await s.ack(T.PUBCOMP)).id, 43);
      await s.none(T.PUBLISH);
    });
  });
});

describe('MQTT 5.0 §3.4–3.7 PUBACK, PUBREC, PUBREL, PUBCOMP', () => {
  const broker = useBroker();

  it('[MQTT-3.4.2-1] uses only PUBACK Reason Codes', async () => {
    const b = broker();
    await subscriber(b, 'pa/matched', subOpts(0));
    const c = await client(b);
    const codes = [
      await c.pub('pa/matched', 'x', { qos: 1 }),
      await c.pub('pa/nobody', 'x', { qos: 1 }),
      await c.pub('pa/bad', Buffer.from([0xc3, 0x28]), { qos: 1, props: [prop.payloadFormat(1)] }),
    ];
    for (const r of codes) assert.ok((REASONS.PUBACK as readonly number[]).includes(r), `PUBACK ${hex(r)}`);
    assert.deepEqual([codes[0], codes[2]], [0x00, 0x99]);
    assert.ok([0x00, 0x10].includes(codes[1]!));
  });

  it('[MQTT-3.4.2-2] leaves the Reason String out of a PUBACK it would push beyond the client Maximum Packet Size', async () => {
    const c = await client(broker(), { props: [prop.maximumPacketSize(20)] });
    c.send(publish({ topic: 'pa/big', qos: 1, id: 3, payload: Buffer.from([0xff]), props: [prop.payloadFormat(1)] }));
    const a = await c.ack(T.PUBACK, 1000);
    assert.deepEqual([a.id, a.reason], [3, 0x99]);
    assert.ok(a.size <= 20);
  });

  it('[MQTT-3.4.2-3] sends no PUBACK made larger than the client Maximum Packet Size by its properties', async () => {
    const c = await client(broker(), { props: [prop.maximumPacketSize(20)] });
    await c.pub('pa/ok', 'x', { qos: 1 });
    c.send(publish({ topic: 'pa/bad', qos: 1, id: 3, payload: Buffer.from([0xff]), props: [prop.payloadFormat(1)] }));
    await c.roundTrip();
    assert.ok(c.log.every((f) => f.raw.length <= 20), `sizes ${c.log.map((f) => f.raw.length)}`);
  });

  it('[MQTT-3.5.2-1] uses only PUBREC Reason Codes', async () => {
    const b = broker();
    await subscriber(b, 'pr/matched', subOpts(2));
    const c = await client(b);
    const codes = [
      await c.pub('pr/matched', 'x', { qos: 2 }),
      await c.pub('pr/nobody', 'x', { qos: 2 }),
      await c.pub('pr/bad', Buffer.from([0xed, 0xa0, 0x80]), { qos: 2, props: [prop.payloadFormat(1)] }),
    ];
    for (const r of codes) assert.ok((REASONS.PUBREC as readonly number[]).includes(r), `PUBREC ${hex(r)}`);
    assert.deepEqual([codes[0], codes[2]], [0x00, 0x99]);
  });

  it('[MQTT-3.5.2-2] leaves the Reason String out of a PUBREC it would push beyond the client Maximum Packet Size', async () => {
    const c = await client(broker(), { props: [prop.maximumPacketSize(20)] });
    c.send(publish({ topic: 'pr/big', qos: 2, id: 4, payload: Buffer.from([0xff]), props: [prop.payloadFormat(1)] }));
    const a = await c.ack(T.PUBREC, 1000);
    assert.deepEqual([a.id, a.reason], [4, 0x99]);
    assert.ok(a.size <= 20);
  });

  it('[MQTT-3.5.2-3] sends no PUBREC made larger than the client Maximum Packet Size by its properties', async () => {
    const c = await client(broker(), { props: [prop.maximumPacketSize(20)] });
    await c.pub('pr/ok', 'x', { qos: 2 });
    c.send(publish({ topic: 'pr/bad', qos: 2, id: 4, payload: Buffer.from([0xff]), props: [prop.payloadFormat(1)] }));
    await c.roundTrip();
    assert.ok(c.log.every((f) => f.raw.length <= 20), `sizes ${c.log.map((f) => f.raw.length)}`);
  });

  it('[MQTT-3.6.1-1] sends PUBREL with fixed header flags 0010, and treats a PUBREL with other flags as malformed', async () => {
    const b = broker();
    const s = await subscriber(b, 'rel/t', subOpts(2));
    const pub = await client(b);
    await pub.pub('rel/t', 'x', { qos: 2 });
    const m = await s.publishFrame();
    s.send(ack(T.PUBREC, m.id));
    const rel = await s.next(T.PUBREL);
    assert.equal(rel.raw[0], 0x62);
    pub.send(publish({ topic: 'rel/t', qos: 2, id: 77 }));
    await pub.ack(T.PUBREC);
    pub.send([0x60, 2, 0, 77]);
    await pub.expectDisconnect(0x81);
  });

  it('[MQTT-3.6.2-1] uses only PUBREL Reason Codes: 0x00, and 0x92 for a PUBREC of an unknown packet identifier', async () => {
    const b = broker();
    const s = await subscriber(b, 'rel2/t', subOpts(2));
    const pub = await client(b);
    await pub.pub('rel2/t', 'x', { qos: 2 });
    const m = await s.publishFrame();
    s.send(ack(T.PUBREC, m.id));
    assert.equal((await s.ack(T.PUBREL)).reason, 0x00);
    s.send(ack(T.PUBREC, 999));
    const r = await s.ack(T.PUBREL);
    assert.equal(r.id, 999);
    assert.ok((REASONS.PUBREL as readonly number[]).includes(r.reason), `PUBREL ${hex(r.reason)}`);
  });

  it('[MQTT-3.6.2-2] [MQTT-3.6.2-3] keeps PUBREL within the client Maximum Packet Size', async () => {
    const b = broker();
    const s = await subscriber(b, 'rel3/t', subOpts(2), { props: [prop.maximumPacketSize(16)] });
    const pub = await client(b);
    await pub.pub('rel3/t', 'x', { qos: 2 });
    const m = await s.publishFrame();
    s.send(ack(T.PUBREC, m.id), ack(T.PUBREC, 999));
    const rels = [await s.ack(T.PUBREL), await s.ack(T.PUBREL)];
    assert.deepEqual(rels.map((r) => r.id), [m.id, 999]);
    assert.ok(rels.every((r) => r.size <= 16));
  });

  it('[MQTT-3.7.2-1] uses only PUBCOMP Reason Codes: 0x00, and 0x92 for a PUBREL of an unknown packet identifier', async () => {
    const c = await client(broker());
    c.send(publish({ topic: 'comp', qos: 2, id: 5 }));
    await c.ack(T.PUBREC);
    c.send(ack(T.PUBREL, 5), ack(T.PUBREL, 6));
    const [a, u] = [await c.ack(T.PUBCOMP), await c.ack(T.PUBCOMP)];
    assert.deepEqual([a.id, a.reason], [5, 0x00]);
    assert.equal(u.id, 6);
    assert.ok((REASONS.PUBCOMP as readonly number[]).includes(u.reason), `PUBCOMP ${hex(u.reason)}`);
  });

  it('[MQTT-3.7.2-2] [MQTT-3.7.2-3] keeps PUBCOMP within the client Maximum Packet Size', async () => {
    const c = await client(broker(), { props: [prop.maximumPacketSize(16)] });
    c.send(publish({ topic: 'comp', qos: 2, id: 5 }));
    await c.ack(T.PUBREC);
    c.send(ack(T.PUBREL, 5), ack(T.PUBREL, 6));
    const comps = [await c.ack(T.PUBCOMP), await c.ack(T.PUBCOMP)];
    assert.deepEqual(comps.map((x) => x.id), [5, 6]);
    assert.ok(comps.every((x) => x.size <= 16));
  });
});
