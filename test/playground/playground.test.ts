// The playground as a user meets it: `startPlayground` (the page and the Node ArborMQ of
// `npm run playground`, on ephemeral ports) opened in real Chromium, driven through labelled
// controls. Each test has a fresh browser profile; screenshots go to test-artifacts/playground/.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it, type TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import { ROOT } from '../../scripts/build-browser.js';
import { startPlayground, type Playground } from '../../scripts/playground.js';
import { launchChromium, skipWithoutChromium, type Chromium } from '../browser/harness.js';
import { connectClient } from '../helpers/broker.js';
import { PlaygroundPage } from './driver.js';
import { until } from '../helpers/wait.js';

const ARTIFACTS = join(ROOT, 'test-artifacts/playground');

describe('the playground', { skip: skipWithoutChromium }, () => {
  let playground: Playground;
  let browser: Chromium | undefined;
  let page: PlaygroundPage;

  const screenshot = async (t: TestContext, name: string): Promise<void> => {
    const path = join(ARTIFACTS, `${name}.png`);
    await page.page.screenshot({ path, fullPage: true });
    t.diagnostic(`screenshot: ${path}`);
  };

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    playground = await startPlayground({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await playground?.close();
  });
  beforeEach(async () => {
    browser = await launchChromium();
    page = await PlaygroundPage.open(browser.context, playground.url);
    await page.page.setViewportSize({ width: 1440, height: 1000 });
  });
  afterEach(async () => {
    if (!browser) return;
    const errors = [...(page?.errors ?? []), ...browser.errors];
    await browser.close();
    browser = undefined;
    assert.deepEqual(errors, [], 'no console errors and no uncaught exceptions');
  });

  it('two clients: subscribe, publish, the message log and the QoS 2 handshake step by step', async (t) => {
    await page.createClient('alice');
    await page.createClient('bob', { version: '4', persistent: true });
    await page.subscribe('alice', 'chat/#', { qos: 2 });
    await page.publish('bob', 'chat/hello', 'hi alice', { qos: 2 });
    const [received] = await page.waitForMessages('alice', 1);
    assert.match(received!, /chat\/hello\s+hi alice\s+QoS 2/);

    // The sender's exchange and the receiver's, each PUBLISH → PUBREC → PUBREL → PUBCOMP.
    const sent = (await page.flows('bob')).find((f) => f.title.includes('sent QoS 2'))!;
    assert.deepEqual(sent.steps, ['→ PUBLISH', '← PUBREC', '→ PUBREL', '← PUBCOMP']);
    assert.ok(sent.complete);
    const got = (await page.flows('alice')).find((f) => f.title.includes('received QoS 2'))!;
    assert.deepEqual(got.steps, ['← PUBLISH', '→ PUBREC', '← PUBREL', '→ PUBCOMP']);
    assert.deepEqual((await page.flows('alice')).slice(0, 2).map((f) => f.steps), [
      ['→ CONNECT', '← CONNACK'],
      ['→ SUBSCRIBE', '← SUBACK'],
    ]);

    // 5.0 properties travel with the message; QoS 1 is PUBLISH → PUBACK.
    await page.publish('alice', 'chat/props', '{"t":21.5}', { qos: 1, contentType: 'application/json', userProperties: 'unit=celsius' });
    const withProps = (await page.waitForMessages('alice', 2))[1]!;
    assert.match(withProps, /content type\s+application\/json/);
    assert.match(withProps, /user: unit\s+celsius/);
    assert.deepEqual((await page.flows('alice')).find((f) => f.title.includes('sent QoS 1'))!.steps, ['→ PUBLISH', '← PUBACK']);

    // A 3.1.1 client has no 5.0 options to offer.
    assert.equal(await page.card('bob').getByText('Subscription options (5.0)').count(), 0);
    assert.equal(await page.card('bob').getByText('MQTT 5.0 properties').count(), 0);

    // The broker's insides show both sessions, alice's subscription in the topic tree, the counters.
    const inside = page.page.locator('#inside');
    await inside.locator('tr[data-session="bob"]').waitFor();
    await inside.locator('.tree-node', { hasText: 'alice' }).waitFor();
    assert.match(await inside.locator('.tree').first().innerText(), /chat\s+#\s+alice q2/);
    await page.page.waitForFunction(() => Number(document.querySelector('[data-counter=publishReceived] dd')?.textContent) >= 2);
    await screenshot(t, 'two-clients');

    // Removing a persistent client's card leaves its session with the broker, away.
    await page.card('bob').getByRole('button', { name: 'Remove' }).click();
    assert.equal(await page.card('bob').count(), 0);
    await inside.locator('tr[data-session="bob"]', { hasText: 'away' }).waitFor();
  });

  it('offline first: published while the bridge is off, kept across a reload, delivered in order once back on', async (t) => {
    const remote: MqttClient = await connectClient(playground.mqttUrl, { clientId: 'test-remote', protocolVersion: 5 });
    const received: string[] = [];
    remote.on('message', (topic, payload) => void received.push(`${topic} ${payload}`));
    await remote.subscribeAsync('outbox/#', { qos: 1 });
    try {
      await page.waitForBridge('online');
      await page.waitForRemoteClient();
      await page.setBridgeNetwork(false);
      const messages = ['reading 1', 'reading 2', 'reading 3'];
      for (const m of messages) await page.publishThroughBridge('sensors/kitchen', m);
      await page.waitForBridgeQueued(3);
      assert.deepEqual(received, [], 'nothing crosses while the network is off');

      await page.reload();
      assert.equal(await page.bridgeState(), 'offline', 'the switch stays off across the reload');
      await page.waitForBridgeQueued(3);
      await screenshot(t, 'bridge-offline-after-reload');

      await page.waitForRemoteClient();
      await page.setBridgeNetwork(true);
      const expected = messages.map((m) => `outbox/sensors/kitchen ${m}`);
      assert.deepEqual(await page.remoteMessages(3), expected, 'the page shows what the remote side received');
      await until(() => received.length >= 3, '3 messages');
      assert.deepEqual(received, expected, 'a client of the Node broker got them, in order');
      await page.waitForBridgeQueued(0);
      await screenshot(t, 'bridge-flushed');
    } finally {
      await remote.endAsync(true);
    }
  });

  it('guided examples set up their clients and show what they teach, each in place of the previous one, scrolled into view', async (t) => {
    assert.match(await page.runExample('retained'), /retained 21\.5/);
    assert.match((await page.waitForMessages('dashboard', 1))[0]!, /home\/living\/temperature\s+21\.5 °C\s+QoS 1\s+retained/);
    assert.deepEqual(await page.cardIds(), ['thermostat', 'dashboard']);
    // What the topic tree and the arena say about the retained message's size, each saying what it counts.
    const chip = page.page.locator('#inside .tree-node', { hasText: 'temperature' }).locator('.chip-retained');
    await chip.filter({ hasText: '8 B payload' }).waitFor();
    const buffer = page.page.locator('#inside table.handles tr', { hasText: 'home/living/temperature' });
    assert.equal(await buffer.locator('td.num').first().innerText(), `${2 + 'home/living/temperature'.length + 8} B`);
    assert.deepEqual(await page.page.locator('#inside table.handles th').allInnerTexts(), ['Handle', 'Stored bytes', 'Refcount', 'Held by']);
    await page.page.getByText('stores 2 bytes of topic length, the topic and the payload').waitFor();

    assert.match(await page.runExample('will'), /will/);
    const monitor = await page.waitForMessages('monitor', 2);
    assert.match(monitor[0]!, /devices\/device-7\/status\s+online/);
    assert.match(monitor[1]!, /devices\/device-7\/status\s+offline \(will\)/);
    await page.card('device-7').locator('.state-offline').waitFor();
    assert.deepEqual(await page.cardIds(), ['monitor', 'device-7']);

    assert.match(await page.runExample('shared'), /three each/);
    assert.equal((await page.waitForMessages('worker-a', 3)).length, 3);
    assert.equal((await page.waitForMessages('worker-b', 3)).length, 3);
    assert.deepEqual(await page.cardIds(), ['worker-a', 'worker-b', 'dispatcher']);
    await page.waitInView(page.card('worker-a'));

    assert.match(await page.runExample('request-response'), /request-42/);
    const [answer] = await page.waitForMessages('requester', 1);
    assert.match(answer!, /replies\/requester\s+re: what time is it\? \(answered by time-service\)/);
    assert.match(answer!, /correlation data\s+request-42/);
    assert.deepEqual(await page.cardIds(), ['time-service', 'requester']);
    await page.waitInView(page.card('time-service'));
    const height = await page.page.evaluate(() => document.documentElement.scrollHeight);
    assert.ok(height < 3000, `after the four examples the page is ${height} px tall`);
    await screenshot(t, 'examples');

    // A client of one's own stays when an example runs; running an example again replaces its clients.
    await page.createClient('mine');
    assert.match(await page.runExample('retained'), /retained 21\.5/);
    assert.deepEqual(await page.cardIds(), ['mine', 'thermostat', 'dashboard']);
  });

  it('every select shows its longest choice whole, and the sessions table fits its panel at 1,400 px', async () => {
    await page.page.setViewportSize({ width: 1400, height: 1000 });
    await page.createClient('a-device-with-a-long-name', { persistent: true, will: { topic: 'devices/a-device-with-a-long-name/status', payload: 'gone' } });
    await page.subscribe('a-device-with-a-long-name', '$share/the-workers/devices/+/status', { qos: 2 });
    const card = page.card('a-device-with-a-long-name');
    for (const summary of ['Subscription options (5.0)', 'MQTT 5.0 properties']) await card.getByText(summary, { exact: true }).click();
    await page.page.getByLabel('Leave a will message').check();
    const cut = await page.page.evaluate(() =>
      Array.from(document.querySelectorAll('select'))
        .filter((s) => s.getClientRects().length > 0)
        .map((s) => {
          // The same select at its natural width: as wide as its longest choice.
          const natural = s.cloneNode(true) as HTMLSelectElement;
          natural.style.cssText = 'width: auto; max-width: none; position: absolute; visibility: hidden';
          s.after(natural);
          const widths = { label: s.labels?.[0]?.textContent, shown: s.offsetWidth, natural: natural.offsetWidth };
          natural.remove();
          return widths;
        })
        .filter((w) => w.shown < w.natural),
    );
    assert.deepEqual(cut, []);
    const row = page.page.locator('#inside tr[data-session="a-device-with-a-long-name"]');
    await row.getByText('devices/a-device-with-a-long-name/status').waitFor();
    const table = await page.page.locator('#inside table.sessions').evaluate((t) => ({ table: t.scrollWidth, panel: t.parentElement!.clientWidth }));
    assert.ok(table.table <= table.panel, `the sessions table is ${table.table} px wide in a panel of ${table.panel} px`);
  });

  it('a second tab, on a memory store, neither claims remembered sessions nor overwrites what the first tab remembers', async () => {
    await page.createClient('first-tab-keeper', { persistent: true });
    const second = await PlaygroundPage.open(browser!.context, playground.url);
    try {
      await second.page.locator('#notice', { hasText: 'another tab holds the IndexedDB database' }).waitFor();
      assert.equal(await second.page.getByText('Remembered from your last visit').count(), 0);
      assert.deepEqual(await second.cardIds(), []);
      await second.createClient('second-tab-client', { persistent: true });
      assert.deepEqual(second.errors, []);
    } finally {
      await second.page.close();
    }
    await page.reload();
    assert.deepEqual(await page.cardIds(), ['first-tab-keeper']);
    await page.card('first-tab-keeper').getByText('Remembered from your last visit').waitFor();
  });

  it('a persistent client comes back after a reload and resumes its session with what was queued; Reset forgets everything', async (t) => {
    await page.createClient('keeper', { persistent: true });
    await page.subscribe('keeper', 'keep/#', { qos: 1 });
    await page.card('keeper').getByRole('button', { name: 'Disconnect' }).click();
    await page.card('keeper').locator('.state-offline').waitFor();
    await page.createClient('sender');
    await page.publish('sender', 'keep/1', 'while you were away', { qos: 1 });
    const keeperRow = page.page.locator('#inside tr[data-session="keeper"]');
    await keeperRow.filter({ hasText: 'away' }).locator('td.num').first().filter({ hasText: /^1 \(/ }).waitFor();

    await page.reload();
    const card = page.card('keeper');
    await card.getByText('Remembered from your last visit').waitFor();
    assert.equal(await page.card('sender').count(), 0, 'clean clients are not remembered');
    await card.getByRole('button', { name: 'Reconnect' }).click();
    assert.match((await page.waitForMessages('keeper', 1))[0]!, /keep\/1\s+while you were away/);
    await card.getByText('session resumed').waitFor();
    await screenshot(t, 'session-resumed');

    // The reset reloads the page at the same URL: wait for that load, not for a URL already shown.
    const reloaded = page.page.waitForEvent('load');
    await page.page.getByRole('button', { name: 'Reset playground' }).click();
    await reloaded;
    await page.page.waitForSelector('html[data-state=ready]');
    await page.page.locator('#inside tr[data-session="bridge-demo"]').waitFor();
    assert.equal(await page.page.locator('article.client-card').count(), 0);
    assert.equal(await page.page.locator('#inside tr[data-session="keeper"]').count(), 0, 'the stored session is gone');
  });

  it('a restored persistent client lists the subscriptions its session kept, as the broker holds them', async () => {
    await page.createClient('keeper5', { persistent: true });
    await page.subscribe('keeper5', 'q/#', { qos: 1 });
    await page.reload();
    const card = page.card('keeper5');
    const list = card.getByRole('list', { name: 'Subscriptions of keeper5' });
    // Before it reconnects, the card already shows what the broker's stored session holds.
    await list.getByText('q/#', { exact: true }).waitFor();
    await card.getByRole('button', { name: 'Reconnect' }).click();
    await card.getByText('session resumed').waitFor();
    assert.deepEqual(await list.locator('code').allInnerTexts(), ['q/#']);
    await page.publish('keeper5', 'q/self', 'to myself', { qos: 1 });
    assert.match((await page.waitForMessages('keeper5', 1))[0]!, /q\/self\s+to myself/);
    // Unsubscribing from the card changes the broker's session, and the card follows the broker.
    await card.getByRole('button', { name: 'Unsubscribe q/#' }).click();
    await list.getByText('No subscriptions.').waitFor();
    await page.page.locator('#inside tr[data-session="keeper5"] td.filters', { hasText: '–' }).waitFor();
  });

  it('the packet and message logs follow their newest entries while pinned to the end, and stay put once scrolled up', async () => {
    await page.createClient('follower');
    await page.subscribe('follower', '#', { qos: 2 });
    const logs = {
      packets: page.card('follower').getByRole('log', { name: 'Packets of follower' }),
      messages: page.card('follower').getByRole('log', { name: 'Messages received by follower' }),
    };
    /** Publishes QoS 2 messages to itself and waits until every exchange is complete (CONNECT, SUBSCRIBE, then one sent and one received per message). */
    let sent = 0;
    const publish = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await page.publish('follower', 'f/n', `message ${++sent}`, { qos: 2 });
      await page.waitForMessages('follower', sent);
      await logs.packets.locator('li.flow.complete').nth(2 + 2 * sent - 1).waitFor();
    };
    const position = (log: typeof logs.packets) =>
      log.evaluate((el) => {
        const last = el.lastElementChild!.getBoundingClientRect();
        return { overflows: el.scrollHeight > el.clientHeight, top: el.scrollTop, fromEnd: el.scrollHeight - el.scrollTop - el.clientHeight, lastShown: last.bottom <= el.getBoundingClientRect().bottom + 1 };
      });

    await publish(8);
    for (const [name, log] of Object.entries(logs)) {
      const p = await position(log);
      assert.ok(p.overflows, `the ${name} log has more than it shows`);
      assert.ok(p.fromEnd <= 1 && p.lastShown, `the ${name} log shows its newest entry: ${JSON.stringify(p)}`);
    }

    // The reader scrolls the packets up: new and growing exchanges leave the view alone.
    await logs.packets.hover();
    await page.page.mouse.wheel(0, -5000);
    await page.page.waitForFunction((el) => el!.scrollTop === 0, await logs.packets.elementHandle());
    await page.page.evaluate(() => new Promise(requestAnimationFrame));
    await publish(1);
    assert.equal((await position(logs.packets)).top, 0, 'a log scrolled up stays where the reader put it');
    assert.ok((await position(logs.messages)).fromEnd <= 1, 'the other log still follows');

    // Back at the end, it follows again.
    await logs.packets.hover();
    await page.page.mouse.wheel(0, 5000);
    await page.page.waitForFunction((el) => el!.scrollHeight - el!.scrollTop - el!.clientHeight <= 1, await logs.packets.elementHandle());
    await page.page.evaluate(() => new Promise(requestAnimationFrame));
    await publish(1);
    const back = await position(logs.packets);
    assert.ok(back.fromEnd <= 1 && back.lastShown, `pinned again: ${JSON.stringify(back)}`);
  });

  it('serves its files gzip-compressed to a browser that takes it, and plain to one that does not', async () => {
    const sizes = await page.page.evaluate(() =>
      [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].map((e) => {
        const r = e as PerformanceResourceTiming;
        return { path: new URL(r.name).pathname, encoded: r.encodedBodySize, decoded: r.decodedBodySize };
      }),
    );
    for (const path of ['/', '/playground.js', '/styles.css', '/arbor.wasm']) {
      const s = sizes.find((x) => x.path === path);
      assert.ok(s && s.encoded > 0 && s.encoded < s.decoded * 0.6, `${path} crossed compressed: ${JSON.stringify(s)}`);
    }
    const total = (key: 'encoded' | 'decoded'): number => sizes.reduce((n, s) => n + s[key], 0);
    assert.ok(total('encoded') < total('decoded') / 2.5, `the page took ${total('encoded')} bytes over the wire for ${total('decoded')}`);
    const plain = await fetch(new URL('/styles.css', playground.url), { headers: { 'accept-encoding': 'identity' } });
    assert.equal(plain.headers.get('content-encoding'), null);
    assert.match(await plain.text(), /ArborMQ playground/);
  });

  it('while the Node broker is away, the bridge and the remote client retry without a console error, and the link state says so', async () => {
    // A playground of its own (another origin, so another database): its Node broker is stopped here.
    const own = await startPlayground({ port: 0, host: '127.0.0.1' });
    try {
      const other = await PlaygroundPage.open(browser!.context, own.url);
      await other.waitForBridge('online');
      await other.waitForRemoteClient();
      await own.server.close();
      await other.page.waitForFunction(() => Number(/attempt (\d+)/.exec(document.querySelector('#bridge [data-state="waiting"]')?.textContent ?? '')?.[1]) >= 3);
      assert.match(await other.page.locator('#bridge .bridge-status').first().innerText(), /waiting to retry \(attempt \d+\).*WebSocket to ws:\/\/127\.0\.0\.1:\d+\/mqtt failed/s);
      // The remote client, too, retried (every 2 s) after asking quietly.
      await other.page.locator('#bridge-remote-title ~ .bridge-status', { hasText: /not connected \(retry [2-9]/ }).waitFor();
      assert.deepEqual(other.errors, []);
      await other.page.close();
    } finally {
      await own.close();
    }
  });

  it('fits a phone-sized screen without sideways scrolling', async (t) => {
    await page.page.setViewportSize({ width: 390, height: 844 });
    await page.createClient('phone');
    await page.subscribe('phone', 'p/#');
    await page.publish('phone', 'p/1', 'small screen');
    await page.waitForMessages('phone', 1);
    const overflow = await page.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
    await screenshot(t, 'phone');
  });

  it('is keyboard-usable and labelled: every control has a label, focus is visible, logs are live regions', async () => {
    const unlabelled = await page.page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>('input, select, textarea'))
        .filter((el) => el.labels?.length === 0 && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML),
    );
    assert.deepEqual(unlabelled, []);
    assert.equal(await page.page.locator('[onclick], a:not([href]), div[role=button]').count(), 0, 'actions are buttons');

    // A client created with the keyboard alone: focus the ID field by tabbing, type, Enter submits.
    const id = page.page.getByRole('form', { name: 'New client' }).getByLabel('Client ID');
    await page.page.keyboard.press('Tab');
    for (let i = 0; i < 20 && !(await id.evaluate((el) => el === document.activeElement)); i++) await page.page.keyboard.press('Tab');
    assert.ok(await id.evaluate((el) => el === document.activeElement), 'the client form is reachable with Tab');
    const outline = await id.evaluate((el) => getComputedStyle(el).outlineStyle);
    assert.notEqual(outline, 'none', 'keyboard focus is visible');
    await page.page.keyboard.press('Control+A');
    await page.page.keyboard.type('keyboard-user');
    await page.page.keyboard.press('Enter');
    await page.card('keyboard-user').locator('.state-online').waitFor();

    for (const name of ['Messages received by keyboard-user', 'Packets of keyboard-user', 'Received by the remote client']) {
      assert.equal(await page.page.getByRole('log', { name }).getAttribute('aria-live'), 'polite', name);
    }
  });
});
