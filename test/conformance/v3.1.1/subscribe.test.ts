// MQTT 3.1.1 conformance, §3.8 SUBSCRIBE to §3.11 UNSUBACK.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { collect, type ServerTestBroker, startBroker } from '../../helpers/broker.js';
import { pace, Peer, subscribeBytes, T, unsubscribeBytes, withBroker } from './helpers.js';

describe('MQTT 3.1.1 §3.8 SUBSCRIBE', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  for (const header of [0x80, 0x81, 0x83, 0x86, 0x8a, 0x8f]) {
    it(`[MQTT-3.8.1-1] closes the connection on a SUBSCRIBE with header 0x${header.toString(16)}, without SUBACK or subscription`, async () => {
      const s = await Peer.connect(b);
      const data = subscribeBytes(1, ['bad/flags', 0]);
      data[0] = header;
      s.send(data);
      await s.expectClosed();
      assert.equal(s.of(T.SUBACK).length, 0);
    });
  }

  it('[MQTT-3.8.3-2] supports topic filters with wildcards (or rejects them with 0x80)', async () => {
    const s = await Peer.connect(b);
    const codes = await s.subscribe([
      ['wc/+/x', 1],
      ['wm/#', 1],
    ]);
    const p = await Peer.connect(b);
    p.publish('wc/a/x', 'plus', { qos: 1, id: 1 });
    p.publish('wm/a/b', 'hash', { qos: 1, id: 2 });
    await p.next('puback');
    await p.next('puback');
    await s.roundTrip();
    const got = (s.packets.filter((x) => x.cmd === 'publish') as IPublishPacket[]).map((m) => m.payload.toString());
    assert.deepEqual(codes, [1, 1], 'both wildcard filters granted');
    assert.deepEqual(got.sort(), ['hash', 'plus'], 'the + and the # filter deliver');
  });

  it('[MQTT-3.8.3-2] rejects every subscription whose filter has a wildcard when wildcards are not supported', () =>
    withBroker({ wildcardSubscriptions: false }, async (b1) => {
      const s = await Peer.connect(b1);
      assert.deepEqual(
        await s.subscribe([
          ['nw/+', 1],
          ['nw/plain', 1],
          ['#', 0],
          ['nw/a/#', 2],
        ]),
        [0x80, 1, 0x80, 0x80],
      );
      const p = await Peer.connect(b1);
      p.publish('nw/x', 'wild', { qos: 1, id: 1 });
      p.publish('nw/a/b', 'wild', { qos: 1, id: 2 });
      p.publish('nw/plain', 'plain', { qos: 1, id: 3 });
      assert.equal((await s.message()).payload.toString(), 'plain');
      await s.expectNo('publish');
    }));

  for (const [what, options] of [
    ['QoS 3', 0x03],
    ['reserved bit 2', 0x04],
    ['reserved bit 7', 0x80],
    ['reserved bits 2-7 with QoS 1', 0xfd],
    ['reserved bit 5 (No Local in 5.0)', 0x20],
  ] as const) {
    it(`[MQTT-3-8.3-4] closes the connection on requested QoS byte 0x${options.toString(16).padStart(2, '0')} (${what}), without SUBACK`, async () => {
      const s = await Peer.connect(b);
      s.send(subscribeBytes(1, ['rq/t', options]));
      await s.expectClosed();
      assert.equal(s.of(T.SUBACK).length, 0);
    });
  }

  it('[MQTT-3-8.3-4] closes the connection when only the last of several filters has a bad requested QoS byte', async () => {
    const s = await Peer.connect(b);
    s.send(subscribeBytes(1, ['rq/a', 0], ['rq/b', 1], ['rq/c', 0x42]));
    await s.expectClosed();
    assert.equal(s.of(T.SUBACK).length, 0);
  });

  it('[MQTT-3.8.4-1] answers every SUBSCRIBE with a SUBACK, also one whose filters all fail', async () => {
    const s = await Peer.connect(b);
    s.send(subscribeBytes(1, ['ok/t', 0]));
    s.send(subscribeBytes(2, ['a/#/b', 1]));
    s.send(subscribeBytes(3, ['x+', 2], ['#/', 0]));
    await s.roundTrip();
    assert.deepEqual(
      s.of(T.SUBACK).map((f) => f.body.readUInt16BE(0)),
      [1, 2, 3],
    );
  });

  for (const id of [1, 2, 0x0101, 0x8000, 0xffff]) {
    it(`[MQTT-3.8.4-2] sends the SUBACK with the SUBSCRIBE's packet identifier 0x${id.toString(16)}`, async () => {
      const s = await Peer.connect(b);
      s.send(subscribeBytes(id, ['pid/t', 1], ['pid/u', 2]));
      await s.next('suback');
      assert.equal(s.of(T.SUBACK)[0]!.body.readUInt16BE(0), id);
    });
  }

  it('[MQTT-3.8.4-3] replaces a subscription with an identical filter: the new maximum QoS applies and messages are not doubled', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('rep/t', 0);
    await s.subscribe('rep/t', 2);
    const p = await Peer.connect(b);
    p.publish('rep/t', 'up', { qos: 2, id: 1 });
    const m = await s.message();
    assert.equal(m.qos, 2);
    await s.expectNo('publish');
    await s.subscribe('rep/t', 1);
    p.publish('rep/t', 'down', { qos: 2, id: 2 });
    assert.equal((await s.message()).qos, 1);
    await s.expectNo('publish');
  });

  it('[MQTT-3.8.4-3] re-sends the matching retained messages when a subscription is replaced', async () => {
    const p = await Peer.connect(b);
    p.publish('rep/r/1', 'one', { qos: 1, id: 1, retain: true });
    p.publish('rep/r/2', 'two', { qos: 1, id: 2, retain: true });
    await p.next('puback');
    await p.next('puback');
    const s = await Peer.connect(b);
    await s.subscribe('rep/r/+', 1);
    await s.message();
    await s.message();
    await s.subscribe('rep/r/+', 1);
    const again = [await s.message(), await s.message()];
    assert.deepEqual(again.map((m) => m.payload.toString()).sort(), ['one', 'two']);
    assert.ok(again.every((m) => m.retain && !m.dup), 'sent anew: RETAIN 1, DUP 0');
  });

  it('[MQTT-3.8.4-3] does not interrupt the flow of publications while a subscription is replaced', async () => {
    const sub = await b.client({ protocolVersion: 4, clientId: 'flow-sub' });
    await sub.subscribeAsync('flow/t', { qos: 1 });
    const pub = await b.client({ protocolVersion: 4, clientId: 'flow-pub' });
    const n = 300;
    const got = collect(sub, n, 8000);
    const sending = (async () => {
      for (let i = 0; i < n; i++) {
        pub.publish('flow/t', String(i), { qos: 1 });
        if (i % 20 === 0) await pace(1);
      }
    })();
    for (let k = 0; k < 10; k++) {
      await sub.subscribeAsync('flow/t', { qos: ((k % 2) + 1) as 1 | 2 });
    }
    await sending;
    const received = await got;
    assert.deepEqual(
      received.map((m) => Number(m.payload.toString())),
      [...Array(n).keys()],
      'every message, in order',
    );
  });

  it('[MQTT-3.8.4-4] handles several filters in one SUBSCRIBE as a sequence of SUBSCRIBEs, with one SUBACK', async () => {
    const s = await Peer.connect(b);
    s.send(subscribeBytes(5, ['seq/t', 0], ['seq/t', 2], ['seq/u', 1]));
    await s.next('suback');
    await s.roundTrip();
    assert.equal(s.of(T.SUBACK).length, 1);
    assert.deepEqual([...s.of(T.SUBACK)[0]!.body.subarray(2)], [0, 2, 1]);
    const p = await Peer.connect(b);
    p.publish('seq/t', 't', { qos: 2, id: 1 });
    p.publish('seq/u', 'u', { qos: 2, id: 2 });
    const got = [await s.message(), await s.message()].map((m) => [m.topic, m.qos]);
    assert.deepEqual(got, [
      ['seq/t', 2],
      ['seq/u', 1],
    ]);
    await s.expectNo('publish');
  });

  it('[MQTT-3.8.4-4] still makes the valid subscriptions of a SUBSCRIBE that also has an invalid filter', async () => {
    const s = await Peer.connect(b);
    s.send(subscribeBytes(6, ['mix/a', 1], ['mix/#/bad', 1], ['mix/b', 1]));
    await s.next('suback');
    const codes = [...s.of(T.SUBACK)[0]!.body.subarray(2)];
    assert.equal(codes.length, 3);
    assert.equal(codes[1], 0x80);
    const p = await Peer.connect(b);
    p.publish('mix/a', 'a', { qos: 1, id: 1 });
    p.publish('mix/b', 'b', { qos: 1, id: 2 });
    const got: string[] = [];
    if (codes[0] !== 0x80) got.push((await s.message()).payload.toString());
    if (codes[2] !== 0x80) got.push((await s.message()).payload.toString());
    assert.deepEqual(got, ['a', 'b'].filter((_, i) => codes[i * 2] !== 0x80));
  });

  it('[MQTT-3.8.4-5] returns one code per filter: the granted maximum QoS (at most the requested) or 0x80', async () => {
    const s = await Peer.connect(b);
    const filters: [string, number][] = [
      ['g/0', 0],
      ['g/1', 1],
      ['g/2', 2],
      ['g/+/bad#', 1],
      ['g/#', 2],
    ];
    s.send(subscribeBytes(1, ...filters));
    await s.next('suback');
    const codes = [...s.of(T.SUBACK)[0]!.body.subarray(2)];
    assert.equal(codes.length, filters.length);
    filters.forEach(([f, q], i) => {
      assert.ok(codes[i] === 0x80 || codes[i]! <= q, `code ${codes[i]} for ${f} requested at QoS ${q}`);
    });
    assert.equal(codes[3], 0x80, 'the invalid filter failed');
  });

  it('[MQTT-3.8.4-5] reports the maximum QoS it actually grants when that is lower than requested', () =>
    withBroker({ maxQoS: 1 }, async (b1) => {
      const s = await Peer.connect(b1);
      assert.deepEqual(
        await s.subscribe([
          ['low/0', 0],
          ['low/1', 1],
          ['low/2', 2],
        ]),
        [0, 1, 1],
      );
    }));

  it('[MQTT-3.8.4-5] returns 0x80 for each filter it does not authorize, granting the others, also when deciding asynchronously', () =>
    withBroker(
      {
        authorizeSubscribe: (_c, filter) =>
          filter.startsWith('no/') ? false : filter.startsWith('later-no/') ? pace(30).then(() => false) : filter.startsWith('later/') ? pace(10).then(() => true) : true,
      },
      async (b1) => {
        const s = await Peer.connect(b1);
        s.send(subscribeBytes(1, ['ok/a', 1], ['no/a', 1], ['later/a', 2], ['later-no/a', 0], ['ok/b', 0]));
        s.send(subscribeBytes(2, ['no/b', 2], ['ok/c', 2]));
        await s.next('suback');
        await s.next('suback');
        assert.deepEqual(
          s.of(T.SUBACK).map((f) => [f.body.readUInt16BE(0), ...f.body.subarray(2)]),
          [
            [1, 1, 0x80, 2, 0x80, 0],
            [2, 0x80, 2],
          ],
        );
        const p = await Peer.connect(b1);
        for (const t of ['no/a', 'later-no/a', 'no/b', 'later/a']) p.publish(t, t, { qos: 1, id: 1 });
        assert.equal((await s.message()).topic, 'later/a');
        await s.expectNo('publish');
      },
    ));

  for (const pubQos of [0, 1, 2] as const) {
    for (const subQos of [0, 1, 2] as const) {
      it(`[MQTT-3.8.4-6] delivers a QoS ${pubQos} message to a subscription granted QoS ${subQos} at QoS ${Math.min(pubQos, subQos)}`, async () => {
        const s = await Peer.connect(b);
        assert.deepEqual(await s.subscribe('mq/t', subQos), [subQos]);
        const p = await Peer.connect(b);
        p.publish('mq/t', 'x', { qos: pubQos, id: 1 });
        const m = await s.message();
        assert.equal(m.qos, Math.min(pubQos, subQos));
        assert.equal((s.of(T.PUBLISH)[0]!.flags >> 1) & 3, Math.min(pubQos, subQos));
      });
    }
  }

  it('[MQTT-3.9.3-1] lists the SUBACK return codes in the order of the filters', async () => {
    const s = await Peer.connect(b);
    s.send(subscribeBytes(1, ['o/2', 2], ['o/0', 0], ['o/+x', 1], ['o/1', 1], ['o/#/x', 0], ['o/#', 0]));
    await s.next('suback');
    assert.deepEqual([...s.of(T.SUBACK)[0]!.body.subarray(2)], [2, 0, 0x80, 1, 0x80, 0]);
  });

  it('[MQTT-3.9.3-2] uses only the return codes 0x00, 0x01, 0x02 and 0x80', async () => {
    const s = await Peer.connect(b);
    const filters: [string, number][] = [
      ['c/a', 0],
      ['c/b', 1],
      ['c/c', 2],
      ['c/#/x', 0],
      ['c/d+', 1],
      ['+/#', 2],
      ['$share/g/c/e', 1],
      ['$share//c', 1],
      ['#/#', 2],
    ];
    s.send(subscribeBytes(1, ...filters));
    await s.next('suback');
    const codes = [...s.of(T.SUBACK)[0]!.body.subarray(2)];
    assert.equal(codes.length, filters.length);
    for (const c of codes) assert.ok([0, 1, 2, 0x80].includes(c), `code 0x${c.toString(16)}`);
  });
});

describe('MQTT 3.1.1 §3.10 UNSUBSCRIBE', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  for (const header of [0xa0, 0xa1, 0xa3, 0xa6, 0xaa, 0xaf]) {
    it(`[MQTT-3.10.1-1] closes the connection on an UNSUBSCRIBE with header 0x${header.toString(16)}, without UNSUBACK`, async () => {
      const s = await Peer.connect(b);
      await s.subscribe('uf/t', 0);
      const data = unsubscribeBytes(1, 'uf/t');
      data[0] = header;
      s.send(data);
      await s.expectClosed();
      assert.equal(s.of(T.UNSUBACK).length, 0);
    });
  }

  it('[MQTT-3.10.4-1] deletes only the subscription whose filter is character-for-character the same', async () => {
    const s = await Peer.connect(b);
    await s.subscribe([
      ['cmp/+', 1],
      ['cmp/a', 1],
      ['Cmp/#', 1],
    ]);
    // Each of these matches 'cmp/a' as a topic, or differs in case or shape: none is an existing filter.
    await s.unsubscribe('cmp/#', 'CMP/+', 'cmp/+/', 'cmp//a', 'cmp/A', '+/a');
    const p = await Peer.connect(b);
    p.publish('cmp/a', 'a', { qos: 1, id: 1 });
    p.publish('Cmp/x', 'x', { qos: 1, id: 2 });
    const first = await s.message();
    assert.equal(first.topic, 'cmp/a');
    const second = await s.message();
    assert.equal(second.topic, 'Cmp/x');
    await s.unsubscribe('cmp/a');
    p.publish('cmp/a', 'a2', { qos: 1, id: 3 });
    assert.equal((await s.message()).payload.toString(), 'a2', 'still delivered through cmp/+');
    await s.unsubscribe('cmp/+');
    p.publish('cmp/a', 'a3', { qos: 1, id: 4 });
    await s.expectNo('publish');
  });

  it('[MQTT-3.10.4-1] compares wildcard filters literally: "#" removes only "#"', async () => {
    const s = await Peer.connect(b);
    await s.subscribe([
      ['lit/x', 0],
      ['#', 0],
    ]);
    await s.unsubscribe('#');
    const p = await Peer.connect(b);
    p.publish('lit/x', 'x');
    p.publish('lit/y', 'y');
    assert.equal((await s.message()).topic, 'lit/x');
    await s.expectNo('publish');
  });

  it('[MQTT-3.10.4-2] stops adding new messages for a deleted subscription', async () => {
    const s = await Peer.connect(b, { clientId: 'stop-adding', clean: false });
    await s.subscribe('stop/t', 1);
    await s.unsubscribe('stop/t');
    const p = await Peer.connect(b);
    for (let i = 0; i < 3; i++) p.publish('stop/t', 'x', { qos: i as 0 | 1 | 2, id: i + 1 });
    await p.roundTrip();
    await s.drop();
    p.publish('stop/t', 'offline', { qos: 1, id: 9 });
    const back = await Peer.connect(b, { clientId: 'stop-adding', clean: false });
    await back.expectNo('publish');
    assert.equal(s.of(T.PUBLISH).length, 0);
  });

  it('[MQTT-3.10.4-3] completes a QoS 2 delivery it started before the subscription was deleted', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('done/2', 2);
    const p = await Peer.connect(b);
    p.publish('done/2', 'x', { qos: 2, id: 1 });
    const m = await s.message();
    await s.unsubscribe('done/2');
    s.send([0x50, 2, m.messageId! >> 8, m.messageId! & 0xff]);
    const rel = await s.next('pubrel');
    assert.equal((rel as { messageId: number }).messageId, m.messageId);
    s.send([0x70, 2, m.messageId! >> 8, m.messageId! & 0xff]);
  });

  it('[MQTT-3.10.4-3] completes a QoS 1 delivery it started before the subscription was deleted: re-sent until acknowledged', async () => {
    const s = await Peer.connect(b, { clientId: 'done-1', clean: false });
    await s.subscribe('done/1', 1);
    const p = await Peer.connect(b);
    p.publish('done/1', 'x', { qos: 1, id: 1 });
    const m = await s.message();
    await s.unsubscribe('done/1');
    await s.drop();
    const back = await Peer.connect(b, { clientId: 'done-1', clean: false });
    const again = await back.message();
    assert.equal(again.messageId, m.messageId);
    assert.equal(again.dup, true);
    back.send([0x40, 2, m.messageId! >> 8, m.messageId! & 0xff]);
  });

  it('[MQTT-3.10.4-3] completes a QoS 2 delivery, after PUBREC, by re-sending PUBREL once the subscription is gone', async () => {
    const s = await Peer.connect(b, { clientId: 'done-2r', clean: false });
    await s.subscribe('done/2r', 2);
    const p = await Peer.connect(b);
    p.publish('done/2r', 'x', { qos: 2, id: 1 });
    const m = await s.message();
    await s.unsubscribe('done/2r');
    await s.drop();
    const back = await Peer.connect(b, { clientId: 'done-2r', clean: false });
    const again = await back.message();
    assert.equal(again.messageId, m.messageId);
    back.send([0x50, 2, m.messageId! >> 8, m.messageId! & 0xff]);
    assert.equal(((await back.next('pubrel')) as { messageId: number }).messageId, m.messageId);
    back.send([0x70, 2, m.messageId! >> 8, m.messageId! & 0xff]);
  });

  for (const id of [1, 0x00ff, 0x0100, 0xffff]) {
    it(`[MQTT-3.10.4-4] answers UNSUBSCRIBE with an UNSUBACK carrying its packet identifier 0x${id.toString(16)}`, async () => {
      const s = await Peer.connect(b);
      await s.subscribe('ua/t', 0);
      s.send(unsubscribeBytes(id, 'ua/t'));
      await s.next('unsuback');
      assert.deepEqual([...s.of(T.UNSUBACK)[0]!.raw], [0xb0, 2, id >> 8, id & 0xff]);
    });
  }

  it('[MQTT-3.10.4-5] answers UNSUBACK even when no subscription is deleted', async () => {
    const s = await Peer.connect(b);
    s.send(unsubscribeBytes(3, 'never/subscribed'));
    s.send(unsubscribeBytes(4, 'never/+', 'never/#'));
    await s.roundTrip();
    assert.deepEqual(s.of(T.UNSUBACK).map((f) => [...f.raw]), [
      [0xb0, 2, 0, 3],
      [0xb0, 2, 0, 4],
    ]);
  });

  it('[MQTT-3.10.4-6] handles several filters in one UNSUBSCRIBE as a sequence, with one UNSUBACK', async () => {
    const s = await Peer.connect(b);
    await s.subscribe([
      ['mu/a', 1],
      ['mu/b', 1],
      ['mu/c', 1],
    ]);
    s.send(unsubscribeBytes(9, 'mu/a', 'mu/none', 'mu/c', 'mu/a'));
    await s.next('unsuback');
    await s.roundTrip();
    assert.equal(s.of(T.UNSUBACK).length, 1);
    const p = await Peer.connect(b);
    ['mu/a', 'mu/b', 'mu/c'].forEach((t, i) => p.publish(t, t, { qos: 1, id: i + 1 }));
    assert.equal((await s.message()).topic, 'mu/b');
    await s.expectNo('publish');
  });
});
