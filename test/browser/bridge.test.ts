// The bridge between the in-tab broker and a real ArborMQ server (its WebSocket listener), started
// here: both directions, prefixes, no echo, the durable offline queue across a reload, inbound
// messages held by the remote session, and reconnecting after the server comes back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Page } from 'playwright-core';
import { ArborServer } from '../../host/node/server.js';
import { connectClient, roundTrip } from '../helpers/broker.js';
import { launchChromium, reload, skipWithoutChromium, startSite, type Chromium, type PageGlobals, type Site } from './harness.js';
import { until } from '../helpers/wait.js';

interface BridgeWindow extends PageGlobals {
  broker: Awaited<ReturnType<PageGlobals['arbormq']['createBroker']>>;
  bridge: Awaited<ReturnType<TabBroker['bridge']>>;
  local: Awaited<ReturnType<TabBroker['connect']>>;
  got: string[];
  states: string[];
}
type TabBroker = Awaited<ReturnType<PageGlobals['arbormq']['createBroker']>>;
type BridgeConfig = Parameters<TabBroker['bridge']>[0];

/** Starts the broker and the bridge in `page`, plus a local client (window.local) whose messages collect in window.got. */
function startBridge(page: Page, o: { mode: 'tab' | 'shared-worker'; name: string; config: BridgeConfig; subscribe?: string[] }) {
  return page.evaluate(async (o) => {
    const w = window as unknown as BridgeWindow;
    w.got = [];
    w.states = [];
    w.broker = await w.arbormq.createBroker({ mode: o.mode, name: o.name });
    w.bridge = await w.broker.bridge(o.config);
    w.bridge.onStatus((s) => void w.states.push(s.state));
    w.local = await w.broker.connect({ clientId: `${o.name}-app` });
    for (const filter of o.subscribe ?? []) {
      await w.local.subscribe(filter, { qos: 1 }, (m) => void w.got.push(`${m.topic}=${new TextDecoder().decode(m.payload)}`));
    }
    return w.bridge.status.state;
  }, o);
}

const waitForState = (page: Page, state: string, timeout = 10_000) =>
  page.waitForFunction((state) => (window as unknown as BridgeWindow).bridge.status.state === state, state, { timeout });

async function localReceived(page: Page, n: number): Promise<string[]> {
  await page.waitForFunction((n) => (window as unknown as BridgeWindow).got.length >= n, n, { timeout: 5000 }).catch(() => undefined);
  return page.evaluate(() => (window as unknown as BridgeWindow).got);
}

function publishLocally(page: Page, messages: [topic: string, payload: string][]) {
  return page.evaluate(async (messages) => {
    const w = window as unknown as BridgeWindow;
    for (const [topic, payload] of messages) await w.local.publish(topic, payload, { qos: 1 });
  }, messages);
}

describe('the bridge to a remote broker', { skip: skipWithoutChromium }, () => {
  let site: Site;
  let browser: Chromium;
  let server: ArborServer;
  let wsUrl: string;
  let tcpUrl: string;
  const remotes: MqttClient[] = [];
  const inboxes = new Map<MqttClient, string[]>();
  /** A client of the remote broker whose messages collect as "topic=payload". */
  const remote = async (clientId: string): Promise<MqttClient> => {
    const c = await connectClient(tcpUrl, { clientId, protocolVersion: 5 });
    const inbox: string[] = [];
    c.on('message', (topic, payload) => void inbox.push(`${topic}=${payload}`));
    inboxes.set(c, inbox);
    remotes.push(c);
    return c;
  };
  /** The first `n` messages `c` received, waiting up to `ms` for them. */
  const remoteReceived = async (c: MqttClient, n: number, ms = 5000): Promise<string[]> => {
    const inbox = inboxes.get(c)!;
    await until(() => inbox.length >= n, `${n} messages at the remote broker`, ms);
    return inbox.slice();
  };

  before(async () => {
    site = await startSite();
    browser = await launchChromium();
    server = await ArborServer.start({ listeners: [{ protocol: 'ws', port: 0, host: '127.0.0.1' }, { port: 0, host: '127.0.0.1' }] });
    const [ws, tcp] = server.addresses();
    wsUrl = `ws://127.0.0.1:${ws!.port}/mqtt`;
    tcpUrl = `mqtt://127.0.0.1:${tcp!.port}`;
  });
  after(async () => {
    await Promise.all(remotes.map((c) => c.endAsync(true)));
    await browser?.close();
    await server?.close();
    await site?.close();
  });

  it('carries messages both ways, with prefixes, and never echoes a message back', async () => {
    const page = await browser.open(`${site.origin}/`);
    const cloud = await remote('cloud-app');
    await cloud.subscribeAsync(['up/#', 'cloud/chat/#'], { qos: 1 });
    await startBridge(page, {
      mode: 'shared-worker',
      name: 'both-ways',
      config: {
        url: wsUrl,
        clientId: 'tab-both',
        topics: [
          { filter: 'up/#', direction: 'out' },
          { filter: 'down/#', direction: 'in' },
          { filter: 'chat/#', direction: 'both', localPrefix: 'local/', remotePrefix: 'cloud/' },
        ],
      },
      subscribe: ['down/#', 'local/chat/#'],
    });
    await waitForState(page, 'online');
    await publishLocally(page, [
      ['up/temp', '21'],
      ['local/chat/room', 'from the tab'],
    ]);
    assert.deepEqual(await remoteReceived(cloud, 2), ['up/temp=21', 'cloud/chat/room=from the tab']);
    await cloud.publishAsync('down/cmd', 'reboot', { qos: 1 });
    await cloud.publishAsync('cloud/chat/room', 'from the cloud', { qos: 1 });
    assert.deepEqual(await localReceived(page, 3), ['local/chat/room=from the tab', 'down/cmd=reboot', 'local/chat/room=from the cloud']);
    // The cloud app hears its own message once, through its own subscription, and no echo of it
    // through the bridge (an echo would cross ahead of a marker sent out after it); the tab's app
    // heard no echo of its own either (No Local on both of the bridge's sessions).
    await publishLocally(page, [['up/marker', 'end']]);
    assert.deepEqual(await remoteReceived(cloud, 4), ['up/temp=21', 'cloud/chat/room=from the tab', 'cloud/chat/room=from the cloud', 'up/marker=end']);
    assert.equal((await page.evaluate(() => (window as unknown as BridgeWindow).got)).length, 3);
    await page.close();
  });

  for (const mode of ['tab', 'shared-worker'] as const) {
    it(`${mode} mode: messages published while the link is forced offline survive a reload and arrive in order`, async () => {
      const page = await browser.open(`${site.origin}/`);
      const cloud = await remote(`offline-sink-${mode}`);
      await cloud.subscribeAsync(`queue-${mode}/#`, { qos: 1 });
      const config: BridgeConfig = { url: wsUrl, clientId: `tab-offline-${mode}`, topics: [{ filter: `queue-${mode}/#`, direction: 'out', qos: 1 }] };
      await startBridge(page, { mode, name: `offline-${mode}`, config });
      await waitForState(page, 'online');
      await page.evaluate(() => (window as unknown as BridgeWindow).bridge.setOnline(false));
      assert.equal(await page.evaluate(() => (window as unknown as BridgeWindow).bridge.status.state), 'offline');
      const messages = Array.from({ length: 40 }, (_, i) => [`queue-${mode}/${i % 3}`, `#${i}`] as [string, string]);
      await publishLocally(page, messages);
      assert.equal(await page.evaluate(() => (window as unknown as BridgeWindow).bridge.queued()), 40);
      assert.deepEqual(inboxes.get(cloud), [], 'nothing crosses while the link is down');

      await reload(page);
      await startBridge(page, { mode, name: `offline-${mode}`, config: { ...config, online: false } });
      assert.equal(await page.evaluate(() => (window as unknown as BridgeWindow).bridge.queued()), 40, 'the queue came back from IndexedDB');
      await page.evaluate(() => (window as unknown as BridgeWindow).bridge.setOnline(true));
      assert.deepEqual(await remoteReceived(cloud, 40), messages.map(([t, p]) => `${t}=${p}`));
      await page.waitForFunction(async () => (await (window as unknown as BridgeWindow).bridge.queued()) === 0, undefined, { timeout: 5000 });
      await roundTrip(cloud);
      assert.equal(inboxes.get(cloud)!.length, 40, 'each message once');
      await page.close();
    });
  }

  it('inbound subscriptions resume with the persistent remote session: what the cloud sent meanwhile arrives', async () => {
    const page = await browser.open(`${site.origin}/`);
    const cloud = await remote('inbound-source');
    await startBridge(page, {
      mode: 'tab',
      name: 'inbound',
      config: { url: wsUrl, clientId: 'tab-inbound', topics: [{ filter: 'cmd/#', direction: 'in' }] },
      subscribe: ['cmd/#'],
    });
    await waitForState(page, 'online');
    await page.evaluate(() => (window as unknown as BridgeWindow).bridge.setOnline(false));
    for (let i = 0; i < 5; i++) await cloud.publishAsync(`cmd/${i}`, `c${i}`, { qos: 1 });
    assert.equal(server.broker.sessions.get('tab-inbound')?.queue.length, 5, 'the remote broker holds them for the bridge');
    await page.evaluate(() => (window as unknown as BridgeWindow).bridge.setOnline(true));
    assert.deepEqual(await localReceived(page, 5), ['cmd/0=c0', 'cmd/1=c1', 'cmd/2=c2', 'cmd/3=c3', 'cmd/4=c4']);
    await page.close();
  });

  /** The page's console lines that report a WebSocket failing (Chromium writes one per failed WebSocket it opened). */
  const webSocketFailures = (page: Page): string[] => {
    const lines: string[] = [];
    page.on('console', (m) => {
      if (/WebSocket/.test(m.text())) lines.push(m.text());
    });
    return lines;
  };
  const waitForAttempts = (page: Page, n: number) =>
    page.waitForFunction((n) => (window as unknown as BridgeWindow).bridge.status.attempts >= n, n, { timeout: 10_000 });

  it('reconnects with backoff when the remote broker goes away and comes back, reports it, and retries without a word on the console', async () => {
    const port = server.addresses()[0]!.port;
    const page = await browser.open(`${site.origin}/`);
    const failures = webSocketFailures(page);
    await startBridge(page, {
      mode: 'tab',
      name: 'reconnect',
      config: { url: wsUrl, clientId: 'tab-reconnect', topics: [{ filter: 'r/#', direction: 'both' }], backoff: { initialMs: 100, maxMs: 400 } },
    });
    await waitForState(page, 'online');
    await server.close();
    await waitForState(page, 'waiting');
    await waitForAttempts(page, 4);
    const status = await page.evaluate(() => (window as unknown as BridgeWindow).bridge.status);
    assert.equal(status.error, `WebSocket to ${wsUrl} failed`, 'the status says what happens');
    assert.deepEqual(failures, [], 'each retry asked quietly whether the server is back');
    server = await ArborServer.start({ listeners: [{ protocol: 'ws', port, host: '127.0.0.1' }, { port: 0, host: '127.0.0.1' }] });
    tcpUrl = `mqtt://127.0.0.1:${server.addresses()[1]!.port}`;
    await waitForState(page, 'online');
    const states = await page.evaluate(() => (window as unknown as BridgeWindow).states);
    assert.deepEqual([...new Set(states)].sort(), ['connecting', 'online', 'waiting']);
    assert.deepEqual(await page.evaluate(() => (window as unknown as BridgeWindow).bridge.status), { state: 'online', attempts: 0 });
    assert.deepEqual(failures, []);
    await page.close();
  });

  it('a tab-mode bridge started while its server is away: the first failure shows on the console, the retries do not', async () => {
    const away = await ArborServer.start({ listeners: [{ protocol: 'ws', port: 0, host: '127.0.0.1' }] });
    const port = away.addresses()[0]!.port;
    await away.close();
    const url = `ws://127.0.0.1:${port}/mqtt`;
    const page = await browser.open(`${site.origin}/`);
    const failures = webSocketFailures(page);
    await startBridge(page, { mode: 'tab', name: 'away', config: { url, clientId: 'tab-away', topics: [{ filter: 'a/#', direction: 'out' }], backoff: { initialMs: 50, maxMs: 200 } } });
    await waitForAttempts(page, 5);
    assert.equal(failures.length, 1, `one console line for five attempts: ${failures.join(' | ')}`);
    assert.match(failures[0]!, new RegExp(`WebSocket connection to '${url}' failed`));
    const back = await ArborServer.start({ listeners: [{ protocol: 'ws', port, host: '127.0.0.1' }] });
    try {
      await waitForState(page, 'online');
      assert.equal(failures.length, 1);
      await page.evaluate(() => (window as unknown as BridgeWindow).broker.close());
    } finally {
      await page.close();
      await back.close();
    }
  });
});
