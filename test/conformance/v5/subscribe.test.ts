// MQTT 5.0 conformance: SUBSCRIBE (§3.8), SUBACK (§3.9), UNSUBSCRIBE (§3.10), UNSUBACK (§3.11).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ack,
  client,
  decodeSubAck,
  drop,
  hex,
  lasting,
  P,
  packet,
  prop,
  propsOf,
  publish,
  REASONS,
  subOpts,
  subscribe,
  T,
  u16,
  uniqueId,
  unsubscribe,
  useBroker,
} from './helpers.js';


const INVALID_FILTERS = ['a/#/b', 'a+', 'a/b#', '$share/g', '$share//t', '$share/g#/t', '$share/g/'];

describe('MQTT 5.0 §3.8–3.9 SUBSCRIBE and SUBACK', () => {
  const broker = useBroker();

  for (const header of [0x80, 0x83, 0x8a]) {
    it(`[MQTT-3.8.1-1] treats a SUBSCRIBE with fixed header flags ${(header & 0x0f).toString(2).padStart(4, '0')} as malformed: DISCONNECT 0x81`, async () => {
      const c = await client(broker());
      const bytes = subscribe(1, [['t', 0]]);
      bytes[0] = header;
      c.send(bytes);
      await c.expectDisconnect(0x81);
    });
  }

  it('[MQTT-3.8.3-3] does not forward messages to the publishing client over a No Local subscription', async () => {
    const b = broker();
    const c = await client(b);
    await c.sub('nl/#', subOpts(1, { nl: true }), [prop.subscriptionId(1)]);
    await c.pub('nl/own', 'mine', { qos: 1 });
    const other = await client(b);
    await other.pub('nl/other', 'theirs', { qos: 1 });
    const got = await c.publishes();
    assert.deepEqual(got.map((m) => m.payload.toString()), ['theirs']);
  });

  it('[MQTT-3.8.3-3] still delivers the own message through an overlapping subscription without No Local', async () => {
    const b = broker();
    const c = await client(b);
    await c.sub('nlo/#', subOpts(1, { nl: true }), [prop.subscriptionId(1)]);
    await c.sub('nlo/t', subOpts(1), [prop.subscriptionId(2)]);
    await c.pub('nlo/t', 'mine', { qos: 1 });
    const got = await c.publishes();
    assert.equal(got.length, 1);
    assert.ok(propsOf<number>(got[0]!.props, P.SubscriptionIdentifier).includes(2));
  });

  for (const bit of [0x40, 0x80]) {
    it(`[MQTT-3.8.3-5] treats reserved Subscription Options bit ${hex(bit)} set as malformed: DISCONNECT 0x81`, async () => {
      const c = await client(broker());
      c.send(subscribe(1, [['ok', 1], ['t', 1 | bit]]));
      await c.expectDisconnect(0x81);
      assert.equal(c.log.filter((f) => f.type === T.SUBACK).length, 0);
    });
  }

  it('[MQTT-4.13.1-1] §3.8.3.1: QoS 3 in the Subscription Options is malformed: DISCONNECT 0x81', async () => {
    const c = await client(broker());
    c.send(subscribe(1, [['t', 3]]));
    await c.expectDisconnect(0x81);
  });

  it('[MQTT-4.13.1-1] §3.8.3.1: Retain Handling 3 is a Protocol Error: DISCONNECT 0x82', async () => {
    const c = await client(broker());
    c.send(subscribe(1, [['t', 0x30]]));
    await c.expectDisconnect(0x82);
  });

  it('[MQTT-3.8.3-4] [MQTT-4.13.1-1] §3.8.3.1: No Local on a Shared Subscription is a Protocol Error: DISCONNECT 0x82', async () => {
    const c = await client(broker());
    c.send(subscribe(1, [['$share/g/t', subOpts(0, { nl: true })]]));
    await c.expectDisconnect(0x82);
  });

  it('[MQTT-3.8.3-2] [MQTT-4.13.1-1] §3.8.3: a SUBSCRIBE without any Topic Filter is a Protocol Error: DISCONNECT 0x82', async () => {
    const c = await client(broker());
    c.send(packet(0x82, u16(1), [0]));
    await c.expectDisconnect(0x82, 1000);
  });

  it('[MQTT-3.8.4-1] [MQTT-3.8.4-2] answers every SUBSCRIBE with a SUBACK carrying its packet identifier, failed filters included', async () => {
    const c = await client(broker());
    for (const [id, filter] of [[1, 'a'], [300, 'a/#/b'], [65535, '$share/g/x']] as const) {
      c.send(subscribe(id, [[filter, 1]]));
      assert.equal(decodeSubAck(await c.next(T.SUBACK)).id, id);
    }
  });

  it('[MQTT-3.8.4-3] replaces an existing subscription with an identical filter: new QoS, options and identifier, one copy', async () => {
    const b = broker();
    const c = await client(b);
    await c.sub('rep/t', subOpts(2), [prop.subscriptionId(5)]);
    await c.sub('rep/t', subOpts(0, { nl: true }));
    const other = await client(b);
    await other.pub('rep/t', 'x', { qos: 2 });
    await c.pub('rep/t', 'own', { qos: 1 });
    const got = await c.publishes();
    assert.equal(got.length, 1);
    assert.deepEqual([got[0]!.payload.toString(), got[0]!.qos], ['x', 0]);
    assert.deepEqual(propsOf(got[0]!.props, P.SubscriptionIdentifier), [], 'the new subscription has no identifier');
  });

  it('[MQTT-3.8.4-4] re-sends retained messages when a subscription is replaced with Retain Handling 0', async () => {
    const b = broker();
    const pub = await client(b);
    await pub.pub('rr/t', 'kept', { retain: true, qos: 1 });
    const c = await client(b);
    for (let i = 0; i < 3; i++) {
      await c.sub('rr/t', subOpts(0, { rh: 0 }));
      const m = await c.publishFrame();
      assert.deepEqual([m.payload.toString(), m.retain], ['kept', true]);
    }
  });

  it('[MQTT-3.8.4-4] loses no message while the subscription is being replaced', async () => {
    const b = broker();
    const c = await client(b);
    await c.sub('loss/t', subOpts(1));
    const pub = await client(b);
    const n = 60;
    for (let i = 0; i < n; i++) {
      pub.send(publish({ topic: 'loss/t', payload: String(i), qos: 1, id: i + 1 }));
      if (i % 10 === 5) c.send(subscribe(100 + i, [['loss/t', subOpts(1)]]));
    }
    const got: number[] = [];
    const deadline = Date.now() + 3000;
    while (got.length < n && Date.now() < deadline) {
      const m = await c.publishFrame(3000);
      c.send(ack(T.PUBACK, m.id));
      got.push(Number(m.payload.toString()));
    }
    assert.deepEqual(got, [...Array(n).keys()]);
  });

  it('[MQTT-3.8.4-5] handles several filters in one SUBSCRIBE as a sequence of SUBSCRIBEs, with one SUBACK', async () => {
    const b = broker();
    const c = await client(b);
    const codes = await c.sub([['seq/a', 2], ['seq/b', 0], ['seq/a', 1]]);
    assert.deepEqual(codes, [2, 0, 1]);
    await c.none(T.SUBACK);
    const pub = await client(b);
    await pub.pub('seq/a', 'x', { qos: 2 });
    const got = await c.publishes();
    assert.deepEqual(got.map((m) => m.qos), [1], 'the later filter replaced the earlier one');
  });

  it('[MQTT-3.8.4-6] [MQTT-3.9.3-1] returns one reason code per filter, in the order of the filters', async () => {
    const c = await client(broker());
    const codes = await c.sub([['o/2', 2], ['o/#/bad', 1], ['o/0', 0], ['$share/g/o/1', 1], ['o+', 2], ['o/1', 1]]);
    assert.equal(codes.length, 6);
    assert.deepEqual([codes[0], codes[2], codes[3], codes[5]], [2, 0, 1, 1]);
    assert.ok(codes[1]! >= 0x80 && codes[4]! >= 0x80);
  });

  it('[MQTT-3.8.4-7] [MQTT-3.9.3-2] grants the requested QoS or reports a failure, with Subscribe Reason Codes only', async () => {
    const c = await client(broker());
    const filters = [['g/0', 0], ['g/1', 1], ['g/2', 2], ...INVALID_FILTERS.map((f) => [f, 1])] as [string, number][];
    const codes = await c.sub(filters);
    assert.deepEqual(codes.slice(0, 3), [0, 1, 2]);
    for (const [i, code] of codes.entries()) {
      assert.ok((REASONS.SUBACK as readonly number[]).includes(code), `SUBACK ${hex(code)} for ${filters[i]![0]}`);
      if (i >= 3) assert.ok(code >= 0x80, `${filters[i]![0]} must fail, got ${hex(code)}`);
    }
  });

  for (const pubQos of [0, 1, 2]) {
    it(`[MQTT-3.8.4-8] delivers a QoS ${pubQos} message at min(published QoS, granted QoS) for each granted QoS`, async () => {
      const b = broker();
      const subs = [];
      for (const q of [0, 1, 2]) {
        const s = await client(b);
        await s.sub('min/t', subOpts(q));
        subs.push(s);
      }
      const pub = await client(b);
      await pub.pub('min/t', 'x', { qos: pubQos });
      for (const [q, s] of subs.entries()) assert.equal((await s.publishFrame()).qos, Math.min(q, pubQos));
    });
  }

  it('[MQTT-3.9.2-1] leaves the Reason String out of a SUBACK it would push beyond the client Maximum Packet Size', async () => {
    const c = await client(broker(), { props: [prop.maximumPacketSize(24)] });
    c.send(subscribe(9, [['s/a', 1], ['s/#/bad', 1], ['s/b', 2]]));
    const s = decodeSubAck(await c.next(T.SUBACK, 1000));
    assert.deepEqual(s.codes.map((x) => x >= 0x80), [false, true, false]);
    assert.ok(s.size <= 24, `SUBACK of ${s.size} bytes`);
  });

  it('[MQTT-3.9.2-2] sends no SUBACK made larger than the client Maximum Packet Size by User Properties or a Reason String', async () => {
    const c = await client(broker(), { props: [prop.maximumPacketSize(24)] });
    c.send(subscribe(9, [['s/a', 1], ['s/b', 2]]), subscribe(10, [['s/#/bad', 1]]));
    const s = decodeSubAck(await c.next(T.SUBACK));
    assert.deepEqual(s.codes, [1, 2]);
    await c.roundTrip();
    assert.ok(c.log.every((f) => f.raw.length <= 24), `sizes ${c.log.map((f) => f.raw.length)}`);
  });
});

describe('MQTT 5.0 §3.10–3.11 UNSUBSCRIBE and UNSUBACK', () => {
  const broker = useBroker();

  for (const header of [0xa0, 0xa3, 0xa6]) {
    it(`[MQTT-3.10.1-1] treats an UNSUBSCRIBE with fixed header flags ${(header & 0x0f).toString(2).padStart(4, '0')} as malformed: DISCONNECT 0x81`, async () => {
      const c = await client(broker());
      await c.sub('t');
      const bytes = unsubscribe(1, ['t']);
      bytes[0] = header;
      c.send(bytes);
      await c.expectDisconnect(0x81);
    });
  }

  it('[MQTT-3.10.3-2] [MQTT-4.13.1-1] §3.10.3: an UNSUBSCRIBE without any Topic Filter is a Protocol Error: DISCONNECT 0x82', async () => {
    const c = await client(broker());
    c.send(packet(0xa2, u16(1), [0]));
    await c.expectDisconnect(0x82, 1000);
  });

  it('[MQTT-3.10.4-1] deletes only the subscription whose filter matches character by character', async () => {
    const b = broker();
    const c = await client(b);
    await c.sub([['cc/+', 1], ['cc/b', 1], ['CC/b', 1]]);
    assert.deepEqual(await c.unsub(['cc/b', 'cc/#', 'Cc/b', 'cc/+/']), [0x00, 0x11, 0x11, 0x11]);
    const pub = await client(b);
    await pub.pub('cc/b', '1', { qos: 1 });
    await pub.pub('CC/b', '2', { qos: 1 });
    await pub.pub('cc/x', '3', { qos: 1 });
    assert.deepEqual((await c.publishes()).map((m) => m.payload.toString()), ['1', '2', '3'], 'cc/+ and CC/b remain');
  });

  it('[MQTT-3.10.4-2] stops adding new messages for the filter once UNSUBSCRIBE is received', async () => {
    const b = broker();
    const c = await client(b);
    await c.sub('stop/t', subOpts(1));
    await c.unsub('stop/t');
    const pub = await client(b);
    await pub.pub('stop/t', 'x', { qos: 1 });
    await pub.pub('stop/t', 'y', { qos: 0 });
    await c.none(T.PUBLISH);
  });

  it('[MQTT-3.10.4-3] completes QoS 1 and QoS 2 deliveries already started when the client unsubscribes', async () => {
    const b = broker();
    const id = uniqueId();
    const c = await client(b, lasting(id));
    await c.sub('done/#', subOpts(2));
    const pub = await client(b);
    await pub.pub('done/1', 'one', { qos: 1 });
    await pub.pub('done/2', 'two', { qos: 2 });
    const m1 = await c.publishFrame();
    const m2 = await c.publishFrame();
    await c.unsub('done/#');
    c.send(ack(T.PUBREC, m2.id));
    assert.equal((await c.ack(T.PUBREL)).id, m2.id);
    await drop(c);
    // The unacknowledged QoS 1 message is still delivered on reconnection.
    const again = await client(b, lasting(id));
    const r = await again.publishFrame();
    assert.deepEqual([r.id, r.dup, r.payload.toString()], [m1.id, true, 'one']);
    again.send(ack(T.PUBACK, r.id));
    assert.equal((await again.ack(T.PUBREL)).id, m2.id, 'and the PUBREL of the QoS 2 flow');
  });

  it('[MQTT-3.10.4-4] [MQTT-3.10.4-5] answers UNSUBSCRIBE with an UNSUBACK of the same packet identifier, even when nothing was deleted', async () => {
    const c = await client(broker());
    await c.sub('u/t');
    for (const [id, f] of [[2, 'u/t'], [2, 'u/t'], [65535, 'never/subscribed']] as const) {
      c.send(unsubscribe(id, [f]));
      assert.equal(decodeSubAck(await c.next(T.UNSUBACK)).id, id);
    }
  });

  it('[MQTT-3.10.4-6] processes several filters as a sequence of UNSUBSCRIBEs, with one UNSUBACK', async () => {
    const b = broker();
    const c = await client(b);
    await c.sub([['m/a', 1], ['m/b', 1], ['m/c', 1]]);
    assert.deepEqual(await c.unsub(['m/a', 'm/a', 'm/b']), [0x00, 0x11, 0x00]);
    await c.none(T.UNSUBACK);
    const pub = await client(b);
    for (const t of ['m/a', 'm/b', 'm/c']) await pub.pub(t, t, { qos: 1 });
    assert.deepEqual((await c.publishes()).map((m) => m.topic), ['m/c']);
  });

  it('[MQTT-3.11.2-1] [MQTT-3.11.2-2] keeps UNSUBACK within the client Maximum Packet Size', async () => {
    const c = await client(broker(), { props: [prop.maximumPacketSize(20)] });
    await c.sub('x');
    c.send(unsubscribe(3, ['x', 'y', 'a/#/b']));
    const u = decodeSubAck(await c.next(T.UNSUBACK));
    assert.equal(u.codes.length, 3);
    assert.ok(u.size <= 20, `UNSUBACK of ${u.size} bytes`);
  });

  it('[MQTT-3.11.3-1] [MQTT-3.11.3-2] returns Unsubscribe Reason Codes, one per filter, in order', async () => {
    const c = await client(broker());
    await c.sub([['r/1', 0], ['$share/g/r/2', 1]]);
    const filters = ['r/1', 'r/none', '$share/g/r/2', 'r/#/bad', 'r/2'];
    const codes = await c.unsub(filters);
    assert.equal(codes.length, filters.length);
    for (const code of codes) assert.ok((REASONS.UNSUBACK as readonly number[]).includes(code), `UNSUBACK ${hex(code)}`);
    assert.deepEqual([codes[0], codes[1], codes[2], codes[4]], [0x00, 0x11, 0x00, 0x11]);
    assert.ok(codes[3] === 0x8f || codes[3] === 0x11, `invalid filter answered ${hex(codes[3]!)}`);
  });
});


