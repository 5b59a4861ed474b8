// The broker inside the page (and inside the SharedWorker): MQTT.js through createWebsocket and the
// native client, both protocol versions, and the arena back to where it started afterwards.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { chromiumOnSite, skipWithoutChromium, type PageGlobals } from './harness.js';

describe('the broker in a browser', { skip: skipWithoutChromium }, () => {
  const browser = chromiumOnSite();
  let page: Page;
  before(async () => {
    page = await browser.open();
  });

  for (const mode of ['tab', 'shared-worker'] as const) {
    describe(`mode ${mode}`, () => {
      it('MQTT.js connects through createWebsocket: QoS 0, 1 and 2 in order, 3.1.1 and 5.0', async () => {
        const result = await page.evaluate(async (mode) => {
          const { arbormq, mqtt } = window as unknown as PageGlobals;
          const broker = await arbormq.createBroker({ mode, store: 'memory', name: `mqttjs-${mode}` });
          const out: Record<string, unknown> = { mode: broker.mode };
          for (const protocolVersion of [4, 5] as const) {
            const connect = (clientId: string) =>
              new Promise<ReturnType<typeof mqtt.connect>>((resolve, reject) => {
                const c = mqtt.connect(broker.mqttOptions({ protocolVersion, clientId, reconnectPeriod: 0 }));
                c.once('connect', () => resolve(c));
                c.once('error', reject);
              });
            const sub = await connect(`sub-${protocolVersion}`);
            const got: [string, string, number][] = [];
            sub.on('message', (topic, payload, packet) => got.push([topic, payload.toString(), packet.qos]));
            await sub.subscribeAsync('a/#', { qos: 2 });
            const pub = await connect(`pub-${protocolVersion}`);
            await pub.publishAsync('a/0', 'zero', { qos: 0 });
            await pub.publishAsync('a/1', 'one', { qos: 1 });
            await pub.publishAsync('a/2', 'two', { qos: 2 });
            for (let i = 0; i < 200 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
            out[`v${protocolVersion}`] = got;
            await pub.endAsync();
            await sub.endAsync();
          }
          await broker.close();
          return out;
        }, mode);
        assert.equal(result.mode, mode);
        for (const v of ['v4', 'v5']) {
          assert.deepEqual(result[v], [
            ['a/0', 'zero', 0],
            ['a/1', 'one', 1],
            ['a/2', 'two', 2],
          ]);
        }
      });

      it('the native client: subscribe with a handler, publish with 5.0 properties, a will, unsubscribe', async () => {
        const result = await page.evaluate(async (mode) => {
          const { arbormq } = window as unknown as PageGlobals;
          const broker = await arbormq.createBroker({ mode, store: 'memory', name: `native-${mode}` });
          const text = (u: Uint8Array) => new TextDecoder().decode(u);
          const sub = await broker.connect({ clientId: 'sub' });
          const seen: unknown[] = [];
          const granted = await sub.subscribe('n/+', { qos: 1, subscriptionIdentifier: 9 }, (m) => void seen.push([m.topic, text(m.payload), m.qos, m.properties.contentType, m.properties.subscriptionIdentifiers]));
          const v4 = await broker.connect({ clientId: 'old', protocolVersion: 4, will: { topic: 'n/will', payload: 'bye', qos: 1 } });
          await v4.publish('n/a', 'from 3.1.1', { qos: 1 });
          const v5 = await broker.connect({ clientId: 'new' });
          await v5.publish('n/b', 'from 5.0', { qos: 2, properties: { contentType: 'text/plain' } });
          v4.destroy();
          for (let i = 0; i < 200 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
          let marked = false;
          await sub.subscribe('marker', { qos: 1 }, () => void (marked = true));
          await sub.unsubscribe('n/+');
          await v5.publish('n/c', 'unheard', { qos: 1 });
          // Published after it by the same client: once the marker is in, n/c would have been too.
          await v5.publish('marker', '', { qos: 1 });
          for (let i = 0; i < 200 && !marked; i++) await new Promise((r) => setTimeout(r, 5));
          await Promise.all([sub.end(), v5.end()]);
          await broker.close();
          return { granted, seen, marked };
        }, mode);
        assert.deepEqual(result.granted, [{ filter: 'n/+', reasonCode: 1 }]);
        assert.equal(result.marked, true, 'the marker published after the unheard message arrived');
        assert.deepEqual(result.seen, [
          ['n/a', 'from 3.1.1', 1, undefined, [9]],
          ['n/b', 'from 5.0', 1, 'text/plain', [9]],
          ['n/will', 'bye', 1, undefined, [9]],
        ]);
      });

      it('runs Will Delay and Session Expiry on its timers: the will after 1 s, the session gone after 2 s, one of 999,999,999 s kept', async () => {
        const result = await page.evaluate(async (mode) => {
          const { arbormq } = window as unknown as PageGlobals;
          const broker = await arbormq.createBroker({ mode, store: 'memory', name: `timers-${mode}` });
          const watcher = await broker.connect({ clientId: 'watcher' });
          let willAfter = -1;
          let gone = 0;
          await watcher.subscribe('will/#', { qos: 1 }, () => void (willAfter = performance.now() - gone));
          const dying = await broker.connect({
            clientId: 'dying',
            clean: false,
            sessionExpiryInterval: 2,
            will: { topic: 'will/dying', payload: 'late', qos: 1, properties: { willDelayInterval: 1 } },
          });
          const keeper = await broker.connect({ clientId: 'keeper', clean: false, sessionExpiryInterval: 999_999_999 });
          gone = performance.now();
          dying.destroy();
          keeper.destroy();
          const sessionIds = async () => (await broker.inspect({ handles: 0 })).sessions.map((s) => s.clientId);
          let endedAfter = -1;
          for (let i = 0; i < 1000 && endedAfter < 0; i++) {
            await new Promise((r) => setTimeout(r, 5));
            if (!(await sessionIds()).includes('dying')) endedAfter = performance.now() - gone;
          }
          const left = await sessionIds();
          await watcher.end();
          await broker.close();
          return { willAfter, endedAfter, left };
        }, mode);
        assert.ok(result.willAfter >= 900 && result.willAfter < 1900, `will after ${result.willAfter} ms`);
        assert.ok(result.endedAfter >= 1900, `session ended after ${result.endedAfter} ms`);
        assert.deepEqual(result.left.sort(), ['keeper', 'watcher'], 'the 999,999,999 s session is kept');
      });

      it('gives the arena back: after the clients are gone it holds what it held at the start', async () => {
        const result = await page.evaluate(async (mode) => {
          const { arbormq, mqtt } = window as unknown as PageGlobals;
          const broker = await arbormq.createBroker({ mode, store: 'memory', name: `arena-${mode}` });
          const before = (await broker.stats()).arena;
          const sub = await broker.connect({ clientId: 'sub', clean: false, sessionExpiryInterval: 0 });
          let received = 0;
          await sub.subscribe('big/#', { qos: 2 }, () => void received++);
          const js = await new Promise<ReturnType<typeof mqtt.connect>>((resolve) => {
            const c = mqtt.connect(broker.mqttOptions({ clientId: 'js', reconnectPeriod: 0 }));
            c.once('connect', () => resolve(c));
          });
          js.on('message', () => void received++);
          await js.subscribeAsync('big/#', { qos: 1 });
          const pub = await broker.connect({ clientId: 'pub' });
          // Small messages are copied into the output batch, large ones (> 2 KiB) sent by reference.
          const large = new Uint8Array(100_000).fill(7);
          for (let i = 0; i < 50; i++) await pub.publish(`big/${i % 5}`, i % 2 ? large : 'small', { qos: (i % 3) as 0 | 1 | 2 });
          for (let i = 0; i < 400 && received < 100; i++) await new Promise((r) => setTimeout(r, 5));
          await Promise.all([sub.end(), pub.end(), js.endAsync()]);
          let after = (await broker.stats()).arena;
          for (let i = 0; i < 100 && after.liveHandles !== before.liveHandles; i++) {
            await new Promise((r) => setTimeout(r, 10));
            after = (await broker.stats()).arena;
          }
          await broker.close();
          return { received, before, after };
        }, mode);
        assert.equal(result.received, 100);
        assert.equal(result.after.liveHandles, result.before.liveHandles, 'arena handles back to the start');
        assert.equal(result.after.bytesInUse, result.before.bytesInUse, 'arena bytes in use back to the start');
        assert.equal(result.after.errors, 0, 'no invalid retain/release');
      });
    });
  }
});
