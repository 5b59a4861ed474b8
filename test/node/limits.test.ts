import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket, { type IConnackPacket, type IDisconnectPacket, type IPublishPacket } from 'mqtt-packet';
import { collect } from '../helpers/broker.js';
import { local, startServer, type TestServer } from '../helpers/server.js';
import { connectBytes, Peer } from '../helpers/peer.js';
import { pace, until } from '../helpers/wait.js';

const metric = (text: string, name: string): number => Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);

describe('limits', () => {
  it('maxConnections: refuses one more client with CONNACK 0x97 (5.0) or 3 (3.1.1), and admits again once one leaves', async () => {
    const s = await startServer({ listeners: [local], maxConnections: 2 });
    const first = await s.client(s.url('mqtt'));
    await s.client(s.url('mqtt'), { protocolVersion: 5 });
    const v5 = await new Peer().tcp(s.port('mqtt'));
    assert.equal((await v5.handshake({ protocolVersion: 5 })).reasonCode, 0x97);
    await v5.expectClosed();
    const v4 = await new Peer().tcp(s.port('mqtt'));
    assert.equal((await v4.handshake({ protocolVersion: 4 })).returnCode, 3);
    await v4.expectClosed();
    assert.equal(metric(s.server.metricsText(), 'arbormq_connections_refused_total{reason="max_connections"}'), 2);
    await first.endAsync();
    await until(() => s.server.connectionCount <= 1, 'the first client to be gone');
    const again = await new Peer().tcp(s.port('mqtt'));
    assert.equal((await again.handshake({ protocolVersion: 5 })).reasonCode, 0);
    again.destroy();
    await s.close();
  });

  it('maxPacketSize: closes a 5.0 client sending a larger packet with DISCONNECT 0x95, and a 3.1.1 client without a word', async () => {
    const s = await startServer({ listeners: [local], maxPacketSize: 256 });
    const v5 = await new Peer().tcp(s.port('mqtt'));
    const connack = (await v5.handshake({ protocolVersion: 5 })) as IConnackPacket;
    assert.equal(connack.properties?.maximumPacketSize, 256);
    v5.sendPacket({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(300), qos: 0, dup: false, retain: false }, 5);
    assert.equal(((await v5.next('disconnect')) as IDisconnectPacket).reasonCode, 0x95);
    await v5.expectClosed();
    const v4 = await new Peer().tcp(s.port('mqtt'));
    await v4.handshake({ protocolVersion: 4 });
    v4.sendPacket({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(300), qos: 0, dup: false, retain: false });
    await v4.expectClosed();
    await s.close();
  });

  it('maxInflight: sends a subscriber no more unacknowledged QoS 1 messages than the limit, the next after each PUBACK', async () => {
    const s = await startServer({ listeners: [local], maxInflight: 2 });
    const sub = await new Peer().tcp(s.port('mqtt'));
    await sub.handshake({ protocolVersion: 4, clientId: 'slow-reader' });
    sub.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'work', qos: 1 }] });
    await sub.next('suback');
    const pub = await s.client(s.url('mqtt'));
    for (let i = 0; i < 5; i++) await pub.publishAsync('work', `job ${i}`, { qos: 1 });
    const a = (await sub.next('publish')) as IPublishPacket;
    await sub.next('publish');
    await sub.roundTrip();
    assert.equal(sub.packets.filter((p) => p.cmd === 'publish').length, 0, 'a third message went out before any PUBACK');
    sub.sendPacket({ cmd: 'puback', messageId: a.messageId! });
    assert.equal(((await sub.next('publish')) as IPublishPacket).payload.toString(), 'job 2');
    sub.destroy();
    await s.close();
  });

  it('maxQueuedMessages: keeps that many messages for an offline session and counts the rest as dropped', async () => {
    const s = await startServer({ listeners: [local], maxQueuedMessages: 3 });
    const away = await s.client(s.url('mqtt'), { clientId: 'away', clean: false });
    await away.subscribeAsync('news', { qos: 1 });
    await away.endAsync();
    const pub = await s.client(s.url('mqtt'));
    for (let i = 0; i < 5; i++) await pub.publishAsync('news', `n${i}`, { qos: 1 });
    assert.equal(metric(s.server.metricsText(), 'arbormq_messages_queued'), 3);
    assert.equal(metric(s.server.metricsText(), 'arbormq_messages_dropped_total{reason="queue_full"}'), 2);
    const back = await new Peer().tcp(s.port('mqtt'));
    await back.handshake({ protocolVersion: 4, clientId: 'away', clean: false });
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(((await back.next('publish')) as IPublishPacket).payload.toString());
    assert.deepEqual(got, ['n0', 'n1', 'n2']);
    back.destroy();
    await s.close();
  });

  it('maxKeepAlive: tells a 5.0 client asking for more the Server Keep Alive it must use', async () => {
    const s = await startServer({ listeners: [local], maxKeepAlive: 10 });
    const raw = await new Peer().tcp(s.port('mqtt'));
    const connack = (await raw.handshake({ protocolVersion: 5, keepalive: 600 })) as IConnackPacket;
    assert.equal(connack.properties?.serverKeepAlive, 10);
    raw.destroy();
    await s.close();
  });

  it('maxKeepAlive: accepts a 3.1 / 3.1.1 client with keep alive 0 or up to the maximum, and refuses one above it with 0x02 identifier rejected (as Mosquitto)', async () => {
    const s = await startServer({ listeners: [local], maxKeepAlive: 60 });
    for (const protocolVersion of [3, 4] as const) {
      for (const keepalive of [0, 60]) {
        const raw = await new Peer().tcp(s.port('mqtt'));
        assert.equal((await raw.handshake({ protocolVersion, keepalive })).returnCode, 0, `level ${protocolVersion}, keep alive ${keepalive}`);
        raw.sendPacket({ cmd: 'pingreq' }, protocolVersion);
        await raw.next('pingresp');
        raw.destroy();
      }
      const over = await new Peer().tcp(s.port('mqtt'));
      assert.equal((await over.handshake({ protocolVersion, keepalive: 61 })).returnCode, 2, `level ${protocolVersion}, keep alive 61`);
      await over.expectClosed();
    }
    const v5 = await new Peer().tcp(s.port('mqtt'));
    const connack = (await v5.handshake({ protocolVersion: 5, keepalive: 0 })) as IConnackPacket;
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.serverKeepAlive, 60);
    v5.destroy();
    await s.close();
  });

  it('connectTimeoutMs: closes a connection that sends no CONNECT in time', async () => {
    const s = await startServer({ listeners: [local], connectTimeoutMs: 150 });
    const raw = await new Peer().tcp(s.port('mqtt'));
    const started = Date.now();
    await raw.expectClosed(1000);
    assert.ok(Date.now() - started >= 100);
    await s.close();
  });

  it('maxMessagesPerSecond: disconnects a 5.0 client publishing faster with 0x96, closes a 3.1.1 one, and lets a client within the rate be', async () => {
    const s = await startServer({ listeners: [local], maxMessagesPerSecond: 20 });
    const burst = (raw: Peer, version: 4 | 5, n: number): void => {
      for (let i = 0; i < n; i++) raw.sendPacket({ cmd: 'publish', topic: 'fast', payload: Buffer.from('x'), qos: 0, dup: false, retain: false }, version);
    };
    const v5 = await new Peer().tcp(s.port('mqtt'));
    await v5.handshake({ protocolVersion: 5 });
    burst(v5, 5, 40);
    assert.equal(((await v5.next('disconnect')) as IDisconnectPacket).reasonCode, 0x96);
    await v5.expectClosed();
    const v4 = await new Peer().tcp(s.port('mqtt'));
    await v4.handshake({ protocolVersion: 4 });
    burst(v4, 4, 40);
    await v4.expectClosed();
    const steady = await new Peer().tcp(s.port('mqtt'));
    await steady.handshake({ protocolVersion: 5 });
    // A burst of a second's worth, then 10 per second: within the limit.
    burst(steady, 5, 20);
    for (let i = 0; i < 5; i++) {
      await pace(100);
      burst(steady, 5, 1);
    }
    steady.sendPacket({ cmd: 'pingreq' }, 5);
    await steady.next('pingresp');
    steady.destroy();
    await s.close();
  });

  it('forwarded user properties are stored once: 40 subscribers that do not read, 3 PUBLISHes with 15 MiB of user properties each, cost the arena about one copy of each', async () => {
    const s = await startServer({ listeners: [local] });
    const subscribers: Peer[] = [];
    for (let i = 0; i < 40; i++) {
      const sub = await new Peer().tcp(s.port('mqtt'));
      await sub.handshake({ protocolVersion: 5 });
      sub.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'props/t', qos: 1 }] }, 5);
      await sub.next('suback');
      sub.stopReading();
      subscribers.push(sub);
    }
    const pub = await new Peer().tcp(s.port('mqtt'));
    await pub.handshake({ protocolVersion: 5, clientId: 'props-publisher' });
    // User properties are UTF-8 string pairs of at most 65,535 bytes each: 240 of 65 kB.
    const userProperties: Record<string, string> = {};
    for (let i = 0; i < 240; i++) userProperties[`k${i}`] = 'v'.repeat(65_000);
    const arena = (): number => s.server.broker.core.arenaStats().bytesInUse;
    const before = arena();
    for (let id = 1; id <= 3; id++) {
      pub.sendPacket({ cmd: 'publish', topic: 'props/t', payload: Buffer.from('p'), qos: 1, messageId: id, dup: false, retain: false, properties: { userProperties } }, 5);
      await pub.next('puback', 10_000);
    }
    const oneCopy = 240 * (65_000 + 8);
    // Every subscriber holds all three in flight, written or waiting in its socket: the bytes are shared.
    await until(() => s.server.broker.sessions.size === 41 && [...s.server.broker.sessions.values()].every((x) => x.inflight.size === 3 || x.clientId === 'props-publisher'), 'every subscriber to hold the three in flight', 5000);
    const held = arena() - before;
    assert.ok(held < 3 * oneCopy + 4 * 2 ** 20, `the arena holds ${(held / 2 ** 20).toFixed(1)} MiB for 3 messages of ${(oneCopy / 2 ** 20).toFixed(1)} MiB shared by 40 subscribers`);
    for (const sub of subscribers) sub.destroy();
    pub.destroy();
    await s.close();
  });
});

/** A CONNECT fixed header whose Remaining Length claims `length` bytes. */
function connectHeader(length: number): Buffer {
  const bytes = [0x10];
  do {
    bytes.push((length % 128) | (length >= 128 ? 0x80 : 0));
    length = Math.floor(length / 128);
  } while (length > 0);
  return Buffer.from(bytes);
}

/** A legitimate client still gets through: subscribe, publish, receive. */
async function stillServes(s: TestServer): Promise<void> {
  const client = await s.client(s.url('mqtt'), { protocolVersion: 5 });
  await client.subscribeAsync('still/serving', { qos: 1 });
  await client.publishAsync('still/serving', 'yes', { qos: 1 });
  assert.equal((await collect(client, 1))[0]!.payload.toString(), 'yes');
}

describe('unauthenticated connections cannot reserve memory', () => {
  it('memory reservation attack: 150 connections sending a CONNECT header claiming 16 MiB and 64 KiB of its body are closed at the header, allocating nothing', async () => {
    const s = await startServer({ listeners: [local] });
    const before = process.memoryUsage().arrayBuffers;
    const body = Buffer.alloc(64 * 1024);
    const attackers = await Promise.all(Array.from({ length: 150 }, () => new Peer().tcp(s.port('mqtt'))));
    for (const a of attackers) a.send(Buffer.concat([connectHeader(16 * 1024 * 1024 - 5), body]));
    await Promise.all(attackers.map((a) => a.expectClosed(5000)));
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 32 * 1024 * 1024, `array buffers grew by ${grown} bytes`);
    assert.equal(s.server.broker.metrics.unauthenticatedBytes, 0);
    await stillServes(s);
    await s.close();
  });

  it('slow CONNECT attack: connections each holding part of a CONNECT within maxUnauthenticatedBytes hold no more than maxUnauthenticatedTotalBytes together; the one going over is closed', async () => {
    const total = 1024 * 1024;
    const s = await startServer({ listeners: [local], maxUnauthenticatedTotalBytes: total });
    const partial = Buffer.concat([connectHeader(60 * 1024), Buffer.alloc(30 * 1024)]);
    const attackers = await Promise.all(Array.from({ length: 100 }, () => new Peer().tcp(s.port('mqtt'))));
    let closed = 0;
    for (const a of attackers) void a.closed.then(() => closed++);
    for (const a of attackers) a.send(partial);
    // Settled when the broker's connections are exactly those holding their part and every other
    // attacker saw its close: a connection the broker is still closing counts its bytes until its
    // socket's close, and would be counted twice (closed by its client, still held by the broker).
    const settled = (): boolean => {
      const connections = [...s.server.broker.connections];
      return connections.every((c) => c.framer.buffered > 0) && closed + connections.length === 100;
    };
    await until(settled, 'every attacker closed or holding its part', 10_000);
    const held = s.server.broker.metrics.unauthenticatedBytes;
    assert.ok(held > 0 && held <= total, `held ${held} bytes`);
    assert.ok(closed >= 100 - Math.floor(total / (30 * 1024)), `${closed} closed`);
    assert.equal(s.server.broker.metrics.unauthenticatedOverflows, closed);
    await stillServes(s);
    for (const a of attackers) a.destroy();
    await until(() => s.server.broker.metrics.unauthenticatedBytes === 0);
    assert.equal(s.server.broker.metrics.unauthenticatedBytes, 0);
    await s.close();
  });

  it('pipelining flood attack: behind a CONNECT still being authenticated, reading pauses at maxUnauthenticatedBytes, and the PUBLISHes are served once it is accepted', async () => {
    let accept: (ok: boolean) => void = () => undefined;
    const s = await startServer({
      listeners: [local],
      authenticate: (request) => (request.clientId === 'pipeliner' ? new Promise<boolean>((resolve) => (accept = resolve)) : true),
    });
    const raw = (await new Peer().tcp(s.port('mqtt'))).version(4);
    const publishes = Array.from({ length: 1024 }, (_, i) =>
      mqttPacket.generate({ cmd: 'publish', topic: 'pipelined', payload: Buffer.alloc(16 * 1024, i % 256), qos: 0, dup: false, retain: false }),
    );
    raw.send(Buffer.concat([connectBytes({ clientId: 'pipeliner' }), ...publishes]));
    // 16 MiB behind the CONNECT: once the broker stops reading, the sender's own buffer fills up.
    await until(() => raw.unsent > 0 && s.server.broker.metrics.unauthenticatedBytes >= 64 * 1024, 'reading to pause behind the CONNECT', 10_000);
    const held = s.server.broker.metrics.unauthenticatedBytes;
    assert.ok(held <= 2 * 64 * 1024, `held ${held} bytes`);
    accept(true);
    assert.equal(((await raw.next('connack')) as IConnackPacket).returnCode, 0);
    await until(() => s.server.broker.metrics.messagesReceived === 1024, 'the 1024 pipelined PUBLISHes', 20_000);
    assert.equal(s.server.broker.metrics.messagesReceived, 1024);
    assert.equal(s.server.broker.metrics.unauthenticatedBytes, 0);
    raw.destroy();
    await s.close();
  });

  it('takes a CONNECT with a large will up to maxUnauthenticatedBytes, also split across chunks, and closes one beyond it at its header', async () => {
    const s = await startServer({ listeners: [local] });
    const will = (size: number): Buffer =>
      connectBytes({ clientId: `will-${size}`, will: { topic: 'last/words', payload: Buffer.alloc(size, 1), qos: 0, retain: false } });
    const fits = will(60 * 1024);
    const raw = (await new Peer().tcp(s.port('mqtt'))).version(4);
    raw.send(fits.subarray(0, 1000));
    await until(() => [...s.server.broker.connections].some((c) => c.framer.buffered > 0));
    raw.send(fits.subarray(1000));
    assert.equal(((await raw.next('connack')) as IConnackPacket).returnCode, 0);
    raw.destroy();
    const tooBig = await new Peer().tcp(s.port('mqtt'));
    tooBig.send(will(70 * 1024).subarray(0, 100));
    await tooBig.expectClosed();
    await s.close();
  });
});
