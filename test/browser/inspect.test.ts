// broker.inspect(): sessions, subscriptions, queues, wills, retained messages and live arena buffers
// with their holders — on a real broker in Node (inspectBroker), then through the browser API in
// Chromium, in this tab and across the SharedWorker's port, with `connect({ onPacket })`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MqttClient } from '../../host/client/client.js';
import type { ConnectOptions } from '../../host/client/types.js';
import { inProcessPipe } from '../../host/bridge/in-process-pipe.js';
import { inspectBroker } from '../../host/inspect/inspect.js';
import { Broker } from '../../host/core/broker.js';
import { loadNodeCore } from '../../host/node/load-core.js';
import { chromiumOnSite, skipWithoutChromium, type PageGlobals } from './harness.js';
import { until } from '../helpers/wait.js';

describe('inspectBroker', () => {
  let broker: Broker;
  const connect = (options: ConnectOptions) => {
    const { transport, link } = inProcessPipe();
    broker.accept(transport);
    return MqttClient.connect(link, { keepAlive: 0, ...options });
  };

  before(async () => {
    broker = new Broker(await loadNodeCore());
    await broker.start();
  });
  after(async () => {
    await broker.close();
    assert.equal(broker.core.arenaStats().liveHandles, 0);
  });

  it('describes sessions, subscriptions, queues, wills, retained messages and who holds each buffer', async () => {
    const empty = inspectBroker(broker);
    assert.deepEqual(empty.sessions, []);
    assert.deepEqual(empty.retained, []);
    assert.equal(empty.arena.tiers.length, 4);
    assert.deepEqual(
      empty.arena.tiers.map((t) => t.name),
      ['small', 'medium', 'large', 'huge'],
    );

    const away = await connect({ clientId: 'away', clean: false, sessionExpiryInterval: 600 });
    await away.subscribe('s/#', { qos: 1, noLocal: true, retainHandling: 2, subscriptionIdentifier: 7 });
    await away.subscribe('$share/g/jobs/+', { qos: 0 });
    await away.end();
    const pub = await connect({ clientId: 'pub', will: { topic: 'w/pub', payload: 'gone', qos: 1, retain: true, properties: { willDelayInterval: 5 } } });
    await pub.publish('s/retained', 'hello retained world', { qos: 1, retain: true });
    await pub.publish('s/queued', 'for later', { qos: 1 });

    const snap = inspectBroker(broker, { previewBytes: 5 });
    assert.ok(Math.abs(snap.at - Date.now()) < 1000);
    const [awaySession, pubSession] = snap.sessions;
    assert.deepEqual(awaySession, {
      clientId: 'away',
      online: false,
      protocolVersion: 5,
      expiryInterval: 600,
      subscriptions: [
        { filter: 's/#', topicFilter: 's/#', qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 2, subscriptionId: 7 },
        { filter: '$share/g/jobs/+', topicFilter: 'jobs/+', group: 'g', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 },
      ],
      queued: 2,
      queuedBytes: awaySession!.queuedBytes,
      inflight: 0,
      will: null,
    });
    assert.ok(awaySession!.queuedBytes > 0);
    assert.deepEqual(
      { id: pubSession!.clientId, online: pubSession!.online, expiry: pubSession!.expiryInterval, will: pubSession!.will },
      { id: 'pub', online: true, expiry: 0, will: { topic: 'w/pub', qos: 1, retain: true, delaySeconds: 5 } },
    );

    assert.equal(snap.retained.length, 1);
    const retained = snap.retained[0]!;
    assert.deepEqual({ ...retained, handle: 0 }, { topic: 's/retained', bytes: 20, qos: 1, handle: 0, refcount: 2, preview: 'hello' });

    // The retained message's buffer is held by the retained index and by away's queue: refcount 2.
    const buffer = snap.arena.handles.find((h) => h.handle === retained.handle)!;
    assert.deepEqual(buffer, { handle: retained.handle, refcount: 2, bytes: 2 + 10 + 20, topic: 's/retained', holders: ['queued for away', 'retained'] });
    const queuedOnly = snap.arena.handles.find((h) => h.topic === 's/queued')!;
    assert.deepEqual(queuedOnly.holders, ['queued for away']);
    assert.equal(queuedOnly.refcount, 1);
    assert.equal(snap.arena.liveHandles, 2);
    assert.ok(snap.arena.bytesInUse > 0);
    assert.equal(inspectBroker(broker, { handles: 0 }).arena.handles.length, 0);

    // Back online: the queue drains into the client, and the buffers go with the acknowledgements.
    const back = await connect({ clientId: 'away', clean: false, sessionExpiryInterval: 600 });
    await until(() => inspectBroker(broker).arena.handles.length === 1);
    const after = inspectBroker(broker);
    assert.equal(after.sessions.find((s) => s.clientId === 'away')!.queued, 0);
    assert.deepEqual(after.arena.handles.map((h) => h.holders), [['retained']]);
    await pub.publish('s/retained', '', { qos: 1, retain: true });
    await Promise.all([back.end(), pub.end()]);
    await until(() => inspectBroker(broker).arena.liveHandles === 0);
    assert.equal(inspectBroker(broker).arena.liveHandles, 0);
  });
});

describe('broker.inspect() and connect({ onPacket }) in a browser', { skip: skipWithoutChromium }, () => {
  const browser = chromiumOnSite();

  for (const mode of ['tab', 'shared-worker'] as const) {
    it(`mode ${mode}`, async () => {
      const page = await browser.open();
      const result = await page.evaluate(async (mode) => {
        const { arbormq } = window as unknown as PageGlobals;
        const broker = await arbormq.createBroker({ mode, store: 'memory', name: `inspect-${mode}` });
        const packets: string[] = [];
        const sub = await broker.connect({ clientId: 'watched', onPacket: (e) => void packets.push(`${e.direction} ${e.type}${e.packetId ? ` ${e.packetId}` : ''}`) });
        await sub.subscribe('i/#', { qos: 2 });
        const pub = await broker.connect({ clientId: 'pub' });
        await pub.publish('i/r', 'kept', { qos: 2, retain: true });
        for (let i = 0; i < 100 && packets.length < 8; i++) await new Promise((r) => setTimeout(r, 5));
        const snap = await broker.inspect();
        const sessions = snap.sessions.map((s) => `${s.clientId}:${s.subscriptions.map((x) => `${x.filter}@${x.qos}`).join(',')}`);
        await pub.publish('i/r', '', { qos: 1, retain: true });
        await Promise.all([sub.end(), pub.end()]);
        // Released once the broker has handled both ends (in a SharedWorker, a hop away): waited for.
        let empty = await broker.inspect();
        for (let i = 0; i < 400 && empty.arena.liveHandles > 0; i++) {
          await new Promise((r) => setTimeout(r, 5));
          empty = await broker.inspect();
        }
        await broker.close();
        return { packets, sessions, retained: snap.retained.map((r) => `${r.topic}=${r.preview}`), handles: snap.arena.handles.map((h) => h.holders.join('+')), live: empty.arena.liveHandles };
      }, mode);
      // The QoS 2 message (granted 2), then the retained message's deletion (QoS 1), then end().
      assert.deepEqual(result.packets, [
        'out CONNECT',
        'in CONNACK',
        'out SUBSCRIBE 1',
        'in SUBACK 1',
        'in PUBLISH 1',
        'out PUBREC 1',
        'in PUBREL 1',
        'out PUBCOMP 1',
        'in PUBLISH 2',
        'out PUBACK 2',
        'out DISCONNECT',
      ]);
      assert.deepEqual(result.sessions, ['pub:', 'watched:i/#@2']);
      assert.deepEqual(result.retained, ['i/r=kept']);
      assert.deepEqual(result.handles, ['retained']);
      assert.equal(result.live, 0);
      assert.deepEqual(browser.errors, []);
      await page.close();
    });
  }
});
