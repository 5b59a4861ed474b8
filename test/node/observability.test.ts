import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { collect, expectSilence, received } from '../helpers/broker.js';
import { local, startServer, type TestServer } from '../helpers/server.js';
import { Peer } from '../helpers/peer.js';
import { until } from '../helpers/wait.js';

interface Scraped {
  help: Map<string, string>;
  type: Map<string, string>;
  /** Sample line name (with labels) → value. */
  samples: Map<string, number>;
}

/** Parses the Prometheus text format, checking every sample has HELP and TYPE lines before it. */
function parsePrometheus(text: string): Scraped {
  const scraped: Scraped = { help: new Map(), type: new Map(), samples: new Map() };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP (\w+) (.+)$/.exec(line);
    if (m) {
      scraped.help.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# TYPE (\w+) (counter|gauge)$/.exec(line);
    if (m) {
      scraped.type.set(m[1]!, m[2]!);
      continue;
    }
    m = /^(\w+)(\{[^}]*\})? (-?[\d.e+]+)$/.exec(line);
    assert.ok(m, `not a valid sample line: ${JSON.stringify(line)}`);
    assert.ok(scraped.help.has(m[1]!) && scraped.type.has(m[1]!), `${m[1]} has no HELP/TYPE`);
    scraped.samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return scraped;
}

describe('$SYS topics', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ listeners: [local], sysInterval: 1 });
  });
  after(() => s.close());

  it('publishes Mosquitto-named $SYS/broker topics, retained, with the broker state', async () => {
    const sub = await s.client(s.url('mqtt'));
    await sub.subscribeAsync(['a/b', 'c/#']);
    const watcher = await s.client(s.url('mqtt'));
    const names = [
      'version',
      'uptime',
      'clients/connected',
      'clients/total',
      'bytes/received',
      'messages/received',
      'publish/messages/sent',
      'retained messages/count',
      'subscriptions/count',
      'arena/bytes/used',
      'load/bytes/received/1min',
    ];
    await watcher.subscribeAsync(names.map((n) => `$SYS/broker/${n}`));
    const got = new Map((await collect(watcher, names.length)).map((m) => [m.topic.slice('$SYS/broker/'.length), m]));
    for (const name of names) assert.ok(got.get(name)?.packet.retain, `${name} arrives retained`);
    assert.match(got.get('version')!.payload.toString(), /^arbormq version \d+\.\d+\.\d+/);
    assert.match(got.get('uptime')!.payload.toString(), /^\d+ seconds$/);
    assert.ok(Number(got.get('subscriptions/count')!.payload.toString()) >= 0);
  });

  it('publishes changed values every interval and leaves unchanged ones alone', async () => {
    const ticker = await intervalTicker();
    const before = await s.client(s.url('mqtt'));
    const watcher = await s.client(s.url('mqtt'));
    await watcher.subscribeAsync(['$SYS/broker/clients/connected', '$SYS/broker/version']);
    await collect(watcher, 2);
    const open = s.server.connectionCount;
    await before.endAsync();
    await until(() => s.server.connectionCount < open, 'the connection to go');
    const connected = [...s.server.broker.sessions.values()].filter((session) => session.outlet).length;
    // Within an interval the new count is published (an update, not a retained replay).
    const [update] = await collect(watcher, 1, 2500);
    assert.equal(update!.topic, '$SYS/broker/clients/connected');
    assert.equal(update!.packet.retain, false);
    assert.equal(Number(update!.payload.toString()), connected);
    // The version does not change, so it is not sent again.
    await anotherInterval(ticker);
    await expectSilence(watcher);
  });

  it('is not matched by a # subscription ($ topics are only for filters that name them)', async () => {
    const ticker = await intervalTicker();
    const all = await s.client(s.url('mqtt'));
    await all.subscribeAsync('#');
    await anotherInterval(ticker);
    await expectSilence(all);
  });

  /** A client told of each $SYS interval (the uptime changes every time); connected before what a test counts, since it is counted too. */
  async function intervalTicker(): Promise<MqttClient> {
    const ticker = await s.client(s.url('mqtt'));
    await ticker.subscribeAsync('$SYS/broker/uptime');
    return ticker;
  }

  /** Waits for the broker's next $SYS interval after now. */
  async function anotherInterval(ticker: MqttClient): Promise<void> {
    const seen = received(ticker).length;
    await until(() => received(ticker).length > seen, 'the next $SYS interval', 2500);
  }
});

describe('HTTP endpoint: /metrics and /health', () => {
  let s: TestServer;
  let base: string;
  before(async () => {
    s = await startServer({ listeners: [local], http: { ...local } });
    base = `http://127.0.0.1:${s.server.httpAddress()!.port}`;
  });
  after(() => s.close());

  it('serves Prometheus text with HELP and TYPE for every arbormq_ metric, matching the broker state', async () => {
    const sub = await s.client(s.url('mqtt'), { clientId: 'metrics-sub', clean: false });
    await sub.subscribeAsync(['m/1', 'm/2'], { qos: 1 });
    const pub = await s.client(s.url('mqtt'));
    const got = collect(sub, 2);
    await pub.publishAsync('m/1', 'hello', { qos: 1, retain: true });
    await pub.publishAsync('m/2', 'world', { qos: 0 });
    await got;
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const m = parsePrometheus(await res.text());
    for (const name of m.type.keys()) assert.match(name, /^arbormq_/);
    for (const [name, type] of m.type) if (type === 'counter') assert.match(name, /_total$/, `${name} is a counter`);
    assert.equal(m.samples.get('arbormq_clients_connected'), 2);
    assert.equal(m.samples.get('arbormq_subscriptions'), 2);
    assert.equal(m.samples.get('arbormq_retained_messages'), 1);
    assert.equal(m.samples.get('arbormq_messages_received_total'), 2);
    assert.equal(m.samples.get('arbormq_messages_sent_total'), 2);
    assert.ok(m.samples.get('arbormq_bytes_received_total')! > 0);
    assert.ok(m.samples.get('arbormq_arena_bytes_in_use')! > 0, 'the retained message lives in the arena');
    assert.equal(m.samples.get('arbormq_arena_errors_total'), 0);
    assert.ok(m.samples.has('arbormq_messages_dropped_total{reason="queue_full"}'));
    assert.ok(m.samples.has('arbormq_arena_tier_bytes_in_use{tier="small"}'));
    assert.equal(m.samples.get('arbormq_info{version="0.1.0"}') ?? [...m.samples].find(([k]) => k.startsWith('arbormq_info'))?.[1], 1);
    await pub.publishAsync('m/1', '', { qos: 1, retain: true });
  });

  it('answers /health with 200 while serving, and unknown paths and methods with 404 and 405', async () => {
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
  });
});

describe('/health during shutdown', () => {
  it('answers 503 once shutdown has begun, while clients are still being let go', async () => {
    const s = await startServer({ listeners: [local], http: { ...local } });
    const base = `http://127.0.0.1:${s.server.httpAddress()!.port}`;
    // A raw socket that ignores DISCONNECT keeps the shutdown waiting, so /health can be asked meanwhile.
    const raw = await new Peer().tcp(s.port('mqtt'));
    await raw.handshake({ protocolVersion: 5 });
    raw.ignoreEnd();
    const closing = s.server.close(800);
    const res = await fetch(`${base}/health`, { headers: { connection: 'close' } });
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'shutting down' });
    await closing;
    raw.destroy();
    await s.close();
  });
});
