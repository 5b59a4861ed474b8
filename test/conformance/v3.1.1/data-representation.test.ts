// MQTT 3.1.1 conformance, chapters 1 and 2: UTF-8 strings, fixed header flags, packet identifiers.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { type ServerTestBroker, startBroker } from '../../helpers/broker.js';
import {
  connectPacket,
  pace,
  Peer,
  publishBytes,
  subscribeBytes,
  T,
  unsubscribeBytes,
  until,
  watch,
} from './helpers.js';

/** Ill-formed UTF-8 (RFC 3629), each with what is wrong with it. */
const ILL_FORMED: [string, number[]][] = [
  ['a bad continuation byte', [0x61, 0xc3, 0x28]],
  ['the surrogate U+D800', [0x61, 0xed, 0xa0, 0x80]],
  ['the surrogate U+DFFF', [0xed, 0xbf, 0xbf, 0x61]],
  ['an overlong 2-byte "/"', [0x61, 0xc0, 0xaf]],
  ['an overlong 3-byte "/"', [0x61, 0xe0, 0x80, 0xaf]],
  ['an overlong 2-byte U+0000', [0x61, 0xc0, 0x80]],
  ['a code point above U+10FFFF', [0x61, 0xf4, 0x90, 0x80, 0x80]],
  ['a 5-byte sequence', [0x61, 0xf8, 0x88, 0x80, 0x80, 0x80]],
  ['the byte 0xFF', [0x61, 0xff]],
  ['a stray continuation byte', [0x61, 0x80]],
  ['a sequence truncated at the end', [0x61, 0xe2, 0x82]],
];

describe('MQTT 3.1.1 §1.5.3 UTF-8 encoded strings', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  /** A watcher on "#" so a PUBLISH that should be refused can be seen not to be routed. */
  const watcher = (): Promise<Peer> => watch(b, '#');

  for (const [what, seq] of ILL_FORMED) {
    it(`[MQTT-1.5.3-1] closes the connection on a PUBLISH topic name with ${what}, without routing it`, async () => {
      const w = await watcher();
      const p = await Peer.connect(b);
      p.send(publishBytes(seq, 'x', { qos: 1, id: 1 }));
      await p.expectClosed();
      assert.equal(p.of(T.PUBACK).length, 0, 'no PUBACK');
      await w.expectNo('publish');
    });

    it(`[MQTT-1.5.3-1] closes the connection on a SUBSCRIBE topic filter with ${what}`, async () => {
      const p = await Peer.connect(b);
      p.send(subscribeBytes(1, [seq, 0]));
      await p.expectClosed();
    });
  }

  for (const [what, seq] of ILL_FORMED.slice(1, 4)) {
    it(`[MQTT-1.5.3-1] closes the connection on an UNSUBSCRIBE topic filter with ${what}`, async () => {
      const p = await Peer.connect(b);
      p.send(unsubscribeBytes(1, seq));
      await p.expectClosed();
      assert.equal(p.of(T.UNSUBACK).length, 0);
    });

    for (const [field, fields] of [
      ['client identifier', { clientId: seq }],
      ['will topic', { will: { topic: seq, payload: 'w' } }],
      ['user name', { username: seq }],
    ] as const) {
      it(`[MQTT-1.5.3-1] closes the connection, not accepting it, on a CONNECT ${field} with ${what}`, async () => {
        const p = await Peer.open(b);
        p.send(connectPacket(fields));
        await p.expectClosed();
        assert.equal(
          p.of(T.CONNACK).filter((f) => f.body[1] === 0).length,
          0,
          'no CONNACK accepting the connection',
        );
      });
    }
  }

  /** A PUBLISH whose topic name holds `seq`, sent in two TCP segments that split the topic. */
  const splitTopic = (seq: number[]) => async (): Promise<void> => {
    const w = await watch(b, '#');
    const p = await Peer.connect(b);
    const data = publishBytes(seq, 'x'.repeat(100), { qos: 1, id: 1 });
    p.send(data.subarray(0, 6));
    await pace(20);
    p.send(data.subarray(6));
    await p.expectClosed();
    assert.equal(p.of(T.PUBACK).length, 0);
    await w.expectNo('publish');
  };
  it('[MQTT-1.5.3-1] closes the connection on a PUBLISH topic name with the surrogate U+D800 that arrives split across TCP segments', splitTopic([0x61, 0xed, 0xa0, 0x80, 0x62]));
  it('[MQTT-1.5.3-2] closes the connection on a PUBLISH topic name with U+0000 that arrives split across TCP segments', splitTopic([0x61, 0x00, 0x62]));

  it('[MQTT-1.5.3-1] accepts a well-formed topic name whose multi-byte characters are split across TCP segments', async () => {
    const topic = 'split/\u20ac\u{1f600}/\u00e9';
    const s = await watch(b, 'split/#', 1);
    const p = await Peer.connect(b);
    const data = publishBytes(topic, 'ok', { qos: 1, id: 1 });
    for (const cut of [[0, 9], [9, 12], [12, 14], [14, data.length]]) {
      p.send(data.subarray(cut[0], cut[1]));
      await pace(10);
    }
    await p.next('puback');
    const m = await s.message();
    assert.equal(m.topic, topic);
  });

  it('[MQTT-1.5.3-1] applies to strings only: a payload that is not UTF-8 is delivered intact', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('bin', 1);
    const p = await Peer.connect(b);
    const payload = Buffer.from([0xed, 0xa0, 0x80, 0x00, 0xff, 0xc0, 0x80]);
    p.publish('bin', payload, { qos: 1, id: 9 });
    await p.next('puback');
    const m = await s.message();
    assert.deepEqual(Buffer.from(m.payload as Buffer), payload);
  });

  const NUL: [string, number[]][] = [
    ['in the middle', [0x61, 0x00, 0x62]],
    ['at the start', [0x00, 0x61]],
    ['as the only character', [0x00]],
  ];
  for (const [where, seq] of NUL) {
    it(`[MQTT-1.5.3-2] closes the connection on U+0000 ${where} of a PUBLISH topic name, without routing it`, async () => {
      const w = await watcher();
      const p = await Peer.connect(b);
      p.send(publishBytes(seq, 'x', { qos: 2, id: 3 }));
      await p.expectClosed();
      assert.equal(p.of(T.PUBREC).length, 0, 'no PUBREC');
      await w.expectNo('publish');
    });

    it(`[MQTT-1.5.3-2] closes the connection on U+0000 ${where} of a SUBSCRIBE topic filter`, async () => {
      const p = await Peer.connect(b);
      p.send(subscribeBytes(1, [seq, 1]));
      await p.expectClosed();
    });

    it(`[MQTT-1.5.3-2] closes the connection on U+0000 ${where} of an UNSUBSCRIBE topic filter`, async () => {
      const p = await Peer.connect(b);
      p.send(unsubscribeBytes(1, seq));
      await p.expectClosed();
      assert.equal(p.of(T.UNSUBACK).length, 0);
    });
  }

  for (const [field, fields] of [
    ['client identifier', { clientId: [0x61, 0x00] }],
    ['will topic', { will: { topic: [0x61, 0x00], payload: 'w' } }],
    ['user name', { username: [0x00] }],
  ] as const) {
    it(`[MQTT-1.5.3-2] closes the connection, not accepting it, on U+0000 in the CONNECT ${field}`, async () => {
      const p = await Peer.open(b);
      p.send(connectPacket(fields));
      await p.expectClosed();
      assert.equal(p.of(T.CONNACK).filter((f) => f.body[1] === 0).length, 0, 'no CONNACK accepting the connection');
    });
  }

  it('[MQTT-1.5.3-3] keeps a leading U+FEFF in a topic name: it is a different topic, delivered with its BOM', async () => {
    const withBom = await Peer.connect(b);
    await withBom.subscribe('\uFEFFbom/t', 1);
    const without = await Peer.connect(b);
    await without.subscribe('bom/t', 1);
    const p = await Peer.connect(b);
    p.send(publishBytes([0xef, 0xbb, 0xbf, ...Buffer.from('bom/t')], 'with', { qos: 1, id: 1 }));
    await p.next('puback');
    const m = await withBom.message();
    assert.equal(m.payload.toString(), 'with');
    const topicFrame = withBom.of(T.PUBLISH)[0]!;
    assert.deepEqual([...topicFrame.body.subarray(0, 2 + 8)], [0, 8, 0xef, 0xbb, 0xbf, ...Buffer.from('bom/t')]);
    await without.expectNo('publish');
  });

  it('[MQTT-1.5.3-3] keeps U+FEFF inside a topic filter and a topic level', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('a/\uFEFF/+', 0);
    const plain = await Peer.connect(b);
    await plain.subscribe('a//+', 0);
    const p = await Peer.connect(b);
    p.publish('a/\uFEFF/x', 'bom');
    p.publish('a//x', 'plain');
    const m = await s.message();
    assert.equal(m.topic, 'a/\uFEFF/x');
    assert.equal(m.payload.toString(), 'bom');
    const n = await plain.message();
    assert.equal(n.payload.toString(), 'plain');
    await s.expectNo('publish');
    await plain.expectNo('publish');
  });

  it('[MQTT-1.5.3-3] keeps a leading U+FEFF in a client identifier: it names another session', async () => {
    const first = await Peer.connect(b, { clientId: '\uFEFFsame', clean: false });
    await first.subscribe('bomid', 1);
    await first.disconnect();
    const other = await Peer.connect(b, { clientId: 'same', clean: false });
    assert.equal(other.connack.sessionPresent, false, 'no session for "same"');
    await other.disconnect();
    const back = await Peer.connect(b, { clientId: '\uFEFFsame', clean: false });
    assert.equal(back.connack.sessionPresent, true);
  });
});

describe('MQTT 3.1.1 §2.2.2 fixed header flags', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  it('[MQTT-2.2.2-1] sets the flags of every packet it sends as Table 2.2 lists', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('flags/#', 2);
    s.send([0xc0, 0]);
    await s.next('pingresp');
    const p = await Peer.connect(b);
    p.publish('flags/1', 'one', { qos: 1, id: 1 });
    await p.next('puback');
    p.publish('flags/2', 'two', { qos: 2, id: 2 });
    await p.next('pubrec');
    p.send([0x62, 2, 0, 2]);
    await p.next('pubcomp');
    p.publish('flags/0', 'zero', { retain: true });
    const got: IPublishPacket[] = [await s.message(), await s.message(), await s.message()];
    const two = got.find((m) => m.qos === 2)!;
    s.send([0x50, 2, two.messageId! >> 8, two.messageId! & 0xff]);
    await s.next('pubrel');
    s.send([0x70, 2, two.messageId! >> 8, two.messageId! & 0xff]);
    const one = got.find((m) => m.qos === 1)!;
    s.send([0x40, 2, one.messageId! >> 8, one.messageId! & 0xff]);
    await s.unsubscribe('flags/#');
    const late = await Peer.connect(b);
    await late.subscribe('flags/0', 0);
    await late.message();

    const expected: Record<number, number> = {
      [T.CONNACK]: 0,
      [T.PUBACK]: 0,
      [T.PUBREC]: 0,
      [T.PUBREL]: 2,
      [T.PUBCOMP]: 0,
      [T.SUBACK]: 0,
      [T.UNSUBACK]: 0,
      [T.PINGRESP]: 0,
    };
    const frames = [...s.log, ...p.log, ...late.log];
    const seen = new Set(frames.map((f) => f.type));
    for (const t of [T.CONNACK, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBACK, T.UNSUBACK, T.PINGRESP, T.PUBLISH]) {
      assert.ok(seen.has(t), `the flow produced packet type ${t}`);
    }
    for (const f of frames) {
      if (f.type === T.PUBLISH) {
        const qos = (f.flags >> 1) & 3;
        assert.notEqual(qos, 3, 'PUBLISH QoS is never 3');
        if (qos === 0) assert.equal(f.flags & 0x08, 0, 'no DUP on QoS 0');
      } else {
        assert.equal(f.flags, expected[f.type], `flags of packet type ${f.type}`);
      }
    }
  });

  it('[MQTT-2.2.2-2] closes the connection on a CONNECT with fixed header flags 0x1, without CONNACK', async () => {
    const p = await Peer.open(b);
    const c = connectPacket();
    c[0] = 0x11;
    p.send(c);
    await p.expectClosed();
    assert.equal(p.log.length, 0);
  });

  const BAD: [string, number[], number][] = [
    ['PUBACK', [0x41, 2, 0, 1], T.PUBACK],
    ['PUBACK', [0x48, 2, 0, 1], T.PUBACK],
    ['PUBREC', [0x52, 2, 0, 1], T.PUBREC],
    ['PUBREL', [0x60, 2, 0, 1], T.PUBCOMP],
    ['PUBREL', [0x63, 2, 0, 1], T.PUBCOMP],
    ['PUBREL', [0x6a, 2, 0, 1], T.PUBCOMP],
    ['PUBCOMP', [0x71, 2, 0, 1], T.PUBCOMP],
    ['SUBSCRIBE', [0x80, 6, 0, 1, 0, 1, 0x61, 0], T.SUBACK],
    ['SUBSCRIBE', [0x83, 6, 0, 1, 0, 1, 0x61, 0], T.SUBACK],
    ['SUBSCRIBE', [0x8a, 6, 0, 1, 0, 1, 0x61, 0], T.SUBACK],
    ['UNSUBSCRIBE', [0xa0, 5, 0, 1, 0, 1, 0x61], T.UNSUBACK],
    ['UNSUBSCRIBE', [0xa3, 5, 0, 1, 0, 1, 0x61], T.UNSUBACK],
    ['PINGREQ', [0xc1, 0], T.PINGRESP],
    ['PINGREQ', [0xc8, 0], T.PINGRESP],
    ['DISCONNECT', [0xe2, 0], -1],
  ];
  for (const [name, data, answer] of BAD) {
    it(`[MQTT-2.2.2-2] closes the connection on a ${name} with fixed header flags 0x${(data[0]! & 0x0f).toString(16)}, without answering it`, async () => {
      const p = await Peer.connect(b);
      if (name === 'PUBREL') {
        // An incoming QoS 2 message waiting for its PUBREL, so a PUBCOMP would be due for a valid one.
        p.publish('flags/rel', 'x', { qos: 2, id: 1 });
        await p.next('pubrec');
      }
      p.send(data);
      await p.expectClosed();
      assert.equal(p.of(answer).length, 0, 'not answered');
    });
  }
});

describe('MQTT 3.1.1 §2.3.1 packet identifiers', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  for (const [name, data, answer] of [
    ['SUBSCRIBE', subscribeBytes(0, ['pid/t', 1]), T.SUBACK],
    ['UNSUBSCRIBE', unsubscribeBytes(0, 'pid/t'), T.UNSUBACK],
    ['QoS 1 PUBLISH', publishBytes('pid/t', 'x', { qos: 1, id: 0 }), T.PUBACK],
    ['QoS 2 PUBLISH', publishBytes('pid/t', 'x', { qos: 2, id: 0 }), T.PUBREC],
  ] as const) {
    it(`[MQTT-2.3.1-1] closes the connection on a ${name} with packet identifier 0, without answering or routing it`, async () => {
      const w = await Peer.connect(b);
      await w.subscribe('pid/#', 2);
      const p = await Peer.connect(b);
      p.send(data);
      await p.expectClosed();
      assert.equal(p.of(answer).length, 0, 'not answered');
      await w.expectNo('publish');
    });
  }

  it('[MQTT-2.3.1-1] sends every QoS 1 and QoS 2 PUBLISH with a non-zero packet identifier', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('nz/#', 2);
    const p = await Peer.connect(b);
    for (let i = 0; i < 20; i++) p.publish(`nz/${i}`, String(i), { qos: ((i % 2) + 1) as 1 | 2, id: i + 1 });
    for (let i = 0; i < 20; i++) {
      const m = await s.message();
      assert.ok(m.qos > 0);
      assert.ok(m.messageId !== undefined && m.messageId > 0 && m.messageId <= 0xffff, `packet id ${m.messageId}`);
    }
  });

  it('[MQTT-2.3.1-4] gives every unacknowledged QoS 1 and QoS 2 PUBLISH to a client its own packet identifier', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('ids/#', 2);
    const p = await Peer.connect(b);
    for (let i = 0; i < 60; i++) p.publish(`ids/${i}`, String(i), { qos: ((i % 2) + 1) as 1 | 2, id: i + 1 });
    const ids: number[] = [];
    for (let i = 0; i < 60; i++) ids.push((await s.message()).messageId!);
    assert.equal(new Set(ids).size, 60, 'all distinct');
    assert.ok(ids.every((id) => id > 0));
  });

  it('[MQTT-2.3.1-4] re-sends a PUBLISH with the packet identifier it was first sent with', async () => {
    const s = await Peer.connect(b, { clientId: 'resendid', clean: false });
    await s.subscribe('rid/#', 1);
    const p = await Peer.connect(b);
    for (let i = 0; i < 3; i++) p.publish(`rid/${i}`, String(i), { qos: 1, id: i + 1 });
    const first = [await s.message(), await s.message(), await s.message()];
    await s.drop();
    const again = await Peer.connect(b, { clientId: 'resendid', clean: false });
    const resent = [await again.message(), await again.message(), await again.message()];
    assert.deepEqual(
      resent.map((m) => [m.topic, m.messageId]),
      first.map((m) => [m.topic, m.messageId]),
    );
  });

  it('[MQTT-2.3.1-5] sends QoS 0 PUBLISH packets without a packet identifier', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('q0/#', 0);
    const p = await Peer.connect(b);
    p.publish('q0/a', 'from-qos0');
    p.publish('q0/b', 'from-qos1', { qos: 1, id: 0x4142 });
    p.publish('q0/c', 'from-qos2', { qos: 2, id: 0x4344 });
    await p.next('puback');
    await p.next('pubrec');
    for (let i = 0; i < 3; i++) await s.message();
    const frames = s.of(T.PUBLISH);
    assert.equal(frames.length, 3);
    for (const f of frames) {
      assert.equal((f.flags >> 1) & 3, 0);
      const topic = f.body.subarray(2, 2 + f.body.readUInt16BE(0)).toString();
      const payload = f.body.subarray(2 + topic.length).toString();
      assert.equal(payload, { 'q0/a': 'from-qos0', 'q0/b': 'from-qos1', 'q0/c': 'from-qos2' }[topic], 'only topic and payload after the header');
    }
  });

  for (const id of [1, 0x00ff, 0x0100, 0x7fff, 0xfffe, 0xffff]) {
    it(`[MQTT-2.3.1-6] answers PUBLISH id 0x${id.toString(16)} with PUBACK / PUBREC of the same identifier`, async () => {
      const p = await Peer.connect(b);
      p.publish('ackid', 'x', { qos: 1, id });
      p.publish('ackid', 'y', { qos: 2, id });
      await p.next('puback');
      await p.next('pubrec');
      assert.deepEqual([...p.of(T.PUBACK)[0]!.raw], [0x40, 2, id >> 8, id & 0xff]);
      assert.deepEqual([...p.of(T.PUBREC)[0]!.raw], [0x50, 2, id >> 8, id & 0xff]);
    });
  }

  it('[MQTT-2.3.1-6] sends its PUBREL with the identifier of the PUBLISH it sent', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('relid/#', 2);
    const p = await Peer.connect(b);
    for (let i = 0; i < 5; i++) p.publish(`relid/${i}`, String(i), { qos: 2, id: 100 + i });
    const msgs: IPublishPacket[] = [];
    for (let i = 0; i < 5; i++) msgs.push(await s.message());
    for (const m of msgs) s.send([0x50, 2, m.messageId! >> 8, m.messageId! & 0xff]);
    await until(() => s.of(T.PUBREL).length >= msgs.length, 'a PUBREL for each PUBREC');
    await s.roundTrip();
    const rels = s.of(T.PUBREL).map((f) => f.body.readUInt16BE(0));
    assert.deepEqual(rels, msgs.map((m) => m.messageId));
  });

  for (const id of [1, 0x0100, 0x1234, 0xffff]) {
    it(`[MQTT-2.3.1-7] answers SUBSCRIBE and UNSUBSCRIBE id 0x${id.toString(16)} with SUBACK and UNSUBACK of the same identifier`, async () => {
      const p = await Peer.connect(b);
      p.send(subscribeBytes(id, ['sid/t', 1]));
      await p.next('suback');
      p.send(unsubscribeBytes(id, 'sid/t'));
      await p.next('unsuback');
      assert.deepEqual([...p.of(T.SUBACK)[0]!.raw], [0x90, 3, id >> 8, id & 0xff, 1]);
      assert.deepEqual([...p.of(T.UNSUBACK)[0]!.raw], [0xb0, 2, id >> 8, id & 0xff]);
    });
  }

  it('[MQTT-2.3.1-7] answers several outstanding SUBSCRIBE / UNSUBSCRIBE packets each with its own identifier', async () => {
    const p = await Peer.connect(b);
    p.send(Buffer.concat([subscribeBytes(7, ['m/a', 0]), unsubscribeBytes(8, 'm/a'), subscribeBytes(9, ['m/b', 2]), unsubscribeBytes(10, 'm/x')]));
    await p.roundTrip();
    const acks = p.log.filter((f) => f.type === T.SUBACK || f.type === T.UNSUBACK).map((f) => [f.type, f.body.readUInt16BE(0)]);
    assert.deepEqual(acks, [
      [T.SUBACK, 7],
      [T.UNSUBACK, 8],
      [T.SUBACK, 9],
      [T.UNSUBACK, 10],
    ]);
  });
});

describe('MQTT 3.1.1 §2.3.1 packet identifiers: wrap-around', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker({ maxQueuedMessages: 100_000, maxInflight: 1000 });
  });
  afterEach(() => b.close());

  it('[MQTT-2.3.1-4] does not reuse the identifier of an unacknowledged PUBLISH when its counter wraps around', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('wrap', 1);
    const p = await Peer.connect(b);
    p.publish('wrap', 'held', { qos: 1, id: 1 });
    const held = await s.message();
    const heldId = held.messageId!;
    // From here the subscriber acknowledges everything but the held message, watching the identifiers.
    const bad: number[] = [];
    let received = 0;
    s.keep = false;
    s.onFrame = (f) => {
      if (f.type !== T.PUBLISH) return;
      const id = frameId(f.body);
      if (id === heldId || id === 0) bad.push(id);
      received++;
      s.send([0x40, 2, id >> 8, id & 0xff]);
    };
    let acks = 0;
    p.keep = false;
    p.onFrame = (f) => {
      if (f.type === T.PUBACK) acks++;
    };
    const total = 65536;
    const batch = 4096;
    const deadline = Date.now() + 20_000;
    const before = (done: () => boolean, what: string): Promise<void> =>
      until(done, `${what} (${acks} PUBACKs, ${received} PUBLISHes so far)`, Math.max(0, deadline - Date.now()));
    let sent = 0;
    while (sent < total) {
      const chunk: Buffer[] = [];
      for (let i = 0; i < batch && sent < total; i++, sent++) chunk.push(publishBytes('wrap', '', { qos: 1, id: (sent % 65535) + 1 }));
      p.send(Buffer.concat(chunk));
      await before(() => acks >= sent, 'PUBACKs');
      p.queued.length = 0;
      s.queued.length = 0;
    }
    await before(() => received >= total, 'deliveries');
    assert.deepEqual(bad, [], `identifiers reused while ${heldId} is unacknowledged`);
    s.onFrame = null;
    s.send([0x40, 2, heldId >> 8, heldId & 0xff]);
    await s.roundTrip();
  });
});

/** Packet identifier of a QoS > 0 PUBLISH body. */
function frameId(body: Buffer): number {
  const at = 2 + body.readUInt16BE(0);
  return body.readUInt16BE(at);
}
