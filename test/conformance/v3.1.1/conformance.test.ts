// MQTT 3.1.1 conformance, chapter 7 (conformance targets): a plain client interoperates; TCP is an ordered byte stream.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { collect, type ServerTestBroker, startBroker } from '../../helpers/broker.js';
import {
  connectPacket,
  framePayload,
  pace,
  Peer,
  publishBytes,
  subscribeBytes,
  T,
  unsubscribeBytes,
  until,
} from './helpers.js';

describe('MQTT 3.1.1 §7 conformance targets', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  it('[MQTT-7.0.0-2] serves a plain 3.1.1 client that uses no extension (no credentials, no properties)', async () => {
    const sub = await b.client({ protocolVersion: 4, protocolId: 'MQTT', clean: true, keepalive: 30 });
    const pub = await b.client({ protocolVersion: 4, protocolId: 'MQTT', clean: true });
    const granted = await sub.subscribeAsync({ 'plain/0': { qos: 0 }, 'plain/1': { qos: 1 }, 'plain/2': { qos: 2 } });
    assert.deepEqual(granted.map((g) => g.qos).sort(), [0, 1, 2]);
    const got = collect(sub, 3);
    await pub.publishAsync('plain/0', 'zero', { qos: 0 });
    await pub.publishAsync('plain/1', 'one', { qos: 1 });
    await pub.publishAsync('plain/2', 'two', { qos: 2 });
    const received = await got;
    assert.deepEqual(received.map((m) => [m.topic, m.payload.toString(), m.packet.qos]).sort(), [
      ['plain/0', 'zero', 0],
      ['plain/1', 'one', 1],
      ['plain/2', 'two', 2],
    ]);
    await sub.unsubscribeAsync('plain/1');
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('[MQTT-7.1.1-1] reads a whole conversation sent one byte per TCP segment', async () => {
    const w = await Peer.connect(b);
    await w.subscribe('bytes/#', 2);
    const p = await Peer.open(b);
    const conversation = Buffer.concat([
      connectPacket({ clientId: 'bytewise' }),
      subscribeBytes(1, ['bytes/back', 1]),
      publishBytes('bytes/a', 'one', { qos: 1, id: 2 }),
      publishBytes('bytes/b', 'two', { qos: 2, id: 3 }),
      Buffer.from([0x62, 2, 0, 3]),
      unsubscribeBytes(4, 'bytes/back'),
      Buffer.from([0xc0, 0]),
    ]);
    for (const byte of conversation) {
      p.send([byte]);
      await pace(1);
    }
    await p.next('pingresp');
    assert.deepEqual(
      p.log.map((f) => f.type),
      [T.CONNACK, T.SUBACK, T.PUBACK, T.PUBREC, T.PUBCOMP, T.UNSUBACK, T.PINGRESP],
    );
    const got = [await w.message(), await w.message()].map((m) => m.payload.toString());
    assert.deepEqual(got, ['one', 'two']);
  });

  it('[MQTT-7.1.1-1] reads many packets arriving in one TCP segment, in order', async () => {
    const w = await Peer.connect(b);
    await w.subscribe('many/t', 1);
    const seen = w.autoAck();
    const p = await Peer.open(b);
    const n = 200;
    p.send(
      Buffer.concat([
        connectPacket(),
        ...[...Array(n).keys()].map((i) => publishBytes('many/t', String(i), { qos: 1, id: i + 1 })),
        Buffer.from([0xc0, 0]),
      ]),
    );
    await p.next('pingresp');
    assert.deepEqual(p.of(T.PUBACK).map((f) => f.body.readUInt16BE(0)), [...Array(n).keys()].map((i) => i + 1));
    await until(() => seen.length >= n, 'deliveries');
    assert.deepEqual(seen.map((f) => framePayload(f).toString()), [...Array(n).keys()].map(String));
  });

  it('[MQTT-7.1.1-1] delivers a large PUBLISH sent in many uneven segments intact', async () => {
    const w = await Peer.connect(b);
    await w.subscribe('large/t', 1);
    const p = await Peer.connect(b);
    const payload = Buffer.alloc(1 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const data = publishBytes('large/t', payload, { qos: 1, id: 1 });
    for (let at = 0, size = 1; at < data.length; at += size, size = (size * 7 + 13) % 65521) {
      p.send(data.subarray(at, at + size));
      if (size % 3 === 0) await pace(0);
    }
    await p.next('puback');
    const m = await w.message();
    assert.ok(Buffer.from(m.payload as Buffer).equals(payload));
  });
});
