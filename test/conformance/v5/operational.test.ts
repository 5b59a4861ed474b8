// MQTT 5.0 conformance: operational behaviour (§4.1–4.10, §4.13): sessions, QoS flows, redelivery,
// ordering, topic names and filters, shared subscriptions, flow control, error handling.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ack,
  brokerTime,
  client,
  connect,
  decodeConnack,
  disconnect,
  drop,
  lasting,
  P,
  pace,
  packet,
  peer,
  pingreq,
  prop,
  propOf,
  publish,
  str,
  subOpts,
  subscribe,
  T,
  u16,
  uniqueId,
  unsubscribe,
  useBroker,
} from './helpers.js';


/** A subscriber with a lasting session on `filter`, disconnected (without DISCONNECT) once subscribed. */
async function offline(b: Parameters<typeof client>[0], id: string, filter: string, qos: number): Promise<void> {
  const s = await client(b, lasting(id));
  await s.sub(filter, subOpts(qos));
  await drop(s);
}

/**
 * A message sent to an offline lasting session with a 1 s Message Expiry, delivered once and left
 * unacknowledged: after the expiry has passed, the next connection still gets it again, same id, DUP.
 */
async function resendsDespiteExpiry(b: Parameters<typeof client>[0], qos: 1 | 2): Promise<void> {
  const id = uniqueId();
  const topic = `noexp/${qos}`;
  await offline(b, id, topic, qos);
  const pub = await client(b);
  await pub.pub(topic, 'x', { qos, props: [prop.messageExpiry(1)] });
  const expired = await brokerTime(b, 1);
  const c = await client(b, lasting(id));
  const m = await c.publishFrame();
  await drop(c);
  await expired();
  const again = await client(b, lasting(id));
  const r = await again.publishFrame(500);
  assert.deepEqual([r.id, r.dup], [m.id, true]);
}

describe('MQTT 5.0 §4.1 session state', () => {
  const broker = useBroker();

  it('[MQTT-4.1.0-1] keeps the session state while the connection is open, longer than its Session Expiry Interval', async () => {
    const b = broker();
    const id = uniqueId();
    const c = await client(b, lasting(id, 1));
    await c.sub('held/t', subOpts(1));
    await (await brokerTime(b, 1))();
    const pub = await client(b);
    await pub.pub('held/t', 'still subscribed', { qos: 1 });
    const m = await c.publishFrame();
    assert.equal(m.payload.toString(), 'still subscribed');
    await drop(c);
    const again = await client(b, lasting(id, 1));
    assert.equal(again.connack.sessionPresent, true);
    assert.equal((await again.publishFrame()).id, m.id, 'the unacknowledged message is still in the session');
  });
});

describe('MQTT 5.0 §4.1 session expiry (maxSessionExpiry 1)', () => {
  const broker = useBroker({ maxSessionExpiry: 1 });

  it('[MQTT-4.1.0-2] discards the session state once the connection is closed and the Session Expiry Interval has passed', async () => {
    const b = broker();
    const asked1 = await client(b, lasting('exp-a', 1));
    const asked100 = await client(b, lasting('exp-b', 100));
    assert.equal(propOf(asked100.connack.props, P.SessionExpiryInterval), 1, 'the server tells the interval it applies');
    for (const c of [asked1, asked100]) await c.sub('exp/t', subOpts(1));
    await drop(asked1);
    await drop(asked100);
    const soon = await client(b, lasting('exp-a', 1));
    assert.equal(soon.connack.sessionPresent, true, 'not discarded before the interval');
    await drop(soon);
    await (await brokerTime(b, 1))();
    for (const id of ['exp-a', 'exp-b']) {
      const later = await client(b, lasting(id, 1));
      assert.equal(later.connack.sessionPresent, false, `${id} discarded`);
      const pub = await client(b);
      await pub.pub('exp/t', 'x', { qos: 1 });
      await later.none(T.PUBLISH);
      later.destroy();
    }
  });
});

describe('MQTT 5.0 §4.2–4.6 transport, QoS flows, redelivery, ordering', () => {
  const broker = useBroker();

  it('[MQTT-4.2-1] reads the byte stream whatever its segmentation: one byte per write, and many packets per write', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('stream/#', subOpts(1));
    const c = await peer(b);
    const bytes = Buffer.concat([connect(), subscribe(1, [['x', 0]]), publish({ topic: 'stream/1', qos: 1, id: 1, payload: 'split' })]);
    for (const byte of bytes) {
      c.send([byte]);
      await pace(1);
    }
    await c.next(T.CONNACK);
    await c.next(T.SUBACK);
    await c.ack(T.PUBACK);
    const burst = [];
    for (let i = 0; i < 50; i++) burst.push(publish({ topic: 'stream/2', qos: 1, id: 100 + i, payload: String(i) }));
    c.send(...burst);
    for (let i = 0; i < 50; i++) assert.equal((await c.ack(T.PUBACK)).id, 100 + i);
    const got = await s.publishes();
    assert.deepEqual(got.map((m) => m.payload.toString()), ['split', ...Array.from({ length: 50 }, (_, i) => String(i))]);
  });

  it('[MQTT-4.3.1-1] sends QoS 0 deliveries as PUBLISH with QoS 0 and DUP 0', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('q0/#', subOpts(2));
    const pub = await client(b);
    await pub.pub('q0/t', 'x', { qos: 0 });
    const m = await s.publishFrame();
    assert.deepEqual([m.qos, m.dup, m.id], [0, false, 0]);
  });

  /** New QoS `qos` messages get unused packet identifiers, QoS `qos` and DUP 0. */
  const newMessages = (qos: 1 | 2) => async (): Promise<void> => {
    const b = broker();
    const s = await client(b);
    await s.sub('flow/t', subOpts(qos));
    const pub = await client(b);
    for (let i = 0; i < 10; i++) await pub.pub('flow/t', String(i), { qos });
    const got = await s.publishes();
    assert.equal(got.length, 10);
    assert.ok(got.every((m) => m.qos === qos && !m.dup && m.id > 0));
    assert.equal(new Set(got.map((m) => m.id)).size, 10);
    // Acknowledged identifiers may be reused, unacknowledged ones not.
    for (const m of got.slice(0, 5)) s.send(ack(qos === 1 ? T.PUBACK : T.PUBREC, m.id));
    for (let i = 10; i < 15; i++) await pub.pub('flow/t', String(i), { qos });
    const more = await s.publishes();
    const stillOpen = new Set(got.slice(5).map((m) => m.id));
    assert.ok(more.every((m) => !stillOpen.has(m.id)), 'identifier of an unacknowledged message reused');
  };
  it('[MQTT-4.3.2-1] [MQTT-4.3.2-2] gives each new QoS 1 message an unused packet identifier, QoS 1 and DUP 0', newMessages(1));
  it('[MQTT-4.3.3-1] [MQTT-4.3.3-2] gives each new QoS 2 message an unused packet identifier, QoS 2 and DUP 0', newMessages(2));

  it('[MQTT-4.3.2-3] treats a QoS 1 PUBLISH as unacknowledged until PUBACK: only unacknowledged ones are resent', async () => {
    const b = broker();
    const id = uniqueId();
    await offline(b, id, 'un/1', 1);
    const pub = await client(b);
    for (let i = 0; i < 4; i++) await pub.pub('un/1', String(i), { qos: 1 });
    const c = await client(b, lasting(id));
    const first = await c.publishes();
    c.send(ack(T.PUBACK, first[1]!.id), ack(T.PUBACK, first[3]!.id));
    await drop(c);
    const again = await client(b, lasting(id));
    const resent = await again.publishes();
    assert.deepEqual(resent.map((m) => [m.id, m.payload.toString(), m.dup]), [[first[0]!.id, '0', true], [first[2]!.id, '2', true]]);
  });

  it('[MQTT-4.3.2-4] answers a QoS 1 PUBLISH with PUBACK of its packet identifier, having taken ownership', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('own/1', subOpts(1));
    const c = await client(b);
    c.send(publish({ topic: 'own/1', qos: 1, id: 4242, payload: 'p' }));
    assert.equal((await c.ack(T.PUBACK)).id, 4242);
    c.destroy();
    assert.equal((await s.publishFrame()).payload.toString(), 'p', 'delivered although the publisher left');
  });

  it('[MQTT-4.3.2-5] treats a QoS 1 PUBLISH reusing an acknowledged packet identifier as a new message, DUP or not', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('new/1', subOpts(1));
    const c = await client(b);
    c.send(publish({ topic: 'new/1', qos: 1, id: 5, payload: 'a' }));
    await c.ack(T.PUBACK);
    c.send(publish({ topic: 'new/1', qos: 1, id: 5, payload: 'b', dup: true }));
    await c.ack(T.PUBACK);
    assert.deepEqual((await s.publishes()).map((m) => m.payload.toString()), ['a', 'b']);
  });

  it('[MQTT-4.3.3-3] treats a QoS 2 PUBLISH as unacknowledged until PUBREC: it is resent with DUP on reconnection', async () => {
    const b = broker();
    const id = uniqueId();
    await offline(b, id, 'un/2', 2);
    const pub = await client(b);
    await pub.pub('un/2', 'x', { qos: 2 });
    const c = await client(b, lasting(id));
    const m = await c.publishFrame();
    await drop(c);
    const again = await client(b, lasting(id));
    const r = await again.publishFrame();
    assert.deepEqual([r.id, r.dup, r.qos], [m.id, true, 2]);
  });

  it('[MQTT-4.3.3-4] sends PUBREL with the packet identifier after a PUBREC below 0x80, and none after 0x80 or above', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('rel/t', subOpts(2));
    const pub = await client(b);
    await pub.pub('rel/t', 'a', { qos: 2 });
    await pub.pub('rel/t', 'b', { qos: 2 });
    const [a, bm] = await s.publishes();
    s.send(ack(T.PUBREC, a!.id, 0x10));
    assert.equal((await s.ack(T.PUBREL)).id, a!.id);
    s.send(ack(T.PUBREC, bm!.id, 0x97));
    await s.none(T.PUBREL);
  });

  it('[MQTT-4.3.3-5] [MQTT-4.3.3-6] treats PUBREL as unacknowledged until PUBCOMP, and then resends PUBREL, never the PUBLISH', async () => {
    const b = broker();
    const id = uniqueId();
    await offline(b, id, 'comp/t', 2);
    const pub = await client(b);
    await pub.pub('comp/t', 'x', { qos: 2 });
    const c = await client(b, lasting(id));
    const m = await c.publishFrame();
    c.send(ack(T.PUBREC, m.id));
    await c.ack(T.PUBREL);
    await drop(c);
    const again = await client(b, lasting(id));
    assert.equal((await again.ack(T.PUBREL)).id, m.id);
    await again.none(T.PUBLISH);
    again.send(ack(T.PUBCOMP, m.id));
    await drop(again);
    const third = await client(b, lasting(id));
    await third.none(undefined);
  });

  it('[MQTT-4.3.3-7] does not apply Message Expiry to a QoS 2 message once its PUBLISH was sent', () =>
    resendsDespiteExpiry(broker(), 2));

  it('[MQTT-4.3.3-8] [MQTT-4.3.3-11] answers QoS 2 PUBLISH with PUBREC and PUBREL with PUBCOMP, same packet identifiers', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('in/2', subOpts(2));
    const c = await client(b);
    c.send(publish({ topic: 'in/2', qos: 2, id: 300, payload: 'p' }));
    assert.equal((await c.ack(T.PUBREC)).id, 300);
    c.send(ack(T.PUBREL, 300));
    assert.deepEqual([(await c.ack(T.PUBCOMP)).id], [300]);
    assert.equal((await s.publishFrame()).payload.toString(), 'p');
  });

  it('[MQTT-4.3.3-9] treats a PUBLISH reusing the packet identifier of a PUBREC ≥ 0x80 as a new message', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('pr80/t', subOpts(2));
    const c = await client(b);
    c.send(publish({ topic: 'pr80/t', qos: 2, id: 9, payload: Buffer.from([0xff]), props: [prop.payloadFormat(1)] }));
    assert.equal((await c.ack(T.PUBREC)).reason, 0x99);
    c.send(publish({ topic: 'pr80/t', qos: 2, id: 9, payload: 'valid' }));
    const r = await c.ack(T.PUBREC);
    assert.ok(r.reason < 0x80);
    c.send(ack(T.PUBREL, 9));
    await c.ack(T.PUBCOMP);
    assert.deepEqual((await s.publishes()).map((m) => m.payload.toString()), ['valid']);
  });

  it('[MQTT-4.3.3-10] acknowledges a resent QoS 2 PUBLISH with PUBREC until PUBREL, without delivering it twice (also across reconnection)', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('once/t', subOpts(2));
    const id = uniqueId();
    const c = await client(b, lasting(id));
    const p = publish({ topic: 'once/t', qos: 2, id: 21, payload: 'only once' });
    c.send(p);
    await c.ack(T.PUBREC);
    c.send(publish({ topic: 'once/t', qos: 2, id: 21, payload: 'only once', dup: true }));
    assert.equal((await c.ack(T.PUBREC)).id, 21);
    await drop(c);
    const again = await client(b, lasting(id));
    again.send(publish({ topic: 'once/t', qos: 2, id: 21, payload: 'only once', dup: true }));
    assert.equal((await again.ack(T.PUBREC)).id, 21);
    again.send(ack(T.PUBREL, 21));
    assert.equal((await again.ack(T.PUBCOMP)).reason, 0);
    assert.deepEqual((await s.publishes()).map((m) => m.payload.toString()), ['only once']);
  });

  it('[MQTT-4.3.3-12] treats a PUBLISH reusing a packet identifier after PUBCOMP as a new message', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('again/t', subOpts(2));
    const c = await client(b);
    for (const payload of ['first', 'second']) {
      c.send(publish({ topic: 'again/t', qos: 2, id: 8, payload }));
      await c.ack(T.PUBREC);
      c.send(ack(T.PUBREL, 8));
      await c.ack(T.PUBCOMP);
    }
    assert.deepEqual((await s.publishes()).map((m) => m.payload.toString()), ['first', 'second']);
  });

  it('[MQTT-4.3.3-13] completes the QoS 2 acknowledgement sequence although the message has expired', async () => {
    const b = broker();
    const c = await client(b);
    c.send(publish({ topic: 'late/2', qos: 2, id: 13, props: [prop.messageExpiry(1)] }));
    await c.ack(T.PUBREC);
    await (await brokerTime(b, 1))();
    c.send(ack(T.PUBREL, 13));
    const comp = await c.ack(T.PUBCOMP);
    assert.deepEqual([comp.id, comp.reason], [13, 0]);
  });

  it('[MQTT-4.4.0-1] resends unacknowledged PUBLISH and PUBREL packets on reconnection with Clean Start 0, with their original identifiers, in order', async () => {
    const b = broker();
    const id = uniqueId();
    await offline(b, id, 're/#', 2);
    const pub = await client(b);
    await pub.pub('re/1', 'a', { qos: 1 });
    await pub.pub('re/2', 'b', { qos: 2 });
    await pub.pub('re/2', 'c', { qos: 2 });
    await pub.pub('re/1', 'd', { qos: 1 });
    const c = await client(b, lasting(id));
    const sent = await c.publishes();
    assert.equal(sent.length, 4);
    c.send(ack(T.PUBREC, sent[1]!.id));
    await c.ack(T.PUBREL);
    await drop(c);
    const again = await client(b, lasting(id));
    await again.roundTrip();
    const order = again.queued.map((f) => (f.type === T.PUBREL ? 'PUBREL' : `PUBLISH ${f.body.toString('latin1').slice(-1)}`));
    assert.deepEqual(order, ['PUBLISH a', 'PUBREL', 'PUBLISH c', 'PUBLISH d']);
    const resent = await again.publishes();
    assert.deepEqual(resent.map((m) => m.id), [sent[0]!.id, sent[2]!.id, sent[3]!.id]);
    assert.ok(resent.every((m) => m.dup));
    assert.equal((await again.ack(T.PUBREL)).id, sent[1]!.id);
  });

  it('[MQTT-4.4.0-1] resends nothing while connected, nor after a reconnection with Clean Start 1', async () => {
    const b = broker();
    const id = uniqueId();
    const c = await client(b, lasting(id));
    await c.sub('nore/t', subOpts(1));
    const pub = await client(b);
    await pub.pub('nore/t', 'x', { qos: 1 });
    await c.publishFrame();
    await c.none(T.PUBLISH);
    await drop(c);
    const fresh = await client(b, { ...lasting(id), clean: true });
    await fresh.none(T.PUBLISH);
  });

  it('[MQTT-4.4.0-1] resends an unacknowledged QoS 1 PUBLISH even when its Message Expiry Interval has since passed', () =>
    resendsDespiteExpiry(broker(), 1));

  it('[MQTT-4.4.0-2] treats a PUBLISH answered with PUBACK or PUBREC ≥ 0x80 as acknowledged: never retransmitted', async () => {
    const b = broker();
    const id = uniqueId();
    await offline(b, id, 'neg/#', 2);
    const pub = await client(b);
    await pub.pub('neg/1', 'a', { qos: 1 });
    await pub.pub('neg/2', 'b', { qos: 2 });
    const c = await client(b, lasting(id));
    const [m1, m2] = await c.publishes();
    c.send(ack(T.PUBACK, m1!.id, 0x80), ack(T.PUBREC, m2!.id, 0x83));
    await drop(c);
    const again = await client(b, lasting(id));
    await again.none(undefined);
  });

  it('[MQTT-4.5.0-1] adds an accepted message to the session state of every matching subscriber, online or not', async () => {
    const b = broker();
    await offline(b, 'own-a', 'os/#', 1);
    await offline(b, 'own-b', 'os/+', 2);
    const online = await client(b);
    await online.sub('os/t', subOpts(1));
    const pub = await client(b);
    await pub.pub('os/t', 'x', { qos: 2 });
    assert.equal((await online.publishFrame()).payload.toString(), 'x');
    for (const id of ['own-a', 'own-b']) {
      const c = await client(b, lasting(id));
      assert.equal((await c.publishFrame()).payload.toString(), 'x');
    }
  });

  for (const qos of [0, 1, 2]) {
    it(`[MQTT-4.6.0-5] sends a publisher's QoS ${qos} messages on one topic to each consumer in the order received`, async () => {
      const b = broker();
      const subs = [await client(b), await client(b, { props: [prop.receiveMaximum(3)] })];
      for (const s of subs) await s.sub('ord/t', subOpts(2));
      const pub = await client(b);
      const n = 40;
      for (let i = 0; i < n; i++) pub.send(publish({ topic: 'ord/t', qos, id: i + 1, payload: String(i) }));
      for (const s of subs) {
        const got: number[] = [];
        while (got.length < n) {
          const m = await s.publishFrame();
          if (m.qos === 1) s.send(ack(T.PUBACK, m.id));
          if (m.qos === 2) s.send(ack(T.PUBREC, m.id), ack(T.PUBCOMP, m.id));
          got.push(Number(m.payload.toString()));
        }
        assert.deepEqual(got, [...Array(n).keys()]);
      }
    });
  }

  it('[MQTT-4.6.0-6] treats every topic as ordered on non-shared subscriptions, through the offline queue too', async () => {
    const b = broker();
    const id = uniqueId();
    await offline(b, id, 'many/#', 1);
    const live = await client(b);
    await live.sub('many/#', subOpts(1));
    const pub = await client(b);
    const n = 30;
    for (let i = 0; i < n; i++) await pub.pub(`many/${i % 3}`, String(i), { qos: 1 });
    const back = await client(b, lasting(id, 60, { props: [prop.receiveMaximum(2)] }));
    for (const s of [live, back]) {
      const got: number[] = [];
      while (got.length < n) {
        const m = await s.publishFrame();
        s.send(ack(T.PUBACK, m.id));
        got.push(Number(m.payload.toString()));
      }
      assert.deepEqual(got, [...Array(n).keys()]);
    }
  });
});

describe('MQTT 5.0 §4.7 topic names and topic filters', () => {
  const broker = useBroker();

  it('[MQTT-4.7.0-1] refuses a Topic Name containing "+" (0x90) and delivers nothing', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('#', subOpts(1));
    const c = await client(b);
    c.send(publish({ topic: 'a/+/c', qos: 1, id: 1 }));
    const f = await c.next([T.DISCONNECT, T.PUBACK]);
    assert.equal(f.type === T.DISCONNECT ? f.body[0] : f.body[2], 0x90);
    await s.none(T.PUBLISH);
  });

  it('[MQTT-4.7.2-1] does not match filters starting with a wildcard against topic names starting with "$"', async () => {
    const b = broker();
    const wild = await client(b);
    await wild.sub([['#', 1], ['+/t', 1], ['+/+', 1]]);
    const dollar = await client(b);
    await dollar.sub([['$app/#', 1], ['$app/+', 1]]);
    const pub = await client(b);
    // ArborMQ keeps only $SYS to itself: a client's "$" topic is routed, so the wildcard filters are really put to the test.
    assert.equal(await pub.pub('$app/t', 'x', { qos: 1 }), 0x00, 'a client may publish to a $ topic other than $SYS');
    await pub.pub('app/t', 'y', { qos: 1 });
    assert.deepEqual((await wild.publishes()).map((m) => m.topic), ['app/t']);
    assert.deepEqual((await dollar.publishes()).map((m) => m.topic), ['$app/t'], 'the filters naming the $ level match (one delivery for the overlapping two)');
  });

  it('[MQTT-4.7.3-1] refuses a zero-length Topic Name without a Topic Alias, and fails zero-length topic filters', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('#', subOpts(1));
    const sub = await client(b);
    assert.ok((await sub.sub([['', 1], ['ok', 1]]))[0]! >= 0x80);
    const unsubCodes = await sub.unsub(['', 'ok']);
    assert.notEqual(unsubCodes[0], 0x00);
    const c = await client(b);
    c.send(publish({ topic: '', qos: 1, id: 1 }));
    const f = await c.next([T.DISCONNECT, T.PUBACK]);
    assert.ok((f.type === T.DISCONNECT ? f.body[0]! : f.body[2]!) >= 0x80);
    await s.none(T.PUBLISH);
  });

  it('[MQTT-4.7.3-2] [MQTT-3.10.3-1] treats U+0000 in a topic filter of UNSUBSCRIBE as malformed: DISCONNECT 0x81', async () => {
    const c = await client(broker());
    c.send(unsubscribe(1, [Uint8Array.from([0x61, 0x00])]));
    await c.expectDisconnect(0x81);
  });

  it('[MQTT-4.7.3-3] accepts and routes Topic Names and Topic Filters of the full 65,535 bytes', async () => {
    const b = broker();
    const topic = `l/${'x'.repeat(65533)}`;
    const s = await client(b);
    assert.deepEqual(await s.sub([[topic, 1], ['l/+', 1]]), [1, 1]);
    const pub = await client(b);
    await pub.pub(topic, 'long', { qos: 1 });
    const m = await s.publishFrame();
    assert.equal(m.topic, topic);
    assert.equal(Buffer.byteLength(m.topic), 65535);
  });

  it('[MQTT-4.7.3-4] matches without normalizing: case, Unicode composition and full-width forms stay distinct', async () => {
    const b = broker();
    const nfc = 'caf\u00e9';
    const nfd = 'cafe\u0301';
    const s = await client(b);
    await s.sub([[`n/${nfc}`, 1], ['n/Topic', 1], ['n/ｔ', 1]]);
    const pub = await client(b);
    for (const t of [`n/${nfd}`, 'n/topic', 'n/t', 'n/TOPIC', `n/${nfc}`, 'n/Topic', 'n/ｔ']) await pub.pub(t, t, { qos: 1 });
    assert.deepEqual((await s.publishes()).map((m) => m.topic), [`n/${nfc}`, 'n/Topic', 'n/ｔ']);
  });
});

describe('MQTT 5.0 §4.8 shared subscriptions', () => {
  const broker = useBroker();

  it('[MQTT-4.8.2-3] respects the QoS granted to the shared subscription', async () => {
    const b = broker();
    const s = await client(b);
    assert.deepEqual(await s.sub('$share/g/sq/t', subOpts(1)), [1]);
    const pub = await client(b);
    await pub.pub('sq/t', 'two', { qos: 2 });
    await pub.pub('sq/t', 'zero', { qos: 0 });
    assert.deepEqual((await s.publishes()).map((m) => [m.payload.toString(), m.qos]), [['two', 1], ['zero', 0]]);
  });

  it('[MQTT-4.8.2-4] completes a QoS 2 delivery to the chosen member when it reconnects, and gives it to no other member', async () => {
    const b = broker();
    const ids = [uniqueId(), uniqueId()];
    const members = [await client(b, lasting(ids[0]!)), await client(b, lasting(ids[1]!))];
    for (const m of members) await m.sub('$share/g2/sh2/t', subOpts(2));
    const pub = await client(b);
    await pub.pub('sh2/t', 'exactly once', { qos: 2 });
    for (const m of members) await m.roundTrip();
    const chosen = members.findIndex((m) => m.queued.some((f) => f.type === T.PUBLISH));
    assert.ok(chosen >= 0);
    const other = members[1 - chosen]!;
    const first = await members[chosen]!.publishFrame();
    await drop(members[chosen]!);
    await other.none(T.PUBLISH);
    const back = await client(b, lasting(ids[chosen]!));
    const r = await back.publishFrame();
    assert.deepEqual([r.id, r.dup, r.payload.toString()], [first.id, true, 'exactly once']);
    back.send(ack(T.PUBREC, r.id));
    await back.ack(T.PUBREL);
    back.send(ack(T.PUBCOMP, r.id));
    await other.none(T.PUBLISH);
  });

  it('[MQTT-4.8.2-5] does not give a message to another member when the chosen member session ends first', async () => {
    const b = broker();
    const other = await client(b);
    await other.sub('$share/g5/sh5/t', subOpts(1));
    const chosen = await client(b, lasting(uniqueId(), 1));
    await chosen.sub('$share/g5/sh5/t', subOpts(1));
    const pub = await client(b);
    // Publish until the member with the expiring session is the one chosen for a message.
    let picked = false;
    for (let i = 0; i < 6 && !picked; i++) {
      await pub.pub('sh5/t', `m${i}`, { qos: 1 });
      await chosen.roundTrip();
      picked = chosen.queued.some((f) => f.type === T.PUBLISH);
      if (!picked) {
        const m = await other.publishFrame();
        other.send(ack(T.PUBACK, m.id));
      }
    }
    assert.ok(picked, 'the member with the expiring session was never chosen');
    await chosen.publishFrame();
    await drop(chosen);
    await (await brokerTime(b, 1))();
    await other.none(T.PUBLISH);
  });

  it('[MQTT-4.8.2-6] discards a message the chosen member refused with PUBACK / PUBREC ≥ 0x80, not trying another member', async () => {
    const b = broker();
    const members = [await client(b), await client(b)];
    for (const m of members) await m.sub('$share/g6/sh6/t', subOpts(2));
    const pub = await client(b);
    for (const qos of [1, 2]) {
      await pub.pub('sh6/t', `q${qos}`, { qos });
      for (const m of members) await m.roundTrip();
      const chosen = members.find((m) => m.queued.some((f) => f.type === T.PUBLISH))!;
      assert.ok(chosen);
      const m = await chosen.publishFrame();
      chosen.send(ack(qos === 1 ? T.PUBACK : T.PUBREC, m.id, 0x80));
      await chosen.roundTrip();
      for (const x of members) await x.none(T.PUBLISH);
    }
  });
});

describe('MQTT 5.0 §4.9 flow control', () => {
  const broker = useBroker();

  it('[MQTT-4.9.0-1] [MQTT-4.9.0-2] starts with a send quota of the client Receive Maximum, and sends no QoS > 0 PUBLISH at quota 0', async () => {
    const b = broker();
    const s = await client(b, { props: [prop.receiveMaximum(3)] });
    await s.sub('fc/t', subOpts(2));
    const pub = await client(b);
    for (let i = 0; i < 8; i++) await pub.pub('fc/t', String(i), { qos: 1 + (i % 2) });
    const got = await s.publishes();
    assert.equal(got.length, 3, 'initial quota: the Receive Maximum, not 0');
    // Each acknowledgement gives exactly one more.
    s.send(ack(T.PUBACK, got[0]!.id));
    const next = await s.publishes();
    assert.equal(next.length, 1);
    await pub.pub('fc/t', 'zero', { qos: 0 });
    const zero = await s.publishes();
    assert.ok(zero.every((m) => m.qos === 0), 'only QoS 0 while the quota is 0');
  });

  it('[MQTT-4.9.0-3] keeps processing and answering other packets while the send quota is 0', async () => {
    const b = broker();
    const s = await client(b, { props: [prop.receiveMaximum(1)] });
    await s.sub('q0/t', subOpts(1));
    const pub = await client(b);
    await pub.pub('q0/t', 'a', { qos: 1 });
    await pub.pub('q0/t', 'b', { qos: 1 });
    await s.publishFrame();
    s.send(publish({ topic: 'self', qos: 2, id: 7 }), pingreq(), unsubscribe(8, ['nothing']));
    await s.ack(T.PUBREC);
    await s.next(T.PINGRESP);
    await s.next(T.UNSUBACK);
    s.send(ack(T.PUBREL, 7));
    await s.ack(T.PUBCOMP);
  });
});

describe('MQTT 5.0 §4.13 handling errors', () => {
  const broker = useBroker();

  const cases: [string, Buffer | number[], number][] = [
    ['a packet of reserved type 0', [0x00, 0x00], 0x81],
    ['a CONNACK from the client', [0x20, 0x03, 0x00, 0x00, 0x00], 0x81],
    ['a SUBACK from the client', [0x90, 0x04, 0x00, 0x01, 0x00, 0x00], 0x81],
    ['a QoS 1 PUBLISH with packet identifier 0', packet(0x32, str('t'), u16(0), [0]), 0x81],
    ['a PUBACK ending inside its packet identifier', [0x40, 0x01, 0x00], 0x81],
    ['a Subscription Identifier in a client PUBLISH (MQTT-3.3.4-6)', publish({ topic: 't', props: [prop.subscriptionId(3)] }), 0x82],
    ['a zero-length topic with an alias never set', publish({ topic: '', props: [prop.topicAlias(5)] }), 0x82],
  ];
  for (const [what, bytes, reason] of cases) {
    it(`[MQTT-4.13.1-1] closes the connection on ${what} (DISCONNECT 0x${reason.toString(16)})`, async () => {
      const c = await client(broker());
      c.send(bytes);
      await c.expectDisconnect(reason);
    });
  }

  it('[MQTT-4.13.2-1] closes the connection after every CONNACK or DISCONNECT ≥ 0x80 it sends', async () => {
    const b = broker();
    const refused = await peer(b);
    refused.send(connect({ will: { topic: '+' } }));
    assert.ok(decodeConnack(await refused.next(T.CONNACK)).reason >= 0x80);
    await refused.expectClosed();
    const bad = await client(b);
    bad.send([0xc0, 0x01, 0x00]);
    await bad.expectDisconnect(0x81);
  });

  it('[MQTT-4.13.2-1] closes the connection of a client that sends DISCONNECT ≥ 0x80, and publishes its will', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('err/will', subOpts(0));
    const c = await client(b, { will: { topic: 'err/will', payload: 'w' } });
    c.send(disconnect(0x81, [prop.reasonString('client detected an error')]));
    await c.expectClosed();
    assert.equal((await w.publishFrame()).payload.toString(), 'w');
  });
});

describe('MQTT 5.0 §4.13 packet size limit (maxPacketSize 256)', () => {
  const broker = useBroker({ maxPacketSize: 256 });

  it('[MQTT-3.2.2-15] [MQTT-4.13.1-1] §3.2.2.3.6: closes on a packet above its Maximum Packet Size with DISCONNECT 0x95', async () => {
    const b = broker();
    const s = await client(b);
    await s.sub('big/#', subOpts(1));
    const c = await client(b);
    assert.equal(propOf(c.connack.props, P.MaximumPacketSize), 256);
    await c.pub('big/ok', Buffer.alloc(200), { qos: 1 });
    c.send(publish({ topic: 'big/no', qos: 1, id: 2, payload: Buffer.alloc(300) }));
    await c.expectDisconnect(0x95);
    assert.deepEqual((await s.publishes()).map((m) => m.topic), ['big/ok']);
  });
});
