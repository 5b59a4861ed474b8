// MQTT 5.0 conformance, chapter 6: MQTT over WebSocket (a broker with a TCP and a WebSocket
// listener; MQTT.js over ws, and a bare WebSocket sending frames as the test says).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collect, connectClient } from '../../helpers/broker.js';
import { TCP_AND_WS, WsPeer, wsUrl } from '../websocket.js';
import { client, connect, pingreq, publish, subOpts, subscribe, T, uniqueId, useBroker } from './helpers.js';

describe('MQTT 5.0 §6 WebSocket transport', () => {
  const broker = useBroker({ listeners: TCP_AND_WS });

  it('[MQTT-6.0.0-4] selects and returns the WebSocket subprotocol "mqtt"', async () => {
    const url = wsUrl(broker().server);
    for (const offered of [['mqtt'], ['chat', 'mqtt'], ['mqtt', 'chat']]) {
      const ws = await WsPeer.open(url, offered);
      assert.equal(ws.protocol, 'mqtt', `offered ${offered.join(', ')}`);
      await ws.close();
    }
  });

  it('[MQTT-6.0.0-4] serves MQTT.js 5.0 clients over ws, to and from TCP clients', async () => {
    const b = broker();
    const url = wsUrl(b.server);
    const sub = await connectClient(url, { protocolVersion: 5 });
    const pub = await connectClient(url, { protocolVersion: 5 });
    try {
      const tcp = await client(b);
      await tcp.sub('ws5/#', subOpts(1));
      await sub.subscribeAsync('ws5/#', { qos: 1 });
      await pub.publishAsync('ws5/t', 'over ws', { qos: 1, properties: { userProperties: { k: 'v' } } });
      const [m] = await collect(sub, 1);
      assert.equal(m!.payload.toString(), 'over ws');
      assert.deepEqual({ ...m!.packet.properties?.userProperties }, { k: 'v' });
      assert.equal((await tcp.publishFrame()).payload.toString(), 'over ws');
      await tcp.pub('ws5/back', 'over tcp', { qos: 1 });
      assert.equal((await collect(sub, 1))[0]!.payload.toString(), 'over tcp');
    } finally {
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    }
  });

  it('[MQTT-6.0.0-1] sends every MQTT Control Packet in binary data frames', async () => {
    const ws = await WsPeer.open(wsUrl(broker().server));
    ws.send(connect({ clientId: uniqueId() }));
    await ws.next(T.CONNACK);
    ws.send(subscribe(1, [['bin/t', subOpts(1)]]));
    await ws.next(T.SUBACK);
    ws.send(publish({ topic: 'bin/t', qos: 1, id: 2, payload: 'x' }));
    await ws.next(T.PUBACK);
    await ws.next(T.PUBLISH);
    ws.send(pingreq());
    await ws.next(T.PINGRESP);
    assert.ok(ws.frames.length > 0);
    assert.ok(ws.frames.every((f) => f.binary), 'every frame is binary');
    await ws.close();
  });

  it('[MQTT-6.0.0-1] closes the network connection on a text data frame, before or after CONNECT (the will is published)', async () => {
    const b = broker();
    const url = wsUrl(b.server);
    const early = await WsPeer.open(url);
    early.sendText('CONNECT');
    await early.expectClosed();
    assert.deepEqual(early.log, []);

    const w = await client(b);
    await w.sub('wsclose/will', subOpts(0));
    const ws = await WsPeer.open(url);
    ws.send(connect({ clientId: uniqueId(), will: { topic: 'wsclose/will', payload: 'gone' } }));
    await ws.next(T.CONNACK);
    ws.sendText(String.fromCharCode(0xc0, 0x00)); // a PINGREQ, but in a text frame
    await ws.expectClosed();
    assert.ok(!ws.log.some((p) => p.type === T.PINGRESP), 'the text frame is not processed');
    assert.equal((await w.publishFrame()).payload.toString(), 'gone', 'closed as a network failure: the will goes');
  });

  it('[MQTT-6.0.0-2] reads packets whatever the frame boundaries: several in one frame, one across frames, one byte per frame', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('frames/#', subOpts(1));
    const ws = await WsPeer.open(wsUrl(b.server));
    // CONNECT and SUBSCRIBE together in one frame.
    ws.send(connect({ clientId: uniqueId() }), subscribe(1, [['frames/echo', subOpts(1)]]));
    await ws.next(T.CONNACK);
    await ws.next(T.SUBACK);
    // One PUBLISH across three frames, the cut inside the topic and inside the payload.
    const p = publish({ topic: 'frames/split', qos: 1, id: 2, payload: 'a payload cut in pieces' });
    ws.send(p.subarray(0, 5));
    ws.send(p.subarray(5, 20));
    ws.send(p.subarray(20));
    await ws.next(T.PUBACK);
    assert.equal((await w.publishFrame()).payload.toString(), 'a payload cut in pieces');
    // A PUBLISH and a PINGREQ one byte per frame.
    for (const byte of Buffer.concat([publish({ topic: 'frames/echo', payload: 'bytes' }), pingreq()])) ws.send(Uint8Array.of(byte));
    await ws.next(T.PINGRESP);
    const echo = await ws.next(T.PUBLISH);
    assert.ok(echo.raw.includes(Buffer.from('bytes')));
    // The end of one packet and the start of the next in one frame.
    const two = Buffer.concat([publish({ topic: 'frames/a', qos: 1, id: 3 }), publish({ topic: 'frames/b', qos: 1, id: 4 })]);
    ws.send(two.subarray(0, 7));
    ws.send(two.subarray(7, two.length - 3));
    ws.send(two.subarray(two.length - 3));
    await ws.next(T.PUBACK);
    await ws.next(T.PUBACK);
    const topics = [(await w.publishFrame()).topic, (await w.publishFrame()).topic, (await w.publishFrame()).topic];
    assert.deepEqual(topics, ['frames/echo', 'frames/a', 'frames/b']);
    await ws.close();
  });
});
