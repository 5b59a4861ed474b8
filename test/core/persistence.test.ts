import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore, VolatileStore } from '../../host/core/model/store.js';
import { ackReason, collect, expectSilence, startCoreBroker } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';

describe('broker state through the Store', () => {
  it('rebuilds retained messages and persistent sessions (with their subscriptions) on start', async () => {
    const store = new MemoryStore();
    const first = await startCoreBroker({ store });
    const pub = await first.client();
    await pub.publishAsync('keep/a', 'retained', { retain: true, qos: 1 });
    const sub = await first.connect({ clientId: 'survivor', clean: false });
    await sub.subscribeAsync('live/#', { qos: 1 });
    await sub.endAsync();
    const cleanSub = await first.connect({ clientId: 'ephemeral', clean: true });
    await cleanSub.subscribeAsync('live/#', { qos: 1 });
    await cleanSub.endAsync();
    await first.close();

    const second = await startCoreBroker({ store });
    assert.ok(second.broker.sessions.has('survivor'));
    assert.equal(second.broker.sessions.has('ephemeral'), false);
    const back = await second.connect({ clientId: 'survivor', clean: false });
    const retained = collect(back, 1);
    await back.subscribeAsync('keep/#');
    assert.equal((await retained)[0]!.payload.toString(), 'retained');
    const p2 = await second.client();
    const live = collect(back, 1);
    await p2.publishAsync('live/x', 'routed by the restored subscription', { qos: 1 });
    assert.equal((await live)[0]!.topic, 'live/x');
    await back.endAsync();
    const clean = await second.connect({ clientId: 'survivor', clean: true });
    await clean.endAsync();
    await p2.publishAsync('keep/a', '', { retain: true, qos: 1 });
    await second.close();

    const third = await startCoreBroker({ store });
    assert.equal(third.broker.sessions.size, 0);
    assert.equal(third.broker.retained.count, 0);
    await third.close();
  });

  it('a replicator that throws does not stop the commits after it: both publishes are acknowledged', async () => {
    const b = await startCoreBroker({ store: new MemoryStore() });
    const sub = await b.connect({ clientId: 'kept', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 60 } });
    await sub.subscribeAsync('queued/#', { qos: 1 });
    await sub.endAsync();
    let throws = true;
    // Throws for the commit that holds the queued message (not one saving the session that just went offline).
    b.broker.persistence.replicator = (batch) => {
      if (!throws || batch.deliveries.size === 0) return null;
      throws = false;
      throw new Error('a replicator bug');
    };
    const pub = await b.connect({ clientId: 'pub', protocolVersion: 5 });
    // The first waits for the next commit that succeeds (a failed one is not the last word).
    await pub.publishAsync('queued/1', 'first', { qos: 1 });
    assert.equal(throws, false, 'the replicator threw');
    assert.equal(await ackReason(pub.publishAsync('queued/2', 'second', { qos: 1 })), 0);
    await pub.endAsync();
    await b.close();
  });

  it('drops sessions that expired while the broker was stopped', async () => {
    const store = new MemoryStore();
    const first = await startCoreBroker({ store });
    const c = await first.connect({ protocolVersion: 5, clientId: 'short', clean: false, properties: { sessionExpiryInterval: 1 } });
    await c.subscribeAsync('s/t');
    await c.endAsync();
    await first.close();
    const stored = (await store.load()).sessions.find((s) => s.clientId === 'short')!;
    await until(() => Date.now() >= stored.disconnectedAt + 1000, 'its expiry to pass while the broker is down');
    const second = await startCoreBroker({ store });
    assert.equal(second.broker.sessions.has('short'), false);
    const back = await second.connect({ protocolVersion: 5, clientId: 'short', clean: false });
    const pub = await second.client();
    pub.publish('s/t', 'x');
    await expectSilence(back, pub);
    await second.close();
  });

  it('a VolatileStore serves persistent sessions while its broker runs and keeps nothing for the next start', async () => {
    const store = new VolatileStore();
    const first = await startCoreBroker({ store });
    const sub = await first.connect({ clientId: 'kept', clean: false });
    await sub.subscribeAsync('queued/#', { qos: 1 });
    await sub.endAsync();
    const pub = await first.client();
    await pub.publishAsync('queued/1', 'held for kept', { qos: 1 });
    await pub.publishAsync('keep/a', 'retained', { qos: 1, retain: true });
    const back = await first.connect({ clientId: 'kept', clean: false });
    const queued = collect(back, 1);
    assert.equal((await queued)[0]!.payload.toString(), 'held for kept');
    await back.endAsync();
    await first.close();

    const second = await startCoreBroker({ store });
    assert.equal(second.broker.sessions.size, 0);
    assert.equal(second.broker.retained.count, 0);
    await second.close();
  });
});
