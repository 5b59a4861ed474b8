// MQTT 5.0 conformance: what the server announces in CONNACK and then does with it (§3.1.2.11,
// §3.2.2.3, §4.9–4.11): topic aliases towards the client, Response Information, Request Problem
// Information, Receive Maximum enforcement, the feature-availability flags, server redirection, and
// client identifiers the server rejects.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ack,
  client,
  connect,
  decodeConnack,
  decodeSubAck,
  drop,
  lasting,
  P,
  peer,
  type Peer,
  pingreq,
  prop,
  type PropList,
  propOf,
  publish,
  type Publish,
  subOpts,
  subscribe,
  T,
  tryConnect,
  uniqueId,
  unsubscribe,
  useBroker,
  userProps,
} from './helpers.js';


/** [topic as sent, Topic Alias (0 = none), payload] of each PUBLISH. */
const aliasView = (got: Publish[]): [string, number, string][] => got.map((m) => [m.topic, propOf<number>(m.props, P.TopicAlias) ?? 0, m.payload.toString()]);

/** The refused connection sent only its CONNACK, with Session Present 0, and was closed. */
async function expectOnlyConnack(c: Peer): Promise<void> {
  await c.expectClosed();
  assert.deepEqual(c.log.map((f) => f.type), [T.CONNACK], 'only the CONNACK is sent before closing');
  assert.equal(decodeConnack(c.log[0]!).sessionPresent, false);
  c.checkWire();
}

describe('MQTT 5.0 §3.3.2.3.4 topic aliases from the server to the client', () => {
  const broker = useBroker();

  it('[MQTT-3.1.2-27] sends no Topic Alias to a client whose Topic Alias Maximum is absent or 0', async () => {
    const b = broker();
    for (const props of [[], [prop.topicAliasMaximum(0)]]) {
      const s = await client(b, { props });
      await s.sub('noalias/#', subOpts(1));
      const pub = await client(b);
      for (let i = 0; i < 3; i++) for (const t of ['noalias/a', 'noalias/b']) await pub.pub(t, String(i), { qos: 1 });
      const got = await s.publishes();
      assert.deepEqual(aliasView(got), [
        ['noalias/a', 0, '0'],
        ['noalias/b', 0, '0'],
        ['noalias/a', 0, '1'],
        ['noalias/b', 0, '1'],
        ['noalias/a', 0, '2'],
        ['noalias/b', 0, '2'],
      ]);
      s.checkWire();
    }
  });

  it('[MQTT-3.1.2-26] [MQTT-3.3.2-11] never sends a Topic Alias above the client maximum: aliases 1..max go to the first new topics, then the topic name is sent empty with its alias', async () => {
    const b = broker();
    const s = await client(b, { props: [prop.topicAliasMaximum(2)] });
    await s.sub('ta/#', subOpts(0));
    const pub = await client(b);
    const topics = ['ta/a', 'ta/b', 'ta/c', 'ta/a', 'ta/b', 'ta/c', 'ta/d', 'ta/a', 'ta/b'];
    for (const [i, t] of topics.entries()) await pub.pub(t, String(i), { qos: 1 });
    const got = await s.publishes();
    assert.deepEqual(aliasView(got), [
      ['ta/a', 1, '0'],
      ['ta/b', 2, '1'],
      // Both aliases are taken: new topics go by name only.
      ['ta/c', 0, '2'],
      ['', 1, '3'],
      ['', 2, '4'],
      ['ta/c', 0, '5'],
      ['ta/d', 0, '6'],
      ['', 1, '7'],
      ['', 2, '8'],
    ]);
    for (const m of got) assert.ok((propOf<number>(m.props, P.TopicAlias) ?? 0) <= 2, 'alias within the maximum');
    s.checkWire();
  });

  it('[MQTT-3.3.2-11] applies the maximum of each client on its own, QoS 1 deliveries and retained messages included', async () => {
    const b = broker();
    const one = await client(b, { props: [prop.topicAliasMaximum(1)] });
    const many = await client(b, { props: [prop.topicAliasMaximum(100)] });
    const pub = await client(b);
    await pub.pub('tr/kept', 'retained', { qos: 1, retain: true });
    for (const s of [one, many]) {
      await s.sub('tr/#', subOpts(1));
    }
    for (const t of ['tr/x', 'tr/y', 'tr/x', 'tr/y']) await pub.pub(t, t, { qos: 1 });
    const a = await one.publishes();
    const m = await many.publishes();
    assert.deepEqual(aliasView(a), [
      ['tr/kept', 1, 'retained'],
      ['tr/x', 0, 'tr/x'],
      ['tr/y', 0, 'tr/y'],
      ['tr/x', 0, 'tr/x'],
      ['tr/y', 0, 'tr/y'],
    ]);
    assert.deepEqual(aliasView(m), [
      ['tr/kept', 1, 'retained'],
      ['tr/x', 2, 'tr/x'],
      ['tr/y', 3, 'tr/y'],
      ['', 2, 'tr/x'],
      ['', 3, 'tr/y'],
    ]);
    assert.ok(a.every((p) => p.qos === 1 && p.id > 0));
  });

  it('[MQTT-3.3.2-7] starts every connection without aliases: a topic aliased before, and a message re-sent on reconnection, carry the topic name again', async () => {
    const b = broker();
    const id = uniqueId();
    const s = await client(b, lasting(id, 60, { props: [prop.topicAliasMaximum(5)] }));
    await s.sub('again/#', subOpts(1));
    const pub = await client(b);
    await pub.pub('again/t', 'one', { qos: 1 });
    await pub.pub('again/t', 'two', { qos: 1 });
    const first = await s.publishes();
    assert.deepEqual(aliasView(first), [
      ['again/t', 1, 'one'],
      ['', 1, 'two'],
    ]);
    s.send(ack(T.PUBACK, first[0]!.id)); // "two" stays unacknowledged
    await drop(s);
    const back = await client(b, lasting(id, 60, { clean: false, props: [prop.topicAliasMaximum(5)] }));
    const resent = await back.publishFrame();
    assert.equal(resent.dup, true);
    assert.equal(resent.payload.toString(), 'two');
    assert.equal(resent.topic, 'again/t', 'the re-sent PUBLISH names its topic on the new connection');
    back.send(ack(T.PUBACK, resent.id));
    await pub.pub('again/t', 'three', { qos: 1 });
    const next = await back.publishFrame();
    assert.equal(next.topic, '', 'the alias set by the re-sent PUBLISH is used on this connection');
    assert.equal(propOf(next.props, P.TopicAlias), propOf(resent.props, P.TopicAlias));
  });
});

describe('MQTT 5.0 §3.1.2.11.6 Request Response Information', () => {
  const broker = useBroker();

  it('[MQTT-3.1.2-28] returns Response Information only when Request Response Information is 1', async () => {
    const b = broker();
    const absent = await client(b);
    assert.equal(propOf(absent.connack.props, P.ResponseInformation), undefined);
    const zero = await client(b, { props: [prop.requestResponseInformation(0)] });
    assert.equal(propOf(zero.connack.props, P.ResponseInformation), undefined);
    const asked = await client(b, { clientId: 'asker', props: [prop.requestResponseInformation(1)] });
    assert.equal(propOf(asked.connack.props, P.ResponseInformation), 'response/asker/');
    const assigned = await client(b, { clientId: '', props: [prop.requestResponseInformation(1)] });
    const clientId = propOf<string>(assigned.connack.props, P.AssignedClientIdentifier)!;
    assert.equal(propOf(assigned.connack.props, P.ResponseInformation), `response/${clientId}/`);
  });

  it('[MQTT-3.1.2-28] sends no Response Information when the request is 0, also on a resumed session', async () => {
    const b = broker();
    const id = uniqueId();
    const first = await client(b, lasting(id, 60, { props: [prop.requestResponseInformation(1)] }));
    assert.ok(propOf(first.connack.props, P.ResponseInformation));
    await drop(first);
    const again = await client(b, lasting(id, 60, { clean: false, props: [prop.requestResponseInformation(0)] }));
    assert.equal(again.connack.sessionPresent, true);
    assert.equal(propOf(again.connack.props, P.ResponseInformation), undefined);
  });
});

describe('MQTT 5.0 §3.1.2.11.7 Request Problem Information (authorization refusing "secret/…")', () => {
  const broker = useBroker({
    authorizePublish: (_client, topic) => !topic.startsWith('secret/'),
    authorizeSubscribe: (_client, filter) => !filter.startsWith('secret/'),
  });

  /** A client with Request Problem Information `rpi` (undefined: the property is left out). */
  const withRpi = (b: Parameters<typeof client>[0], rpi?: number): ReturnType<typeof client> =>
    client(b, { props: rpi === undefined ? [] : [prop.requestProblemInformation(rpi)] });

  /** Refusals that carry a Reason String when problem information is wanted: [what, props of the answer, reason code]. */
  async function refusals(c: Peer): Promise<[string, PropList, number][]> {
    const out: [string, PropList, number][] = [];
    c.send(subscribe(1, [['a/#/b', 1], ['secret/s', 1]]));
    const suback = decodeSubAck(await c.next(T.SUBACK));
    assert.deepEqual(suback.codes, [0x8f, 0x87]);
    out.push(['SUBACK', suback.props, suback.codes[0]!]);
    c.send(publish({ topic: 'rpi/bad', qos: 1, id: 2, payload: [0xff, 0xfe], props: [prop.payloadFormat(1)] }));
    const puback = await c.ack(T.PUBACK);
    out.push(['PUBACK', puback.props, puback.reason]);
    c.send(publish({ topic: 'secret/p', qos: 2, id: 3 }));
    const pubrec = await c.ack(T.PUBREC);
    out.push(['PUBREC', pubrec.props, pubrec.reason]);
    c.send(ack(T.PUBREL, 99));
    const pubcomp = await c.ack(T.PUBCOMP);
    out.push(['PUBCOMP', pubcomp.props, pubcomp.reason]);
    c.send(unsubscribe(4, ['never/subscribed']));
    const unsuback = decodeSubAck(await c.next(T.UNSUBACK));
    out.push(['UNSUBACK', unsuback.props, unsuback.codes[0]!]);
    return out;
  }

  it('[MQTT-3.1.2-29] with Request Problem Information 0 sends no Reason String or User Property on SUBACK, PUBACK, PUBREC, PUBCOMP or UNSUBACK', async () => {
    const c = await withRpi(broker(), 0);
    const got = await refusals(c);
    assert.deepEqual(
      got.map(([what, props, reason]) => [what, reason, props.filter(([id]) => id === P.ReasonString || id === P.UserProperty)]),
      [
        ['SUBACK', 0x8f, []],
        ['PUBACK', 0x99, []],
        ['PUBREC', 0x87, []],
        ['PUBCOMP', 0x92, []],
        ['UNSUBACK', 0x11, []],
      ],
    );
    c.assertOpen();
    c.checkWire();
  });

  it('[MQTT-3.1.2-29] with Request Problem Information 1 (or absent) the same refusals carry a Reason String', async () => {
    const b = broker();
    for (const rpi of [1, undefined]) {
      const c = await withRpi(b, rpi);
      const got = await refusals(c);
      for (const [what, props, reason] of got.slice(0, 3)) {
        assert.equal(typeof propOf(props, P.ReasonString), 'string', `${what} ${reason.toString(16)} says why`);
      }
    }
  });

  it('[MQTT-3.1.2-29] still forwards User Properties on PUBLISH to a client with Request Problem Information 0', async () => {
    const b = broker();
    const s = await withRpi(b, 0);
    await s.sub('rpi/t', subOpts(1));
    const pub = await client(b);
    await pub.pub('rpi/t', 'x', { qos: 1, props: [prop.user('k', 'v')] });
    const m = await s.publishFrame();
    assert.deepEqual(userProps(m.props), [['k', 'v']]);
  });
});

describe('MQTT 5.0 §3.3.4 Receive Maximum of the server (receiveMaximum 2)', () => {
  const broker = useBroker({ receiveMaximum: 2 });

  it('[MQTT-3.3.4-7] [MQTT-4.9.0-2] disconnects with 0x93 a client that sends more unacknowledged QoS 2 PUBLISHes than the Receive Maximum, delivering only those within it', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('rm/#', subOpts(2));
    const c = await client(b);
    assert.equal(propOf(c.connack.props, P.ReceiveMaximum), 2);
    c.send(publish({ topic: 'rm/1', qos: 2, id: 1 }), publish({ topic: 'rm/2', qos: 2, id: 2 }));
    assert.deepEqual([(await c.ack(T.PUBREC)).id, (await c.ack(T.PUBREC)).id], [1, 2]);
    // Neither is released (no PUBREL): a third one exceeds the Receive Maximum.
    c.send(publish({ topic: 'rm/3', qos: 2, id: 3 }));
    await c.expectDisconnect(0x93);
    assert.deepEqual((await w.publishes()).map((m) => m.topic), ['rm/1', 'rm/2']);
  });

  it('[MQTT-3.3.4-7] counts a QoS 2 PUBLISH until PUBCOMP, and a re-sent PUBLISH only once', async () => {
    const b = broker();
    const c = await client(b);
    c.send(publish({ topic: 'rm/a', qos: 2, id: 1 }), publish({ topic: 'rm/b', qos: 2, id: 2 }));
    await c.ack(T.PUBREC);
    await c.ack(T.PUBREC);
    c.send(publish({ topic: 'rm/b', qos: 2, id: 2, dup: true }));
    assert.equal((await c.ack(T.PUBREC)).id, 2, 'a re-sent PUBLISH is acknowledged again, not counted again');
    c.send(ack(T.PUBREL, 1));
    assert.equal((await c.ack(T.PUBCOMP)).id, 1);
    c.send(publish({ topic: 'rm/c', qos: 2, id: 3 }));
    assert.equal((await c.ack(T.PUBREC)).id, 3, 'the quota freed by PUBCOMP is usable');
    c.assertOpen();
  });

  it('[MQTT-3.3.4-7] counts a QoS 1 PUBLISH until its PUBACK: a client that keeps within the Receive Maximum is never refused', async () => {
    const c = await client(broker());
    for (let round = 0; round < 3; round++) {
      const ids = [2 * round + 1, 2 * round + 2];
      c.send(...ids.map((id) => publish({ topic: 'rm/q1', qos: 1, id })));
      assert.deepEqual([(await c.ack(T.PUBACK)).id, (await c.ack(T.PUBACK)).id], ids);
    }
    c.send(publish({ topic: 'rm/q1', qos: 1, id: 7 }), publish({ topic: 'rm/q2', qos: 2, id: 8 }));
    await c.ack(T.PUBACK);
    await c.ack(T.PUBREC);
    c.assertOpen();
  });
});

describe('MQTT 5.0 §3.2.2.3.11–13 features the server does not offer (wildcard, shared subscriptions, subscription identifiers off)', () => {
  const broker = useBroker({ wildcardSubscriptions: false, sharedSubscriptions: false, subscriptionIdentifiers: false });

  it('[MQTT-3.8.4-7] [MQTT-3.9.3-2] announces Wildcard / Shared Subscription Available 0 and fails such filters with SUBACK 0xA2 / 0x9E', async () => {
    const b = broker();
    const c = await client(b);
    assert.equal(propOf(c.connack.props, P.WildcardSubscriptionAvailable), 0);
    assert.equal(propOf(c.connack.props, P.SharedSubscriptionAvailable), 0);
    assert.equal(propOf(c.connack.props, P.SubscriptionIdentifierAvailable), 0);
    const codes = await c.sub([
      ['fa/+', 1],
      ['fa/#', 1],
      ['#', 0],
      ['$share/g/fa/t', 1],
      ['$share/g/fa/+', 1],
      ['fa/t', 1],
    ]);
    assert.deepEqual(codes, [0xa2, 0xa2, 0xa2, 0x9e, 0x9e, 0x01]);
    const pub = await client(b);
    await pub.pub('fa/t', 'once', { qos: 1 });
    await pub.pub('fa/u', 'never', { qos: 1 });
    assert.deepEqual((await c.publishes()).map((m) => m.payload.toString()), ['once'], 'only the granted subscription delivers');
    c.assertOpen();
  });

  it('[MQTT-4.13.1-1] §3.2.2.3.12: disconnects a client that sends a Subscription Identifier when they are not available: DISCONNECT 0xA1', async () => {
    const b = broker();
    const c = await client(b);
    c.send(subscribe(1, [['si/t', 1]], [prop.subscriptionId(7)]));
    await c.expectDisconnect(0xa1);
    assert.equal(c.log.filter((f) => f.type === T.SUBACK).length, 0);
    const pub = await client(b);
    await pub.pub('si/t', 'x', { qos: 1 });
    pub.assertOpen();
  });
});

describe('MQTT 5.0 §4.11 server redirection (redirect: use another server)', () => {
  const broker = useBroker({ redirect: { serverReference: 'other.example:1883', permanent: false } });

  it('[MQTT-3.2.2-6] [MQTT-3.2.2-7] [MQTT-3.2.2-8] answers CONNECT with CONNACK 0x9C and a Server Reference, Session Present 0, then closes', async () => {
    const b = broker();
    for (const o of [{}, lasting(uniqueId())]) {
      const { c, ack: connack } = await tryConnect(b, o);
      assert.equal(connack.reason, 0x9c);
      assert.equal(propOf(connack.props, P.ServerReference), 'other.example:1883');
      await expectOnlyConnack(c);
    }
  });

  it('[MQTT-4.13.2-1] [MQTT-3.1.4-6] closes the connection after the redirecting CONNACK, processing nothing sent after the CONNECT', async () => {
    const b = broker();
    const c = await peer(b);
    c.send(connect({ will: { topic: 'w', payload: 'x' } }), subscribe(1, [['after/#', 1]]), publish({ topic: 'after/t', qos: 1, id: 2 }), pingreq());
    assert.equal(decodeConnack(await c.next(T.CONNACK)).reason, 0x9c);
    await expectOnlyConnack(c);
  });
});

describe('MQTT 5.0 §4.11 server redirection (redirect: server moved)', () => {
  const broker = useBroker({ redirect: { serverReference: 'new.example', permanent: true } });

  it('[MQTT-3.2.2-7] [MQTT-3.2.2-8] answers CONNECT with CONNACK 0x9D Server moved and a Server Reference, then closes', async () => {
    const { c, ack: connack } = await tryConnect(broker());
    assert.equal(connack.reason, 0x9d);
    assert.equal(propOf(connack.props, P.ServerReference), 'new.example');
    await expectOnlyConnack(c);
  });
});

describe('MQTT 5.0 §3.1.3.1 client identifiers the server rejects (an authenticate hook refusing "rejected…" with 0x85)', () => {
  const broker = useBroker({
    authenticate: ({ clientId }) => (clientId.startsWith('rejected') ? { reason: 0x85, message: 'client identifier not valid here' } : true),
  });

  it('[MQTT-3.1.3-8] answers a client identifier it rejects with CONNACK 0x85 and closes the connection', async () => {
    const b = broker();
    const { c, ack: connack } = await tryConnect(b, { clientId: 'rejected-1' });
    assert.equal(connack.reason, 0x85);
    await expectOnlyConnack(c);
    const ok = await client(b, { clientId: 'accepted-1' });
    assert.equal(ok.connack.reason, 0);
  });
});
