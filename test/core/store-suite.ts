import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { emptyBatch, type Store, type StoredDelivery, type StoredMessage, type StoredSession } from '../../host/core/store.js';

const message = (topic: string, payload: string, extra: Partial<StoredMessage> = {}): StoredMessage => ({
  topic,
  payload: new TextEncoder().encode(payload),
  qos: 1,
  retain: true,
  forward: null,
  expiresAt: 0,
  ...extra,
});

const session = (clientId: string, extra: Partial<StoredSession> = {}): StoredSession => ({
  clientId,
  version: 5,
  expiryInterval: 3600,
  disconnectedAt: 1_700_000_000_000,
  subscriptions: [{ filter: 'a/+', qos: 1, noLocal: false, retainAsPublished: true, retainHandling: 0, subscriptionId: 7 }],
  will: null,
  ...extra,
});

const delivery = (clientId: string, seq: number, extra: Partial<StoredDelivery> = {}): StoredDelivery => ({
  clientId,
  seq,
  messageId: `m${seq}`,
  qos: 1,
  retain: false,
  subscriptionIds: null,
  packetId: 0,
  released: false,
  ...extra,
});

/**
 * The behaviour every Store implementation must have. `make` returns a store over the same
 * underlying data each time it is called within one test (so reopen can be checked).
 */
export function storeSuite(name: string, factory: () => Promise<{ make: () => Store; cleanup: () => Promise<void> }>): void {
  describe(`Store contract: ${name}`, () => {
    let make: () => Store;
    let cleanup: () => Promise<void>;
    let store: Store;
    beforeEach(async () => {
      ({ make, cleanup } = await factory());
      store = make();
      await store.open();
    });
    afterEach(async () => {
      await store.close();
      await cleanup();
    });

    it('loads an empty state from a new store', async () => {
      const state = await store.load();
      assert.deepEqual(state.sessions, []);
      assert.deepEqual(state.retained, []);
      assert.equal(state.messages.size, 0);
      assert.deepEqual(state.deliveries, []);
      assert.equal(state.incomingQos2.size, 0);
    });

    it('stores, replaces and deletes sessions and retained messages, surviving a reopen', async () => {
      const b1 = emptyBatch();
      b1.sessions.set('c1', session('c1'));
      b1.sessions.set('c2', session('c2'));
      b1.retained.set('a/1', message('a/1', 'one'));
      b1.retained.set('a/2', message('a/2', 'two', { forward: Uint8Array.of(1, 1), expiresAt: 1_800_000_000_000 }));
      await store.write(b1);
      const b2 = emptyBatch();
      b2.sessions.set('c2', null);
      b2.sessions.set('c1', session('c1', { expiryInterval: 10 }));
      b2.retained.set('a/1', null);
      await store.write(b2);
      await store.close();
      store = make();
      await store.open();
      const state = await store.load();
      assert.deepEqual(state.sessions, [session('c1', { expiryInterval: 10 })]);
      assert.equal(state.retained.length, 1);
      const r = state.retained[0]!;
      assert.equal(r.topic, 'a/2');
      assert.deepEqual([...r.payload], [...new TextEncoder().encode('two')]);
      assert.deepEqual([...r.forward!], [1, 1]);
      assert.equal(r.expiresAt, 1_800_000_000_000);
    });

    it('keeps messages, deliveries in per-session sequence order, and incoming QoS 2 identifiers', async () => {
      const b = emptyBatch();
      b.messages.set('m1', message('t', 'x', { retain: false }));
      b.deliveries.set('c1\u00002', delivery('c1', 2));
      b.deliveries.set('c1\u000010', delivery('c1', 10, { packetId: 5, released: true }));
      b.deliveries.set('c0\u00001', delivery('c0', 1, { subscriptionIds: [3, 4] }));
      b.incomingQos2.set('c1\u00007', true);
      b.incomingQos2.set('c1\u00008', true);
      await store.write(b);
      const d = emptyBatch();
      d.incomingQos2.set('c1\u00007', null);
      await store.write(d);
      const state = await store.load();
      assert.deepEqual(
        state.deliveries.map((x) => [x.clientId, x.seq]),
        [['c0', 1], ['c1', 2], ['c1', 10]],
      );
      assert.deepEqual(state.deliveries[0]!.subscriptionIds, [3, 4]);
      assert.equal(state.deliveries[2]!.released, true);
      assert.deepEqual(state.incomingQos2.get('c1'), [8]);
      assert.equal(new TextDecoder().decode(state.messages.get('m1')!.payload), 'x');
    });

    it('returns copies: changing loaded data does not change the store', async () => {
      const b = emptyBatch();
      b.sessions.set('c1', session('c1'));
      await store.write(b);
      const first = await store.load();
      first.sessions[0]!.subscriptions.length = 0;
      const second = await store.load();
      assert.equal(second.sessions[0]!.subscriptions.length, 1);
    });
  });
}
