import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IConnackPacket, IDisconnectPacket, IPublishPacket, IPubackPacket, ISubackPacket, Packet } from 'mqtt-packet';
import { collect, received, startCoreBroker, type TestBroker } from '../helpers/broker.js';
import { connect, encode, prop, publish, subscribe, varintBytes, type Property } from '../helpers/packets.js';
import type { Peer } from '../helpers/peer.js';
import { until } from '../helpers/wait.js';
import { T } from '../helpers/wire.js';

/**
 * Every numeric field the broker reads, at 0, 1, max−1, max and max+1 where the encoding allows it,
 * with the outcome the specification gives. One table per field; each row names its statement.
 */

interface Row {
  value: number | string;
  outcome: string;
  run: () => Promise<void>;
}

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const VARINT_MAX = 268_435_455;

describe('numeric fields at the edges of their ranges', () => {
  let b: TestBroker;
  let n = 0;
  before(async () => {
    b = await startCoreBroker({ maxPacketSize: 4096 });
  });
  after(() => b.close());

  const id = (): string => `edge-${n++}`;

  /** A raw 5.0 (or 3.1.1) connection that sent CONNECT with these properties; resolves with it and its CONNACK. */
  async function open(options: { props?: Property[]; version?: 4 | 5; keepAlive?: number; clientId?: string; clean?: boolean; will?: Parameters<typeof connect>[0]['will'] } = {}): Promise<[Peer, IConnackPacket]> {
    const version = options.version ?? 5;
    const raw = (await b.raw()).version(version);
    raw.send(encode(connect({ version, clientId: options.clientId ?? id(), clean: options.clean ?? true, keepAlive: options.keepAlive ?? 60, props: options.props ?? [], will: options.will })));
    return [raw, await raw.next<IConnackPacket>('connack')];
  }

  const reasonOf = (p: Packet): number => (p as IDisconnectPacket).reasonCode ?? 0;

  async function expectDisconnect(raw: Peer, reason: number): Promise<void> {
    assert.equal(reasonOf(await raw.next('disconnect')), reason);
    await raw.expectClosed();
  }

  function table(field: string, where: string, rows: Row[]): void {
    describe(`${field} (${where})`, () => {
      for (const row of rows) it(`${row.value}: ${row.outcome}`, row.run);
    });
  }

  table('Keep Alive', 'CONNECT, two bytes, §3.1.2.10', [
    {
      value: 0,
      outcome: 'keep alive is off: the connection outlives a silent one with keep alive 1 (§3.1.2.10)',
      run: async () => {
        const [off] = await open({ keepAlive: 0 });
        const [one] = await open({ keepAlive: 1 });
        await one.expectClosed(4000);
        await off.expectOpen();
        off.destroy();
      },
    },
    {
      value: 1,
      outcome: 'closed with DISCONNECT 0x8D after one and a half seconds without a packet [MQTT-3.1.2-22]',
      run: async () => {
        const [raw] = await open({ keepAlive: 1 });
        const started = Date.now();
        await expectDisconnect(raw, 0x8d);
        assert.ok(Date.now() - started >= 1400, `closed after ${Date.now() - started} ms`);
      },
    },
    ...[U16_MAX - 1, U16_MAX].map((value) => ({
      value,
      outcome: 'accepted as asked: CONNACK carries no Server Keep Alive (§3.2.2.3.14)',
      run: async () => {
        const [raw, connack] = await open({ keepAlive: value });
        assert.equal(connack.reasonCode, 0);
        assert.equal(connack.properties?.serverKeepAlive, undefined);
        raw.destroy();
      },
    })),
  ]);

  /** Connects with `expiry`, disconnects, and reconnects: whether the session was still there. */
  async function sessionKept(expiry: number): Promise<boolean> {
    const clientId = id();
    const [first] = await open({ clientId, clean: false, props: [prop(0x11, expiry)] });
    first.destroy();
    await b.offline(clientId);
    const [second, connack] = await open({ clientId, clean: false, props: [prop(0x11, expiry)] });
    second.send([0xe0, 0x00]);
    return connack.sessionPresent;
  }

  table('Session Expiry Interval', 'CONNECT property, four bytes, §3.1.2.11.2', [
    { value: 0, outcome: 'the session ends when the connection closes [MQTT-3.1.2-23]', run: async () => assert.equal(await sessionKept(0), false) },
    {
      value: 1,
      outcome: 'kept for a reconnection at once, gone one second after the disconnection',
      run: async () => {
        assert.equal(await sessionKept(1), true);
        const clientId = id();
        const [raw] = await open({ clientId, clean: false, props: [prop(0x11, 1)] });
        raw.destroy();
        await until(() => !b.broker.sessions.has(clientId), 'the session to expire', 4000);
      },
    },
    { value: U32_MAX - 1, outcome: 'kept', run: async () => assert.equal(await sessionKept(U32_MAX - 1), true) },
    {
      value: U32_MAX,
      outcome: 'kept and never expires (§3.1.2.11.2)',
      run: async () => {
        const clientId = id();
        const [raw] = await open({ clientId, clean: false, props: [prop(0x11, U32_MAX)] });
        raw.destroy();
        await b.offline(clientId);
        assert.equal(b.broker.sessions.get(clientId)!.endsAt, Infinity);
      },
    },
  ]);

  /** Publishes with this Message Expiry Interval to a connected subscriber: the interval it receives. */
  async function expiryDelivered(expiry: number): Promise<number | undefined> {
    const topic = `edge/expiry/${id()}`;
    const sub = await b.client({ protocolVersion: 5 });
    await sub.subscribeAsync(topic, { qos: 1 });
    const pub = await b.client({ protocolVersion: 5 });
    await pub.publishAsync(topic, 'x', { qos: 1, properties: { messageExpiryInterval: expiry } });
    const [m] = await collect(sub, 1);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
    return m!.packet.properties?.messageExpiryInterval;
  }

  table('Message Expiry Interval', 'PUBLISH property, four bytes, §3.3.2.3.3', [
    {
      value: 0,
      outcome: 'sent to a connected subscriber at once with 0 left; never delivered from an offline session queue [MQTT-3.3.2-5]',
      run: async () => {
        assert.equal(await expiryDelivered(0), 0);
        const clientId = id();
        const topic = `edge/expired/${clientId}`;
        const sub = await b.client({ protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
        await sub.subscribeAsync(topic, { qos: 1 });
        await sub.endAsync();
        const pub = await b.client({ protocolVersion: 5 });
        await pub.publishAsync(topic, 'gone', { qos: 1, properties: { messageExpiryInterval: 0 } });
        await pub.publishAsync(topic, 'kept', { qos: 1 });
        const back = await b.client({ protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 0 } });
        assert.deepEqual((await collect(back, 1)).map((m) => m.payload.toString()), ['kept']);
        await Promise.all([back.endAsync(), pub.endAsync()]);
      },
    },
    ...[1, U32_MAX - 1, U32_MAX].map((value) => ({
      value,
      outcome: 'forwarded with the interval left, here all of it [MQTT-3.3.2-6]',
      run: async () => assert.equal(await expiryDelivered(value), value),
    })),
  ]);

  /** Opens a 5.0 client with a will of this delay and session expiry, drops it, and returns how long the will took (ms); fails if none came within `ms`. */
  async function willAfter(delaySeconds: number, sessionExpiry: number, ms = 3000): Promise<number> {
    const topic = `edge/will/${id()}`;
    const watcher = await b.client({ protocolVersion: 5 });
    await watcher.subscribeAsync(topic);
    const [raw] = await open({ clean: true, props: [prop(0x11, sessionExpiry)], will: { topic, payload: Uint8Array.of(1), qos: 0, retain: false, props: [prop(0x18, delaySeconds)] } });
    const dropped = Date.now();
    raw.destroy();
    await until(() => received(watcher).length > 0, 'the will', ms);
    const took = Date.now() - dropped;
    await watcher.endAsync();
    return took;
  }

  table('Will Delay Interval', 'will property, four bytes, §3.1.3.2.2', [
    { value: 0, outcome: 'the will is published as soon as the connection is lost [MQTT-3.1.2-8]', run: async () => assert.ok((await willAfter(0, 60)) < 900) },
    {
      value: 1,
      outcome: 'the will is published one second after the connection is lost, not before',
      run: async () => {
        const took = await willAfter(1, 60);
        assert.ok(took >= 900, `the will came after ${took} ms`);
      },
    },
    ...[U32_MAX - 1, U32_MAX].map((value) => ({
      value,
      outcome: 'with Session Expiry 0 the session ends first: the will is published at once [MQTT-3.1.2-8]',
      run: async () => assert.ok((await willAfter(value, 0)) < 900),
    })),
  ]);

  /** A raw subscriber with this Receive Maximum and three QoS 1 messages published to it: how many arrive before it acknowledges any. */
  async function unacknowledgedSent(receiveMaximum: number): Promise<IPublishPacket[]> {
    const topic = `edge/rm/${id()}`;
    const [raw] = await open({ props: [prop(0x21, receiveMaximum)] });
    raw.send(encode(subscribe(5, 1, [{ filter: topic, options: 1 }], [])));
    await raw.next('suback');
    const pub = await b.client({ protocolVersion: 5 });
    for (let i = 0; i < 3; i++) await pub.publishAsync(topic, String(i), { qos: 1 });
    await until(() => raw.queued.filter((f) => f.type === T.PUBLISH).length >= Math.min(3, receiveMaximum), 'the first publishes');
    await raw.roundTrip();
    await pub.endAsync();
    const publishes = raw.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
    raw.destroy();
    return publishes;
  }

  table('Receive Maximum', 'CONNECT property, two bytes, §3.1.2.11.3', [
    {
      value: 0,
      outcome: 'a Protocol Error: CONNACK 0x82 (§3.1.2.11.3)',
      run: async () => {
        const [raw, connack] = await open({ props: [prop(0x21, 0)] });
        assert.equal(connack.reasonCode, 0x82);
        await raw.expectClosed();
      },
    },
    { value: 1, outcome: 'one unacknowledged QoS 1 PUBLISH at a time [MQTT-3.3.4-9]', run: async () => assert.equal((await unacknowledgedSent(1)).length, 1) },
    ...[U16_MAX - 1, U16_MAX].map((value) => ({ value, outcome: 'all three sent without waiting for PUBACK', run: async () => assert.equal((await unacknowledgedSent(value)).length, 3) })),
  ]);

  table('Maximum Packet Size', 'CONNECT property, four bytes, §3.1.2.11.4', [
    {
      value: 0,
      outcome: 'a Protocol Error: CONNACK 0x82 (§3.1.2.11.4)',
      run: async () => assert.equal((await open({ props: [prop(0x27, 0)] }))[1].reasonCode, 0x82),
    },
    {
      value: 1,
      outcome: 'nothing is sent to it, not even CONNACK, while a client asking for 64 bytes is answered [MQTT-3.1.2-24]',
      run: async () => {
        const tiny = (await b.raw()).version(5);
        tiny.send(encode(connect({ version: 5, clientId: id(), clean: true, keepAlive: 60, props: [prop(0x27, 1)] })));
        const dropped = b.broker.metrics.packetsDropped;
        const [control] = await open({ props: [prop(0x27, 64)] });
        tiny.send([0xc0, 0x00]);
        control.send([0xc0, 0x00]);
        await control.next('pingresp');
        await until(() => b.broker.metrics.packetsDropped >= dropped + 2, 'CONNACK and PINGRESP to be dropped');
        assert.equal(b.broker.metrics.packetsDropped, dropped + 2, 'CONNACK and PINGRESP were not sent');
        assert.deepEqual(tiny.packets, []);
        tiny.destroy();
        control.destroy();
      },
    },
    ...[U32_MAX - 1, U32_MAX].map((value) => ({
      value,
      outcome: 'a 3,000-byte message is delivered',
      run: async () => {
        const topic = `edge/mps/${id()}`;
        const [raw] = await open({ props: [prop(0x27, value)] });
        raw.send(encode(subscribe(5, 1, [{ filter: topic, options: 0 }], [])));
        await raw.next('suback');
        const pub = await b.client({ protocolVersion: 5 });
        await pub.publishAsync(topic, Buffer.alloc(3000), { qos: 1 });
        assert.equal(((await raw.next('publish')) as IPublishPacket).payload.length, 3000);
        await pub.endAsync();
        raw.destroy();
      },
    })),
  ]);

  /** Topic Aliases a client with this Topic Alias Maximum receives for messages on two topics. */
  async function aliasesReceived(maximum: number): Promise<(number | undefined)[]> {
    const base = `edge/tam/${id()}`;
    const [raw] = await open({ props: [prop(0x22, maximum)] });
    raw.send(encode(subscribe(5, 1, [{ filter: `${base}/+`, options: 0 }], [])));
    await raw.next('suback');
    const pub = await b.client({ protocolVersion: 5 });
    for (const t of ['a', 'b', 'a']) await pub.publishAsync(`${base}/${t}`, t, { qos: 1 });
    const out: (number | undefined)[] = [];
    for (let i = 0; i < 3; i++) out.push(((await raw.next('publish')) as IPublishPacket).properties?.topicAlias);
    await pub.endAsync();
    raw.destroy();
    return out;
  }

  table('Topic Alias Maximum', 'CONNECT property, two bytes, §3.1.2.11.5', [
    { value: 0, outcome: 'no Topic Alias is sent [MQTT-3.1.2-27]', run: async () => assert.deepEqual(await aliasesReceived(0), [undefined, undefined, undefined]) },
    { value: 1, outcome: 'alias 1 for the first topic, the second without one [MQTT-3.3.2-11]', run: async () => assert.deepEqual(await aliasesReceived(1), [1, undefined, 1]) },
    ...[U16_MAX - 1, U16_MAX].map((value) => ({ value, outcome: 'aliases 1 and 2, reused for a topic seen before', run: async () => assert.deepEqual(await aliasesReceived(value), [1, 2, 1]) })),
  ]);

  /** A PUBLISH with this Topic Alias (and its topic): the reason it is acknowledged with, or the DISCONNECT reason. */
  async function topicAliasOutcome(alias: number): Promise<string> {
    const [raw] = await open();
    raw.send(encode(publish(5, { topic: 'edge/alias', qos: 1, retain: false, dup: false, packetId: 7, payload: Uint8Array.of(1), props: [prop(0x23, alias)] })));
    const answer = raw.decode(await raw.next([T.PUBACK, T.DISCONNECT]));
    raw.destroy();
    return `${answer.cmd} 0x${reasonOf(answer).toString(16)}`;
  }

  table('Topic Alias', 'PUBLISH property, two bytes, the broker announces Topic Alias Maximum 64, §3.3.2.3.4', [
    { value: 0, outcome: 'DISCONNECT 0x94 Topic Alias invalid [MQTT-3.3.2-8]', run: async () => assert.equal(await topicAliasOutcome(0), 'disconnect 0x94') },
    ...[1, 63, 64].map((value) => ({ value, outcome: 'accepted (0x10: no subscribers)', run: async () => assert.equal(await topicAliasOutcome(value), 'puback 0x10') })),
    { value: 65, outcome: 'DISCONNECT 0x94 Topic Alias invalid [MQTT-3.3.2-9]', run: async () => assert.equal(await topicAliasOutcome(65), 'disconnect 0x94') },
  ]);

  /** SUBSCRIBE with this Subscription Identifier (as a varint's bytes), then a message: the identifiers it carries, or the DISCONNECT reason. */
  async function subscriptionIdentifier(idBytes: number[]): Promise<string> {
    const topic = `edge/sid/${id()}`;
    const [raw] = await open();
    const packet = subscribe(5, 1, [{ filter: topic, options: 0 }], []);
    packet.fields[1] = { kind: 'props', props: [{ id: 0x0b, value: [{ kind: 'raw', bytes: Uint8Array.from(idBytes) }] }] };
    raw.send(encode(packet));
    const suback = raw.decode(await raw.next([T.SUBACK, T.DISCONNECT]));
    if (suback.cmd === 'disconnect') return `disconnect 0x${reasonOf(suback).toString(16)}`;
    const pub = await b.client({ protocolVersion: 5 });
    await pub.publishAsync(topic, 'x', { qos: 1 });
    const m = (await raw.next('publish')) as IPublishPacket;
    await pub.endAsync();
    raw.destroy();
    return `ids ${JSON.stringify(m.properties?.subscriptionIdentifier)}`;
  }

  table('Subscription Identifier', 'SUBSCRIBE property, Variable Byte Integer, §3.8.2.1.2', [
    { value: 0, outcome: 'a Protocol Error: DISCONNECT 0x82 (§3.8.2.1.2)', run: async () => assert.equal(await subscriptionIdentifier([0]), 'disconnect 0x82') },
    ...[1, VARINT_MAX - 1, VARINT_MAX].map((value) => ({
      value,
      outcome: 'each message it matches carries it [MQTT-3.3.4-3]',
      run: async () => assert.equal(await subscriptionIdentifier(varintBytes(value)), `ids ${value}`),
    })),
    {
      value: 'max+1 (five bytes)',
      outcome: 'malformed: DISCONNECT 0x81 [MQTT-1.5.5-1]',
      run: async () => assert.equal(await subscriptionIdentifier([0x80, 0x80, 0x80, 0x80, 0x01]), 'disconnect 0x81'),
    },
  ]);

  for (const version of [4, 5] as const) {
    table('Packet Identifier', `PUBLISH QoS 1 and SUBSCRIBE, two bytes, MQTT ${version === 5 ? '5.0' : '3.1.1'}, §2.2.1`, [
      {
        value: 0,
        outcome: `malformed: ${version === 5 ? 'DISCONNECT 0x81 and ' : ''}the connection closed [MQTT-2.2.1-3]`,
        run: async () => {
          const [raw] = await open({ version });
          raw.send(encode(publish(version, { topic: 'edge/pid', qos: 1, retain: false, dup: false, packetId: 0, payload: Uint8Array.of(1), props: [] })));
          if (version === 5) await expectDisconnect(raw, 0x81);
          else await raw.expectClosed();
        },
      },
      ...[1, U16_MAX - 1, U16_MAX].map((value) => ({
        value,
        outcome: 'PUBACK and SUBACK carry the same identifier [MQTT-2.2.1-4] [MQTT-3.8.4-2]',
        run: async () => {
          const [raw] = await open({ version });
          raw.send(encode(publish(version, { topic: 'edge/pid', qos: 1, retain: false, dup: false, packetId: value, payload: Uint8Array.of(1), props: [] })));
          assert.equal(((await raw.next('puback')) as IPubackPacket).messageId, value);
          raw.send(encode(subscribe(version, value, [{ filter: 'edge/pid', options: 0 }], [])));
          assert.equal(((await raw.next('suback')) as ISubackPacket).messageId, value);
          raw.destroy();
        },
      })),
    ]);
  }

  /** A QoS 0 PUBLISH whose Remaining Length is exactly `remaining`, to a subscriber: whether it arrived whole. */
  async function publishOfLength(remaining: number): Promise<boolean> {
    const topic = `edge/rl/${id()}`;
    const sub = await b.connect({ protocolVersion: 5 });
    await sub.subscribeAsync(topic);
    const [raw] = await open();
    // Remaining Length = 2 + topic + 1 (no properties) + payload.
    const payload = new Uint8Array(remaining - 2 - topic.length - 1);
    raw.send(encode(publish(5, { topic, qos: 0, retain: false, dup: false, packetId: 0, payload, props: [] })));
    const got = await collect(sub, 1).then((m) => m[0]!.payload.length === payload.length, () => false);
    raw.destroy();
    await sub.endAsync();
    return got;
  }

  table('Remaining Length', 'fixed header, Variable Byte Integer, §2.1.4 and §1.5.5 (the broker takes packets up to 4096 bytes)', [
    {
      value: 0,
      outcome: 'a PINGREQ (no body) is answered [MQTT-3.12.4-1]',
      run: async () => {
        const [raw] = await open();
        raw.send([0xc0, 0x00]);
        await raw.next('pingresp');
        raw.destroy();
      },
    },
    ...[127, 128, 4093].map((value) => ({ value, outcome: 'a PUBLISH of this length is delivered whole (one, two bytes of length; the whole packet at the maximum)', run: async () => assert.ok(await publishOfLength(value)) })),
    {
      value: '4094 (the packet one byte over maxPacketSize)',
      outcome: 'refused with DISCONNECT 0x95 Packet too large before its body is read (§3.1.2.11.4)',
      run: async () => {
        const [raw] = await open();
        raw.send([0x30, ...varintBytes(4094)]);
        await expectDisconnect(raw, 0x95);
      },
    },
    ...[VARINT_MAX - 1, VARINT_MAX].map((value) => ({
      value,
      outcome: 'refused with DISCONNECT 0x95 at its header, the body never awaited',
      run: async () => {
        const [raw] = await open();
        raw.send([0x30, ...varintBytes(value)]);
        await expectDisconnect(raw, 0x95);
      },
    })),
    {
      value: 'max+1 (five bytes)',
      outcome: 'malformed: DISCONNECT 0x81 [MQTT-1.5.5-1]',
      run: async () => {
        const [raw] = await open();
        raw.send([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]);
        await expectDisconnect(raw, 0x81);
      },
    },
  ]);
});
