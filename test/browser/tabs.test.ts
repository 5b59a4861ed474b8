// Tabs of one origin: one broker in a SharedWorker, shared by every tab; and the tab-mode fallback,
// where the tab that owns the database keeps it and a second tab runs on its own, in memory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { chromiumOnSite, skipWithoutChromium, type PageGlobals } from './harness.js';

interface TabWindow extends PageGlobals {
  got: string[];
  broker: Awaited<ReturnType<PageGlobals['arbormq']['createBroker']>>;
}

/** Starts the broker in `page` and a subscriber to `filter` whose messages collect in window.got. */
function subscribeIn(page: Page, options: { mode: 'auto' | 'tab'; name: string; filter: string; clientId: string; will?: string }) {
  return page.evaluate(async (o) => {
    const w = window as unknown as TabWindow;
    w.got = [];
    w.broker = await w.arbormq.createBroker({ mode: o.mode, name: o.name, storeLockWaitMs: 300 });
    const client = await w.broker.connect({
      clientId: o.clientId,
      keepAlive: 0,
      will: o.will ? { topic: o.will, payload: `${o.clientId} left`, qos: 1 } : undefined,
    });
    await client.subscribe(o.filter, { qos: 1 }, (m) => void w.got.push(`${m.topic}=${new TextDecoder().decode(m.payload)}`));
    return { mode: w.broker.mode, storage: w.broker.storage, storageNote: w.broker.storageNote };
  }, options);
}

async function received(page: Page, n: number): Promise<string[]> {
  await page.waitForFunction((n) => (window as unknown as TabWindow).got.length >= n, n, { timeout: 5000 }).catch(() => undefined);
  return page.evaluate(() => (window as unknown as TabWindow).got);
}

describe('tabs of one origin', { skip: skipWithoutChromium }, () => {
  const browser = chromiumOnSite();

  it('share one broker through a SharedWorker; a closed tab is noticed (its client\'s will goes out)', async () => {
    const a = await browser.open();
    const b = await browser.open();
    assert.deepEqual(await subscribeIn(a, { mode: 'auto', name: 'two-tabs', filter: 'chat/#', clientId: 'tab-a' }), {
      mode: 'shared-worker',
      storage: 'indexeddb',
      storageNote: undefined,
    });
    await subscribeIn(b, { mode: 'auto', name: 'two-tabs', filter: 'none', clientId: 'tab-b', will: 'chat/presence' });
    // Tab B publishes through MQTT.js; tab A's native subscriber hears it.
    await b.evaluate(async () => {
      const w = window as unknown as TabWindow;
      const js = w.mqtt.connect(w.broker.mqttOptions({ clientId: 'b-js', protocolVersion: 5, reconnectPeriod: 0 }));
      await new Promise((resolve) => js.once('connect', resolve));
      await js.publishAsync('chat/room', 'hello from b', { qos: 1 });
      await js.endAsync();
    });
    assert.deepEqual(await received(a, 1), ['chat/room=hello from b']);
    const stats = await a.evaluate(async () => {
      const s = await (window as unknown as TabWindow).broker.stats();
      return { mode: s.mode, clientsConnected: s.clientsConnected };
    });
    assert.deepEqual(stats, { mode: 'shared-worker', clientsConnected: 2 });
    // Closing tab B takes its connection with it: the worker learns it from B's Web Lock.
    await b.close();
    assert.deepEqual(await received(a, 2), ['chat/room=hello from b', 'chat/presence=tab-b left']);
    await a.close();
  });

  it('tab-mode fallback: the second tab does not get the database, runs in memory and sees only its own clients', async () => {
    const a = await browser.open();
    const b = await browser.open();
    assert.deepEqual(await subscribeIn(a, { mode: 'tab', name: 'fallback', filter: 'x/#', clientId: 'a' }), { mode: 'tab', storage: 'indexeddb', storageNote: undefined });
    const second = await subscribeIn(b, { mode: 'tab', name: 'fallback', filter: 'x/#', clientId: 'b' });
    assert.equal(second.mode, 'tab');
    assert.equal(second.storage, 'memory');
    assert.match(second.storageNote ?? '', /another tab holds the IndexedDB database "fallback"/);
    const bridgeState = await b.evaluate(async () => {
      const w = window as unknown as TabWindow;
      const pub = await w.broker.connect({ clientId: 'b-pub' });
      await pub.publish('x/1', 'only in b', { qos: 1 });
      await pub.end();
      const bridge = await w.broker.bridge({ url: 'ws://127.0.0.1:9/mqtt', clientId: 'never', topics: [{ filter: '#', direction: 'out' }] });
      return bridge.status.state;
    });
    assert.equal(bridgeState, 'standby', 'a bridge must not run on a broker that does not own the database');
    assert.deepEqual(await received(b, 1), ['x/1=only in b']);
    assert.deepEqual(await a.evaluate(() => (window as unknown as TabWindow).got), []);
    await b.close();
    await a.close();
  });
});
