import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ackReason, collect, received, type ServerTestBroker, startBroker } from '../helpers/broker.js';
import { connect, encode, prop, subscribe } from '../helpers/packets.js';
import type { Peer } from '../helpers/peer.js';
import { until } from '../helpers/wait.js';

/**
 * Consumers that stop reading, peers that vanish without a FIN, clients that trickle bytes: none of
 * them may hold the broker's memory past its bounds, slow the others down, or keep a connection
 * longer than keep alive or the CONNECT deadline allow.
 */
describe('slow and dead consumers', () => {
  let b: ServerTestBroker;
  afterEach(() => b.close());

  /** A 5.0 subscriber on a raw socket that subscribes at `qos` and then never reads again. */
  async function stalledSubscriber(filter: string, qos: 1 | 2): Promise<Peer> {
    const raw = (await b.raw()).version(5);
    raw.send(encode(connect({ version: 5, clientId: `stalled-${qos}`, clean: true, keepAlive: 0, props: [] })));
    await raw.next('connack');
    raw.send(encode(subscribe(5, 1, [{ filter, options: qos }], [])));
    await raw.next('suback');
    raw.stopReading();
    return raw;
  }

  /** Publishes `count` QoS 1 messages of `size` bytes one after the other; the reasons and how long each PUBACK took. */
  async function publishAll(topic: string, count: number, size: number): Promise<{ reasons: number[]; slowestMs: number; totalMs: number }> {
    const pub = await b.client({ protocolVersion: 5 });
    const reasons: number[] = [];
    let slowestMs = 0;
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      reasons.push(await ackReason(pub.publishAsync(topic, Buffer.alloc(size, i), { qos: 1 })));
      slowestMs = Math.max(slowestMs, performance.now() - t);
    }
    await pub.endAsync();
    return { reasons, slowestMs, totalMs: performance.now() - started };
  }

  for (const qos of [1, 2] as const) {
    it(`a QoS ${qos} subscriber that stops reading holds at most its window and queue, then 5.0 publishers hear 0x97; another subscriber gets every message as fast as without it`, async () => {
      const window = 20;
      const queue = 100;
      const size = 4096;
      b = await startBroker({ maxInflight: window, maxQueuedMessages: queue, maxWriteBufferBytes: 64 * 1024 });
      const healthy = await b.client({ protocolVersion: 5 });
      await healthy.subscribeAsync('load/#', { qos });
      const alone = await publishAll('load/a', 300, size);
      await collect(healthy, 300, 10_000);
      assert.ok(alone.reasons.every((r) => r === 0));

      const stalled = await stalledSubscriber('load/#', qos);
      const beside = await publishAll('load/b', 300, size);
      await collect(healthy, 300, 10_000);
      const broker = b.broker;
      // In flight up to the window, then queued up to the limit, then refused: 0x97 to the 5.0 publisher.
      assert.deepEqual(beside.reasons.slice(0, window + queue), new Array(window + queue).fill(0));
      assert.deepEqual(new Set(beside.reasons.slice(window + queue)), new Set([0x97]));
      assert.equal(broker.metrics.queueDropped, 300 - window - queue);
      const session = broker.sessions.get(`stalled-${qos}`)!;
      assert.equal(session.inflight.size, window);
      assert.equal(session.queue.length, queue);
      // What the broker holds for it: its messages (each stored once) and what was written for it.
      const held = broker.core.arenaStats().bytesInUse;
      assert.ok(held < (window + queue) * (size + 64) + 512 * 1024, `arena holds ${held} bytes`);
      // Others are not slowed: the publisher's acknowledgements come as fast as before (with room for a loaded machine).
      assert.ok(beside.totalMs < Math.max(5 * alone.totalMs, 3000), `300 PUBACKs took ${beside.totalMs.toFixed(0)} ms beside the stalled subscriber, ${alone.totalMs.toFixed(0)} ms without`);
      stalled.destroy();
    });
  }

  it('a peer gone without a FIN (it neither sends nor reads any more) is found by keep alive after 1.5 × keep alive; its socket is freed and its will published within the 5 s write deadline after that', async () => {
    b = await startBroker();
    const watcher = await b.client();
    await watcher.subscribeAsync('gone/#');
    const peer = await b.raw();
    peer.send(encode(connect({ version: 5, clientId: 'vanishing', clean: true, keepAlive: 1, props: [prop(0x11, 0)], will: { topic: 'gone/vanishing', payload: Uint8Array.of(1), qos: 0, retain: false, props: [] } })));
    // The CONNACK is in the kernel's buffer; the peer reads nothing from now on and sends nothing.
    peer.stopReading();
    const connected = Date.now();
    await until(() => b.broker.metrics.keepAliveTimeouts === 1, 'keep alive to expire', 4000);
    const detected = Date.now() - connected;
    assert.ok(detected >= 1400 && detected < 3500, `keep alive expired ${detected} ms after CONNECT`);
    // The DISCONNECT 0x8D is never read: the socket goes at the write deadline, and with it the session's connection.
    await collect(watcher, 1, 10_000);
    const willAfter = Date.now() - connected;
    assert.ok(willAfter < 1500 + 5000 + 2000, `the will came ${willAfter} ms after CONNECT`);
    assert.equal(received(watcher)[0]!.topic, 'gone/vanishing');
    await until(() => b.server.connectionCount === 1, 'only the watcher to be left');
    assert.equal(b.server.connectionCount, 1, 'only the watcher is left');
    peer.destroy();
  });

  it('a client sending its CONNECT one byte per second is closed at the CONNECT deadline, though bytes keep coming', async () => {
    b = await startBroker({ connectTimeoutMs: 2500 });
    const peer = await b.raw();
    const closed = peer.closed.then(() => Date.now());
    const started = Date.now();
    const bytes = encode(connect({ version: 4, clientId: 'trickle', clean: true, keepAlive: 60, props: [] }));
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < bytes.length && !peer.isClosed) peer.send(bytes.subarray(sent, ++sent));
    }, 1000);
    const after = (await closed) - started;
    clearInterval(timer);
    assert.ok(after >= 2400 && after < 4500, `closed ${after} ms after connecting`);
    assert.ok(sent >= 2 && sent < bytes.length, `${sent} of ${bytes.length} bytes had arrived`);
    assert.equal(b.broker.metrics.connectTimeouts, 1);
    assert.equal(b.broker.sessions.has('trickle'), false);
  });

  it('a client that stops reading cannot keep its CONNACK from being answered to others: a hundred stalled readers, a healthy client connects and exchanges at once', async () => {
    b = await startBroker();
    const stalled: Peer[] = [];
    for (let i = 0; i < 100; i++) {
      const raw = await b.raw();
      raw.send(encode(connect({ version: 5, clientId: `mute-${i}`, clean: true, keepAlive: 0, props: [] })));
      raw.stopReading();
      stalled.push(raw);
    }
    await until(() => b.broker.sessions.size === 100, 'a hundred sessions');
    const healthy = await b.client({ protocolVersion: 5 });
    await healthy.subscribeAsync('alive');
    await healthy.publishAsync('alive', 'yes', { qos: 1 });
    assert.equal((await collect(healthy, 1))[0]!.payload.toString(), 'yes');
    for (const s of stalled) s.destroy();
  });
});
