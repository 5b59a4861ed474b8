// MQTT 5.0 conformance: PINGREQ / PINGRESP (§3.12–3.13) and DISCONNECT (§3.14).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startBroker } from '../../helpers/broker.js';
import {
  brokerTime,
  client,
  connect,
  decodeConnack,
  decodeDisconnect,
  disconnect,
  type Disconnect,
  hex,
  lasting,
  P,
  peer,
  Peer,
  pingreq,
  prop,
  propOf,
  publish,
  REASONS,
  subOpts,
  subscribe,
  T,
  uniqueId,
  until,
  useBroker,
  watcher,
} from './helpers.js';

describe('MQTT 5.0 §3.12 PINGREQ', () => {
  const broker = useBroker();

  it('[MQTT-3.12.4-1] answers every PINGREQ with a PINGRESP', async () => {
    const c = await client(broker());
    c.send(pingreq(), pingreq(), pingreq());
    for (let i = 0; i < 3; i++) assert.deepEqual([...(await c.next(T.PINGRESP)).raw], [0xd0, 0x00]);
    c.send(pingreq());
    await c.next(T.PINGRESP);
  });

  it('[MQTT-4.13.1-1] §3.12: a PINGREQ with a body is malformed: DISCONNECT 0x81', async () => {
    const c = await client(broker());
    c.send([0xc0, 0x01, 0x00]);
    await c.expectDisconnect(0x81);
  });
});

describe('MQTT 5.0 §3.14 DISCONNECT', () => {
  const broker = useBroker();

  it('[MQTT-3.14.0-1] sends no DISCONNECT to a connection that has not received a successful CONNACK', async () => {
    const b = broker();
    const cases: Buffer[][] = [
      [connect({ extraFlags: 0x01 })], // malformed CONNECT
      [connect({ will: { topic: 'w/#' } })], // refused CONNECT
      [pingreq()], // not a CONNECT first
      [publish({ topic: 't' })],
      [connect({ props: [prop.receiveMaximum(0)] }), pingreq()],
    ];
    for (const packets of cases) {
      const c = await peer(b);
      c.send(...packets);
      await c.expectClosed();
      assert.ok(c.log.every((f) => f.type === T.CONNACK), `sent ${c.log.map((f) => f.type)}`);
      for (const f of c.log) assert.ok(decodeConnack(f).reason >= 0x80);
    }
  });

  it('[MQTT-3.14.0-1] sends no DISCONNECT to a connection without CONNACK when the server shuts down', async () => {
    const other = await startBroker();
    const early = (await other.raw(Peer)).version(5);
    const connected = (await other.raw(Peer)).version(5);
    connected.send(connect());
    await connected.next(T.CONNACK);
    early.send(connect().subarray(0, 5)); // a CONNECT still incomplete
    await until(() => other.broker.metrics.bytesReceived >= connect().length + 5, 'the broker to read the start of the CONNECT');
    await other.server.close();
    await early.expectClosed();
    await connected.expectClosed();
    assert.deepEqual(early.log, []);
    assert.equal(decodeDisconnect(connected.log.find((f) => f.type === T.DISCONNECT)!).reason, 0x8b);
    await other.close();
  });

  it('[MQTT-3.14.1-1] treats a DISCONNECT with reserved flags set as malformed: DISCONNECT 0x81, and the will is published', async () => {
    const b = broker();
    const w = await watcher(b, 'will/flags');
    const c = await client(b, { will: { topic: 'will/flags', payload: 'not a normal disconnect' } });
    c.send([0xe1, 0x00]);
    await c.expectDisconnect(0x81);
    assert.equal((await w.publishFrame()).payload.toString(), 'not a normal disconnect');
  });

  it('[MQTT-3.14.2-1] [MQTT-3.14.2-2] sends only DISCONNECT Reason Codes, and never a Session Expiry Interval', async () => {
    const b = broker();
    const seen: Disconnect[] = [];
    const provoke = async (o: Parameters<typeof client>[1], bad: Buffer | null): Promise<void> => {
      const c = await client(b, o);
      if (bad) c.send(bad);
      else await client(b, { clientId: (o as { clientId: string }).clientId }); // takeover
      seen.push(await c.expectDisconnect(REASONS.DISCONNECT));
    };
    await provoke(lasting(uniqueId(), 30), null);
    await provoke(lasting(uniqueId(), 30), Buffer.from([0x30, 3, 0, 1, 0x23])); // topic "#" and no Property Length
    await provoke(lasting(uniqueId(), 30), publish({ topic: 'a/+' }));
    await provoke(lasting(uniqueId(), 30), publish({ topic: 't', props: [prop.topicAlias(0)] }));
    await provoke(lasting(uniqueId(), 30), publish({ topic: '', props: [prop.topicAlias(9)] }));
    await provoke(lasting(uniqueId(), 30), connect());
    await provoke({ props: [prop.sessionExpiry(0)] }, disconnect(0, [prop.sessionExpiry(5)]));
    await provoke(lasting(uniqueId(), 30), Buffer.from([0x00, 0x00]));
    for (const d of seen) {
      assert.ok((REASONS.DISCONNECT as readonly number[]).includes(d.reason), `DISCONNECT ${hex(d.reason)}`);
      assert.equal(propOf(d.props, P.SessionExpiryInterval), undefined, 'no Session Expiry Interval from the server');
    }
    assert.ok(seen.some((d) => d.reason === 0x8e));
  });

  it('[MQTT-3.14.2-3] [MQTT-3.14.2-4] sends no DISCONNECT larger than the client Maximum Packet Size', async () => {
    const b = broker();
    for (const bad of [publish({ topic: 't', props: [prop.contentType('a'), prop.contentType('b')] }), publish({ topic: 'a/#' }), Buffer.from([0xe2, 0])]) {
      const c = await client(b, { props: [prop.maximumPacketSize(24)] });
      c.send(bad);
      await c.expectClosed();
      assert.ok(c.log.every((f) => f.raw.length <= 24), `sizes ${c.log.map((f) => `${f.type}:${f.raw.length}`)}`);
      const d = c.log.find((f) => f.type === T.DISCONNECT);
      assert.ok(d, 'a DISCONNECT without its Reason String still fits');
      assert.ok(decodeDisconnect(d).reason >= 0x80);
    }
  });

  it('[MQTT-3.14.4-1] sends nothing after its DISCONNECT, although more input and messages were pending', async () => {
    const b = broker();
    const c = await client(b);
    await c.sub('after/#', subOpts(0));
    const pub = await client(b);
    // One write: a message for itself, a protocol error, then packets that would each get an answer.
    c.send(publish({ topic: 'after/own', payload: 'x' }), publish({ topic: 'x', props: [prop.topicAlias(0)] }), pingreq(), subscribe(5, [['z', 0]]));
    for (let i = 0; i < 10; i++) pub.send(publish({ topic: 'after/other', payload: String(i) }));
    await c.expectDisconnect([0x82, 0x94]);
    c.assertNothingAfter(T.DISCONNECT);
    assert.equal(c.log.filter((f) => f.type === T.PINGRESP).length, 0, 'no PINGRESP');
    assert.equal(c.log.filter((f) => f.type === T.SUBACK).length, 1, 'only the SUBACK of the first SUBSCRIBE');
  });

  it('[MQTT-3.14.4-1] sends nothing more to a connection taken over with DISCONNECT 0x8E', async () => {
    const b = broker();
    const first = await client(b, lasting('taken'));
    await first.sub('flow/t', subOpts(1));
    const pub = await client(b);
    const id = setInterval(() => pub.send(publish({ topic: 'flow/t', qos: 1, id: 1 + (Date.now() % 60000) })), 5);
    try {
      await first.next(T.PUBLISH);
      await client(b, lasting('taken'));
      await first.expectDisconnect(0x8e);
      first.assertNothingAfter(T.DISCONNECT);
    } finally {
      clearInterval(id);
    }
  });

  it('[MQTT-3.14.4-1] processes nothing a client sends after its DISCONNECT', async () => {
    const b = broker();
    const c = await client(b);
    c.send(disconnect(0), publish({ topic: 'late/t', payload: 'must not be retained', retain: true, qos: 1, id: 1 }), pingreq());
    await c.expectClosed();
    assert.deepEqual(c.log.map((f) => f.type), [T.CONNACK]);
    const check = await client(b);
    await check.sub('late/#');
    await check.none(T.PUBLISH);
  });

  it('[MQTT-3.14.4-2] closes the network connection after every DISCONNECT it sends', async () => {
    const b = broker();
    const first = await client(b, { clientId: 'closer' });
    await client(b, { clientId: 'closer' });
    await first.expectDisconnect(0x8e);
    const bad = await client(b);
    bad.send([0xc0, 0x01, 0x00]);
    await bad.expectDisconnect(0x81);
  });

  it('[MQTT-3.14.4-3] discards the will on DISCONNECT 0x00 (also when the reason code is omitted)', async () => {
    const b = broker();
    const w = await watcher(b, 'will/dc/#');
    const a = await client(b, { will: { topic: 'will/dc/a', payload: 'no' } });
    a.send(disconnect(0x00));
    const short = await client(b, { will: { topic: 'will/dc/b', payload: 'no' } });
    short.send([0xe0, 0x00]);
    const withProps = await client(b, { will: { topic: 'will/dc/c', payload: 'no' } });
    withProps.send(disconnect(0x00, [prop.reasonString('bye'), prop.user('k', 'v')]));
    await Promise.all([a.expectClosed(), short.expectClosed(), withProps.expectClosed()]);
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.14.4-3] keeps (and publishes) the will on DISCONNECT 0x04 and on error reason codes', async () => {
    const b = broker();
    const w = await watcher(b, 'will/keep/#');
    for (const reason of [0x04, 0x80, 0x83]) {
      const c = await client(b, { will: { topic: `will/keep/${hex(reason)}`, payload: 'yes' } });
      c.send(disconnect(reason));
      await c.expectClosed();
      assert.equal((await w.publishFrame()).topic, `will/keep/${hex(reason)}`);
    }
  });

  it('[MQTT-4.13.1-1] §3.14.2.2.2: a non-zero Session Expiry Interval on DISCONNECT after 0 on CONNECT is a Protocol Error: DISCONNECT 0x82, will published', async () => {
    const b = broker();
    const w = await watcher(b, 'will/sei');
    const c = await client(b, { props: [prop.sessionExpiry(0)], will: { topic: 'will/sei', payload: 'invalid DISCONNECT' } });
    c.send(disconnect(0, [prop.sessionExpiry(30)]));
    await c.expectDisconnect(0x82);
    assert.equal((await w.publishFrame()).payload.toString(), 'invalid DISCONNECT');
  });

  it('[MQTT-4.1.0-2] §3.14.2.2.2: a Session Expiry Interval of 0 on DISCONNECT ends the session with the connection', async () => {
    const b = broker();
    const id = uniqueId();
    const c = await client(b, lasting(id, 60));
    await c.sub('sei/t', subOpts(1));
    c.send(disconnect(0, [prop.sessionExpiry(0)]));
    await c.expectClosed();
    await c.released();
    const again = await client(b, lasting(id, 60));
    assert.equal(again.connack.sessionPresent, false);
  });

  it('[MQTT-3.1.2-23] §3.14.2.2.2: a Session Expiry Interval set on DISCONNECT keeps the session', async () => {
    const b = broker();
    const id = uniqueId();
    const c = await client(b, lasting(id, 1));
    await c.sub('sei2/t', subOpts(1));
    c.send(disconnect(0, [prop.sessionExpiry(60)]));
    await c.expectClosed();
    await c.released();
    await (await brokerTime(b, 1))();
    const again = await client(b, lasting(id, 60));
    assert.equal(again.connack.sessionPresent, true);
  });
});

