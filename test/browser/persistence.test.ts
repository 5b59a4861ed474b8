// Broker state in IndexedDB: retained messages, a persistent session with its subscription and the
// messages queued for it survive a reload (tab mode) and a browser restart (SharedWorker mode).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium, makeProfile, reload, removeProfile, skipWithoutChromium, startSite, type PageGlobals, type Site } from './harness.js';

type Mode = 'tab' | 'shared-worker';

/** First visit: a persistent session subscribes and leaves; a retained message and three queued ones follow. */
function seed(page: Page, mode: Mode): Promise<{ storage: string }> {
  return page.evaluate(async (mode) => {
    const { arbormq } = window as unknown as PageGlobals;
    const broker = await arbormq.createBroker({ mode, name: `persist-${mode}` });
    const keeper = await broker.connect({ clientId: 'keeper', clean: false, sessionExpiryInterval: 3600 });
    await keeper.subscribe('q/#', { qos: 1 });
    await keeper.end();
    const v4 = await broker.connect({ clientId: 'keeper-311', protocolVersion: 4, clean: false });
    await v4.subscribe('q/#', { qos: 1 });
    await v4.end();
    const pub = await broker.connect({ clientId: 'pub' });
    await pub.publish('r/state', 'kept', { qos: 1, retain: true });
    for (const n of [1, 2, 3]) await pub.publish(`q/${n}`, `m${n}`, { qos: 1 });
    await pub.end();
    // No close(): the page goes away as a reload or a closed browser takes it.
    return { storage: broker.storage };
  }, mode);
}

/** Second visit: everything is still there. */
function verify(page: Page, mode: Mode) {
  return page.evaluate(async (mode) => {
    const { arbormq } = window as unknown as PageGlobals;
    const text = (u: Uint8Array) => new TextDecoder().decode(u);
    const broker = await arbormq.createBroker({ mode, name: `persist-${mode}` });
    const stats = await broker.stats();
    const restored = { sessions: stats.sessions, retained: stats.retained, queued: stats.queued, subscriptions: stats.subscriptions };
    const wait = async (cond: () => boolean) => {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    };
    const got: string[] = [];
    const keeper = await broker.connect({ clientId: 'keeper', clean: false, sessionExpiryInterval: 3600, onMessage: (m) => void got.push(`${m.topic}=${text(m.payload)}`) });
    const got311: string[] = [];
    const v4 = await broker.connect({ clientId: 'keeper-311', protocolVersion: 4, clean: false, onMessage: (m) => void got311.push(text(m.payload)) });
    await wait(() => got.length >= 3 && got311.length >= 3);
    // The subscription itself was restored: a new message reaches the session without a new SUBSCRIBE.
    const pub = await broker.connect({ clientId: 'pub' });
    await pub.publish('q/4', 'm4', { qos: 1 });
    await wait(() => got.length >= 4 && got311.length >= 4);
    const retained: string[] = [];
    const reader = await broker.connect({ clientId: 'reader' });
    await reader.subscribe('r/#', { qos: 1 }, (m) => void retained.push(`${m.topic}=${text(m.payload)} retain=${m.retain}`));
    await wait(() => retained.length >= 1);
    const sessionPresent = [keeper.sessionPresent, v4.sessionPresent];
    await Promise.all([keeper.end(), v4.end(), pub.end(), reader.end()]);
    await broker.close();
    return { storage: broker.storage, restored, sessionPresent, got, got311, retained };
  }, mode);
}

function assertRestored(result: Awaited<ReturnType<typeof verify>>): void {
  assert.equal(result.storage, 'indexeddb');
  assert.deepEqual(result.restored, { sessions: 2, retained: 1, queued: 6, subscriptions: 2 });
  assert.deepEqual(result.sessionPresent, [true, true]);
  assert.deepEqual(result.got, ['q/1=m1', 'q/2=m2', 'q/3=m3', 'q/4=m4']);
  assert.deepEqual(result.got311, ['m1', 'm2', 'm3', 'm4']);
  assert.deepEqual(result.retained, ['r/state=kept retain=true']);
}

describe('state in IndexedDB', { skip: skipWithoutChromium }, () => {
  let site: Site;
  before(async () => {
    site = await startSite();
  });
  after(async () => {
    await site?.close();
  });

  it('tab mode: retained messages, sessions, subscriptions and queued messages survive a reload', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.open(`${site.origin}/`);
      assert.deepEqual(await seed(page, 'tab'), { storage: 'indexeddb' });
      await reload(page);
      assertRestored(await verify(page, 'tab'));
      assert.deepEqual(browser.errors, []);
    } finally {
      await browser.close();
    }
  });

  it('SharedWorker mode: the same state survives closing and restarting the browser', async () => {
    const profile = await makeProfile();
    try {
      const first = await launchChromium({ profile });
      try {
        assert.deepEqual(await seed(await first.open(`${site.origin}/`), 'shared-worker'), { storage: 'indexeddb' });
      } finally {
        await first.close();
      }
      const second = await launchChromium({ profile });
      try {
        assertRestored(await verify(await second.open(`${site.origin}/`), 'shared-worker'));
      } finally {
        await second.close();
      }
    } finally {
      await removeProfile(profile);
    }
  });
});
