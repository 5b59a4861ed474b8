// MQTT 3.1.1 conformance, chapter 6: MQTT over WebSocket (a broker with a TCP and a WebSocket
// listener; MQTT.js over ws, and a bare WebSocket sending frames as the test says).
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { collect, connectClient, type ServerTestBroker, startBroker } from '../../helpers/broker.js';
import { TCP_AND_WS, WsPeer, wsUrl } from '../websocket.js';
import { connectPacket, framePayload, publishBytes, subscribeBytes, T, watch } from './helpers.js';

const PINGREQ = Buffer.from([0xc0, 0x00]);

describe('MQTT 3.1.1 §6 WebSocket transport', () => {
  let b: ServerTestBroker;
  let url: string;
  beforeEach(async () => {
    b = await startBroker({ listeners: TCP_AND_WS });
    url = wsUrl(b.server);
  });
  afterEach(() => b.close());

  it('[MQTT-6.0.0-4] selects and returns the WebSocket subprotocol "mqtt"', async () => {
    for (const offered of [['mqtt'], ['chat', 'mqtt'], ['mqtt', 'mqttv3.1']]) {
      const ws = await WsPeer.open(url, offered);
      assert.equal(ws.protocol, 'mqtt', `offered ${offered.join(', ')}`);
      await ws.close();
    }
  });

  it('[MQTT-6.0.0-4] serves MQTT.js 3.1.1 clients over ws, to and from TCP clients', async () => {
    const sub = await connectClient(url, { protocolVersion: 4 });
    const pub = await connectClient(url, { protocolVersion: 4 });
    try {
      const tcp = await watch(b, 'ws4/#', 1);
      await sub.subscribeAsync('ws4/#', { qos: 1 });
      await pub.publishAsync('ws4/t', 'over ws', { qos: 1 });
      assert.equal((await collect(sub, 1))[0]!.payload.toString(), 'over ws');
      assert.equal(Buffer.from((await tcp.message()).payload as Buffer).toString(), 'over ws');
      tcp.publish('ws4/back', 'over tcp', { qos: 1, id: 1 });
      assert.equal((await collect(sub, 1))[0]!.payload.toString(), 'over tcp');
    } finally {
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    }
  });

  it('[MQTT-6.0.0-1] sends every MQTT Control Packet in binary data frames', async () => {
    const ws = await WsPeer.open(url);
    ws.send(connectPacket());
    await ws.next(T.CONNACK);
    ws.send(subscribeBytes(1, ['bin/t', 1]));
    await ws.next(T.SUBACK);
    ws.send(publishBytes('bin/t', 'x', { qos: 1, id: 2 }));
    await ws.next(T.PUBACK);
    await ws.next(T.PUBLISH);
    ws.send(PINGREQ);
    await ws.next(T.PINGRESP);
    assert.ok(ws.frames.every((f) => f.binary), 'every frame is binary');
    await ws.close();
  });

  it('[MQTT-6.0.0-1] closes the network connection on a text data frame, before or after CONNECT (the will is published)', async () => {
    const early = await WsPeer.open(url);
    early.sendText('CONNECT');
    await early.expectClosed();
    assert.deepEqual(early.log, []);

    const w = await watch(b, 'wsclose/will', 0);
    const ws = await WsPeer.open(url);
    ws.send(connectPacket({ will: { topic: 'wsclose/will', payload: 'gone' } }));
    await ws.next(T.CONNACK);
    ws.sendText(String.fromCharCode(0xc0, 0x00)); // a PINGREQ, but in a text frame
    await ws.expectClosed();
    assert.ok(!ws.log.some((p) => p.type === T.PINGRESP), 'the text frame is not processed');
    assert.equal(Buffer.from((await w.message()).payload as Buffer).toString(), 'gone', 'closed as a network failure: the will goes');
  });

  it('[MQTT-6.0.0-2] reads packets whatever the frame boundaries: several in one frame, one across frames, one byte per frame', async () => {
    const w = await watch(b, 'frames/#', 1);
    const ws = await WsPeer.open(url);
    ws.send(connectPacket(), subscribeBytes(1, ['frames/echo', 1]));
    await ws.next(T.CONNACK);
    await ws.next(T.SUBACK);
    const p = publishBytes('frames/split', 'a payload cut in pieces', { qos: 1, id: 2 });
    ws.send(p.subarray(0, 5));
    ws.send(p.subarray(5, 20));
    ws.send(p.subarray(20));
    await ws.next(T.PUBACK);
    assert.equal(Buffer.from((await w.message()).payload as Buffer).toString(), 'a payload cut in pieces');
    for (const byte of Buffer.concat([publishBytes('frames/echo', 'bytes'), PINGREQ])) ws.send(Uint8Array.of(byte));
    await ws.next(T.PINGRESP);
    const echo = await ws.next(T.PUBLISH);
    assert.equal(framePayload({ ...echo, header: echo.raw[0]! }).toString(), 'bytes');
    const two = Buffer.concat([publishBytes('frames/a', '', { qos: 1, id: 3 }), publishBytes('frames/b', '', { qos: 1, id: 4 })]);
    ws.send(two.subarray(0, 7));
    ws.send(two.subarray(7, two.length - 3));
    ws.send(two.subarray(two.length - 3));
    await ws.next(T.PUBACK);
    await ws.next(T.PUBACK);
    const topics = [(await w.message()).topic, (await w.message()).topic, (await w.message()).topic];
    assert.deepEqual(topics, ['frames/echo', 'frames/a', 'frames/b']);
    await ws.close();
  });
});
