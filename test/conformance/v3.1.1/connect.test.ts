// MQTT 3.1.1 conformance, §3.1 CONNECT and §3.2 CONNACK.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { type ServerTestBroker, startBroker } from '../../helpers/broker.js';
import {
  connectPacket,
  pace,
  Peer,
  publishBytes,
  str,
  subscribeBytes,
  T,
  watch,
  withBroker,
} from './helpers.js';

describe('MQTT 3.1.1 §3.1 CONNECT', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  it('[MQTT-3.1.0-2] closes the connection on a second CONNECT and does not answer or process it', async () => {
    const p = await Peer.connect(b, { clientId: 'first' });
    p.send(connectPacket({ clientId: 'second-connect', clean: false }));
    await p.expectClosed();
    assert.equal(p.of(T.CONNACK).length, 1, 'only the first CONNECT was answered');
    const probe = await Peer.connect(b, { clientId: 'second-connect', clean: false });
    assert.equal(probe.connack.sessionPresent, false, 'the second CONNECT created no session');
  });

  it('[MQTT-3.1.0-2] closes the connection on a second CONNECT carrying the same client identifier', async () => {
    const p = await Peer.connect(b, { clientId: 'twice' });
    p.send(connectPacket({ clientId: 'twice' }));
    await p.expectClosed();
    assert.equal(p.of(T.CONNACK).length, 1);
  });

  for (const name of ['MQTX', 'mqtt', 'MQ', 'MQTTT', '']) {
    it(`[MQTT-3.1.2-1] does not process a CONNECT with protocol name ${JSON.stringify(name)} as MQTT 3.1.1`, async () => {
      const p = await Peer.open(b);
      p.send(Buffer.concat([connectPacket({ protocolName: name }), subscribeBytes(1, ['pn/t', 0])]));
      await p.settled();
      assert.equal(p.of(T.CONNACK).filter((f) => f.body[1] === 0).length, 0, 'not accepted');
      assert.equal(p.of(T.SUBACK).length, 0, 'nothing processed in line with 3.1.1');
    });
  }

  for (const level of [0, 1, 2, 6, 7, 0x84, 255]) {
    it(`[MQTT-3.1.2-2] answers protocol level ${level} with CONNACK 0x01 and closes the connection`, async () => {
      const p = await Peer.open(b);
      p.send(connectPacket({ level }));
      await p.expectClosed();
      assert.deepEqual(p.log.map((f) => [...f.raw]), [[0x20, 2, 0, 1]]);
    });
  }

  it('[MQTT-3.1.2-3] closes the connection, without CONNACK, when the reserved connect flag is 1', async () => {
    const p = await Peer.open(b);
    p.send(connectPacket({ flags: 0x03 }));
    await p.expectClosed();
    assert.equal(p.log.length, 0);
  });

  it('[MQTT-3.1.2-3] closes the connection, without CONNACK, when the reserved flag is set with other flags', async () => {
    const p = await Peer.open(b);
    p.send(connectPacket({ flags: 0xc3, username: 'u', password: 'p' }));
    await p.expectClosed();
    assert.equal(p.log.length, 0);
  });

  it('[MQTT-3.1.2-4] creates a session for a new CleanSession=0 client and resumes it after DISCONNECT', async () => {
    const s = await Peer.connect(b, { clientId: 'cs0-new', clean: false });
    assert.equal(s.connack.sessionPresent, false);
    await s.subscribe('cs0/t', 1);
    await s.disconnect();
    const back = await Peer.connect(b, { clientId: 'cs0-new', clean: false });
    assert.equal(back.connack.sessionPresent, true);
    const p = await Peer.connect(b);
    p.publish('cs0/t', 'kept', { qos: 1, id: 1 });
    const m = await back.message();
    assert.equal(m.payload.toString(), 'kept', 'the subscription was part of the resumed session');
  });

  it('[MQTT-3.1.2-4] keeps a CleanSession=0 session after the network connection is lost', async () => {
    const s = await Peer.connect(b, { clientId: 'cs0-lost', clean: false });
    await s.subscribe('lost/t', 2);
    await s.drop();
    const back = await Peer.connect(b, { clientId: 'cs0-lost', clean: false });
    assert.equal(back.connack.sessionPresent, true);
    const p = await Peer.connect(b);
    p.publish('lost/t', 'still', { qos: 2, id: 1 });
    assert.equal((await back.message()).payload.toString(), 'still');
  });

  it('[MQTT-3.1.2-5] stores QoS 1 and QoS 2 messages for an offline CleanSession=0 client and delivers them on reconnect', async () => {
    const s = await Peer.connect(b, { clientId: 'offline', clean: false });
    assert.deepEqual(await s.subscribe([['off/one', 1], ['off/two', 2], ['off/low', 1]]), [1, 2, 1]);
    await s.disconnect();
    const p = await Peer.connect(b);
    p.publish('off/one', 'q1', { qos: 1, id: 1 });
    p.publish('off/two', 'q2', { qos: 2, id: 2 });
    p.publish('off/low', 'q2 to a QoS 1 subscription', { qos: 2, id: 3 });
    p.publish('off/other', 'not subscribed', { qos: 1, id: 4 });
    await p.next('puback');
    await p.next('pubrec');
    await p.next('pubrec');
    await p.next('puback');
    const back = await Peer.connect(b, { clientId: 'offline', clean: false });
    const got: IPublishPacket[] = [];
    for (let i = 0; i < 3; i++) got.push(await back.message());
    assert.deepEqual(
      got.map((m) => [m.topic, m.payload.toString(), m.qos]),
      [
        ['off/one', 'q1', 1],
        ['off/two', 'q2', 2],
        ['off/low', 'q2 to a QoS 1 subscription', 1],
      ],
    );
    assert.ok(got.every((m) => !m.dup), 'stored messages are sent for the first time: DUP 0');
    await back.expectNo('publish');
  });

  it('[MQTT-3.1.2-6] discards a stored session when the client connects with CleanSession=1', async () => {
    const s = await Peer.connect(b, { clientId: 'discard', clean: false });
    await s.subscribe('disc/t', 1);
    await s.disconnect();
    const p = await Peer.connect(b);
    p.publish('disc/t', 'queued', { qos: 1, id: 1 });
    await p.next('puback');
    const clean = await Peer.connect(b, { clientId: 'discard', clean: true });
    assert.equal(clean.connack.sessionPresent, false);
    p.publish('disc/t', 'after', { qos: 1, id: 2 });
    await p.next('puback');
    await clean.expectNo('publish');
  });

  it('[MQTT-3.1.2-6] does not reuse the state of a CleanSession=1 session in a later session', async () => {
    const s = await Peer.connect(b, { clientId: 'no-reuse', clean: true });
    await s.subscribe('reuse/t', 1);
    await s.disconnect();
    const back = await Peer.connect(b, { clientId: 'no-reuse', clean: false });
    assert.equal(back.connack.sessionPresent, false);
    const p = await Peer.connect(b);
    p.publish('reuse/t', 'x', { qos: 1, id: 1 });
    await p.next('puback');
    await back.expectNo('publish');
  });

  it('[MQTT-3.1.2-6] does not re-send unacknowledged messages of a discarded session', async () => {
    const s = await Peer.connect(b, { clientId: 'no-resend', clean: false });
    await s.subscribe('nr/t', 2);
    const p = await Peer.connect(b);
    p.publish('nr/t', 'one', { qos: 1, id: 1 });
    p.publish('nr/t', 'two', { qos: 2, id: 2 });
    await s.message();
    const two = await s.message();
    s.send([0x50, 2, two.messageId! >> 8, two.messageId! & 0xff]);
    await s.next('pubrel');
    await s.drop();
    const clean = await Peer.connect(b, { clientId: 'no-resend', clean: true });
    await clean.expectNo('publish');
    assert.equal(clean.of(T.PUBREL).length, 0, 'no PUBREL of the old session');
  });

  it('[MQTT-3.1.2-6] forgets the incoming QoS 2 state of a discarded session: the same packet identifier is a new message', async () => {
    const w = await watch(b, 'in2/t');
    const p = await Peer.connect(b, { clientId: 'in2', clean: false });
    p.publish('in2/t', 'first', { qos: 2, id: 5 });
    await p.next('pubrec');
    assert.equal((await w.message()).payload.toString(), 'first');
    await p.drop();
    const again = await Peer.connect(b, { clientId: 'in2', clean: true });
    again.publish('in2/t', 'second', { qos: 2, id: 5 });
    await again.next('pubrec');
    again.send([0x62, 2, 0, 5]);
    await again.next('pubcomp');
    assert.equal((await w.message()).payload.toString(), 'second');
  });

  it('[MQTT-3.1.2.7] keeps retained messages when the session of their publisher ends', async () => {
    const p = await Peer.connect(b, { clientId: 'ret-pub', clean: true });
    p.publish('keep/a', 'from a clean session', { qos: 1, id: 1, retain: true });
    await p.next('puback');
    await p.disconnect();
    const q = await Peer.connect(b, { clientId: 'ret-pub2', clean: false });
    q.publish('keep/b', 'from a persistent session', { qos: 1, id: 1, retain: true });
    await q.next('puback');
    await q.disconnect();
    await (await Peer.connect(b, { clientId: 'ret-pub2', clean: true })).disconnect();
    const s = await Peer.connect(b);
    await s.subscribe('keep/#', 1);
    const got = [await s.message(), await s.message()].map((m) => m.payload.toString()).sort();
    assert.deepEqual(got, ['from a clean session', 'from a persistent session']);
  });

  it('[MQTT-3.1.2-8] publishes the will when the network connection is lost', async () => {
    const w = await watch(b, 'will/lost');
    const p = await Peer.connect(b, { will: { topic: 'will/lost', payload: Buffer.from('gone'), qos: 1, retain: false } });
    await p.drop();
    const m = await w.message();
    assert.equal(m.payload.toString(), 'gone');
    assert.equal(m.qos, 1);
  });

  it('[MQTT-3.1.2-8] publishes the will when the server closes the connection for a protocol violation', async () => {
    const w = await watch(b, 'will/violation');
    const p = await Peer.connect(b, { will: { topic: 'will/violation', payload: Buffer.from('bad'), qos: 0, retain: false } });
    p.send([0x00, 0x00]);
    await p.expectClosed();
    assert.equal((await w.message()).payload.toString(), 'bad');
  });

  it('[MQTT-3.1.2-8] publishes the will of a connection closed because another one took its client identifier', async () => {
    const w = await watch(b, 'will/takeover');
    const p = await Peer.connect(b, { clientId: 'will-takeover', will: { topic: 'will/takeover', payload: Buffer.from('replaced'), qos: 0, retain: false } });
    await Peer.connect(b, { clientId: 'will-takeover' });
    await p.expectClosed();
    assert.equal((await w.message()).payload.toString(), 'replaced');
  });

  it('[MQTT-3.1.2-8] does not publish the will after DISCONNECT', async () => {
    const w = await watch(b, 'will/clean');
    const p = await Peer.connect(b, { will: { topic: 'will/clean', payload: Buffer.from('x'), qos: 0, retain: false } });
    await p.disconnect();
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.2-8] does not store or publish the will of a refused CONNECT', async () => {
    const w = await watch(b, 'will/refused');
    const p = await Peer.open(b);
    p.send(connectPacket({ clientId: '', clean: false, will: { topic: 'will/refused', payload: 'no' } }));
    await p.expectClosed();
    assert.deepEqual([...p.log[0]!.raw], [0x20, 2, 0, 2]);
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.2-10] publishes a will once: a taken-over session does not publish it again', async () => {
    const w = await watch(b, 'will/once');
    const p = await Peer.connect(b, { clientId: 'will-once', clean: false, will: { topic: 'will/once', payload: Buffer.from('w'), qos: 1, retain: false } });
    const second = await Peer.connect(b, { clientId: 'will-once', clean: false });
    await p.expectClosed();
    assert.equal((await w.message()).payload.toString(), 'w');
    await second.drop();
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.2-10] removes the will on DISCONNECT: the resumed session does not publish it later', async () => {
    const w = await watch(b, 'will/removed');
    const p = await Peer.connect(b, { clientId: 'will-removed', clean: false, will: { topic: 'will/removed', payload: Buffer.from('w'), qos: 0, retain: false } });
    await p.disconnect();
    const back = await Peer.connect(b, { clientId: 'will-removed', clean: false });
    await back.drop();
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.2-10] publishes the will once when the connection is lost', async () => {
    const w = await watch(b, 'will/single');
    const p = await Peer.connect(b, { clientId: 'will-single', clean: false, will: { topic: 'will/single', payload: Buffer.from('w'), qos: 2, retain: false } });
    await p.drop();
    await w.message();
    const back = await Peer.connect(b, { clientId: 'will-single', clean: false });
    await back.drop();
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.2-12] publishes no message when a connection without a will is lost or closed for a violation', async () => {
    const w = await watch(b, '#');
    const p = await Peer.connect(b, { clientId: 'no-will-1' });
    await p.drop();
    const q = await Peer.connect(b, { clientId: 'no-will-2' });
    q.send([0x00, 0x00]);
    await q.expectClosed();
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.2-12] publishes nothing for will fields of a CONNECT whose Will Flag is 0', async () => {
    const w = await watch(b, '#');
    // Will QoS and Will Retain must be 0 without a will: the broker may refuse this CONNECT, but must never publish a will.
    const p = await Peer.open(b);
    p.send(connectPacket({ flags: 0x02 | 0x08 }));
    await p.settled();
    await p.drop();
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.2-16] publishes a will with Will Retain 0 as a non-retained message', async () => {
    const keeper = await Peer.connect(b);
    keeper.publish('will/nr', 'retained before', { qos: 1, id: 1, retain: true });
    await keeper.next('puback');
    const w = await Peer.connect(b);
    await w.subscribe('will/nr', 1);
    assert.equal((await w.message()).payload.toString(), 'retained before');
    const p = await Peer.connect(b, { will: { topic: 'will/nr', payload: Buffer.from('will'), qos: 1, retain: false } });
    await p.drop();
    const live = await w.message();
    assert.equal(live.payload.toString(), 'will');
    assert.equal(live.retain, false);
    const late = await Peer.connect(b);
    await late.subscribe('will/nr', 1);
    const r = await late.message();
    assert.equal(r.payload.toString(), 'retained before', 'the will neither replaced nor removed the retained message');
    await late.expectNo('publish');
  });

  it('[MQTT-3.1.2-17] publishes a will with Will Retain 1 as a retained message', async () => {
    const p = await Peer.connect(b, { will: { topic: 'will/r', payload: Buffer.from('last words'), qos: 1, retain: true } });
    await p.drop();
    const late = await Peer.connect(b);
    await late.subscribe('will/r', 2);
    const m = await late.message();
    assert.equal(m.payload.toString(), 'last words');
    assert.equal(m.retain, true);
    assert.equal(m.qos, 1);
  });

  it('[MQTT-3.1.3-2] keeps the session state of each client identifier apart', async () => {
    const a = await Peer.connect(b, { clientId: 'ident-a', clean: false });
    await a.subscribe('ident/a', 1);
    await a.disconnect();
    const bb = await Peer.connect(b, { clientId: 'ident-b', clean: false });
    assert.equal(bb.connack.sessionPresent, false);
    await bb.subscribe('ident/b', 1);
    await bb.disconnect();
    const p = await Peer.connect(b);
    p.publish('ident/a', 'for a', { qos: 1, id: 1 });
    p.publish('ident/b', 'for b', { qos: 1, id: 2 });
    await p.next('puback');
    await p.next('puback');
    const a2 = await Peer.connect(b, { clientId: 'ident-a', clean: false });
    const b2 = await Peer.connect(b, { clientId: 'ident-b', clean: false });
    assert.equal((await a2.message()).payload.toString(), 'for a');
    assert.equal((await b2.message()).payload.toString(), 'for b');
    await a2.expectNo('publish');
    await b2.expectNo('publish');
  });

  const ALLOWED = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const IDS = ['0', 'Z', 'ab', ALLOWED.slice(0, 23), ALLOWED.slice(23, 46), ALLOWED.slice(39, 62)];
  for (const clientId of IDS) {
    it(`[MQTT-3.1.3-5] accepts the ${clientId.length}-character client identifier "${clientId}"`, async () => {
      const p = await Peer.connect(b, { clientId, clean: false });
      assert.equal(p.connack.returnCode, 0);
      await p.subscribe('id/ok', 0);
    });
  }

  it('[MQTT-3.1.3-5] treats client identifiers that differ only in letter case as different clients', async () => {
    const lower = await Peer.connect(b, { clientId: 'caseid' });
    const upper = await Peer.connect(b, { clientId: 'CASEID' });
    await lower.expectOpen();
    await upper.expectOpen();
  });

  it('[MQTT-3.1.3-6] assigns each zero-length client identifier (CleanSession=1) a unique identifier', async () => {
    const one = await Peer.connect(b, { clientId: '', clean: true });
    const two = await Peer.connect(b, { clientId: '', clean: true });
    assert.equal(one.connack.sessionPresent, false);
    assert.equal(two.connack.sessionPresent, false);
    await one.subscribe('anon/1', 1);
    await two.subscribe('anon/2', 1);
    const p = await Peer.connect(b);
    p.publish('anon/1', 'one', { qos: 1, id: 1 });
    p.publish('anon/2', 'two', { qos: 1, id: 2 });
    assert.equal((await one.message()).payload.toString(), 'one');
    assert.equal((await two.message()).payload.toString(), 'two');
    await one.expectOpen();
    await two.expectOpen();
  });

  it('[MQTT-3.1.3-8] [MQTT-3.1.3-7] answers a zero-length client identifier with CleanSession=0 with CONNACK 0x02 and closes', async () => {
    const p = await Peer.open(b);
    p.send(connectPacket({ clientId: '', clean: false }));
    await p.expectClosed();
    assert.deepEqual(p.log.map((f) => [...f.raw]), [[0x20, 2, 0, 2]]);
  });

  it('[MQTT-3.1.3-9] closes the connection right after a CONNACK 0x02 (identifier rejected), sending nothing more', async () => {
    const p = await Peer.open(b);
    p.send(Buffer.concat([connectPacket({ clientId: '', clean: false }), Buffer.from([0xc0, 0])]));
    await p.expectClosed();
    assert.deepEqual(p.log.map((f) => [...f.raw]), [[0x20, 2, 0, 2]]);
  });

  const MALFORMED_CONNECT: [string, Buffer][] = [
    ['Will QoS 3', connectPacket({ will: { topic: 'w', payload: 'x', qos: 3 } })],
    ['Will Flag 0 with Will QoS 1', connectPacket({ flags: 0x02 | 0x08 })],
    ['Will Flag 0 with Will QoS 2', connectPacket({ flags: 0x02 | 0x10 })],
    ['Will Flag 0 with Will Retain 1', connectPacket({ flags: 0x02 | 0x20 })],
    ['a Password Flag without a User Name Flag', connectPacket({ flags: 0x02 | 0x40, trailing: [...str('secret')] })],
    ['a User Name Flag but no user name', connectPacket({ flags: 0x02 | 0x80 })],
    ['a Password Flag but no password', connectPacket({ flags: 0x02 | 0x80 | 0x40, trailing: [...str('user')] })],
    ['a Will Flag but no will topic or message', connectPacket({ flags: 0x02 | 0x04 })],
    ['a Will Flag and a will topic but no will message', connectPacket({ flags: 0x02 | 0x04, trailing: [...str('w/t')] })],
    ['bytes after the last payload field', connectPacket({ trailing: [0, 1, 0x61] })],
    ['no client identifier', Buffer.from([0x10, 10, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60])],
    ['no keep alive', Buffer.from([0x10, 8, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2])],
    ['a protocol name running past the packet', Buffer.from([0x10, 4, 0, 9, 0x4d, 0x51])],
    ['a client identifier length running past the packet', Buffer.from([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 10, 0x61])],
  ];
  for (const [what, data] of MALFORMED_CONNECT) {
    it(`[MQTT-3.1.4-1] closes the connection without CONNACK on a CONNECT with ${what}`, async () => {
      const p = await Peer.open(b);
      p.send(data);
      await p.expectClosed();
      assert.equal(p.log.length, 0, 'no CONNACK');
    });
  }

  it('[MQTT-3.1.4-2] disconnects an existing client when a new connection uses its client identifier', async () => {
    const first = await Peer.connect(b, { clientId: 'dupe' });
    const second = await Peer.connect(b, { clientId: 'dupe' });
    await first.expectClosed();
    await second.subscribe('dupe/t', 0);
    second.send([0xc0, 0]);
    await second.next('pingresp');
  });

  it('[MQTT-3.1.4-2] disconnects the existing client whatever the CleanSession of either connection', async () => {
    for (const [c1, c2] of [
      [false, false],
      [false, true],
      [true, false],
    ] as const) {
      const first = await Peer.connect(b, { clientId: `dupe-${c1}-${c2}`, clean: c1 });
      await Peer.connect(b, { clientId: `dupe-${c1}-${c2}`, clean: c2 });
      await first.expectClosed();
    }
  });

  it('[MQTT-3.1.4-3] applies CleanSession also when the client identifier is still connected', async () => {
    const first = await Peer.connect(b, { clientId: 'cs-live', clean: false });
    await first.subscribe('cslive/t', 1);
    const resumed = await Peer.connect(b, { clientId: 'cs-live', clean: false });
    assert.equal(resumed.connack.sessionPresent, true);
    const p = await Peer.connect(b);
    p.publish('cslive/t', 'a', { qos: 1, id: 1 });
    assert.equal((await resumed.message()).payload.toString(), 'a');
    const fresh = await Peer.connect(b, { clientId: 'cs-live', clean: true });
    assert.equal(fresh.connack.sessionPresent, false);
    p.publish('cslive/t', 'b', { qos: 1, id: 2 });
    await fresh.expectNo('publish');
  });

  it('[MQTT-3.1.4-4] acknowledges an accepted CONNECT with CONNACK return code 0', async () => {
    const p = await Peer.open(b);
    p.send(connectPacket({ clientId: 'rc0', clean: false }));
    await p.next('connack');
    assert.deepEqual([...p.log[0]!.raw], [0x20, 2, 0, 0]);
    await p.disconnect();
    const q = await Peer.open(b);
    q.send(connectPacket({ clientId: 'rc0', clean: false, username: 'u', password: 'p', keepAlive: 0 }));
    await q.next('connack');
    assert.deepEqual([...q.log[0]!.raw], [0x20, 2, 1, 0]);
  });

  for (const [why, connect] of [
    ['identifier rejected', connectPacket({ clientId: '', clean: false })],
    ['unacceptable protocol level', connectPacket({ level: 6 })],
  ] as const) {
    it(`[MQTT-3.1.4-5] processes nothing sent after a refused CONNECT (${why})`, async () => {
      const w = await watch(b, 'rej/#');
      const p = await Peer.open(b);
      p.send(
        Buffer.concat([
          connect,
          publishBytes('rej/t', 'must not be routed', { retain: true }),
          publishBytes('rej/u', 'nor this', { qos: 1, id: 1 }),
          subscribeBytes(1, ['rej/#', 0]),
          Buffer.from([0xc0, 0]),
        ]),
      );
      await p.expectClosed();
      assert.deepEqual(p.log.map((f) => f.type), [T.CONNACK]);
      await w.expectNo('publish');
      const late = await Peer.connect(b);
      await late.subscribe('rej/#', 0);
      await late.expectNo('publish');
    });
  }
});

describe('MQTT 3.1.1 §3.2 CONNACK', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  it('[MQTT-3.2.0-1] sends CONNACK before the queued and re-sent messages of a resumed session', async () => {
    const s = await Peer.connect(b, { clientId: 'first-packet', clean: false });
    await s.subscribe('fp/#', 2);
    const p = await Peer.connect(b);
    p.publish('fp/a', 'inflight', { qos: 1, id: 1 });
    await s.message();
    await s.drop();
    for (let i = 0; i < 5; i++) p.publish(`fp/${i}`, 'queued', { qos: 2, id: 10 + i });
    await p.roundTrip();
    const back = await Peer.open(b);
    back.send(connectPacket({ clientId: 'first-packet', clean: false }));
    await back.next('connack');
    for (let i = 0; i < 6; i++) await back.message();
    assert.equal(back.log[0]!.type, T.CONNACK);
    assert.equal(back.log.length, 7);
  });

  it('[MQTT-3.2.0-1] sends CONNACK first when CONNECT arrives together with other packets', async () => {
    const r = await Peer.connect(b);
    r.publish('fp2/t', 'retained', { retain: true, qos: 1, id: 1 });
    await r.next('puback');
    const p = await Peer.open(b);
    p.send(Buffer.concat([connectPacket(), subscribeBytes(1, ['fp2/t', 1]), Buffer.from([0xc0, 0])]));
    await p.next('pingresp');
    await p.message();
    assert.deepEqual(p.log[0]!.raw.subarray(0, 1)[0], 0x20);
    assert.equal(p.log[1]!.type, T.SUBACK);
  });

  it('[MQTT-3.2.2-1] sets Session Present 0 for CleanSession=1, even when a session was stored', async () => {
    const s = await Peer.connect(b, { clientId: 'sp-clean', clean: false });
    await s.subscribe('spc/t', 1);
    await s.disconnect();
    const p = await Peer.open(b);
    p.send(connectPacket({ clientId: 'sp-clean', clean: true }));
    await p.next('connack');
    assert.deepEqual([...p.log[0]!.raw], [0x20, 2, 0, 0]);
  });

  it('[MQTT-3.2.2-1] sets Session Present 0 for CleanSession=1 taking over a connected persistent session', async () => {
    await Peer.connect(b, { clientId: 'sp-clean-live', clean: false });
    const p = await Peer.open(b);
    p.send(connectPacket({ clientId: 'sp-clean-live', clean: true }));
    await p.next('connack');
    assert.deepEqual([...p.log[0]!.raw], [0x20, 2, 0, 0]);
  });

  it('[MQTT-3.2.2-2] sets Session Present 1 when resuming a stored session (after DISCONNECT, after a lost connection, on takeover)', async () => {
    const s = await Peer.connect(b, { clientId: 'sp1', clean: false });
    await s.disconnect();
    const a = await Peer.connect(b, { clientId: 'sp1', clean: false });
    assert.equal(a.connack.sessionPresent, true);
    await a.drop();
    const c = await Peer.connect(b, { clientId: 'sp1', clean: false });
    assert.equal(c.connack.sessionPresent, true);
    const d = await Peer.open(b);
    d.send(connectPacket({ clientId: 'sp1', clean: false }));
    await d.next('connack');
    assert.deepEqual([...d.log[0]!.raw], [0x20, 2, 1, 0]);
  });

  it('[MQTT-3.2.2-3] sets Session Present 0 with CleanSession=0 when no session is stored', async () => {
    const fresh = await Peer.connect(b, { clientId: 'sp0-fresh', clean: false });
    assert.equal(fresh.connack.sessionPresent, false);
    const c = await Peer.connect(b, { clientId: 'sp0-was-clean', clean: true });
    await c.disconnect();
    const after = await Peer.open(b);
    after.send(connectPacket({ clientId: 'sp0-was-clean', clean: false }));
    await after.next('connack');
    assert.deepEqual([...after.log[0]!.raw], [0x20, 2, 0, 0]);
  });

  it('[MQTT-3.2.2-3] sets Session Present 0 with CleanSession=0 after the stored session was discarded by CleanSession=1', async () => {
    await (await Peer.connect(b, { clientId: 'sp0-discarded', clean: false })).disconnect();
    await (await Peer.connect(b, { clientId: 'sp0-discarded', clean: true })).disconnect();
    const p = await Peer.connect(b, { clientId: 'sp0-discarded', clean: false });
    assert.equal(p.connack.sessionPresent, false);
  });

  it('[MQTT-3.2.2-4] sets Session Present 0 in a refusing CONNACK, also for the client identifier of a stored session', async () => {
    await (await Peer.connect(b, { clientId: 'stored-refused', clean: false })).disconnect();
    const p = await Peer.open(b);
    p.send(connectPacket({ clientId: 'stored-refused', clean: false, level: 6 }));
    await p.expectClosed();
    assert.deepEqual([...p.log[0]!.raw], [0x20, 2, 0, 1]);
    const q = await Peer.open(b);
    q.send(connectPacket({ clientId: '', clean: false }));
    await q.expectClosed();
    assert.deepEqual([...q.log[0]!.raw], [0x20, 2, 0, 2]);
  });

  for (const [why, connect, code] of [
    ['0x01', connectPacket({ level: 3 }), 1],
    ['0x02', connectPacket({ clientId: '', clean: false }), 2],
  ] as const) {
    it(`[MQTT-3.2.2-5] closes the connection after sending CONNACK ${why}`, async () => {
      const p = await Peer.open(b);
      p.send(connect);
      await p.next('connack');
      await p.expectClosed();
      assert.equal(p.log[0]!.body[1], code);
    });
  }

  for (const [what, data] of [
    ['a CONNECT whose client identifier runs past the packet', Buffer.from([0x10, 14, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 5, 0x61, 0x62])],
    ['a CONNECT whose will message is missing', connectPacket({ flags: 0x06, trailing: [...str('w')] })],
    ['a CONNECT with a user name of ill-formed UTF-8', connectPacket({ username: [0xc0, 0x80] })],
  ] as const) {
    it(`[MQTT-3.2.2-6] closes the connection without CONNACK when no return code applies: ${what}`, async () => {
      const p = await Peer.open(b);
      p.send(data);
      await p.expectClosed();
      assert.equal(p.log.length, 0);
    });
  }
});

describe('MQTT 3.1.1 §3.1.2.10 keep alive', { concurrency: true }, () => {
  it('[MQTT-3.1.2-24] [MQTT-3.1.2-23] closes a connection silent for 1.5 × its keep alive', () =>
    withBroker({}, async (b) => {
      const p = await Peer.connect(b, { keepalive: 1 });
      const start = Date.now();
      await p.expectClosed(3000);
      const elapsed = Date.now() - start;
      assert.ok(elapsed >= 1400 && elapsed < 2600, `closed after ${elapsed} ms`);
    }));

  it('[MQTT-3.1.2-24] publishes the will of a connection closed for keep alive, as if the network had failed', () =>
    withBroker({}, async (b) => {
      const w = await watch(b, 'ka/will');
      const p = await Peer.connect(b, { keepalive: 1, will: { topic: 'ka/will', payload: Buffer.from('timed out'), qos: 0, retain: false } });
      await p.expectClosed(3000);
      assert.equal((await w.message(1000)).payload.toString(), 'timed out');
    }));

  it('[MQTT-3.1.2-24] keeps a connection that sends PINGREQ within the keep alive', () =>
    withBroker({}, async (b) => {
      const p = await Peer.connect(b, { keepalive: 1 });
      for (let i = 0; i < 3; i++) {
        await pace(800);
        p.send([0xc0, 0]);
        await p.next('pingresp');
      }
      assert.equal(p.isClosed, false);
    }));

  it('[MQTT-3.1.2-24] counts any control packet, not only PINGREQ, as activity', () =>
    withBroker({}, async (b) => {
      const p = await Peer.connect(b, { keepalive: 1 });
      for (let i = 0; i < 3; i++) {
        await pace(800);
        p.publish('ka/activity', String(i), { qos: 1, id: i + 1 });
        await p.next('puback');
      }
      assert.equal(p.isClosed, false);
    }));

  it(
    '[MQTT-3.1.2-24] counts only whole control packets: bytes of a packet never completed do not keep the connection',
    () =>
      withBroker({}, async (b) => {
        const p = await Peer.connect(b, { keepalive: 1 });
        const start = Date.now();
        // A PUBLISH announcing 200 bytes, sent one byte every 300 ms: no control packet is ever received.
        p.send([0x30, 200]);
        const timer = setInterval(() => {
          if (!p.isClosed) p.send([0x61]);
        }, 300);
        try {
          await p.expectClosed(3000);
        } finally {
          clearInterval(timer);
        }
        const elapsed = Date.now() - start;
        assert.ok(elapsed < 2600, `closed after ${elapsed} ms`);
      }),
  );
});

describe('MQTT 3.1.1 §3.1.4 / §3.2 CONNECT with an authentication hook', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker({
      // "good" passes at once, "slow" after a while; "bad" is refused at once, "slowbad" after a while.
      authenticate: ({ username }) =>
        username === 'bad'
          ? false
          : username === 'slowbad'
            ? pace(80).then(() => false)
            : username === 'slow'
              ? pace(80).then(() => true)
              : true,
    });
  });
  afterEach(() => b.close());

  for (const username of ['bad', 'slowbad']) {
    it(`[MQTT-3.1.4-5] processes nothing sent after a CONNECT refused by authentication (${username === 'bad' ? 'at once' : 'asynchronously'})`, async () => {
      const w = await watch(b, 'auth/#');
      const p = await Peer.open(b);
      p.send(
        Buffer.concat([
          connectPacket({ username }),
          publishBytes('auth/t', 'must not be routed', { qos: 1, id: 1, retain: true }),
          subscribeBytes(2, ['auth/#', 0]),
          Buffer.from([0xc0, 0]),
        ]),
      );
      await p.expectClosed();
      assert.deepEqual(p.log.map((f) => f.type), [T.CONNACK]);
      assert.notEqual(p.log[0]!.body[1], 0);
      await w.expectNo('publish');
      const late = await Peer.connect(b);
      await late.subscribe('auth/#', 0);
      await late.expectNo('publish');
    });

    it(`[MQTT-3.2.2-4] sets Session Present 0 when authentication refuses a client whose session is stored (${username})`, async () => {
      await (await Peer.connect(b, { clientId: `stored-${username}`, clean: false, username: 'good' })).disconnect();
      const p = await Peer.open(b);
      p.send(connectPacket({ clientId: `stored-${username}`, clean: false, username }));
      await p.expectClosed();
      assert.equal(p.log.length, 1);
      assert.equal(p.log[0]!.body[0], 0, 'Session Present 0');
      assert.ok([4, 5].includes(p.log[0]!.body[1]!), `return code ${p.log[0]!.body[1]}`);
    });

    it(`[MQTT-3.2.2-5] closes the connection after a refusing CONNACK from authentication (${username})`, async () => {
      const p = await Peer.open(b);
      p.send(connectPacket({ username }));
      await p.next('connack');
      await p.expectClosed();
    });
  }

  it('[MQTT-3.1.4-4] acknowledges a CONNECT accepted asynchronously with return code 0', async () => {
    const p = await Peer.open(b);
    p.send(connectPacket({ username: 'slow' }));
    await p.next('connack');
    assert.deepEqual([...p.log[0]!.raw], [0x20, 2, 0, 0]);
  });

  it('[MQTT-3.2.0-1] sends CONNACK first when authentication is asynchronous and packets follow the CONNECT', async () => {
    const r = await Peer.connect(b, { username: 'good' });
    r.publish('authfirst/t', 'retained', { qos: 1, id: 1, retain: true });
    await r.next('puback');
    const p = await Peer.open(b);
    p.send(
      Buffer.concat([
        connectPacket({ username: 'slow' }),
        subscribeBytes(1, ['authfirst/t', 1]),
        publishBytes('authfirst/x', 'x', { qos: 1, id: 2 }),
        Buffer.from([0xc0, 0]),
      ]),
    );
    await p.next('pingresp');
    await p.message();
    assert.deepEqual(
      p.log.map((f) => f.type),
      [T.CONNACK, T.SUBACK, T.PUBLISH, T.PUBACK, T.PINGRESP],
    );
  });

  it('[MQTT-3.1.0-2] closes the connection on a second CONNECT sent while the first waits for authentication, answering it not', async () => {
    const p = await Peer.open(b);
    p.send(Buffer.concat([connectPacket({ username: 'slow', clientId: 'auth-twice' }), connectPacket({ username: 'good', clientId: 'auth-twice-2', clean: false })]));
    await p.expectClosed();
    assert.ok(p.of(T.CONNACK).length <= 1, 'at most the first CONNECT is answered');
    const probe = await Peer.connect(b, { clientId: 'auth-twice-2', clean: false, username: 'good' });
    assert.equal(probe.connack.sessionPresent, false, 'the second CONNECT created no session');
  });

  it('[MQTT-3.1.4-2] disconnects the existing client only once the new connection with its client identifier is accepted', async () => {
    // The same user both times: another user's CONNECT for the identifier is refused (the session is the first user's).
    const first = await Peer.connect(b, { clientId: 'auth-dupe', username: 'slow' });
    const refused = await Peer.open(b);
    refused.send(connectPacket({ clientId: 'auth-dupe', username: 'slowbad' }));
    await refused.expectClosed();
    await first.expectOpen();
    const second = await Peer.connect(b, { clientId: 'auth-dupe', username: 'slow' });
    await first.expectClosed();
    await second.expectOpen();
  });
});
