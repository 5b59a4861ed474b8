// MQTT 5.0 conformance: statements that bind the client, seen from the server. Each test sends what
// the statement forbids and checks the reaction the specification gives the server: a CONNECT that
// does not match §3.1 is refused (CONNACK 0x81) and closed [MQTT-3.1.4-1]; a Malformed Packet or
// Protocol Error after CONNACK closes the connection with DISCONNECT 0x81 / 0x82 or the specific
// reason code (§4.13); an invalid topic filter fails in SUBACK / UNSUBACK (§3.9.3, §3.11.3).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ack,
  auth,
  bin,
  client,
  connect,
  decodeConnack,
  decodeSubAck,
  disconnect,
  hex,
  P,
  packet,
  type Peer,
  peer,
  pingreq,
  prop,
  propOf,
  props,
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
import type { Part } from '../../helpers/wire.js';
import { type TestBroker } from '../../helpers/broker.js';

const ILL_FORMED = Uint8Array.from([0x61, 0xed, 0xa0, 0x80]); // "a" and the surrogate U+D800

/** CONNECT `p` with its body (after the fixed header) changed by `edit`. */
function rebody(p: Buffer, edit: (body: number[]) => number[]): Buffer {
  let i = 1;
  while (p[i]! & 0x80) i++;
  return packet(0x10, edit([...p.subarray(i + 1)]));
}

/** A 5.0 CONNECT body built field by field, in the order given. */
const connectBody = (flags: number, ...payload: Part[]): Buffer => packet(0x10, str('MQTT'), [5, flags], u16(0), props(), ...payload);

/** The CONNECT was refused as malformed: CONNACK 0x81, Session Present 0, nothing else, closed. */
async function expectMalformedConnect(b: TestBroker, bytes: Buffer): Promise<void> {
  const c = await peer(b);
  c.send(bytes);
  const ack = decodeConnack(await c.next(T.CONNACK));
  assert.equal(ack.reason, 0x81, `CONNACK ${hex(ack.reason)}`);
  assert.equal(ack.sessionPresent, false);
  await c.expectClosed();
  assert.deepEqual(c.log.map((f) => f.type), [T.CONNACK]);
  c.checkWire();
}

/** Topics of the PUBLISHes that came before the answer to a PINGREQ sent now. */
async function topicsOf(c: Peer): Promise<string[]> {
  return (await c.publishes()).map((m) => m.topic);
}

describe('MQTT 5.0 client rules on CONNECT, seen from the server (§3.1)', () => {
  const broker = useBroker();

  it('[MQTT-3.1.0-1] closes a connection whose first packet is not CONNECT, sending nothing (no CONNACK, no DISCONNECT) and processing nothing', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('first/#', subOpts(1));
    const firsts: [string, Buffer][] = [
      ['PUBLISH', publish({ topic: 'first/t', qos: 1, id: 1, retain: true })],
      ['SUBSCRIBE', subscribe(1, [['first/#', 0]])],
      ['PINGREQ', pingreq()],
      ['AUTH', auth(0x18, [prop.authMethod('SCRAM-SHA-256')])],
      ['DISCONNECT', disconnect(0x00)],
    ];
    for (const [what, bytes] of firsts) {
      const c = await peer(b);
      c.send(bytes, connect());
      await c.expectClosed();
      assert.deepEqual(c.log, [], `answered a first ${what}`);
    }
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.1.2-9] refuses a CONNECT with the Will Flag but without Will Properties, Topic and Payload: CONNACK 0x81', async () => {
    await expectMalformedConnect(broker(), connect({ extraFlags: 0x04 }));
  });

  it('[MQTT-3.1.2-9] refuses a CONNECT with the Will Flag whose Will Payload is missing: CONNACK 0x81', async () => {
    await expectMalformedConnect(broker(), connectBody(0x06, str(uniqueId()), props(), str('will/t')));
  });

  it('[MQTT-3.1.2-11] refuses a CONNECT with Will QoS 1 or 2 but no Will Flag: CONNACK 0x81', async () => {
    const b = broker();
    await expectMalformedConnect(b, connect({ extraFlags: 0x08 }));
    await expectMalformedConnect(b, connect({ extraFlags: 0x10 }));
  });

  it('[MQTT-3.1.2-12] refuses a CONNECT with Will QoS 3 (a Malformed Packet): CONNACK 0x81', async () => {
    await expectMalformedConnect(broker(), connect({ will: { topic: 'will/t', qos: 3 } }));
  });

  it('[MQTT-3.1.2-13] refuses a CONNECT with Will Retain but no Will Flag: CONNACK 0x81', async () => {
    await expectMalformedConnect(broker(), connect({ extraFlags: 0x20 }));
  });

  it('[MQTT-3.1.2-16] refuses a CONNECT carrying a User Name without the User Name Flag (bytes beyond the payload): CONNACK 0x81', async () => {
    await expectMalformedConnect(broker(), rebody(connect(), (body) => [...body, ...str('someone')]));
  });

  it('[MQTT-3.1.2-17] refuses a CONNECT with the User Name Flag but no User Name: CONNACK 0x81', async () => {
    await expectMalformedConnect(broker(), connect({ extraFlags: 0x80 }));
  });

  it('[MQTT-3.1.2-18] refuses a CONNECT carrying a Password without the Password Flag (bytes beyond the payload): CONNACK 0x81', async () => {
    await expectMalformedConnect(broker(), rebody(connect({ username: 'u' }), (body) => [...body, ...bin(Uint8Array.from([1, 2, 3]))]));
  });

  it('[MQTT-3.1.2-19] refuses a CONNECT with the Password Flag but no Password: CONNACK 0x81', async () => {
    const b = broker();
    await expectMalformedConnect(b, connect({ extraFlags: 0x40 }));
    await expectMalformedConnect(b, connect({ username: 'u', extraFlags: 0x40 }));
  });

  it('[MQTT-3.1.3-1] refuses a CONNECT whose payload fields are out of order (Will Topic before Will Properties): CONNACK 0x81', async () => {
    await expectMalformedConnect(broker(), connectBody(0x06, str(uniqueId()), str('will/topic'), props(), bin(Uint8Array.from([1]))));
  });

  it('[MQTT-3.1.3-3] refuses a CONNECT without a Client Identifier: CONNACK 0x81', async () => {
    await expectMalformedConnect(broker(), connectBody(0x02));
  });

  it('[MQTT-3.1.3-11] refuses a CONNECT whose Will Topic is not a UTF-8 Encoded String (ill-formed, or with U+0000): CONNACK 0x81', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('#', subOpts(0));
    await expectMalformedConnect(b, connect({ will: { topic: ILL_FORMED, payload: 'x' } }));
    await expectMalformedConnect(b, connect({ will: { topic: Uint8Array.from([0x61, 0x00, 0x62]), payload: 'x' } }));
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.1.3-12] refuses a CONNECT whose User Name is not a UTF-8 Encoded String (ill-formed, or with U+0000): CONNACK 0x81', async () => {
    const b = broker();
    await expectMalformedConnect(b, rebody(connect({ extraFlags: 0x80 }), (body) => [...body, ...str(ILL_FORMED)]));
    await expectMalformedConnect(b, rebody(connect({ extraFlags: 0x80 }), (body) => [...body, ...str(Uint8Array.from([0x75, 0x00]))]));
  });
});

describe('MQTT 5.0 client rules on packet identifiers, PUBLISH, SUBSCRIBE and UNSUBSCRIBE, seen from the server', () => {
  const broker = useBroker();

  const zeroIds: [string, Buffer][] = [
    ['SUBSCRIBE', subscribe(0, [['zero/#', 1]])],
    ['UNSUBSCRIBE', unsubscribe(0, ['zero/#'])],
    ['QoS 1 PUBLISH', publish({ topic: 'zero/t', qos: 1, id: 0 })],
    ['QoS 2 PUBLISH', publish({ topic: 'zero/t', qos: 2, id: 0 })],
  ];
  for (const [what, bytes] of zeroIds) {
    it(`[MQTT-2.2.1-3] closes the connection on a ${what} with packet identifier 0 (DISCONNECT 0x81 or 0x82), processing nothing`, async () => {
      const b = broker();
      const w = await client(b);
      await w.sub('zero/#', subOpts(1));
      const c = await client(b);
      c.send(bytes);
      await c.expectDisconnect([0x81, 0x82]);
      assert.ok(!c.log.some((f) => [T.SUBACK, T.UNSUBACK, T.PUBACK, T.PUBREC].includes(f.type as never)), 'not acknowledged');
      await w.none(T.PUBLISH);
    });
  }

  it('[MQTT-2.2.1-3] takes a new QoS 2 message under a packet identifier still in use for a re-send: PUBREC again, not delivered', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('inuse/#', subOpts(2));
    const c = await client(b);
    c.send(publish({ topic: 'inuse/first', qos: 2, id: 7, payload: 'first' }));
    assert.equal((await c.ack(T.PUBREC)).id, 7);
    c.send(publish({ topic: 'inuse/second', qos: 2, id: 7, payload: 'second' }));
    assert.equal((await c.ack(T.PUBREC)).id, 7);
    c.send(ack(T.PUBREL, 7));
    await c.ack(T.PUBCOMP);
    assert.deepEqual(await topicsOf(w), ['inuse/first'], 'the second message is not delivered');
  });

  it('[MQTT-3.3.4-6] treats a Subscription Identifier in a client PUBLISH as a Protocol Error: DISCONNECT 0x82, not delivered', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('sid/#', subOpts(1));
    const c = await client(b);
    c.send(publish({ topic: 'sid/t', qos: 1, id: 1, props: [prop.subscriptionId(3)] }));
    await c.expectDisconnect(0x82);
    assert.ok(!c.log.some((f) => f.type === T.PUBACK));
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.10.3-1] treats an UNSUBSCRIBE whose Topic Filter is not well-formed UTF-8 as malformed: DISCONNECT 0x81, the subscription kept until then', async () => {
    const b = broker();
    const c = await client(b);
    await c.sub('keep/#', subOpts(0));
    c.send(unsubscribe(c.nextId(), ['keep/#', ILL_FORMED]));
    await c.expectDisconnect(0x81);
    assert.ok(!c.log.some((f) => f.type === T.UNSUBACK));
  });
});

describe('MQTT 5.0 client rules on topic aliases, seen from the server (topicAliasMaximum 0)', () => {
  const broker = useBroker({ topicAliasMaximum: 0 });

  it('[MQTT-3.2.2-18] announces no Topic Alias Maximum and disconnects a client that sends a Topic Alias anyway: DISCONNECT 0x94', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('noalias/#', subOpts(1));
    const c = await client(b);
    assert.equal(propOf(c.connack.props, P.TopicAliasMaximum) ?? 0, 0);
    c.send(publish({ topic: 'noalias/t', qos: 1, id: 1, props: [prop.topicAlias(1)] }));
    await c.expectDisconnect([0x94, 0x82]);
    await w.none(T.PUBLISH);
  });
});

describe('MQTT 5.0 client rules on topic filters, seen from the server (§4.7.1, §4.8.2)', () => {
  const broker = useBroker();

  /**
   * SUBSCRIBE to `filter` is refused with SUBACK 0x8F (Topic Filter invalid), nothing published to
   * `topics` is delivered, and UNSUBSCRIBE of it is answered 0x8F too; the connection stays open.
   */
  async function expectFilterRefused(b: TestBroker, filter: string, topics: string[]): Promise<void> {
    const c = await client(b);
    const id = c.nextId();
    c.send(subscribe(id, [[filter, 1]]));
    const s = decodeSubAck(await c.next(T.SUBACK));
    assert.deepEqual([s.id, s.codes], [id, [0x8f]], `SUBACK for ${filter}`);
    const pub = await client(b);
    for (const t of topics) await pub.pub(t, 'x', { qos: 1 });
    assert.deepEqual(await topicsOf(c), [], `nothing delivered through ${JSON.stringify(filter)}`);
    c.send(unsubscribe(c.nextId(), [filter]));
    assert.deepEqual(decodeSubAck(await c.next(T.UNSUBACK)).codes, [0x8f], `UNSUBACK for ${filter}`);
    c.assertOpen();
  }

  it('[MQTT-4.7.1-1] refuses topic filters whose "#" is not last or not a whole level: a failure reason code, nothing delivered', async () => {
    const b = broker();
    for (const filter of ['ml/#/x', 'ml/x#', 'ml#', '#/ml']) await expectFilterRefused(b, filter, ['ml/a/x', 'ml/x', 'mlx', 'ml']);
  });

  it('[MQTT-4.7.1-2] refuses topic filters whose "+" does not occupy a whole level: a failure reason code, nothing delivered', async () => {
    const b = broker();
    for (const filter of ['sl+', 'sl/+x', 'sl/x+/y', '+sl']) await expectFilterRefused(b, filter, ['sl', 'sla', 'sl/ax', 'sl/x/y', 'xsl']);
  });

  it('[MQTT-4.8.2-1] refuses a shared subscription with an empty ShareName ("$share//t", "$share/"): a failure reason code', async () => {
    const b = broker();
    for (const filter of ['$share//sh/t', '$share/']) await expectFilterRefused(b, filter, ['sh/t']);
  });

  it('[MQTT-4.8.2-2] refuses a shared subscription whose ShareName holds "+" or "#", or is not followed by "/" and a Topic Filter', async () => {
    const b = broker();
    for (const filter of ['$share/g+/sh/t', '$share/g#/sh/t', '$share/g', '$share/g/']) await expectFilterRefused(b, filter, ['sh/t']);
    // A well-formed one is granted.
    const c = await client(b);
    assert.deepEqual(await c.sub('$share/g/sh/t', subOpts(1)), [1]);
  });
});
