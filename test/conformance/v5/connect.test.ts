// MQTT 5.0 conformance: CONNECT (§3.1) and CONNACK (§3.2), sessions and wills as CONNECT sets them up.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ack as ackPacket,
  brokerTime,
  client,
  connect,
  decodeConnack,
  drop,
  hex,
  lasting,
  leave,
  P,
  pace,
  type Peer,
  peer,
  pingreq,
  prop,
  propOf,
  publish,
  REASONS,
  subOpts,
  subscribe,
  T,
  tryConnect,
  uniqueId,
  useBroker,
  userProps,
  watcher,
} from './helpers.js';

/** A subscriber that sees the RETAIN flag as published (Retain As Published). */
/** The CONNACK refused the connection: reason ≥ 0x80, Session Present 0, nothing else sent, closed. */
async function expectRefused(c: Peer, ackReason: number): Promise<void> {
  assert.ok(ackReason >= 0x80, `CONNACK reason ${hex(ackReason)} should refuse`);
  await c.expectClosed();
  assert.deepEqual(c.log.map((f) => f.type), [T.CONNACK], 'only the CONNACK is sent before closing');
  assert.equal(decodeConnack(c.log[0]!).sessionPresent, false);
}

describe('MQTT 5.0 §3.1 CONNECT', () => {
  const broker = useBroker();

  it('[MQTT-3.1.0-2] treats a second CONNECT as a Protocol Error: DISCONNECT 0x82 and close', async () => {
    const c = await client(broker());
    c.send(connect());
    await c.expectDisconnect(0x82);
  });

  // An unknown name is a Protocol Error, answered in the 5.0 form the level asks for (0x82); the 3.1
  // name with level 5 is a version this broker does not speak, answered in the 3.1 form (0x01).
  for (const [name, code] of [['MQTX', 0x82], ['mqtt', 0x82], ['MQIsdp', 0x01]] as const) {
    it(`[MQTT-3.1.2-1] closes a level-5 CONNECT whose protocol name is "${name}" after a CONNACK refusing it (${hex(code)})`, async () => {
      const c = await peer(broker());
      c.send(connect({ protocolName: name }));
      await c.expectClosed();
      assert.deepEqual(c.log.map((f) => [f.type, f.body[1]]), [[T.CONNACK, code]], 'one refusing CONNACK, then the close');
    });
  }

  for (const level of [6, 0, 255]) {
    it(`[MQTT-3.1.2-2] refuses protocol level ${level}: at most one refusing CONNACK, then close`, async () => {
      const c = await peer(broker());
      c.send(connect({ level }));
      await c.expectClosed();
      // 0x01 in the 3.1.1 form, the one a client of an unknown level may understand.
      assert.deepEqual(c.log.map((f) => [...f.raw]), [[0x20, 2, 0, 0x01]], 'one CONNACK 0x01 (3.1.1 form), then the close');
    });
  }

  it('[MQTT-3.1.2-3] treats the reserved connect flag set to 1 as malformed: CONNACK 0x81 and close, no session created', async () => {
    const b = broker();
    const c = await peer(b);
    c.send(connect({ ...lasting('reserved-flag'), extraFlags: 0x01 }));
    const ack = decodeConnack(await c.next(T.CONNACK));
    assert.equal(ack.reason, 0x81);
    await expectRefused(c, ack.reason);
    const again = await client(b, lasting('reserved-flag'));
    assert.equal(again.connack.sessionPresent, false);
  });

  it('[MQTT-3.1.2-4] discards the existing session on Clean Start 1: subscriptions and queued messages are gone', async () => {
    const b = broker();
    const s = await client(b, lasting('clean-1'));
    await s.sub('clean/1', subOpts(1));
    await drop(s);
    const pub = await client(b);
    await pub.pub('clean/1', 'queued while away', { qos: 1 });
    const again = await client(b, { ...lasting('clean-1'), clean: true });
    assert.equal(again.connack.sessionPresent, false);
    await pub.pub('clean/1', 'after', { qos: 1 });
    await again.none(T.PUBLISH);
  });

  it('[MQTT-3.1.2-5] resumes the existing session on Clean Start 0: queued messages and subscriptions carry on', async () => {
    const b = broker();
    const s = await client(b, lasting('resume-1'));
    await s.sub('resume/1', subOpts(1));
    await drop(s);
    const pub = await client(b);
    await pub.pub('resume/1', 'queued', { qos: 1 });
    const again = await client(b, lasting('resume-1'));
    assert.equal(again.connack.sessionPresent, true);
    assert.equal((await again.publishFrame()).payload.toString(), 'queued');
    await pub.pub('resume/1', 'live', { qos: 1 });
    assert.equal((await again.publishFrame()).payload.toString(), 'live');
  });

  it('[MQTT-3.1.2-6] creates a new session on Clean Start 0 when none exists', async () => {
    const b = broker();
    const s = await client(b, lasting('new-1'));
    assert.equal(s.connack.sessionPresent, false);
    await s.sub('new/1', subOpts(1));
    await leave(s);
    const again = await client(b, lasting('new-1'));
    assert.equal(again.connack.sessionPresent, true, 'the session created by the first CONNECT was kept');
  });

  it('[MQTT-3.1.2-7] stores the Will Message and publishes it when the network connection fails', async () => {
    const b = broker();
    const w = await watcher(b, 'will/7');
    const c = await client(b, { will: { topic: 'will/7', payload: 'gone', qos: 1 } });
    await w.none(T.PUBLISH);
    c.destroy();
    const m = await w.publishFrame();
    assert.equal(m.payload.toString(), 'gone');
  });

  it('[MQTT-3.1.2-8] publishes the will only once the Will Delay Interval has elapsed', async () => {
    const b = broker();
    const w = await watcher(b, 'will/delay');
    const c = await client(b, lasting(uniqueId(), 60, { will: { topic: 'will/delay', payload: 'late', props: [prop.willDelay(1)] } }));
    const start = Date.now();
    c.destroy();
    await w.none(T.PUBLISH);
    const m = await w.publishFrame(1500);
    assert.equal(m.payload.toString(), 'late');
    assert.ok(Date.now() - start >= 950, `will after ${Date.now() - start} ms`);
  });

  it('[MQTT-3.1.2-8] publishes the will when the session ends before the Will Delay Interval', async () => {
    const b = broker();
    const w = await watcher(b, 'will/session-end');
    const c = await client(b, lasting(uniqueId(), 1, { will: { topic: 'will/session-end', payload: 'ended', props: [prop.willDelay(30)] } }));
    const start = Date.now();
    c.destroy();
    const m = await w.publishFrame(2500);
    assert.equal(m.payload.toString(), 'ended');
    assert.ok(Date.now() - start >= 950, `will after ${Date.now() - start} ms`);
  });

  it('[MQTT-3.1.2-8] does not publish the will after DISCONNECT 0x00, and does after DISCONNECT 0x04', async () => {
    const b = broker();
    const w = await watcher(b, 'will/dc/#');
    const normal = await client(b, { will: { topic: 'will/dc/0', payload: 'no' } });
    await leave(normal, 0x00);
    const withWill = await client(b, { will: { topic: 'will/dc/4', payload: 'yes' } });
    await leave(withWill, 0x04);
    const m = await w.publishFrame();
    assert.equal(m.topic, 'will/dc/4');
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.1.3-9] does not send the will when the client reconnects before the Will Delay Interval', async () => {
    const b = broker();
    const w = await watcher(b, 'will/back');
    const id = uniqueId();
    const c = await client(b, lasting(id, 60, { will: { topic: 'will/back', payload: 'x', props: [prop.willDelay(1)] } }));
    await drop(c);
    const willWasDue = await brokerTime(b, 1);
    await client(b, lasting(id));
    await willWasDue();
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.1.2-10] removes the will once published: a resumed session does not publish it again', async () => {
    const b = broker();
    const w = await watcher(b, 'will/once');
    const id = uniqueId();
    const c = await client(b, lasting(id, 60, { will: { topic: 'will/once', payload: 'once' } }));
    c.destroy();
    assert.equal((await w.publishFrame()).payload.toString(), 'once');
    const again = await client(b, lasting(id));
    assert.equal(again.connack.sessionPresent, true);
    again.destroy();
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.1.2-10] removes the will on DISCONNECT 0x00: it is not published when the session then ends', async () => {
    const b = broker();
    const w = await watcher(b, 'will/removed');
    // Session Expiry 0: the session ends with the connection, which would publish a will still stored.
    const c = await client(b, { props: [prop.sessionExpiry(0)], will: { topic: 'will/removed', payload: 'x', props: [prop.willDelay(5)] } });
    await leave(c, 0x00);
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.1.2-14] publishes a will with Will Retain 0 as a non-retained message', async () => {
    const b = broker();
    const w = await watcher(b, 'will/nr');
    const c = await client(b, { will: { topic: 'will/nr', payload: 'not kept', retain: false } });
    c.destroy();
    assert.equal((await w.publishFrame()).retain, false);
    const late = await client(b);
    await late.sub('will/nr');
    await late.none(T.PUBLISH);
  });

  it('[MQTT-3.1.2-15] publishes a will with Will Retain 1 as a retained message', async () => {
    const b = broker();
    const w = await watcher(b, 'will/r');
    const c = await client(b, { will: { topic: 'will/r', payload: 'kept', retain: true, qos: 1 } });
    c.destroy();
    assert.equal((await w.publishFrame()).retain, true);
    const late = await client(b);
    await late.sub('will/r', subOpts(1));
    const m = await late.publishFrame();
    assert.equal(m.payload.toString(), 'kept');
    assert.equal(m.retain, true);
  });

  it('[MQTT-3.1.2-22] [MQTT-3.1.2-20] closes a client silent for 1.5 × Keep Alive (any packet counts as activity), as a network failure', async () => {
    const b = broker();
    const w = await watcher(b, 'will/ka');
    const c = await client(b, { keepAlive: 1, will: { topic: 'will/ka', payload: 'timed out' } });
    assert.equal(propOf(c.connack.props, P.ServerKeepAlive), undefined);
    // Activity that is not PINGREQ keeps the connection alive past 1.5 s.
    for (let i = 0; i < 4; i++) {
      await pace(500);
      c.send(publish({ topic: 'ka/activity' }));
    }
    c.assertOpen();
    const last = Date.now();
    await c.expectClosed(3000);
    const silent = Date.now() - last;
    assert.ok(silent >= 1400 && silent < 2600, `closed after ${silent} ms of silence`);
    const d = c.log.find((f) => f.type === T.DISCONNECT);
    assert.equal(d?.body[0], 0x8d, 'a DISCONNECT before closing says Keep Alive timeout');
    assert.equal((await w.publishFrame()).payload.toString(), 'timed out', 'closed as if the network had failed: the will goes');
  });

  it('[MQTT-3.1.2-22] closes a client that trickles bytes of an unfinished packet: only whole Control Packets count', async () => {
    const c = await client(broker(), { keepAlive: 1 });
    const start = Date.now();
    c.send([0x30, 0x64]); // a PUBLISH announcing 100 bytes that never all arrive
    const trickle = setInterval(() => c.send([0x00]), 300);
    try {
      await c.expectClosed(2300);
    } finally {
      clearInterval(trickle);
    }
    assert.ok(Date.now() - start < 2300);
  });

  it('[MQTT-3.1.2-23] keeps the session after the connection closes when the Session Expiry Interval is > 0', async () => {
    const b = broker();
    const s = await client(b, lasting('keep-23', 5));
    await s.sub('keep/23', subOpts(2));
    await leave(s);
    const pub = await client(b);
    await pub.pub('keep/23', 'm', { qos: 2 });
    const again = await client(b, lasting('keep-23', 5));
    assert.equal(again.connack.sessionPresent, true);
    assert.equal((await again.publishFrame()).payload.toString(), 'm');
  });

  it('[MQTT-3.1.2-23] does not keep the session when the Session Expiry Interval is 0 or absent', async () => {
    const b = broker();
    for (const props of [[prop.sessionExpiry(0)], []]) {
      const id = uniqueId();
      const s = await client(b, { clientId: id, clean: false, props });
      await s.sub('keep/0', subOpts(1));
      await drop(s);
      const again = await client(b, { clientId: id, clean: false });
      assert.equal(again.connack.sessionPresent, false);
      again.destroy();
    }
  });

  it('[MQTT-3.1.2-24] never sends a packet larger than the client Maximum Packet Size', async () => {
    const b = broker();
    const c = await client(b, { props: [prop.maximumPacketSize(64)] });
    await c.sub('mps/#', subOpts(1));
    const pub = await client(b);
    for (const [i, n] of [10, 100, 40, 50, 51, 1000, 5].entries()) await pub.pub(`mps/${i}`, Buffer.alloc(n, 0x61), { qos: i % 2 });
    // PUBLISH mps/i QoS 1 with n payload bytes is 2 + 2 + 5 + 2 + 1 + n bytes: 64 fits n ≤ 52.
    const got: number[] = [];
    for (let i = 0; i < 5; i++) got.push((await c.publishFrame()).payload.length);
    assert.deepEqual(got, [10, 40, 50, 51, 5]);
    await c.none(T.PUBLISH);
    assert.ok(c.log.every((f) => f.raw.length <= 64), `sizes ${c.log.map((f) => f.raw.length)}`);
  });

  it('[MQTT-3.1.2-24] does not send retained messages or wills larger than the client Maximum Packet Size either', async () => {
    const b = broker();
    const pub = await client(b);
    await pub.pub('mpsr/big', Buffer.alloc(100), { qos: 1, retain: true });
    await pub.pub('mpsr/small', 's', { qos: 1, retain: true });
    const c = await client(b, { props: [prop.maximumPacketSize(64)] });
    await c.sub('mpsr/#', subOpts(1));
    const m = await c.publishFrame();
    assert.equal(m.topic, 'mpsr/small');
    c.send(ackPacket(T.PUBACK, m.id));
    const dying = await client(b, { will: { topic: 'mpsr/will', payload: Buffer.alloc(100) } });
    dying.destroy();
    await c.none(T.PUBLISH);
    assert.ok(c.log.every((f) => f.raw.length <= 64));
  });

  it('[MQTT-3.1.2-25] discards a QoS 1 message too large for the client as if its delivery had completed', async () => {
    const b = broker();
    const id = uniqueId();
    const c = await client(b, lasting(id, 60, { props: [prop.maximumPacketSize(64), prop.receiveMaximum(1)] }));
    await c.sub('big/#', subOpts(1));
    const pub = await client(b);
    await pub.pub('big/1', Buffer.alloc(200), { qos: 1 });
    await pub.pub('big/2', 'small', { qos: 1 });
    // The discarded message does not hold the only slot of the client's receive window.
    const m = await c.publishFrame();
    assert.equal(m.topic, 'big/2');
    c.send(ackPacket(T.PUBACK, m.id));
    await drop(c);
    // Nor is it kept for redelivery.
    const again = await client(b, lasting(id, 60, { props: [prop.maximumPacketSize(64)] }));
    assert.equal(again.connack.sessionPresent, true);
    await again.none(T.PUBLISH);
  });

  it('[MQTT-3.1.3-2] uses the client identifier to find the session state', async () => {
    const b = broker();
    const a = await client(b, lasting('id-a'));
    await a.sub('id/t', subOpts(1));
    await drop(a);
    const other = await client(b, lasting('id-b'));
    assert.equal(other.connack.sessionPresent, false);
    const same = await client(b, lasting('id-a'));
    assert.equal(same.connack.sessionPresent, true);
  });

  it('[MQTT-3.1.3-5] accepts client identifiers of 1 to 23 characters from [0-9a-zA-Z]', async () => {
    const b = broker();
    for (const id of ['0', 'Z', '0123456789abcdefghijklm', 'nopqrstuvwxyzABCDEFGHIJ', 'KLMNOPQRSTUVWXYZ0123456']) {
      const c = await client(b, { clientId: id });
      assert.equal(c.connack.reason, 0);
      c.destroy();
    }
  });

  it('[MQTT-3.1.3-6] assigns a unique client identifier to each client that sends a zero-length one', async () => {
    const b = broker();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const c = await client(b, { clientId: '' });
      const assigned = propOf<string>(c.connack.props, P.AssignedClientIdentifier);
      assert.ok(assigned && assigned.length > 0);
      ids.add(assigned);
    }
    assert.equal(ids.size, 5);
  });

  it('[MQTT-3.1.3-7] processes the CONNECT as if the client had sent the assigned identifier, and returns it in CONNACK', async () => {
    const b = broker();
    const c = await client(b, { clientId: '', clean: false, props: [prop.sessionExpiry(60)] });
    const assigned = propOf<string>(c.connack.props, P.AssignedClientIdentifier)!;
    assert.ok(assigned);
    await c.sub('assigned/t', subOpts(1));
    // A connection naming that identifier takes the session over and finds it.
    const again = await client(b, lasting(assigned));
    assert.equal(again.connack.sessionPresent, true);
    assert.equal((await c.disconnectFrame()).reason, 0x8e);
    const pub = await client(b);
    await pub.pub('assigned/t', 'x', { qos: 1 });
    assert.equal((await again.publishFrame()).topic, 'assigned/t');
  });

  it('[MQTT-3.1.3-10] keeps the order of the will User Properties and forwards its other properties', async () => {
    const b = broker();
    const w = await watcher(b, 'will/props');
    const corr = Buffer.from([0, 1, 2, 0xff]);
    const pairs: [string, string][] = [['a', '1'], ['b', '2'], ['a', '3'], ['', ''], ['a', '1']];
    const c = await client(b, {
      will: {
        topic: 'will/props',
        payload: 'p',
        props: [
          prop.user('a', '1'),
          prop.contentType('text/plain'),
          prop.user('b', '2'),
          prop.responseTopic('reply/here'),
          prop.user('a', '3'),
          prop.correlationData(corr),
          prop.user('', ''),
          prop.payloadFormat(1),
          prop.user('a', '1'),
        ],
      },
    });
    c.destroy();
    const m = await w.publishFrame();
    assert.deepEqual(userProps(m.props), pairs);
    assert.equal(propOf(m.props, P.ContentType), 'text/plain');
    assert.equal(propOf(m.props, P.ResponseTopic), 'reply/here');
    assert.deepEqual(propOf(m.props, P.CorrelationData), corr);
    assert.equal(propOf(m.props, P.PayloadFormatIndicator), 1);
  });

  const badConnects: [string, () => Buffer][] = [
    ['a packet ending inside the client identifier', () => reframe(connect({ clientId: 'abcdef' }), (body) => body.slice(0, -3))],
    ['trailing bytes after the payload', () => reframe(connect(), (body) => [...body, 0])],
    ['Will QoS 1 without the Will Flag (MQTT-3.1.2-11)', () => connect({ extraFlags: 0x08 })],
    ['Will Retain without the Will Flag (MQTT-3.1.2-13)', () => connect({ extraFlags: 0x20 })],
    ['Will QoS 3', () => connect({ will: { topic: 'w', qos: 3 } })],
    ['the Password Flag without a password (MQTT-3.1.2-19)', () => connect({ extraFlags: 0x40 })],
    ['the User Name Flag without a user name (MQTT-3.1.2-17)', () => connect({ extraFlags: 0x80 })],
    ['a will property not allowed there (Topic Alias)', () => connect({ will: { topic: 'w', props: [prop.topicAlias(1)] } })],
  ];
  for (const [what, make] of badConnects) {
    it(`[MQTT-3.1.4-1] closes on a CONNECT with ${what}, answering CONNACK 0x81`, async () => {
      const c = await peer(broker());
      c.send(make());
      const ack = decodeConnack(await c.next(T.CONNACK));
      assert.equal(ack.reason, 0x81);
      await expectRefused(c, ack.reason);
    });
  }

  it('[MQTT-3.1.4-2] closes the connection when a further check fails (a will topic with a wildcard), never publishing that will', async () => {
    const b = broker();
    const w = await watcher(b, '#');
    const { c, ack } = await tryConnect(b, { will: { topic: 'will/+', payload: 'x' } });
    await expectRefused(c, ack.reason);
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.1.4-3] sends DISCONNECT 0x8E to the existing connection of a client identifier and closes it', async () => {
    const b = broker();
    const first = await client(b, { clientId: 'twice' });
    const second = await client(b, { clientId: 'twice' });
    await first.expectDisconnect(0x8e);
    await second.sub('twice/t');
    await second.pub('twice/t', 'alive');
    assert.equal((await second.publishFrame()).payload.toString(), 'alive');
  });

  it('[MQTT-3.1.4-4] applies Clean Start to a taken-over session: Clean Start 1 discards it', async () => {
    const b = broker();
    const first = await client(b, lasting('takeover-clean'));
    await first.sub('tc/t', subOpts(1));
    const second = await client(b, { ...lasting('takeover-clean'), clean: true });
    assert.equal(second.connack.sessionPresent, false);
    await first.expectDisconnect(0x8e);
    const pub = await client(b);
    await pub.pub('tc/t', 'x', { qos: 1 });
    await second.none(T.PUBLISH);
  });

  it('[MQTT-3.1.4-5] acknowledges an accepted CONNECT with CONNACK reason 0x00', async () => {
    const b = broker();
    const c = await peer(b);
    c.send(connect({ clientId: 'ok-1', keepAlive: 30, username: 'u', password: Buffer.from('p'), props: [prop.user('k', 'v')] }));
    const ack = decodeConnack(await c.next(T.CONNACK));
    assert.equal(ack.reason, 0x00);
    assert.equal(c.log[0]!.type, T.CONNACK);
  });

  it('[MQTT-3.1.4-6] processes nothing a client sends after a CONNECT it rejects', async () => {
    const b = broker();
    const c = await peer(b);
    c.send(
      connect({ will: { topic: 'bad/#', payload: 'x' } }),
      publish({ topic: 'after/refused', payload: 'must not be kept', retain: true, qos: 1, id: 1 }),
      subscribe(2, [['after/#', 1]]),
      pingreq(),
    );
    const ack = decodeConnack(await c.next(T.CONNACK));
    await expectRefused(c, ack.reason);
    const check = await client(b);
    await check.sub('after/#');
    await check.none(T.PUBLISH);
  });
});

/** The CONNECT `p` (Remaining Length < 128) with its body changed by `edit` and its length rewritten. */
function reframe(p: Buffer, edit: (body: number[]) => number[]): Buffer {
  assert.ok(p[1]! < 128);
  const body = edit([...p.subarray(2)]);
  return Buffer.from([0x10, body.length, ...body]);
}

describe('MQTT 5.0 §3.2 CONNACK', () => {
  const broker = useBroker();

  it('[MQTT-3.2.0-1] sends CONNACK before any other packet, also when a resumed session has messages waiting', async () => {
    const b = broker();
    const s = await client(b, lasting('first-connack'));
    await s.sub('fc/t', subOpts(1));
    await drop(s);
    const pub = await client(b);
    for (let i = 0; i < 3; i++) await pub.pub('fc/t', String(i), { qos: 1 });
    const c = await peer(b);
    c.send(connect(lasting('first-connack')), pingreq(), subscribe(1, [['fc/other', 0]]));
    await c.next(T.CONNACK);
    await c.next(T.SUBACK);
    for (let i = 0; i < 3; i++) await c.next(T.PUBLISH);
    assert.equal(c.log[0]!.type, T.CONNACK);
    assert.equal(c.log.length, 6, `got ${c.log.map((f) => f.type)}`);
  });

  it('[MQTT-3.2.0-2] sends no second CONNACK on a connection', async () => {
    const c = await client(broker());
    c.send(connect());
    await c.expectDisconnect(0x82);
    assert.equal(c.log.filter((f) => f.type === T.CONNACK).length, 1);
  });

  it('[MQTT-3.2.2-1] keeps bits 7-1 of the Connect Acknowledge Flags at 0', async () => {
    const b = broker();
    const first = await client(b, lasting('ack-flags'));
    assert.equal(first.connack.flags, 0);
    await drop(first);
    const again = await client(b, lasting('ack-flags'));
    assert.equal(again.connack.flags, 1);
    const { ack } = await tryConnect(b, { will: { topic: '#' } });
    assert.equal(ack.flags, 0);
  });

  it('[MQTT-3.2.2-2] sets Session Present 0 on Clean Start 1, even when a session existed', async () => {
    const b = broker();
    const s = await client(b, lasting('sp-clean'));
    await s.sub('sp/t');
    await drop(s);
    const again = await client(b, { ...lasting('sp-clean'), clean: true });
    assert.equal(again.connack.sessionPresent, false);
    assert.equal(again.connack.reason, 0);
  });

  it('[MQTT-3.2.2-3] sets Session Present 1 on Clean Start 0 with session state, 0 without, both with reason 0x00', async () => {
    const b = broker();
    const s = await client(b, lasting('sp-resume'));
    assert.deepEqual([s.connack.sessionPresent, s.connack.reason], [false, 0]);
    await drop(s);
    const again = await client(b, lasting('sp-resume'));
    assert.deepEqual([again.connack.sessionPresent, again.connack.reason], [true, 0]);
  });

  it('[MQTT-3.2.2-6] sets Session Present 0 in a CONNACK with a non-zero reason code, even if a session exists', async () => {
    const b = broker();
    const s = await client(b, lasting('sp-refused'));
    await s.sub('sp/r', subOpts(1));
    await drop(s);
    const { c, ack } = await tryConnect(b, lasting('sp-refused', 60, { will: { topic: 'w/+' } }));
    assert.notEqual(ack.reason, 0);
    assert.equal(ack.sessionPresent, false);
    await c.expectClosed();
  });

  it('[MQTT-3.2.2-7] closes the connection after a CONNACK with a reason code of 128 or more', async () => {
    const b = broker();
    for (const o of [{ will: { topic: '#' } }, { props: [prop.receiveMaximum(0)] }, { extraFlags: 0x01 }]) {
      const { c, ack } = await tryConnect(b, o);
      assert.ok(ack.reason >= 0x80);
      await c.expectClosed();
    }
  });

  it('[MQTT-3.2.2-8] uses only Connect Reason Codes in CONNACK', async () => {
    const b = broker();
    const cases = [
      {},
      { will: { topic: 'w/#' } },
      { props: [prop.receiveMaximum(0)] },
      { extraFlags: 0x01 },
      { props: [prop.user('k', Buffer.from([0xff]))] },
      { will: { topic: 'w', props: [prop.sessionExpiry(1)] } },
    ];
    for (const o of cases) {
      const { c, ack } = await tryConnect(b, o);
      assert.ok((REASONS.CONNACK as readonly number[]).includes(ack.reason), `CONNACK reason ${hex(ack.reason)}`);
      c.destroy();
    }
  });

  it('[MQTT-3.2.2-16] assigns a client identifier not used by any other session', async () => {
    const b = broker();
    const existing = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const id = uniqueId('arbormq-');
      existing.add(id);
      await drop(await client(b, lasting(id)));
    }
    for (let i = 0; i < 3; i++) {
      const c = await client(b, { clientId: '', clean: false, props: [prop.sessionExpiry(60)] });
      const assigned = propOf<string>(c.connack.props, P.AssignedClientIdentifier);
      assert.ok(assigned && !existing.has(assigned), `assigned ${assigned}`);
      existing.add(assigned);
      assert.equal(c.connack.sessionPresent, false);
    }
  });

  it('[MQTT-3.2.2-16] never assigns the identifier of an existing session, and takes none over', async () => {
    const b = broker();
    // Sessions under identifiers shaped like the ones this broker assigns, then assignments next to them.
    const shaped = await client(b, { clientId: '' });
    const sample = propOf<string>(shaped.connack.props, P.AssignedClientIdentifier)!;
    const holders = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client(b, lasting(`${sample.slice(0, -2)}${i.toString(36).padStart(2, '0')}`))),
    );
    const existing = new Set([sample, ...holders.map((_, i) => `${sample.slice(0, -2)}${i.toString(36).padStart(2, '0')}`)]);
    for (let i = 0; i < 20; i++) {
      const c = await client(b, { clientId: '' });
      const assigned = propOf<string>(c.connack.props, P.AssignedClientIdentifier)!;
      assert.ok(!existing.has(assigned), `assigned ${assigned}, the identifier of an existing session`);
      assert.equal(c.connack.sessionPresent, false);
      existing.add(assigned);
    }
    for (const h of holders) await h.none(T.DISCONNECT);
  });

  it('[MQTT-3.2.2-19] leaves the Reason String out of a CONNACK it would push beyond the client Maximum Packet Size', async () => {
    const b = broker();
    const c = await peer(b);
    c.send(connect({ props: [prop.maximumPacketSize(16)], will: { topic: 'will/+/bad', payload: 'x' } }));
    await c.expectClosed();
    assert.ok(c.log.every((f) => f.raw.length <= 16), `sent ${c.log.map((f) => `${f.type}:${f.raw.length}`)} with a 16 byte maximum`);
  });

  it('[MQTT-3.2.2-20] keeps a successful CONNACK within the client Maximum Packet Size (no User Properties pushing it over)', async () => {
    const c = await client(broker(), { props: [prop.maximumPacketSize(32)] });
    assert.ok(c.connack.size <= 32, `CONNACK of ${c.connack.size} bytes`);
    assert.deepEqual(userProps(c.connack.props), []);
  });

  it('[MQTT-3.2.2-22] uses the client Keep Alive when it sends no Server Keep Alive', async () => {
    const c = await client(broker(), { keepAlive: 1 });
    assert.equal(propOf(c.connack.props, P.ServerKeepAlive), undefined);
    const start = Date.now();
    await c.expectClosed(3000);
    const t = Date.now() - start;
    assert.ok(t >= 1400 && t < 2600, `closed after ${t} ms`);
  });
});

describe('MQTT 5.0 §3.2 CONNACK with a Server Keep Alive (maxKeepAlive 1)', () => {
  const broker = useBroker({ maxKeepAlive: 1 });

  it('[MQTT-3.2.2-22] [MQTT-3.1.2-21] [MQTT-3.2.2-21] applies the Server Keep Alive it sent instead of the client value: a client keeping its own (0) is closed', async () => {
    const c = await client(broker(), { keepAlive: 0 });
    assert.equal(propOf(c.connack.props, P.ServerKeepAlive), 1);
    const start = Date.now();
    await c.expectClosed(3000);
    const t = Date.now() - start;
    assert.ok(t >= 1400 && t < 2600, `closed after ${t} ms`);
  });
});

describe('MQTT 5.0 §3.2 CONNACK with Maximum QoS 1', () => {
  const broker = useBroker({ maxQoS: 1 });

  it('[MQTT-3.2.2-9] announces Maximum QoS 1 in CONNACK', async () => {
    const c = await client(broker());
    assert.equal(propOf(c.connack.props, P.MaximumQoS), 1);
  });

  it('[MQTT-3.2.2-11] §3.2.2.3.4: disconnects a client that publishes above the Maximum QoS with 0x9B', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('mq/#', subOpts(2));
    const c = await client(b);
    c.send(publish({ topic: 'mq/2', qos: 2, id: 1 }));
    await c.expectDisconnect(0x9b);
    await w.none(T.PUBLISH);
  });

  it('[MQTT-3.2.2-10] still accepts SUBSCRIBE with Requested QoS 0, 1 and 2 (granting at most 1)', async () => {
    const c = await client(broker());
    assert.deepEqual(await c.sub([['a', 0], ['b', 1], ['c', 2]]), [0, 1, 1]);
    c.assertOpen();
  });

  it('[MQTT-3.2.2-12] refuses a CONNECT whose Will QoS exceeds the Maximum QoS, and closes', async () => {
    const b = broker();
    const { c, ack } = await tryConnect(b, { will: { topic: 'w', qos: 2 } });
    await expectRefused(c, ack.reason);
    const ok = await client(b, { will: { topic: 'w', qos: 1 } });
    assert.equal(ok.connack.reason, 0);
  });
});

describe('MQTT 5.0 §3.2 CONNACK with Maximum QoS 0', () => {
  const broker = useBroker({ maxQoS: 0 });

  it('[MQTT-3.2.2-9] announces Maximum QoS 0 in CONNACK', async () => {
    const c = await client(broker());
    assert.equal(propOf(c.connack.props, P.MaximumQoS), 0);
  });

  it('[MQTT-3.2.2-10] still accepts SUBSCRIBE with Requested QoS 0, 1 and 2, and delivers at QoS 0', async () => {
    const b = broker();
    const c = await client(b);
    assert.deepEqual(await c.sub([['z/0', 0], ['z/1', 1], ['z/2', 2]]), [0, 0, 0]);
    const pub = await client(b);
    await pub.pub('z/2', 'x');
    const m = await c.publishFrame();
    assert.equal(m.qos, 0);
  });
});

describe('MQTT 5.0 §3.2 CONNACK without retained messages (retainAvailable false)', () => {
  const broker = useBroker({ retainAvailable: false });

  it('[MQTT-3.2.2-13] refuses a CONNECT with Will Retain 1 and closes', async () => {
    const b = broker();
    const { c, ack } = await tryConnect(b, { will: { topic: 'w', retain: true } });
    await expectRefused(c, ack.reason);
    const ok = await client(b, { will: { topic: 'w', retain: false } });
    assert.equal(propOf(ok.connack.props, P.RetainAvailable), 0);
  });

  it('[MQTT-3.2.2-14] [MQTT-4.13.1-1] §3.2.2.3.5: disconnects a client that publishes with RETAIN 1 with 0x9A', async () => {
    const c = await client(broker());
    c.send(publish({ topic: 'r', retain: true, payload: 'x' }));
    await c.expectDisconnect(0x9a);
  });
});
