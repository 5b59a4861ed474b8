// The behaviour every Store implementation must have, as plain async functions: node:test runs
// them against MemoryStore and LevelStore (store-suite.ts), a Chromium page runs them against the
// IndexedDB store (test/browser/idb-store.test.ts). No Node built-ins here.
import { emptyBatch, type Store, type StoredDelivery, type StoredMessage, type StoredSession } from '../../host/core/model/store.js';
import { check } from './portable-assert.js';

const utf8 = new TextEncoder();

const message = (topic: string, payload: string, extra: Partial<StoredMessage> = {}): StoredMessage => ({
  topic,
  payload: utf8.encode(payload),
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
 * `make` returns a store over the same underlying data each time it is called within one case (so
 * a case can close and reopen it); each case gets fresh data.
 */
export type StoreCase = (make: () => Store) => Promise<void>;

/** Opens a store, runs `body` with it, and closes whatever store `body` left open. */
async function withStore(make: () => Store, body: (store: Store, reopen: (s: Store) => Promise<Store>) => Promise<Store | void>): Promise<void> {
  let store = make();
  await store.open();
  const reopen = async (s: Store): Promise<Store> => {
    await s.close();
    store = make();
    await store.open();
    return store;
  };
  try {
    await body(store, reopen);
  } finally {
    await store.close();
  }
}

export const storeCases: Record<string, StoreCase> = {
  'loads an empty state from a new store': (make) =>
    withStore(make, async (store) => {
      const state = await store.load();
      check.deepEqual(state.sessions, []);
      check.deepEqual(state.retained, []);
      check.equal(state.messages.size, 0);
      check.deepEqual(state.deliveries, []);
      check.equal(state.incomingQos2.size, 0);
    }),

  'stores, replaces and deletes sessions and retained messages, surviving a reopen': (make) =>
    withStore(make, async (store, reopen) => {
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
      store = await reopen(store);
      const state = await store.load();
      check.deepEqual(state.sessions, [session('c1', { expiryInterval: 10 })]);
      check.equal(state.retained.length, 1);
      const r = state.retained[0]!;
      check.equal(r.topic, 'a/2');
      check.deepEqual([...r.payload], [...utf8.encode('two')]);
      check.deepEqual([...r.forward!], [1, 1]);
      check.equal(r.expiresAt, 1_800_000_000_000);
    }),

  'keeps messages, deliveries in per-session sequence order, and incoming QoS 2 identifiers': (make) =>
    withStore(make, async (store) => {
      const b = emptyBatch();
      b.messages.set('m1', message('t', 'x', { retain: false }));
      b.deliveries.set({ clientId: 'c1', seq: 2 }, delivery('c1', 2));
      b.deliveries.set({ clientId: 'c1', seq: 10 }, delivery('c1', 10, { packetId: 5, released: true }));
      b.deliveries.set({ clientId: 'c0', seq: 1 }, delivery('c0', 1, { subscriptionIds: [3, 4] }));
      b.incomingQos2.set('c1\u00007', true);
      b.incomingQos2.set('c1\u00008', true);
      await store.write(b);
      const d = emptyBatch();
      d.incomingQos2.set('c1\u00007', null);
      await store.write(d);
      const state = await store.load();
      check.deepEqual(
        state.deliveries.map((x) => [x.clientId, x.seq]),
        [['c0', 1], ['c1', 2], ['c1', 10]],
      );
      check.deepEqual(state.deliveries[0]!.subscriptionIds, [3, 4]);
      check.equal(state.deliveries[2]!.released, true);
      check.deepEqual(state.incomingQos2.get('c1'), [8]);
      check.equal(new TextDecoder().decode(state.messages.get('m1')!.payload), 'x');
    }),

  'deletes deliveries and message bodies, and keeps the rest across a reopen': (make) =>
    withStore(make, async (store, reopen) => {
      const b = emptyBatch();
      for (let seq = 1; seq <= 5; seq++) b.deliveries.set({ clientId: 'c', seq }, delivery('c', seq));
      b.messages.set('m1', message('t', 'one', { retain: false }));
      b.messages.set('m2', message('t', 'two', { retain: false }));
      b.incomingQos2.set('c\u00001', true);
      await store.write(b);
      const d = emptyBatch();
      d.deliveries.set({ clientId: 'c', seq: 2 }, null);
      d.deliveries.set({ clientId: 'c', seq: 4 }, null);
      d.messages.set('m1', null);
      d.incomingQos2.set('c\u00001', null);
      await store.write(d);
      store = await reopen(store);
      const state = await store.load();
      check.deepEqual(state.deliveries.map((x) => x.seq), [1, 3, 5]);
      check.deepEqual([...state.messages.keys()], ['m2']);
      check.equal(state.incomingQos2.size, 0);
    }),

  'orders deliveries by sequence number, not by its decimal text': (make) =>
    withStore(make, async (store) => {
      const b = emptyBatch();
      for (const seq of [100, 9, 10, 2, 1000]) b.deliveries.set({ clientId: 'c', seq }, delivery('c', seq));
      await store.write(b);
      check.deepEqual((await store.load()).deliveries.map((x) => x.seq), [2, 9, 10, 100, 1000]);
    }),

  'stores a payload that is a view into a larger buffer as just its bytes': (make) =>
    withStore(make, async (store) => {
      const big = utf8.encode('xxxxpayloadxxxx');
      const b = emptyBatch();
      b.retained.set('v', message('v', '', { payload: big.subarray(4, 11), forward: big.subarray(0, 2) }));
      await store.write(b);
      const r = (await store.load()).retained[0]!;
      check.equal(new TextDecoder().decode(r.payload), 'payload');
      check.equal(r.payload.byteLength, 7);
      check.deepEqual([...r.forward!], [...big.subarray(0, 2)]);
    }),

  'keeps a message body carried inside its delivery record, binary payload and properties intact': (make) =>
    withStore(make, async (store, reopen) => {
      const b = emptyBatch();
      const payload = Uint8Array.of(0, 1, 2, 253, 254, 255);
      b.deliveries.set({ clientId: 'c1', seq: 5 }, delivery('c1', 5, { message: message('t/inline', '', { payload, forward: Uint8Array.of(3, 4), expiresAt: 1_900_000_000_000 }) }));
      b.deliveries.set({ clientId: 'c1', seq: 6 }, delivery('c1', 6));
      await store.write(b);
      store = await reopen(store);
      const [inline, plain] = (await store.load()).deliveries;
      check.equal(inline!.message!.topic, 't/inline');
      check.deepEqual([...inline!.message!.payload], [...payload]);
      check.deepEqual([...inline!.message!.forward!], [3, 4]);
      check.equal(inline!.message!.expiresAt, 1_900_000_000_000);
      check.equal(inline!.messageId, 'm5');
      check.equal(plain!.message, undefined);
      return store;
    }),

  'returns copies: changing loaded data does not change the store': (make) =>
    withStore(make, async (store) => {
      const b = emptyBatch();
      b.sessions.set('c1', session('c1'));
      await store.write(b);
      const first = await store.load();
      first.sessions[0]!.subscriptions.length = 0;
      const second = await store.load();
      check.equal(second.sessions[0]!.subscriptions.length, 1);
    }),
};
