// MQTT 5.0 conformance: data representation (§1.5) and the control packet format (§2), including
// properties (§2.2.2) — what the broker sends, and how it treats a client that breaks the rules.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import {
  ack,
  cat,
  client,
  connect,
  decodeConnack,
  decodeSubAck,
  disconnect,
  lasting,
  P,
  packet,
  type Peer,
  peer,
  prop,
  propOf,
  publish,
  str,
  subOpts,
  subscribe,
  T,
  u16,
  unsubscribe,
  userProps,
} from './helpers.js';

const bytes = (...parts: (number[] | string)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...Buffer.from(p, 'utf8')] : p)));

describe('MQTT 5.0 §1–2 data representation', () => {
  let b: TestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  /** The broker keeps serving others after refusing a client. */
  async function stillServing(): Promise<void> {
    const c = await client(b);
    await c.sub('alive');
    await c.pub('alive', 'yes');
    assert.equal((await c.publishFrame()).payload.toString(), 'yes');
    c.destroy();
  }

  describe('UTF-8 Encoded Strings', () => {
    it('[MQTT-1.5.4-1] closes with DISCONNECT 0x81 on a PUBLISH topic name that encodes a surrogate (U+D800)', async () => {
      const c = await client(b);
      c.send(publish({ topic: bytes('a/', [0xed, 0xa0, 0x80]) }));
      await c.expectDisconnect(0x81);
      await stillServing();
    });

    it('[MQTT-1.5.4-1] [MQTT-3.8.3-1] closes with DISCONNECT 0x81 on a SUBSCRIBE topic filter that is not well-formed UTF-8', async () => {
      const c = await client(b);
      c.send(subscribe(1, [[bytes('a/', [0xc3, 0x28]), 0]]));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-1.5.4-1] closes with DISCONNECT 0x81 on an overlong encoding in a Content Type', async () => {
      const c = await client(b);
      c.send(publish({ topic: 't', props: [prop.contentType(bytes([0xc0, 0xaf]))] }));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-1.5.4-1] [MQTT-3.1.3-4] refuses a CONNECT whose client identifier is not well-formed UTF-8 (CONNACK 0x81, closed)', async () => {
      const c = await peer(b);
      c.send(connect({ clientId: bytes('id', [0xff]) }));
      const ack = decodeConnack(await c.next(T.CONNACK));
      assert.equal(ack.reason, 0x81);
      assert.equal(ack.sessionPresent, false);
      await c.expectClosed();
    });

    it('[MQTT-1.5.4-1] sends topic names and properties with multi-byte characters as well-formed UTF-8', async () => {
      const sub = await client(b);
      await sub.sub('温度/#');
      const pub = await client(b);
      await pub.pub('温度/°C/😀', 'x', { qos: 1, props: [prop.user('ключ', 'värde ✓'), prop.contentType('text/ελληνικά')] });
      const m = await sub.publishFrame();
      assert.equal(m.topic, '温度/°C/😀');
      assert.deepEqual(userProps(m.props), [['ключ', 'värde ✓']]);
      assert.equal(propOf(m.props, P.ContentType), 'text/ελληνικά');
      sub.checkWire();
    });

    it('[MQTT-1.5.4-2] closes with DISCONNECT 0x81 on a topic name containing U+0000', async () => {
      const c = await client(b);
      c.send(publish({ topic: bytes('a', [0], 'b'), qos: 1, id: 1 }));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-1.5.4-2] closes with DISCONNECT 0x81 on a topic filter containing U+0000', async () => {
      const c = await client(b);
      c.send(subscribe(1, [[bytes('a/', [0]), 0]]));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-1.5.4-2] closes with DISCONNECT 0x81 on a Response Topic containing U+0000', async () => {
      const c = await client(b);
      c.send(publish({ topic: 't', props: [prop.responseTopic(bytes('r', [0]))] }));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-1.5.4-2] [MQTT-3.1.3-4] refuses a CONNECT whose client identifier contains U+0000 (CONNACK 0x81, closed)', async () => {
      const c = await peer(b);
      c.send(connect({ clientId: bytes('a', [0], 'b') }));
      const ack = decodeConnack(await c.next(T.CONNACK));
      assert.equal(ack.reason, 0x81);
      await c.expectClosed();
    });

    it('[MQTT-1.5.4-3] neither skips nor strips a leading U+FEFF: BOM-prefixed topics are distinct and forwarded intact', async () => {
      const bom = '\uFEFF';
      const withBom = await client(b);
      await withBom.sub(`${bom}bom/t`);
      const without = await client(b);
      await without.sub('bom/t');
      const pub = await client(b);
      await pub.pub(`${bom}bom/t`, 'x', { qos: 1, props: [prop.user(`${bom}k`, `${bom}v`), prop.contentType(`${bom}ct`)] });
      const m = await withBom.publishFrame();
      assert.equal(m.topic, `${bom}bom/t`);
      assert.deepEqual(userProps(m.props), [[`${bom}k`, `${bom}v`]]);
      assert.equal(propOf(m.props, P.ContentType), `${bom}ct`);
      await without.none(T.PUBLISH);
    });
  });

  describe('Variable Byte Integer', () => {
    it('[MQTT-1.5.5-1] encodes every Remaining Length and Property Length it sends in the minimum number of bytes', async () => {
      const sub = await client(b);
      await sub.sub('vbi');
      const pub = await client(b);
      // Remaining lengths around the 1/2/3-byte boundaries, and property lengths around 127/128.
      const payloads = [118, 119, 120, 16375, 16376, 16377, 100];
      for (const n of payloads) await pub.pub('vbi', Buffer.alloc(n, 0x61), { qos: 1 });
      await pub.pub('vbi', 'p', { qos: 1, props: [prop.user('k', 'v'.repeat(121))] });
      await pub.pub('vbi', 'p', { qos: 1, props: [prop.user('k', 'v'.repeat(122))] });
      for (const n of payloads) assert.equal((await sub.publishFrame()).payload.length, n);
      for (const n of [121, 122]) assert.equal(userProps((await sub.publishFrame()).props)[0]![1].length, n);
      sub.checkWire();
      assert.ok(sub.log.some((f) => f.raw.length - f.body.length === 2) && sub.log.some((f) => f.raw.length - f.body.length === 3));
    });

    it('[MQTT-1.5.5-1] closes with DISCONNECT 0x81 on a Remaining Length that is not minimally encoded', async () => {
      const c = await client(b);
      // PUBLISH "t" (QoS 0, no properties): body of 4 bytes with its length written as 0x84 0x00.
      c.send([0x30, 0x84, 0x00, 0, 1, 0x74, 0]);
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-1.5.5-1] closes with DISCONNECT 0x81 on a Property Length that is not minimally encoded', async () => {
      const c = await client(b);
      c.send(packet(0x30, str('t'), [0x80, 0x00], [0x78]));
      await c.expectDisconnect(0x81, 1000);
    });

    it('[MQTT-1.5.5-1] closes with DISCONNECT 0x81 on a Subscription Identifier that is not minimally encoded', async () => {
      const c = await client(b);
      c.send(packet(0x82, u16(1), [3, P.SubscriptionIdentifier, 0x81, 0x00], str('t'), [0]));
      await c.expectDisconnect(0x81, 1000);
    });
  });

  describe('UTF-8 String Pair', () => {
    it('[MQTT-1.5.7-1] closes with DISCONNECT 0x81 when a User Property name is not well-formed UTF-8', async () => {
      const c = await client(b);
      c.send(publish({ topic: 't', props: [prop.user(bytes('k', [0xed, 0xbf, 0xbf]), 'v')] }));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-1.5.7-1] closes with DISCONNECT 0x81 when a User Property value contains U+0000', async () => {
      const c = await client(b);
      c.send(publish({ topic: 't', qos: 1, id: 3, props: [prop.user('k', bytes('v', [0]))] }));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-1.5.7-1] refuses a CONNECT with an ill-formed User Property (CONNACK 0x81, closed)', async () => {
      const c = await peer(b);
      c.send(connect({ props: [prop.user('k', bytes([0xf8, 0x88, 0x80, 0x80, 0x80]))] }));
      assert.equal(decodeConnack(await c.next(T.CONNACK)).reason, 0x81);
      await c.expectClosed();
    });
  });

  describe('fixed header flags', () => {
    it('[MQTT-2.1.3-1] sets the listed reserved flags on every packet it sends', async () => {
      const c = await client(b, lasting('flags-1'));
      assert.equal(c.log[0]!.raw[0], 0x20, 'CONNACK');
      await c.sub('f/#', subOpts(2));
      await c.unsub('nothing');
      c.send(publish({ topic: 'f/1', qos: 1, id: 1 }));
      await c.ack(T.PUBACK);
      c.send(publish({ topic: 'f/2', qos: 2, id: 2 }));
      await c.ack(T.PUBREC);
      c.send(ack(T.PUBREL, 2));
      await c.ack(T.PUBCOMP);
      const m1 = await c.publishFrame();
      const m2 = await c.publishFrame();
      c.send(ack(T.PUBACK, m1.id), ack(T.PUBREC, m2.id));
      await c.ack(T.PUBREL);
      c.send(ack(T.PUBCOMP, m2.id));
      c.send([0xc0, 0]);
      await c.next(T.PINGRESP);
      const first = c;
      await client(b, lasting('flags-1')); // takes the session over: DISCONNECT 0x8E to the first
      await first.disconnectFrame();
      first.checkWire();
      const seen = new Map(first.log.map((f) => [f.type, f.raw[0]!]));
      assert.deepEqual(
        [T.CONNACK, T.SUBACK, T.UNSUBACK, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.PINGRESP, T.DISCONNECT].map((t) => seen.get(t)),
        [0x20, 0x90, 0xb0, 0x40, 0x50, 0x62, 0x70, 0xd0, 0xe0],
      );
    });

    const wrong: [string, number[]][] = [
      ['PUBACK with flags 0001', [0x41, 2, 0, 1]],
      ['PUBREC with flags 0010', [0x52, 2, 0, 1]],
      ['PUBCOMP with flags 1000', [0x78, 2, 0, 1]],
      ['PINGREQ with flags 0100', [0xc4, 0]],
      ['UNSUBSCRIBE with flags 0000', [...unsubscribe(1, ['t'])].map((x, i) => (i === 0 ? 0xa0 : x))],
    ];
    for (const [what, bytesSent] of wrong) {
      it(`[MQTT-2.1.3-1] treats a ${what} as malformed: DISCONNECT 0x81 and close`, async () => {
        const c = await client(b);
        c.send(bytesSent);
        await c.expectDisconnect(0x81);
      });
    }
  });

  describe('packet identifiers', () => {
    it('[MQTT-2.2.1-2] sends QoS 0 PUBLISH packets without a packet identifier, also when a QoS 1/2 message is downgraded', async () => {
      const sub = await client(b);
      await sub.sub('q0', subOpts(0));
      const pub = await client(b);
      await pub.pub('q0', 'xy', { qos: 0 });
      await pub.pub('q0', 'xy', { qos: 1 });
      await pub.pub('q0', 'xy', { qos: 2 });
      const expected = [0x30, 7, 0, 2, 0x71, 0x30, 0, 0x78, 0x79];
      for (let i = 0; i < 3; i++) assert.deepEqual([...(await sub.next(T.PUBLISH)).raw], expected);
    });

    it('[MQTT-2.2.1-4] gives each new QoS 1/2 PUBLISH a non-zero packet identifier not in use', async () => {
      const sub = await client(b);
      await sub.sub('ids/#', subOpts(2));
      const pub = await client(b);
      for (let i = 0; i < 30; i++) await pub.pub(`ids/${i}`, String(i), { qos: (i % 2) + 1 });
      const got = [];
      for (let i = 0; i < 30; i++) got.push(await sub.publishFrame());
      const ids = got.map((m) => m.id);
      assert.ok(ids.every((id) => id > 0 && id <= 65535));
      assert.equal(new Set(ids).size, 30, `identifiers reused while unacknowledged: ${ids}`);
    });

    it('[MQTT-2.2.1-4] does not reuse the identifier of a message still unacknowledged from the previous connection', async () => {
      const sub = await client(b, lasting('ids-2'));
      await sub.sub('ids2', subOpts(1));
      const pub = await client(b);
      for (let i = 0; i < 3; i++) await pub.pub('ids2', `old${i}`, { qos: 1 });
      const old = [];
      for (let i = 0; i < 3; i++) old.push((await sub.publishFrame()).id);
      await sub.drop();
      const again = await client(b, lasting('ids-2'));
      const resent = [];
      for (let i = 0; i < 3; i++) resent.push(await again.publishFrame());
      assert.deepEqual(resent.map((m) => m.id), old);
      for (let i = 0; i < 3; i++) await pub.pub('ids2', `new${i}`, { qos: 1 });
      const fresh = [];
      for (let i = 0; i < 3; i++) fresh.push((await again.publishFrame()).id);
      for (const id of fresh) assert.ok(id > 0 && !old.includes(id), `identifier ${id} is still in use by ${old}`);
      assert.equal(new Set(fresh).size, 3);
    });

    it('[MQTT-2.2.1-5] answers PUBLISH with PUBACK / PUBREC and PUBREL with PUBCOMP carrying the same packet identifier', async () => {
      const c = await client(b);
      for (const id of [1, 0x1234, 0xffff]) {
        c.send(publish({ topic: 'pid', qos: 1, id }));
        assert.equal((await c.ack(T.PUBACK)).id, id);
        c.send(publish({ topic: 'pid', qos: 2, id }));
        assert.equal((await c.ack(T.PUBREC)).id, id);
        c.send(ack(T.PUBREL, id));
        assert.equal((await c.ack(T.PUBCOMP)).id, id);
      }
    });

    it('[MQTT-2.2.1-5] sends its PUBREL with the packet identifier of its own QoS 2 PUBLISH', async () => {
      const c = await client(b);
      await c.sub('pid2', subOpts(2));
      const pub = await client(b);
      await pub.pub('pid2', 'a', { qos: 2 });
      await pub.pub('pid2', 'b', { qos: 2 });
      const m1 = await c.publishFrame();
      const m2 = await c.publishFrame();
      c.send(ack(T.PUBREC, m2.id));
      assert.equal((await c.ack(T.PUBREL)).id, m2.id);
      c.send(ack(T.PUBREC, m1.id));
      assert.equal((await c.ack(T.PUBREL)).id, m1.id);
    });

    it('[MQTT-2.2.1-6] answers SUBSCRIBE and UNSUBSCRIBE with the same packet identifier', async () => {
      const c = await client(b);
      for (const id of [1, 0xabcd, 0xffff]) {
        c.send(subscribe(id, [['s/t', 1]]));
        assert.equal(decodeSubAck(await c.next(T.SUBACK)).id, id);
        c.send(unsubscribe(id, ['s/t']));
        assert.equal(decodeSubAck(await c.next(T.UNSUBACK)).id, id);
      }
    });
  });

  describe('properties', () => {
    it('[MQTT-2.2.2-1] writes a Property Length of zero when a packet has no properties', async () => {
      const c = await client(b, lasting('plen'));
      c.send(subscribe(7, [['plen', 0]]));
      assert.deepEqual([...(await c.next(T.SUBACK)).body], [0, 7, 0, 0]);
      c.send(unsubscribe(8, ['plen']));
      assert.deepEqual([...(await c.next(T.UNSUBACK)).body], [0, 8, 0, 0]);
      await c.sub('plen');
      const pub = await client(b);
      await pub.pub('plen', 'p');
      assert.deepEqual([...(await c.next(T.PUBLISH)).body], [0, 4, ...Buffer.from('plen'), 0, 0x70]);
      await client(b, lasting('plen'));
      // DISCONNECT 0x8E without properties: a Property Length of 0 (§3.14.2.2.1 would allow none at all).
      const d = await c.next(T.DISCONNECT);
      assert.deepEqual([...d.body], [0x8e, 0]);
      c.checkWire();
    });

    it('[MQTT-4.13.1-1] §2.2.2.2: a property not allowed in the packet (Session Expiry Interval in PUBLISH) is malformed: DISCONNECT 0x81', async () => {
      const c = await client(b);
      c.send(publish({ topic: 't', props: [prop.sessionExpiry(10)] }));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-4.13.1-1] §2.2.2.2: an unknown property identifier is malformed: DISCONNECT 0x81', async () => {
      const c = await client(b);
      c.send(publish({ topic: 't', qos: 1, id: 1, props: [[0x7f, 0]] }));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-4.13.1-1] §2.2.2.1: a Property Length running past the packet is malformed: DISCONNECT 0x81', async () => {
      const c = await client(b);
      c.send(packet(0x32, str('t'), u16(1), [20, P.PayloadFormatIndicator, 1]));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-4.13.1-1] §3.3.2.3: a PUBLISH property other than User Property given twice is a Protocol Error: DISCONNECT 0x82', async () => {
      const c = await client(b);
      c.send(publish({ topic: 't', props: [prop.contentType('a'), prop.contentType('b')] }));
      await c.expectDisconnect(0x82);
    });

    it('[MQTT-4.13.1-1] §3.8.2.1.2: a Subscription Identifier of 0 is a Protocol Error: DISCONNECT 0x82', async () => {
      const c = await client(b);
      c.send(subscribe(1, [['t', 0]], [prop.subscriptionId(0)]));
      await c.expectDisconnect(0x82);
    });

    it('[MQTT-4.13.1-1] §3.8.2.1.2: two Subscription Identifiers in one SUBSCRIBE are a Protocol Error: DISCONNECT 0x82', async () => {
      const c = await client(b);
      c.send(subscribe(1, [['t', 0]], [prop.subscriptionId(1), prop.subscriptionId(2)]));
      await c.expectDisconnect(0x82);
    });

    for (const [what, p] of [
      ['Receive Maximum of 0', prop.receiveMaximum(0)],
      ['Maximum Packet Size of 0', prop.maximumPacketSize(0)],
      ['Session Expiry Interval given twice', cat(prop.sessionExpiry(1), prop.sessionExpiry(2))],
    ] as const) {
      it(`[MQTT-4.13.1-1] §3.1.2.11: a CONNECT with a ${what} is a Protocol Error: CONNACK 0x82 and close`, async () => {
        const c = await peer(b);
        c.send(connect({ props: [p] }));
        const ack = decodeConnack(await c.next(T.CONNACK));
        assert.equal(ack.reason, 0x82);
        assert.equal(ack.sessionPresent, false);
        await c.expectClosed();
      });
    }

    it('[MQTT-4.13.1-1] §3.4.2.2: a PUBACK property other than Reason String / User Property is malformed: DISCONNECT 0x81', async () => {
      const c: Peer = await client(b);
      await c.sub('pa', subOpts(1));
      await c.pub('pa', 'x', { qos: 1 });
      const m = await c.publishFrame();
      c.send(ack(T.PUBACK, m.id, 0, [prop.contentType('x')]));
      await c.expectDisconnect(0x81);
    });

    it('[MQTT-4.13.1-1] §2.2.2.2: a DISCONNECT carrying a property it may not have (Topic Alias) is malformed', async () => {
      const c = await client(b);
      c.send(disconnect(0, [prop.topicAlias(1)]));
      await c.expectDisconnect(0x81);
    });
  });
});
