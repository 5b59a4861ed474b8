// MQTT 3.1.1 conformance, §3.3 PUBLISH to §3.7 PUBCOMP.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { type ServerTestBroker, startBroker } from '../../helpers/broker.js';
import { Peer, publishBytes, T, until, watch } from './helpers.js';

// Examples of §4.7: filter → topic names it matches and topic names it does not.
const MATCHING: [string, string[], string[]][] = [
  ['sport/tennis/player1/#', ['sport/tennis/player1', 'sport/tennis/player1/ranking', 'sport/tennis/player1/score/wimbledon'], ['sport/tennis/player2', 'sport/tennis']],
  ['sport/#', ['sport', 'sport/tennis', 'sport/'], ['sports', 'Sport/tennis']],
  ['#', ['a', '/', 'a/b/c', '/finance'], []],
  ['sport/tennis/+', ['sport/tennis/player1', 'sport/tennis/player2', 'sport/tennis/'], ['sport/tennis/player1/ranking', 'sport/tennis']],
  ['sport/+', ['sport/', 'sport/x'], ['sport', 'sport/x/y']],
  ['+/+', ['/finance', 'a/b', '/'], ['finance', 'a/b/c']],
  ['/+', ['/finance', '/'], ['finance', 'a/finance']],
  ['+', ['finance', 'x'], ['/finance', 'a/b']],
  ['+/tennis/#', ['sport/tennis', 'sport/tennis/player1', '/tennis/x'], ['sport/tennis2', 'tennis']],
  ['a//b', ['a//b'], ['a/b', 'a///b']],
  ['+/#', ['a', 'a/b', '/', '/x/y'], []],
];
describe('MQTT 3.1.1 §3.3 PUBLISH: fixed header', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  for (const qos of [1, 2] as const) {
    it(`[MQTT-3.3.1.-1] sets DUP to 1 when it re-delivers a QoS ${qos} PUBLISH`, async () => {
      const s = await Peer.connect(b, { clientId: `dup-${qos}`, clean: false });
      await s.subscribe('dup/t', qos);
      const p = await Peer.connect(b);
      p.publish('dup/t', 'again', { qos, id: 1 });
      const first = await s.message();
      assert.equal(first.dup, false, 'first delivery has DUP 0');
      await s.drop();
      const back = await Peer.connect(b, { clientId: `dup-${qos}`, clean: false });
      const again = await back.message();
      assert.equal(again.dup, true);
      assert.equal(again.messageId, first.messageId);
      assert.equal(again.payload.toString(), 'again');
      assert.equal(back.of(T.PUBLISH)[0]!.flags & 0x08, 0x08);
    });
  }

  it('[MQTT-3.3.1-2] sends every QoS 0 PUBLISH with DUP 0, also for a DUP=1 QoS 1 publication delivered at QoS 0', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('dup0/#', 0);
    const p = await Peer.connect(b);
    p.publish('dup0/a', 'dup qos1', { qos: 1, id: 1, dup: true });
    p.publish('dup0/b', 'dup qos2', { qos: 2, id: 2, dup: true });
    p.publish('dup0/c', 'qos0');
    for (let i = 0; i < 3; i++) await s.message();
    for (const f of s.of(T.PUBLISH)) assert.equal(f.flags, 0, `flags of ${f.body.toString()}`);
  });

  it('[MQTT-3.3.1-2] closes the connection on a QoS 0 PUBLISH with DUP 1, without routing it', async () => {
    const w = await watch(b, 'dup0/#');
    const p = await Peer.connect(b);
    p.send(publishBytes('dup0/x', 'x', { qos: 0, dup: true }));
    await p.expectClosed();
    await w.expectNo('publish');
  });

  for (const qos of [1, 2] as const) {
    it(`[MQTT-3.3.1-3] does not propagate DUP: a DUP=1 QoS ${qos} PUBLISH reaches subscribers with DUP 0`, async () => {
      const s = await Peer.connect(b);
      await s.subscribe('dupprop', 2);
      const p = await Peer.connect(b);
      p.publish('dupprop', 'x', { qos, id: 9, dup: true });
      const m = await s.message();
      assert.equal(m.qos, qos);
      assert.equal(m.dup, false);
    });
  }

  it('[MQTT-3.3.1-3] sets DUP on a re-delivery although the original PUBLISH had DUP 0', async () => {
    const s = await Peer.connect(b, { clientId: 'dup-indep', clean: false });
    await s.subscribe('dupind', 1);
    const p = await Peer.connect(b);
    p.publish('dupind', 'x', { qos: 1, id: 3, dup: false });
    await s.message();
    await s.drop();
    const back = await Peer.connect(b, { clientId: 'dup-indep', clean: false });
    assert.equal((await back.message()).dup, true);
  });

  for (const flags of [0x06, 0x07, 0x0e]) {
    it(`[MQTT-3.3.1-4] closes the connection on a PUBLISH with both QoS bits set (header 0x${(0x30 | flags).toString(16)}), without routing it`, async () => {
      const w = await watch(b, 'q3/#');
      const p = await Peer.connect(b);
      const data = publishBytes('q3/t', 'x', { qos: 1, id: 1 });
      data[0] = 0x30 | flags;
      p.send(data);
      await p.expectClosed();
      assert.equal(p.log.filter((f) => f.type !== T.CONNACK).length, 0, 'not answered');
      await w.expectNo('publish');
    });
  }
});

describe('MQTT 3.1.1 §3.3.1.3 RETAIN', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  async function retain(topic: string, payload: string, qos: 0 | 1 | 2 = 1): Promise<void> {
    const p = await Peer.connect(b);
    p.publish(topic, payload, { qos, id: 1, retain: true });
    if (qos === 1) await p.next('puback');
    if (qos === 2) {
      await p.next('pubrec');
      p.send([0x62, 2, 0, 1]);
      await p.next('pubcomp');
    }
    if (qos === 0) {
      p.send([0xc0, 0]);
      await p.next('pingresp');
    }
    await p.disconnect();
  }

  it('[MQTT-3.3.1-5] stores a retained message with its QoS and gives it to a later subscriber', async () => {
    await retain('rq/0', 'zero', 0);
    await retain('rq/1', 'one', 1);
    await retain('rq/2', 'two', 2);
    const s = await Peer.connect(b);
    await s.subscribe('rq/+', 2);
    const got = [await s.message(), await s.message(), await s.message()].sort((x, y) => x.topic.localeCompare(y.topic));
    assert.deepEqual(
      got.map((m) => [m.topic, m.payload.toString(), m.qos]),
      [
        ['rq/0', 'zero', 0],
        ['rq/1', 'one', 1],
        ['rq/2', 'two', 2],
      ],
    );
  });

  it('[MQTT-3.3.1-5] delivers a stored retained message at no more than the granted QoS', async () => {
    await retain('rqg/2', 'two', 2);
    const s = await Peer.connect(b);
    await s.subscribe('rqg/2', 1);
    const m = await s.message();
    assert.equal(m.qos, 1);
  });

  it('[MQTT-3.3.1-6] sends the last retained message of every matching topic when a subscription is made', async () => {
    await retain('last/a', 'a1');
    await retain('last/a', 'a2');
    await retain('last/b', 'b1');
    await retain('last/c/d', 'cd1');
    await retain('other/x', 'no');
    const s = await Peer.connect(b);
    await s.subscribe('last/#', 1);
    const got = [await s.message(), await s.message(), await s.message()].map((m) => `${m.topic}=${m.payload}`).sort();
    assert.deepEqual(got, ['last/a=a2', 'last/b=b1', 'last/c/d=cd1']);
    await s.expectNo('publish');
  });

  for (const [filter, yes, no] of MATCHING) {
    it(`[MQTT-3.3.1-6] sends a new subscription "${filter}" the retained messages of exactly the matching topic names`, async () => {
      const p = await Peer.connect(b);
      const all = [...yes, ...no];
      all.forEach((topic, i) => p.publish(topic, topic, { qos: 1, id: i + 1, retain: true }));
      for (let i = 0; i < all.length; i++) await p.next('puback');
      const s = await Peer.connect(b);
      await s.subscribe(filter, 0);
      const got: string[] = [];
      for (let i = 0; i < yes.length; i++) {
        const m = await s.message();
        assert.equal(m.topic, m.payload.toString());
        assert.equal(m.retain, true);
        got.push(m.topic);
      }
      assert.deepEqual(got.sort(), [...yes].sort());
      await s.expectNo('publish');
    });
  }

  it('[MQTT-3.3.1-6] sends matching retained messages for each filter of a SUBSCRIBE with several', async () => {
    await retain('many/1', 'one');
    await retain('many/2', 'two');
    const s = await Peer.connect(b);
    await s.subscribe([
      ['many/1', 0],
      ['many/2', 1],
      ['many/3', 2],
    ]);
    const got = [await s.message(), await s.message()].map((m) => m.payload.toString()).sort();
    assert.deepEqual(got, ['one', 'two']);
  });

  it('[MQTT-3.3.1-7] discards the previous retained message when a QoS 0 retained message arrives', async () => {
    await retain('r0/t', 'old', 2);
    await retain('r0/t', 'new', 0);
    const s = await Peer.connect(b);
    await s.subscribe('r0/t', 2);
    await s.roundTrip();
    const got = s.packets.filter((x) => x.cmd === 'publish').map((m) => (m as IPublishPacket).payload.toString());
    assert.ok(!got.includes('old'), `the old retained message is gone (got ${JSON.stringify(got)})`);
    assert.ok(got.length <= 1);
  });

  it('[MQTT-3.3.1-8] sets RETAIN 1 on retained messages sent because of a new subscription', async () => {
    await retain('rflag/0', 'zero', 0);
    await retain('rflag/1', 'one', 1);
    const s = await Peer.connect(b);
    await s.subscribe('rflag/#', 1);
    await s.message();
    await s.message();
    const frames = s.of(T.PUBLISH);
    assert.equal(frames.length, 2);
    for (const f of frames) assert.equal(f.flags & 1, 1);
  });

  it('[MQTT-3.3.1-8] sets RETAIN 1 on the retained messages re-sent when a subscription is repeated', async () => {
    await retain('rrep/t', 'kept');
    const s = await Peer.connect(b);
    await s.subscribe('rrep/t', 1);
    assert.equal((await s.message()).retain, true);
    await s.subscribe('rrep/t', 2);
    assert.equal((await s.message()).retain, true);
  });

  it('[MQTT-3.3.1-9] sets RETAIN 0 on messages for established subscriptions, however they were published', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('live/#', 2);
    const p = await Peer.connect(b);
    p.publish('live/0', 'r0', { retain: true });
    p.publish('live/1', 'r1', { qos: 1, id: 1, retain: true });
    p.publish('live/2', 'r2', { qos: 2, id: 2, retain: true });
    p.publish('live/n', 'plain', { qos: 1, id: 3 });
    for (let i = 0; i < 4; i++) await s.message();
    const frames = s.of(T.PUBLISH);
    assert.equal(frames.length, 4);
    for (const f of frames) assert.equal(f.flags & 1, 0);
  });

  it('[MQTT-3.3.1-9] sets RETAIN 0 on a retained will delivered to an established subscription', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('live/will', 1);
    const d = await Peer.connect(b, { will: { topic: 'live/will', payload: Buffer.from('w'), qos: 1, retain: true } });
    await d.drop();
    assert.equal((await s.message()).retain, false);
  });

  it('[MQTT-3.3.1-10] delivers a zero-byte retained message to subscribers and removes the retained message', async () => {
    await retain('zero/t', 'stored');
    const s = await Peer.connect(b);
    await s.subscribe('zero/t', 1);
    assert.equal((await s.message()).payload.toString(), 'stored');
    const p = await Peer.connect(b);
    p.publish('zero/t', '', { qos: 1, id: 1, retain: true });
    await p.next('puback');
    const m = await s.message();
    assert.equal(m.payload.length, 0);
    assert.equal(m.retain, false);
    const late = await Peer.connect(b);
    await late.subscribe('zero/t', 1);
    await late.expectNo('publish');
  });

  it('[MQTT-3.3.1-10] removes the retained message also on a QoS 0 zero-byte retained publish', async () => {
    await retain('zero0/t', 'stored', 2);
    const p = await Peer.connect(b);
    p.publish('zero0/t', '', { retain: true });
    p.send([0xc0, 0]);
    await p.next('pingresp');
    const late = await Peer.connect(b);
    await late.subscribe('zero0/#', 1);
    await late.expectNo('publish');
  });

  it('[MQTT-3.3.1-11] does not store a zero-byte retained message', async () => {
    const p = await Peer.connect(b);
    p.publish('empty/a', '', { qos: 1, id: 1, retain: true });
    p.publish('empty/b', '', { qos: 2, id: 2, retain: true });
    p.publish('empty/c', '', { retain: true });
    await p.next('puback');
    await p.next('pubrec');
    const late = await Peer.connect(b);
    await late.subscribe('empty/#', 2);
    await late.expectNo('publish');
  });

  it('[MQTT-3.3.1-12] neither stores nor replaces nor removes a retained message for a PUBLISH with RETAIN 0', async () => {
    await retain('nr/t', 'kept');
    const p = await Peer.connect(b);
    p.publish('nr/t', 'not retained', { qos: 1, id: 1 });
    p.publish('nr/t', '', { qos: 1, id: 2 });
    p.publish('nr/u', 'not retained either', { qos: 1, id: 3 });
    await p.next('puback');
    await p.next('puback');
    await p.next('puback');
    const late = await Peer.connect(b);
    await late.subscribe('nr/+', 1);
    const m = await late.message();
    assert.equal(m.topic, 'nr/t');
    assert.equal(m.payload.toString(), 'kept');
    await late.expectNo('publish');
  });
});

describe('MQTT 3.1.1 §3.3.2 topic name', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  for (const [what, data] of [
    ['a topic of ill-formed UTF-8', publishBytes([0x74, 0xc3, 0x28], 'x', { qos: 1, id: 1 })],
    ['a topic length running past the packet', Buffer.from([0x32, 5, 0, 10, 0x61, 0, 1])],
    ['no topic at all (empty body)', Buffer.from([0x30, 0])],
    ['one byte of topic length only', Buffer.from([0x30, 1, 0])],
    ['a QoS 1 PUBLISH ending inside the packet identifier', Buffer.from([0x32, 4, 0, 1, 0x61, 0])],
  ] as const) {
    it(`[MQTT-3.3.2-1] closes the connection on a PUBLISH with ${what}`, async () => {
      const w = await watch(b, '#');
      const p = await Peer.connect(b);
      p.send(data);
      await p.expectClosed();
      assert.equal(p.of(T.PUBACK).length, 0);
      await w.expectNo('publish');
    });
  }

  for (const topic of ['+', '#', 'a/+', 'a/#', '+/b', 'a/+/c', 'a+', 'a#b', 'sport/tennis#', '/#']) {
    it(`[MQTT-3.3.2-2] closes the connection on a PUBLISH to the topic name "${topic}", without routing it`, async () => {
      const w = await watch(b, '#');
      const p = await Peer.connect(b);
      p.publish(topic, 'x', { qos: 1, id: 1 });
      await p.expectClosed();
      assert.equal(p.of(T.PUBACK).length, 0);
      await w.expectNo('publish');
    });
  }

  for (const [filter, yes, no] of MATCHING) {
    it(`[MQTT-3.3.2-3] sends to a subscription "${filter}" exactly the matching topic names, each under its own name`, async () => {
      const s = await Peer.connect(b);
      await s.subscribe(filter, 0);
      const p = await Peer.connect(b);
      for (const topic of [...no, ...yes]) p.publish(topic, topic);
      p.send([0xc0, 0]);
      await p.next('pingresp');
      const got: string[] = [];
      for (let i = 0; i < yes.length; i++) {
        const m = await s.message();
        assert.equal(m.topic, m.payload.toString(), 'the topic name is the one published, not the filter');
        got.push(m.topic);
      }
      assert.deepEqual(got, yes);
      await s.expectNo('publish');
    });
  }
});

describe('MQTT 3.1.1 §3.3.4 / §3.3.5 PUBLISH response and actions', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  it('[MQTT-3.3.4-1] answers QoS 0 with nothing, QoS 1 with PUBACK, QoS 2 with PUBREC (and PUBREL with PUBCOMP)', async () => {
    const p = await Peer.connect(b);
    p.publish('resp/0', 'x');
    p.send([0xc0, 0]);
    await p.next('pingresp');
    assert.deepEqual(p.log.map((f) => f.type), [T.CONNACK, T.PINGRESP], 'QoS 0 is not answered');
    p.publish('resp/1', 'x', { qos: 1, id: 11 });
    await p.next('puback');
    p.publish('resp/2', 'x', { qos: 2, id: 12 });
    await p.next('pubrec');
    p.send([0x62, 2, 0, 12]);
    await p.next('pubcomp');
    assert.deepEqual(
      p.log.slice(2).map((f) => [...f.raw]),
      [
        [0x40, 2, 0, 11],
        [0x50, 2, 0, 12],
        [0x70, 2, 0, 12],
      ],
    );
  });

  it('[MQTT-3.3.4-1] answers QoS 1 and QoS 2 PUBLISHes that match no subscription as well', async () => {
    const p = await Peer.connect(b);
    p.publish('nobody/1', 'x', { qos: 1, id: 1 });
    p.publish('nobody/2', 'x', { qos: 2, id: 2 });
    await p.next('puback');
    await p.next('pubrec');
  });

  /**
   * Sends `n` QoS `qos` PUBLISHes in one write (MQTT 3.1.1 has no Receive Maximum: a client may have
   * any number unacknowledged) and counts the PUBACK / PUBREC answers until all came or the connection closed.
   */
  async function burst(n: number, qos: 1 | 2, retain: boolean): Promise<{ answers: number; closed: boolean }> {
    const p = await Peer.connect(b);
    p.keep = false;
    let answers = 0;
    p.onFrame = (f) => {
      if (f.type === (qos === 1 ? T.PUBACK : T.PUBREC)) answers++;
    };
    p.send(Buffer.concat([...Array(n).keys()].map((i) => publishBytes(`burst/${i}`, 'x', { qos, id: i + 1, retain }))));
    await until(() => answers >= n || p.isClosed, 'answers', 5000);
    await p.settled();
    return { answers, closed: p.isClosed };
  }

  it('[MQTT-3.3.4-1] answers each of 1200 QoS 1 PUBLISHes sent in one burst with PUBACK', async () => {
    assert.deepEqual(await burst(1200, 1, false), { answers: 1200, closed: false });
  });

  it(
    '[MQTT-3.3.4-1] answers each of 1200 retained QoS 1 PUBLISHes sent in one burst with PUBACK',
    async () => {
      assert.deepEqual(await burst(1200, 1, true), { answers: 1200, closed: false });
    },
  );

  it(
    '[MQTT-3.3.4-1] answers each of 1200 QoS 1 PUBLISHes queued for an offline persistent session with PUBACK',
    async () => {
      const s = await Peer.connect(b, { clientId: 'burst-offline', clean: false });
      await s.subscribe('burst/#', 1);
      await s.disconnect();
      assert.deepEqual(await burst(1200, 1, false), { answers: 1200, closed: false });
    },
  );

  it('[MQTT-3.3.4-1] answers a QoS 1 PUBLISH with a RETAIN flag and an empty payload', async () => {
    const p = await Peer.connect(b);
    p.publish('resp/empty', '', { qos: 1, id: 77, retain: true });
    await p.next('puback');
  });

  for (const [pubQos, expected] of [
    [2, 2],
    [1, 1],
    [0, 0],
  ] as const) {
    it(`[MQTT-3.3.5-1] delivers a QoS ${pubQos} message matching overlapping subscriptions at the highest matching QoS (${expected})`, async () => {
      const s = await Peer.connect(b);
      assert.deepEqual(
        await s.subscribe([
          ['ov/+/c', 0],
          ['ov/#', 2],
          ['ov/b/+', 1],
        ]),
        [0, 2, 1],
      );
      const p = await Peer.connect(b);
      p.publish('ov/b/c', 'x', { qos: pubQos, id: 1 });
      const first = await s.message();
      await s.roundTrip();
      const copies = [first, ...(s.packets.filter((x) => x.cmd === 'publish') as IPublishPacket[])];
      assert.ok(copies.some((m) => m.qos === expected), `a copy at QoS ${expected}: ${copies.map((m) => m.qos)}`);
      assert.ok(copies.every((m) => m.qos <= expected));
    });
  }
});

describe('MQTT 3.1.1 §3.3.5 a PUBLISH the server does not authorize', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker({
      authorizePublish: (_client, topic) => (topic.startsWith('deny/') ? false : topic.startsWith('later/') ? Promise.resolve(false) : true),
    });
  });
  afterEach(() => b.close());

  for (const prefix of ['deny', 'later']) {
    for (const qos of [1, 2] as const) {
      it(`[MQTT-3.3.5-2] answers a QoS ${qos} PUBLISH it does not authorize (${prefix === 'deny' ? 'at once' : 'asynchronously'}) with a positive acknowledgement, and routes nothing`, async () => {
        const w = await watch(b, `${prefix}/#`);
        const p = await Peer.connect(b);
        p.publish(`${prefix}/t`, 'x', { qos, id: 21 });
        // 3.1.1 has no negative acknowledgement: the message is acknowledged and dropped, as Mosquitto does.
        assert.equal(((await p.next(qos === 1 ? 'puback' : 'pubrec')) as { messageId: number }).messageId, 21);
        if (qos === 2) {
          p.send([0x62, 2, 0, 21]);
          await p.next('pubcomp');
        }
        await p.expectOpen();
        await w.expectNo('publish');
      });
    }
  }

  it('[MQTT-3.3.5-2] sends nothing back for a QoS 0 PUBLISH it does not authorize and routes nothing', async () => {
    const w = await watch(b, 'deny/#');
    const p = await Peer.connect(b);
    p.publish('deny/t', 'x');
    p.publish('ok/t', 'x', { qos: 1, id: 1 });
    await p.next('puback');
    assert.deepEqual(p.log.map((f) => f.type), [T.CONNACK, T.PUBACK]);
    await w.expectNo('publish');
  });
});

describe('MQTT 3.1.1 §3.6 PUBREL', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  for (const header of [0x60, 0x61, 0x63, 0x64, 0x6a, 0x6f]) {
    it(`[MQTT-3.6.1-1] closes the connection on a PUBREL with header 0x${header.toString(16)} and does not complete the flow`, async () => {
      const w = await watch(b, 'rel/t');
      const p = await Peer.connect(b);
      p.publish('rel/t', 'x', { qos: 2, id: 4 });
      await p.next('pubrec');
      await w.message();
      p.send([header, 2, 0, 4]);
      await p.expectClosed();
      assert.equal(p.of(T.PUBCOMP).length, 0);
    });
  }

  it('[MQTT-3.6.1-1] accepts the PUBREL header 0x62 and answers PUBCOMP', async () => {
    const p = await Peer.connect(b);
    p.publish('rel/ok', 'x', { qos: 2, id: 4 });
    await p.next('pubrec');
    p.send([0x62, 2, 0, 4]);
    await p.next('pubcomp');
  });

  it('[MQTT-3.6.1-1] sends its own PUBREL with header 0x62', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('relhdr', 2);
    const p = await Peer.connect(b);
    p.publish('relhdr', 'x', { qos: 2, id: 1 });
    const m = await s.message();
    s.send([0x50, 2, m.messageId! >> 8, m.messageId! & 0xff]);
    await s.next('pubrel');
    assert.equal(s.of(T.PUBREL)[0]!.header, 0x62);
  });
});
