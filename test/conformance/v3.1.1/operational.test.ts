// MQTT 3.1.1 conformance, chapter 4: sessions, QoS flows, re-delivery, ordering, topics, error handling.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { type ServerTestBroker, startBroker } from '../../helpers/broker.js';
import {
  connectPacket,
  framePayload,
  frameTopic,
  pace,
  Peer,
  publishBytes,
  subscribeBytes,
  T,
  unsubscribeBytes,
  until,
  watch,
  withBroker,
} from './helpers.js';

const ack = (type: number, id: number): number[] => [type === T.PUBREL ? 0x62 : type << 4, 2, id >> 8, id & 0xff];

describe('MQTT 3.1.1 §4.1 session state', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  it('[MQTT-4.1.0-1] keeps the incoming QoS 2 state across reconnects: a PUBLISH re-sent after reconnecting is not delivered twice', async () => {
    const w = await watch(b, 'st/in');
    const p = await Peer.connect(b, { clientId: 'st-in', clean: false });
    p.publish('st/in', 'once', { qos: 2, id: 7 });
    await p.next('pubrec');
    await p.drop();
    const again = await Peer.connect(b, { clientId: 'st-in', clean: false });
    assert.equal(again.connack.sessionPresent, true);
    again.publish('st/in', 'once', { qos: 2, id: 7, dup: true });
    await again.next('pubrec');
    again.send(ack(T.PUBREL, 7));
    assert.equal(((await again.next('pubcomp')) as { messageId: number }).messageId, 7);
    assert.equal((await w.message()).payload.toString(), 'once');
    await w.expectNo('publish');
  });

  it('[MQTT-4.1.0-1] keeps subscriptions and unacknowledged messages over several reconnects', async () => {
    const s = await Peer.connect(b, { clientId: 'st-out', clean: false });
    await s.subscribe('st/out', 1);
    const p = await Peer.connect(b);
    p.publish('st/out', 'pending', { qos: 1, id: 1 });
    const first = await s.message();
    await s.drop();
    let id = first.messageId!;
    for (let i = 0; i < 3; i++) {
      const again = await Peer.connect(b, { clientId: 'st-out', clean: false });
      const m = await again.message();
      assert.equal(m.messageId, id);
      assert.equal(m.payload.toString(), 'pending');
      id = m.messageId!;
      await again.drop();
    }
    const last = await Peer.connect(b, { clientId: 'st-out', clean: false });
    const m = await last.message();
    last.send(ack(T.PUBACK, m.messageId!));
    p.publish('st/out', 'still subscribed', { qos: 1, id: 2 });
    assert.equal((await last.message()).payload.toString(), 'still subscribed');
  });

  it('[MQTT-4.1.0-1] keeps a pending PUBREL over reconnects until PUBCOMP', async () => {
    const s = await Peer.connect(b, { clientId: 'st-rel', clean: false });
    await s.subscribe('st/rel', 2);
    const p = await Peer.connect(b);
    p.publish('st/rel', 'x', { qos: 2, id: 1 });
    const m = await s.message();
    s.send(ack(T.PUBREC, m.messageId!));
    await s.next('pubrel');
    await s.drop();
    for (let i = 0; i < 2; i++) {
      const again = await Peer.connect(b, { clientId: 'st-rel', clean: false });
      assert.equal(((await again.next('pubrel')) as { messageId: number }).messageId, m.messageId);
      await again.drop();
    }
    const last = await Peer.connect(b, { clientId: 'st-rel', clean: false });
    await last.next('pubrel');
    last.send(ack(T.PUBCOMP, m.messageId!));
    await last.drop();
    const done = await Peer.connect(b, { clientId: 'st-rel', clean: false });
    await done.expectNo('pubrel');
    await done.expectNo('publish');
  });

  it('[MQTT-4.1.0-2] keeps the session of an open connection, whatever the session expiry limit', () =>
    withBroker({ maxSessionExpiry: 1 }, async (b1) => {
      const s = await Peer.connect(b1, { clientId: 'st-live', clean: false, keepalive: 60 });
      await s.subscribe('st/live', 1);
      const p = await Peer.connect(b1);
      p.publish('st/live', 'before', { qos: 1, id: 1 });
      const m = await s.message();
      for (let i = 0; i < 3; i++) {
        await pace(500);
        s.send([0xc0, 0]);
        await s.next('pingresp');
      }
      s.send(ack(T.PUBACK, m.messageId!));
      p.publish('st/live', 'after', { qos: 1, id: 2 });
      assert.equal((await s.message()).payload.toString(), 'after', 'the subscription outlived the expiry limit while connected');
    }));
});

describe('MQTT 3.1.1 §4.3 QoS flows', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  it('[MQTT-4.3.1-1] sends QoS 0 messages as PUBLISH with QoS 0 and DUP 0', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('q0/t', 2);
    const p = await Peer.connect(b);
    p.publish('q0/t', 'a');
    p.publish('q0/t', 'b', { retain: true });
    await s.message();
    await s.message();
    assert.deepEqual(
      s.of(T.PUBLISH).map((f) => f.header),
      [0x30, 0x30],
    );
  });

  it('[MQTT-4.3.2-1] sends QoS 1 messages with QoS 1, DUP 0 and an unused packet identifier', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('q1/t', 1);
    const p = await Peer.connect(b);
    for (let i = 0; i < 5; i++) p.publish('q1/t', String(i), { qos: 1, id: 1 });
    for (let i = 0; i < 5; i++) await s.message();
    const frames = s.of(T.PUBLISH);
    assert.deepEqual(frames.map((f) => f.header), [0x32, 0x32, 0x32, 0x32, 0x32]);
    const ids = frames.map((f) => f.body.readUInt16BE(2 + f.body.readUInt16BE(0)));
    assert.equal(new Set(ids).size, 5);
    assert.ok(ids.every((id) => id > 0));
  });

  it('[MQTT-4.3.2-1] treats a QoS 1 PUBLISH as unacknowledged until PUBACK: only unacknowledged ones are re-sent', async () => {
    const s = await Peer.connect(b, { clientId: 'q1-unacked', clean: false });
    await s.subscribe('q1/u', 1);
    const p = await Peer.connect(b);
    for (let i = 0; i < 3; i++) p.publish('q1/u', String(i), { qos: 1, id: i + 1 });
    const got = [await s.message(), await s.message(), await s.message()];
    s.send(ack(T.PUBACK, got[1]!.messageId!));
    await s.drop();
    const again = await Peer.connect(b, { clientId: 'q1-unacked', clean: false });
    const resent = [await again.message(), await again.message()];
    assert.deepEqual(
      resent.map((m) => [m.payload.toString(), m.messageId, m.dup]),
      [
        ['0', got[0]!.messageId, true],
        ['2', got[2]!.messageId, true],
      ],
    );
    await again.expectNo('publish');
  });

  it('[MQTT-4.3.2-2] answers a QoS 1 PUBLISH with PUBACK and treats the same packet identifier after it as a new publication', async () => {
    const w = await watch(b, 'q1/r');
    const p = await Peer.connect(b);
    p.publish('q1/r', 'first', { qos: 1, id: 42 });
    assert.equal(((await p.next('puback')) as { messageId: number }).messageId, 42);
    p.publish('q1/r', 'second', { qos: 1, id: 42, dup: true });
    await p.next('puback');
    p.publish('q1/r', 'third', { qos: 1, id: 42 });
    await p.next('puback');
    const got = [await w.message(), await w.message(), await w.message()].map((m) => m.payload.toString());
    assert.deepEqual(got, ['first', 'second', 'third']);
  });

  it('[MQTT-4.3.3-1] sends QoS 2 as PUBLISH (QoS 2, DUP 0), then PUBREL with the same identifier on PUBREC', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('q2/s', 2);
    const p = await Peer.connect(b);
    p.publish('q2/s', 'x', { qos: 2, id: 1 });
    const m = await s.message();
    assert.equal(s.of(T.PUBLISH)[0]!.header, 0x34);
    assert.ok(m.messageId! > 0);
    await s.expectNo('pubrel');
    s.send(ack(T.PUBREC, m.messageId!));
    const rel = await s.next('pubrel');
    assert.equal((rel as { messageId: number }).messageId, m.messageId);
    s.send(ack(T.PUBCOMP, m.messageId!));
  });

  it('[MQTT-4.3.3-1] re-sends an unacknowledged QoS 2 PUBLISH, but after PUBREL only the PUBREL, until PUBCOMP', async () => {
    const s = await Peer.connect(b, { clientId: 'q2-sender', clean: false });
    await s.subscribe('q2/r/#', 2);
    const p = await Peer.connect(b);
    p.publish('q2/r/a', 'no pubrec', { qos: 2, id: 1 });
    p.publish('q2/r/b', 'pubrec', { qos: 2, id: 2 });
    const a = await s.message();
    const bm = await s.message();
    s.send(ack(T.PUBREC, bm.messageId!));
    await s.next('pubrel');
    await s.drop();
    const again = await Peer.connect(b, { clientId: 'q2-sender', clean: false });
    const resent = await again.message();
    assert.equal(resent.messageId, a.messageId);
    assert.equal(resent.dup, true);
    assert.equal(((await again.next('pubrel')) as { messageId: number }).messageId, bm.messageId);
    await again.expectNo('publish');
    again.send(ack(T.PUBREC, a.messageId!));
    await again.next('pubrel');
    again.send(ack(T.PUBCOMP, a.messageId!));
    again.send(ack(T.PUBCOMP, bm.messageId!));
    await again.drop();
    const done = await Peer.connect(b, { clientId: 'q2-sender', clean: false });
    await done.expectNo('pubrel');
    await done.expectNo('publish');
  });

  it('[MQTT-4.3.3-2] answers QoS 2 with PUBREC, repeats PUBREC for duplicates without duplicate delivery, PUBCOMP for PUBREL', async () => {
    const w = await watch(b, 'q2/in');
    const p = await Peer.connect(b);
    p.publish('q2/in', 'exactly once', { qos: 2, id: 300 });
    assert.equal(((await p.next('pubrec')) as { messageId: number }).messageId, 300);
    p.publish('q2/in', 'exactly once', { qos: 2, id: 300, dup: true });
    p.publish('q2/in', 'exactly once', { qos: 2, id: 300, dup: true });
    p.publish('q2/in', 'exactly once', { qos: 2, id: 300, dup: false });
    for (let i = 0; i < 3; i++) assert.equal(((await p.next('pubrec')) as { messageId: number }).messageId, 300);
    p.send(ack(T.PUBREL, 300));
    assert.deepEqual([...(await p.next('pubcomp').then(() => p.of(T.PUBCOMP)[0]!.raw))], [0x70, 2, 1, 44]);
    assert.equal((await w.message()).payload.toString(), 'exactly once');
    await w.expectNo('publish');
  });

  it(
    '[MQTT-4.3.3-2] answers PUBREC to each of 1200 QoS 2 PUBLISHes still waiting for their PUBREL',
    async () => {
      const p = await Peer.connect(b);
      p.keep = false;
      let recs = 0;
      p.onFrame = (f) => {
        if (f.type === T.PUBREC) recs++;
      };
      const n = 1200;
      p.send(Buffer.concat([...Array(n).keys()].map((i) => publishBytes('q2/many', 'x', { qos: 2, id: i + 1 }))));
      await until(() => recs >= n || p.isClosed, 'PUBRECs', 5000);
      assert.deepEqual({ recs, closed: p.isClosed }, { recs: n, closed: false });
      p.send(Buffer.concat([...Array(n).keys()].map((i) => Buffer.from(ack(T.PUBREL, i + 1)))));
    },
  );

  it('[MQTT-4.3.3-2] treats a PUBLISH with the identifier of a completed QoS 2 flow as a new publication', async () => {
    const w = await watch(b, 'q2/new');
    const p = await Peer.connect(b);
    for (const payload of ['one', 'two']) {
      p.publish('q2/new', payload, { qos: 2, id: 9 });
      await p.next('pubrec');
      p.send(ack(T.PUBREL, 9));
      await p.next('pubcomp');
    }
    assert.deepEqual([(await w.message()).payload.toString(), (await w.message()).payload.toString()], ['one', 'two']);
  });

  it('[MQTT-4.3.3-2] does not deliver twice a QoS 2 PUBLISH re-sent while the first copy waits for authorization', () =>
    withBroker({ authorizePublish: () => pace(50).then(() => true) }, async (b1) => {
      const w = await watch(b1, 'q2/auth');
      const p = await Peer.connect(b1);
      p.publish('q2/auth', 'once', { qos: 2, id: 8 });
      p.publish('q2/auth', 'once', { qos: 2, id: 8, dup: true });
      await p.next('pubrec');
      await p.next('pubrec');
      p.send(ack(T.PUBREL, 8));
      await p.next('pubcomp');
      assert.equal((await w.message()).payload.toString(), 'once');
      await w.expectNo('publish');
    }));

  it('[MQTT-4.3.3-2] delivers a QoS 2 message onward once even when the PUBREL is sent on a new connection', async () => {
    const w = await watch(b, 'q2/late');
    const p = await Peer.connect(b, { clientId: 'q2-late', clean: false });
    p.publish('q2/late', 'x', { qos: 2, id: 5 });
    await p.next('pubrec');
    await p.drop();
    const again = await Peer.connect(b, { clientId: 'q2-late', clean: false });
    again.send(ack(T.PUBREL, 5));
    await again.next('pubcomp');
    assert.equal((await w.message()).payload.toString(), 'x');
    await w.expectNo('publish');
  });
});

describe('MQTT 3.1.1 §4.4 message delivery retry', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  it('[MQTT-4.4.0-1] re-sends unacknowledged PUBLISH and PUBREL packets with their original identifiers on reconnect', async () => {
    const s = await Peer.connect(b, { clientId: 'retry', clean: false });
    await s.subscribe('retry/#', 2);
    const p = await Peer.connect(b);
    p.publish('retry/1', 'q1 unacked', { qos: 1, id: 1 });
    p.publish('retry/2', 'q2 unacked', { qos: 2, id: 2 });
    p.publish('retry/3', 'q2 pubrec', { qos: 2, id: 3 });
    p.publish('retry/4', 'q1 acked', { qos: 1, id: 4 });
    const got = [await s.message(), await s.message(), await s.message(), await s.message()];
    s.send(ack(T.PUBREC, got[2]!.messageId!));
    await s.next('pubrel');
    s.send(ack(T.PUBACK, got[3]!.messageId!));
    await s.drop();
    const again = await Peer.connect(b, { clientId: 'retry', clean: false });
    const resent = [await again.message(), await again.message()];
    assert.deepEqual(
      resent.map((m) => [m.topic, m.messageId, m.qos, m.dup]),
      [
        ['retry/1', got[0]!.messageId, 1, true],
        ['retry/2', got[1]!.messageId, 2, true],
      ],
    );
    assert.equal(((await again.next('pubrel')) as { messageId: number }).messageId, got[2]!.messageId);
    await again.expectNo('publish');
  });

  it('[MQTT-4.4.0-1] re-sends on the new connection when a client reconnects while its old connection is still open', async () => {
    const s = await Peer.connect(b, { clientId: 'retry-takeover', clean: false });
    await s.subscribe('rt/t', 1);
    const p = await Peer.connect(b);
    p.publish('rt/t', 'x', { qos: 1, id: 1 });
    const m = await s.message();
    const again = await Peer.connect(b, { clientId: 'retry-takeover', clean: false });
    await s.expectClosed();
    const resent = await again.message();
    assert.equal(resent.messageId, m.messageId);
    assert.equal(resent.dup, true);
  });
});

describe('MQTT 3.1.1 §4.5 message receipt', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker({ maxInflight: 1 });
  });
  afterEach(() => b.close());

  it('[MQTT-4.5.0-1] adds a message to the session of every client with a matching subscription, online or not', async () => {
    const online = await Peer.connect(b);
    await online.subscribe('own/+', 1);
    const wild = await Peer.connect(b);
    await wild.subscribe('own/#', 0);
    const off = await Peer.connect(b, { clientId: 'own-offline', clean: false });
    await off.subscribe('own/t', 2);
    await off.disconnect();
    const other = await Peer.connect(b);
    await other.subscribe('own/x', 2);
    const p = await Peer.connect(b);
    p.publish('own/t', 'm', { qos: 2, id: 1 });
    await p.next('pubrec');
    assert.equal((await online.message()).qos, 1);
    assert.equal((await wild.message()).qos, 0);
    const back = await Peer.connect(b, { clientId: 'own-offline', clean: false });
    assert.equal((await back.message()).qos, 2);
    await other.expectNo('publish');
  });

  it('[MQTT-4.5.0-1] keeps messages for a client whose in-flight window is full and sends them when it frees', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('own/w', 1);
    const p = await Peer.connect(b);
    for (let i = 0; i < 4; i++) p.publish('own/w', String(i), { qos: 1, id: i + 1 });
    for (let i = 0; i < 4; i++) {
      const m = await s.message();
      assert.equal(m.payload.toString(), String(i));
      s.send(ack(T.PUBACK, m.messageId!));
    }
  });
});

describe('MQTT 3.1.1 §4.6 message ordering', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker({ maxInflight: 3 });
  });
  afterEach(() => b.close());

  it('[MQTT-4.6.0-5] treats a topic as ordered by default: every subscriber gets one publisher\'s messages in order', async () => {
    const s1 = await Peer.connect(b);
    await s1.subscribe('ord/t', 1);
    const s2 = await Peer.connect(b);
    await s2.subscribe('ord/#', 2);
    const seen1 = s1.autoAck();
    const seen2 = s2.autoAck();
    const p = await Peer.connect(b);
    const n = 100;
    p.send(Buffer.concat([...Array(n).keys()].map((i) => publishBytes('ord/t', String(i), { qos: 1, id: i + 1 }))));
    await until(() => seen1.length >= n && seen2.length >= n, 'deliveries');
    const expected = [...Array(n).keys()].map(String);
    assert.deepEqual(seen1.map((f) => framePayload(f).toString()), expected);
    assert.deepEqual(seen2.map((f) => framePayload(f).toString()), expected);
  });

  for (const qos of [0, 1, 2] as const) {
    it(`[MQTT-4.6.0-6] sends one client's QoS ${qos} messages on a topic in the order received, past the in-flight window`, async () => {
      const s = await Peer.connect(b);
      await s.subscribe('ord/q', 2);
      const seen = s.autoAck();
      const p = await Peer.connect(b);
      const n = 60;
      p.send(Buffer.concat([...Array(n).keys()].map((i) => publishBytes('ord/q', String(i), { qos, id: i + 1 }))));
      if (qos === 2) {
        for (let i = 0; i < n; i++) await p.next('pubrec');
        p.send(Buffer.concat([...Array(n).keys()].map((i) => Buffer.from(ack(T.PUBREL, i + 1)))));
      }
      await until(() => seen.length >= n, 'deliveries');
      assert.deepEqual(seen.map((f) => framePayload(f).toString()), [...Array(n).keys()].map(String));
      assert.ok(seen.every((f) => ((f.flags >> 1) & 3) === qos));
    });
  }

  it('[MQTT-4.6.0-6] keeps the order across a reconnect: re-sent messages first, in their order, then the queued ones', async () => {
    const s = await Peer.connect(b, { clientId: 'ord-resume', clean: false });
    await s.subscribe('ord/r', 1);
    const p = await Peer.connect(b);
    for (let i = 0; i < 5; i++) p.publish('ord/r', String(i), { qos: 1, id: i + 1 });
    for (let i = 0; i < 3; i++) await s.message();
    await s.drop();
    for (let i = 5; i < 10; i++) p.publish('ord/r', String(i), { qos: 1, id: i + 1 });
    await p.roundTrip();
    const again = await Peer.open(b);
    const seen = again.autoAck();
    again.send(connectPacket({ clientId: 'ord-resume', clean: false }));
    await until(() => seen.length >= 10, 'deliveries');
    assert.deepEqual(seen.map((f) => framePayload(f).toString()), [...Array(10).keys()].map(String));
    assert.deepEqual(seen.slice(0, 3).map((f) => f.flags & 0x08), [8, 8, 8], 'the three re-sent ones carry DUP');
    assert.deepEqual(seen.slice(3).map((f) => f.flags & 0x08), [0, 0, 0, 0, 0, 0, 0], 'messages sent for the first time do not [MQTT-3.3.1-3]');
  });

  it('[MQTT-4.6.0-6] sends PUBACKs in the order the QoS 1 PUBLISHes were received', async () => {
    const p = await Peer.connect(b);
    const ids = [9, 3, 65535, 7, 1, 256, 2];
    p.send(Buffer.concat(ids.map((id) => publishBytes('ord/ack', 'x', { qos: 1, id }))));
    await until(() => p.of(T.PUBACK).length >= ids.length, 'PUBACKs');
    assert.deepEqual(p.of(T.PUBACK).map((f) => f.body.readUInt16BE(0)), ids);
  });

  it('[MQTT-4.6.0-6] sends PUBACKs and PUBRECs in the order the PUBLISHes were received, stored (retained) ones among them', async () => {
    const p = await Peer.connect(b);
    const sent = [...Array(30).keys()].map((i) => ({ id: 1000 - i, qos: (i % 3 === 2 ? 2 : 1) as 1 | 2, retain: i % 2 === 0 }));
    p.send(Buffer.concat(sent.map((m, i) => publishBytes(`ord/mixed/${i}`, 'x', { qos: m.qos, id: m.id, retain: m.retain }))));
    await until(() => p.log.filter((f) => f.type === T.PUBACK || f.type === T.PUBREC).length >= sent.length, 'acknowledgements');
    assert.deepEqual(
      p.log.filter((f) => f.type === T.PUBACK || f.type === T.PUBREC).map((f) => [f.type, f.body.readUInt16BE(0)]),
      sent.map((m) => [m.qos === 1 ? T.PUBACK : T.PUBREC, m.id]),
    );
  });

  it('[MQTT-4.6.0-6] sends PUBRECs in the order the QoS 2 PUBLISHes were received, and PUBCOMPs in the order of the PUBRELs', async () => {
    const p = await Peer.connect(b);
    const ids = [40, 4, 400, 4000, 40000];
    p.send(Buffer.concat(ids.map((id) => publishBytes('ord/rec', 'x', { qos: 2, id }))));
    await until(() => p.of(T.PUBREC).length >= ids.length, 'PUBRECs');
    assert.deepEqual(p.of(T.PUBREC).map((f) => f.body.readUInt16BE(0)), ids);
    const rels = [400, 40, 40000, 4, 4000];
    p.send(rels.flatMap((id) => ack(T.PUBREL, id)));
    await until(() => p.of(T.PUBCOMP).length >= rels.length, 'PUBCOMPs');
    assert.deepEqual(p.of(T.PUBCOMP).map((f) => f.body.readUInt16BE(0)), rels);
  });

  it('[MQTT-4.6.0-6] keeps one client\'s messages and acknowledgements in order while authorization answers asynchronously', () =>
    withBroker(
      {
        // Decisions take 0-20 ms and resolve out of order.
        authorizePublish: (_c, topic) => pace(Number(topic.split('/')[2] ?? 0) % 3 === 0 ? 20 : Number(topic.split('/')[2]) % 5).then(() => true),
      },
      async (b1) => {
        const s = await Peer.connect(b1);
        await s.subscribe('ord/auth/#', 1);
        const seen = s.autoAck();
        const p = await Peer.connect(b1);
        const n = 40;
        p.send(Buffer.concat([...Array(n).keys()].map((i) => publishBytes(`ord/auth/${i}`, String(i), { qos: 1, id: i + 1 }))));
        await until(() => seen.length >= n && p.of(T.PUBACK).length >= n, 'deliveries and PUBACKs');
        assert.deepEqual(seen.map((f) => framePayload(f).toString()), [...Array(n).keys()].map(String));
        assert.deepEqual(p.of(T.PUBACK).map((f) => f.body.readUInt16BE(0)), [...Array(n).keys()].map((i) => i + 1));
      },
    ));

  it('[MQTT-4.6.0-6] sends PUBRELs in the order the PUBRECs were received', async () => {
    await b.close();
    b = await startBroker();
    const s = await Peer.connect(b);
    await s.subscribe('ord/rel', 2);
    const p = await Peer.connect(b);
    for (let i = 0; i < 5; i++) p.publish('ord/rel', String(i), { qos: 2, id: i + 1 });
    const got: IPublishPacket[] = [];
    for (let i = 0; i < 5; i++) got.push(await s.message());
    const order = [3, 0, 4, 2, 1].map((i) => got[i]!.messageId!);
    s.send(order.flatMap((id) => ack(T.PUBREC, id)));
    await until(() => s.of(T.PUBREL).length >= 5, 'PUBRELs');
    assert.deepEqual(s.of(T.PUBREL).map((f) => f.body.readUInt16BE(0)), order);
  });
});

describe('MQTT 3.1.1 §4.7 topic names and topic filters', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  for (const topic of ['sport/+', 'sport/#', 'sport+', '#', 'a/b#']) {
    it(`[MQTT-4.7.1-1] refuses the wildcard topic name "${topic}" in PUBLISH: closes the connection, routes nothing`, async () => {
      const w = await watch(b, '#');
      const p = await Peer.connect(b);
      p.publish(topic, 'x');
      await p.expectClosed();
      await w.expectNo('publish');
    });
  }

  for (const topic of ['will/+', 'will/#']) {
    it(`[MQTT-4.7.1-1] never publishes a will to the wildcard topic name "${topic}"`, async () => {
      const w = await watch(b, '#');
      const p = await Peer.open(b);
      p.send(connectPacket({ will: { topic, payload: 'x' } }));
      await p.settled();
      await p.drop();
      await w.expectNo('publish');
    });
  }

  it('[MQTT-4.7.1-1] accepts wildcard characters in topic filters', async () => {
    const s = await Peer.connect(b);
    assert.deepEqual(
      await s.subscribe([
        ['#', 0],
        ['+', 0],
        ['+/+/#', 0],
        ['a/+/c/#', 1],
      ]),
      [0, 0, 0, 1],
    );
  });

  /** Filters starting with a wildcard, and what each would match if $ were not special. */
  const WILD = ['#', '+', '+/+', '+/#', '+/broker/#', '+/+/+', '+/y'];

  it('[MQTT-4.7.2-1] does not send the broker\'s own $SYS topics, retained or live, to filters starting with a wildcard', () =>
    withBroker({ sysInterval: 1 }, async (b1) => {
      const wild: Peer[] = [];
      for (const f of WILD) wild.push(await watch(b1, f, 0));
      const sys = await watch(b1, '$SYS/#', 0);
      const sysPlus = await watch(b1, '$SYS/+/#', 0);
      await until(() => sys.of(T.PUBLISH).length > 0 && sysPlus.of(T.PUBLISH).length > 0, 'the $SYS topics');
      for (const w of wild) await w.roundTrip();
      assert.ok(sys.of(T.PUBLISH).length > 0, '$SYS/# receives the broker topics');
      assert.ok(sysPlus.of(T.PUBLISH).length > 0, '$SYS/+/# receives the broker topics');
      for (const [i, w] of wild.entries()) {
        assert.deepEqual(
          w.of(T.PUBLISH).map((f) => frameTopic(f).toString()),
          [],
          `nothing for ${WILD[i]}`,
        );
      }
    }));

  it('[MQTT-4.7.2-1] does not send $-topics published by clients, or by their wills, to filters starting with a wildcard', async () => {
    const wild: Peer[] = [];
    for (const f of WILD) wild.push(await watch(b, f, 0));
    const dollar = await watch(b, '$x/#', 0);
    const p = await Peer.connect(b);
    for (const t of ['$x/y', '$', '$SYS', '$SYS/x/y']) p.publish(t, t, { qos: 1, id: 1 });
    const w = await Peer.open(b);
    w.send(connectPacket({ will: { topic: '$x/will', payload: 'w' } }));
    await w.next('connack');
    await w.drop();
    // The broker routes client $ topics (only $SYS is its own): they reach the filter that names them.
    const routed = () => dollar.of(T.PUBLISH).map((f) => frameTopic(f).toString());
    await until(() => routed().length === 2, 'both $x messages routed to $x/#');
    assert.deepEqual(routed(), ['$x/y', '$x/will']);
    for (const [i, s] of wild.entries()) {
      assert.deepEqual(s.of(T.PUBLISH).map((f) => frameTopic(f).toString()), [], `nothing for ${WILD[i]}`);
    }
  });

  it('[MQTT-4.7.2-1] still matches filters that start with a wildcard against topic names without $', async () => {
    const wild: Peer[] = [];
    for (const f of WILD) wild.push(await watch(b, f, 0));
    const p = await Peer.connect(b);
    p.publish('a/y', 'x');
    p.publish('a/broker/z', 'x');
    await p.roundTrip();
    for (const w of wild) await w.roundTrip();
    assert.deepEqual(
      wild.map((s) => s.of(T.PUBLISH).map((f) => frameTopic(f).toString())),
      [['a/y', 'a/broker/z'], [], ['a/y'], ['a/y', 'a/broker/z'], ['a/broker/z'], ['a/broker/z'], ['a/y']],
    );
  });

  it('[MQTT-4.7.3-1] closes the connection on a PUBLISH with a zero-length topic name', async () => {
    const w = await watch(b, '#');
    for (const qos of [0, 1] as const) {
      const p = await Peer.connect(b);
      p.send(publishBytes('', 'x', { qos, id: 1 }));
      await p.expectClosed();
      assert.equal(p.of(T.PUBACK).length, 0);
    }
    await w.expectNo('publish');
  });

  it('[MQTT-4.7.3-1] refuses a zero-length filter in SUBSCRIBE with failure code 0x80, granting the others', async () => {
    const s = await Peer.connect(b);
    s.send(subscribeBytes(1, ['ok', 1], ['', 1]));
    await s.settled();
    assert.equal(s.isClosed, false, 'refused with a failure code, not by closing');
    assert.deepEqual(s.of(T.SUBACK).map((f) => [...f.body.subarray(2)]), [[1, 0x80]]);
  });

  it(
    '[MQTT-4.7.3-1] closes the connection on an UNSUBSCRIBE with a zero-length topic filter',
    async () => {
      const s = await Peer.connect(b);
      s.send(unsubscribeBytes(1, ''));
      await s.expectClosed(500);
    },
  );

  it('[MQTT-4.7.3-1] does not accept a zero-length will topic', async () => {
    const w = await watch(b, '#');
    const p = await Peer.open(b);
    p.send(connectPacket({ will: { topic: '', payload: 'x' } }));
    await p.expectClosed();
    assert.equal(p.of(T.CONNACK).filter((f) => f.body[1] === 0).length, 0);
    await w.expectNo('publish');
  });

  for (const [where, data] of [
    ['a PUBLISH topic name', publishBytes([0x61, 0x2f, 0x00], 'x', { qos: 1, id: 1 })],
    ['a SUBSCRIBE topic filter with wildcards', subscribeBytes(1, [[0x2b, 0x2f, 0x00, 0x2f, 0x23], 0])],
    ['an UNSUBSCRIBE topic filter', unsubscribeBytes(1, [0x23, 0x00])],
    ['a will topic', connectPacket({ will: { topic: [0x77, 0x00], payload: 'x' } })],
  ] as const) {
    it(`[MQTT-4.7.3-2] closes the connection on U+0000 in ${where}`, async () => {
      const p = where === 'a will topic' ? await Peer.open(b) : await Peer.connect(b);
      p.send(data);
      await p.expectClosed();
      if (where === 'a will topic') assert.equal(p.of(T.CONNACK).filter((f) => f.body[1] === 0).length, 0, 'not accepted');
      else assert.deepEqual(p.log.map((f) => f.type), [T.CONNACK], 'nothing answered');
    });
  }

  for (const [what, topic] of [
    ['65535 ASCII bytes', 'x'.repeat(65535)],
    ['65535 bytes of 3-byte characters', '\u20ac'.repeat(21845)],
    ['65535 bytes in many levels', 'ab/'.repeat(21845).slice(0, 65534) + 'z'],
  ] as const) {
    it(`[MQTT-4.7.3-3] routes a topic name and filter of the longest encodable length (${what}) intact`, async () => {
      assert.equal(Buffer.byteLength(topic), 65535);
      const s = await Peer.connect(b);
      assert.deepEqual(await s.subscribe(topic, 1), [1]);
      const p = await Peer.connect(b);
      p.publish(topic, 'long', { qos: 1, id: 1 });
      await p.next('puback');
      const m = await s.message();
      assert.equal(m.topic, topic);
      assert.equal(m.payload.toString(), 'long');
      await s.unsubscribe(topic);
      p.publish(topic, 'retained', { qos: 1, id: 2, retain: true });
      await p.next('puback');
      const late = await Peer.connect(b);
      await late.subscribe(topic, 1);
      const r = await late.message();
      assert.equal(r.topic, topic);
      assert.equal(r.retain, true);
    });
  }

  const DISTINCT: [string, string, string][] = [
    ['letter case', 'norm/ab', 'norm/AB'],
    ['a trailing separator', 'norm/ab', 'norm/ab/'],
    ['a doubled separator', 'norm/a/b', 'norm/a//b'],
    ['a leading separator', 'norm/a', '/norm/a'],
    ['spaces', 'norm/a b', 'norm/a  b'],
    ['NFC and NFD forms', 'norm/caf\u00e9', 'norm/cafe\u0301'],
    ['canonical equivalents (Ohm sign, Omega)', 'norm/\u2126', 'norm/\u03a9'],
    ['compatibility equivalents (ligature fi)', 'norm/\ufb01', 'norm/fi'],
    ['fullwidth letters', 'norm/\uff41', 'norm/a'],
  ];
  for (const [what, filter, other] of DISTINCT) {
    it(`[MQTT-4.7.3-4] matches without normalization: topics differing only in ${what} are different`, async () => {
      const s = await Peer.connect(b);
      await s.subscribe(filter, 0);
      const t = await Peer.connect(b);
      await t.subscribe(other, 0);
      const p = await Peer.connect(b);
      p.publish(other, 'other');
      p.publish(filter, 'same');
      const m = await s.message();
      assert.equal(m.payload.toString(), 'same');
      assert.deepEqual(frameTopic(s.of(T.PUBLISH)[0]!), Buffer.from(filter), 'topic bytes unchanged');
      const n = await t.message();
      assert.equal(n.payload.toString(), 'other');
      assert.deepEqual(frameTopic(t.of(T.PUBLISH)[0]!), Buffer.from(other), 'topic bytes unchanged');
      await s.expectNo('publish');
      await t.expectNo('publish');
    });
  }

  it('[MQTT-4.7.3-4] passes unrecognized characters through unchanged (noncharacters, private use, unassigned, U+10FFFF)', async () => {
    const topics = ['odd/\uffff', 'odd/\ue000', 'odd/\u0378', 'odd/\u{10ffff}', 'odd/\ufffd', 'odd/\u{1f600}'];
    const s = await Peer.connect(b);
    await s.subscribe('odd/+', 0);
    const exact = await Peer.connect(b);
    await exact.subscribe(topics.map((t) => [t, 0] as [string, number]));
    const p = await Peer.connect(b);
    for (const t of topics) p.publish(t, t);
    for (let i = 0; i < topics.length; i++) {
      await s.message();
      await exact.message();
    }
    for (const peer of [s, exact]) {
      assert.deepEqual(
        peer.of(T.PUBLISH).map((f) => frameTopic(f).toString('hex')),
        topics.map((t) => Buffer.from(t).toString('hex')),
      );
    }
  });
});

describe('MQTT 3.1.1 §4.8 handling errors', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  const VIOLATIONS: [string, number[] | Buffer][] = [
    ['a packet of reserved type 0', [0x00, 0x00]],
    ['a packet of reserved type 15', [0xf0, 0x00]],
    ['a CONNACK (server-to-client only)', [0x20, 2, 0, 0]],
    ['a SUBACK (server-to-client only)', [0x90, 3, 0, 1, 0]],
    ['an UNSUBACK (server-to-client only)', [0xb0, 2, 0, 1]],
    ['a PINGRESP (server-to-client only)', [0xd0, 0]],
    ['a SUBSCRIBE with no topic filter [MQTT-3.8.3-3]', [0x82, 2, 0, 1]],
    ['an UNSUBSCRIBE with no topic filter [MQTT-3.10.3-2]', [0xa2, 2, 0, 1]],
    ['a SUBSCRIBE whose last filter has no QoS byte', [0x82, 5, 0, 1, 0, 1, 0x61]],
    ['a SUBSCRIBE whose filter length runs past the packet', [0x82, 6, 0, 1, 0, 9, 0x61, 0]],
    ['a PINGREQ with a body', [0xc0, 1, 0]],
    ['a DISCONNECT with a body', [0xe0, 1, 0]],
    ['a PUBACK with a byte too many', [0x40, 3, 0, 1, 0]],
    ['a PUBACK with a byte too few', [0x40, 1, 0]],
    ['a PUBREC with a byte too many', [0x50, 3, 0, 1, 0]],
    ['a PUBREL with no packet identifier', [0x62, 0]],
    ['a PUBCOMP with a byte too many', [0x70, 4, 0, 1, 0, 0]],
    ['a PUBACK with packet identifier 0', [0x40, 2, 0, 0]],
    ['a Remaining Length of five bytes', [0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]],
    ['a QoS 1 PUBLISH ending inside its packet identifier', [0x32, 4, 0, 1, 0x61, 0]],
  ];
  for (const [what, data] of VIOLATIONS) {
    it(`[MQTT-4.8.0-1] closes the connection on ${what}, and keeps serving other clients`, async () => {
      const other = await Peer.connect(b);
      await other.subscribe('alive', 0);
      const p = await Peer.connect(b);
      p.send(data);
      await p.expectClosed();
      assert.deepEqual(p.log.map((f) => f.type), [T.CONNACK], 'nothing answered');
      const q = await Peer.connect(b);
      q.publish('alive', 'yes');
      assert.equal((await other.message()).payload.toString(), 'yes');
    });
  }

  for (const [what, data] of [
    ['PINGREQ', Buffer.from([0xc0, 0])],
    ['PUBLISH', publishBytes('first/t', 'x', { qos: 1, id: 1 })],
    ['SUBSCRIBE', subscribeBytes(1, ['first/#', 0])],
    ['DISCONNECT', Buffer.from([0xe0, 0])],
  ] as const) {
    it(`[MQTT-4.8.0-1] closes a connection whose first packet is a ${what}, not CONNECT [MQTT-3.1.0-1], answering nothing`, async () => {
      const w = await watch(b, 'first/#');
      const p = await Peer.open(b);
      p.send(Buffer.concat([data, connectPacket()]));
      await p.expectClosed();
      assert.equal(p.log.length, 0);
      await w.expectNo('publish');
    });
  }

  for (const filter of ['a/#/b', 'a+']) {
    it(
      `[MQTT-4.8.0-1] closes the connection on an UNSUBSCRIBE with the invalid topic filter "${filter}"`,
      async () => {
        const p = await Peer.connect(b);
        p.send(unsubscribeBytes(1, filter));
        await p.expectClosed(500);
        assert.equal(p.of(T.UNSUBACK).length, 0);
      },
    );
  }

  for (const filter of ['a/#/b', 'a+', 'a/b#', '#/']) {
    it(`[MQTT-4.8.0-1] does not make a subscription with the invalid topic filter "${filter}": SUBACK 0x80`, async () => {
      const p = await Peer.connect(b);
      p.send(subscribeBytes(1, [filter, 1]));
      await p.settled();
      assert.deepEqual(p.of(T.SUBACK).map((f) => [...f.body.subarray(2)]), [[0x80]], 'SUBACK 0x80');
      assert.equal(p.isClosed, false);
    });
  }

  for (const qos of [1, 2] as const) {
    it(`[MQTT-4.8.0-2] closes the connection when it cannot store a QoS ${qos} PUBLISH (arena full), without acknowledging it`, () =>
      withBroker({ arenaCapBytes: 1 << 20 }, async (b1) => {
        const w = await watch(b1, 'full');
        const p = await Peer.connect(b1);
        p.publish('full', Buffer.alloc(2 << 20), { qos, id: 1 });
        await p.expectClosed();
        assert.equal(p.log.filter((f) => f.type !== T.CONNACK).length, 0);
        await w.expectNo('publish');
      }));
  }

  it(
    '[MQTT-4.8.0-2] closes the connection when it cannot store a QoS 0 PUBLISH (arena full)',
    () =>
      withBroker({ arenaCapBytes: 1 << 20 }, async (b1) => {
        const p = await Peer.connect(b1);
        p.publish('full', Buffer.alloc(2 << 20));
        await p.expectClosed(1000);
      }),
  );
});
