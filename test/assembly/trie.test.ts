import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNodeCore } from '../../host/node/load-core.js';
import { CoreMemoryError, CoreError, TopicFilterError, type Core } from '../../host/core/wasm/core.js';
import { rng } from '../../bench/stats.js';
import { refMatch } from '../helpers/reference.js';

const te = new TextEncoder();
const enc = (s: string) => te.encode(s);

const QOS1 = 1;
const QOS2 = 2;
const NO_LOCAL = 4;
const RAP = 8;

interface Delivery {
  client: number;
  qos: number;
  rap: boolean;
  shared: boolean;
  ids: number[];
}

function deliveries(core: Core, topic: string, publisher = 0): Delivery[] {
  const m = core.matchBytes(enc(topic), publisher);
  const out: Delivery[] = [];
  for (let i = 0; i < m.count; i++) {
    out.push({ client: m.client(i), qos: m.qos(i), rap: m.retainAsPublished(i), shared: m.shared(i), ids: m.subscriptionIds(i).sort((a, b) => a - b) });
  }
  return out.sort((a, b) => a.client - b.client || Number(a.shared) - Number(b.shared));
}

const clients = (core: Core, topic: string, publisher = 0) => deliveries(core, topic, publisher).map((d) => d.client);

const WORDS = ['a', 'b', 'c', '', 'ab', 'ba', 'abcdefghij', 'ä', '$x'];
const FIRST_DOLLAR = ['$SYS', '$a'];

function randomTopic(r: () => number): string {
  const n = 1 + Math.floor(r() * 5);
  const levels: string[] = [];
  for (let i = 0; i < n; i++) levels.push(WORDS[Math.floor(r() * WORDS.length)]);
  if (r() < 0.15) levels[0] = FIRST_DOLLAR[Math.floor(r() * FIRST_DOLLAR.length)];
  const topic = levels.join('/');
  return topic === '' ? randomTopic(r) : topic;
}

function randomFilter(r: () => number): string {
  const n = 1 + Math.floor(r() * 5);
  const levels: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    levels.push(x < 0.25 ? '+' : WORDS[Math.floor(r() * WORDS.length)]);
  }
  if (r() < 0.3) levels[n - 1] = '#';
  if (r() < 0.1) levels[0] = FIRST_DOLLAR[Math.floor(r() * FIRST_DOLLAR.length)];
  const filter = levels.join('/');
  return filter === '' ? randomFilter(r) : filter;
}

/** A topic built from the filter: wildcards filled in, `#` expanded or dropped. */
function nearTopic(r: () => number, filter: string): string {
  const levels = filter.split('/').map((l) => (l === '+' ? WORDS[Math.floor(r() * 4)] : l));
  if (levels[levels.length - 1] === '#') {
    const x = r();
    levels.pop();
    if (x < 0.3) levels.push('a', 'b');
    else if (x < 0.6) levels.push('');
  }
  return levels.join('/');
}

async function fresh(): Promise<Core> {
  return loadNodeCore();
}

test('sport/# matches sport, sport/ and deeper levels (the parent level too)', async () => {
  const core = await fresh();
  core.subscribe(1, enc('sport/#'), 0, 0, 0);
  core.subscribe(2, enc('sport/tennis/player1/#'), 0, 0, 0);
  assert.deepEqual(clients(core, 'sport'), [1]);
  assert.deepEqual(clients(core, 'sport/'), [1]);
  assert.deepEqual(clients(core, 'sport/tennis/player1'), [1, 2]);
  assert.deepEqual(clients(core, 'sport/tennis/player1/ranking'), [1, 2]);
  assert.deepEqual(clients(core, 'sport/tennis/player1/score/wimbledon'), [1, 2]);
  assert.deepEqual(clients(core, 'sports'), []);
  assert.deepEqual(clients(core, 'sport/tennis'), [1]);
});

test('+ matches exactly one level, empty levels included', async () => {
  const core = await fresh();
  core.subscribe(1, enc('sport/+'), 0, 0, 0);
  core.subscribe(2, enc('a/+/b'), 0, 0, 0);
  core.subscribe(3, enc('+'), 0, 0, 0);
  assert.deepEqual(clients(core, 'sport'), [3]);
  assert.deepEqual(clients(core, 'sport/'), [1]);
  assert.deepEqual(clients(core, 'sport/tennis'), [1]);
  assert.deepEqual(clients(core, 'sport/tennis/x'), []);
  assert.deepEqual(clients(core, 'a//b'), [2]);
  assert.deepEqual(clients(core, 'a/x/b'), [2]);
  assert.deepEqual(clients(core, 'a/b'), []);
});

test('/finance is matched by +/+ and /+ but not by +', async () => {
  const core = await fresh();
  core.subscribe(1, enc('+/+'), 0, 0, 0);
  core.subscribe(2, enc('/+'), 0, 0, 0);
  core.subscribe(3, enc('+'), 0, 0, 0);
  core.subscribe(4, enc('/finance'), 0, 0, 0);
  assert.deepEqual(clients(core, '/finance'), [1, 2, 4]);
  assert.deepEqual(clients(core, 'finance'), [3]);
});

test('# alone matches every topic not starting with $', async () => {
  const core = await fresh();
  core.subscribe(1, enc('#'), 0, 0, 0);
  for (const t of ['a', '/', 'a/b/c', '', 'x/$y', 'SYS/$']) assert.deepEqual(clients(core, t), [1], t);
  for (const t of ['$SYS', '$SYS/broker/load', '$', '$/x']) assert.deepEqual(clients(core, t), [], t);
});

test('$ topics are not matched by first-level wildcards but are by literal $ filters [MQTT-4.7.2-1]', async () => {
  const core = await fresh();
  core.subscribe(1, enc('+/monitor/Clients'), 0, 0, 0);
  core.subscribe(2, enc('$SYS/#'), 0, 0, 0);
  core.subscribe(3, enc('$SYS/monitor/+'), 0, 0, 0);
  core.subscribe(4, enc('#'), 0, 0, 0);
  core.subscribe(5, enc('+/+/+'), 0, 0, 0);
  assert.deepEqual(clients(core, '$SYS/monitor/Clients'), [2, 3]);
  assert.deepEqual(clients(core, '$SYS'), [2]);
  assert.deepEqual(clients(core, '$SYS/x'), [2]);
  assert.deepEqual(clients(core, 'SYS/monitor/Clients'), [1, 4, 5]);
});

test('a client matched by overlapping subscriptions gets one record: highest QoS, OR of retain-as-published, all ids', async () => {
  const core = await fresh();
  core.subscribe(1, enc('a/+'), QOS1, 5, 0);
  core.subscribe(1, enc('a/#'), QOS2 | RAP, 6, 0);
  core.subscribe(1, enc('a/b'), 0, 0, 0);
  core.subscribe(1, enc('+/b'), 0, 5, 0);
  core.subscribe(2, enc('a/b'), QOS1, 0, 0);
  assert.deepEqual(deliveries(core, 'a/b'), [
    { client: 1, qos: 2, rap: true, shared: false, ids: [5, 6] },
    { client: 2, qos: 1, rap: false, shared: false, ids: [] },
  ]);
  assert.deepEqual(deliveries(core, 'a/c'), [{ client: 1, qos: 2, rap: true, shared: false, ids: [5, 6] }]);
  assert.deepEqual(deliveries(core, 'a'), [{ client: 1, qos: 2, rap: true, shared: false, ids: [6] }]);
});

test('no-local skips only the publishing client own subscriptions', async () => {
  const core = await fresh();
  core.subscribe(1, enc('chat/+'), QOS2 | NO_LOCAL, 1, 0);
  core.subscribe(1, enc('chat/#'), QOS1, 2, 0);
  core.subscribe(2, enc('chat/room'), NO_LOCAL, 0, 0);
  assert.deepEqual(deliveries(core, 'chat/room', 1), [
    { client: 1, qos: 1, rap: false, shared: false, ids: [2] },
    { client: 2, qos: 0, rap: false, shared: false, ids: [] },
  ]);
  assert.deepEqual(clients(core, 'chat/room', 2), [1]);
  assert.deepEqual(deliveries(core, 'chat/room', 0)[0], { client: 1, qos: 2, rap: false, shared: false, ids: [1, 2] });
  core.unsubscribe(1, enc('chat/#'), 0);
  assert.deepEqual(clients(core, 'chat/room', 1), [2]);
});

test('subscribing again with the same client, filter and group replaces the options', async () => {
  const core = await fresh();
  assert.equal(core.subscribe(1, enc('a/b'), QOS1, 3, 0), true);
  assert.equal(core.subscribe(1, enc('a/b'), QOS2 | RAP, 4, 0), false);
  assert.equal(core.subscriptionCount(), 1);
  assert.deepEqual(deliveries(core, 'a/b'), [{ client: 1, qos: 2, rap: true, shared: false, ids: [4] }]);
  assert.equal(core.subscribe(1, enc('a/b'), 0, 0, 0), false);
  assert.deepEqual(deliveries(core, 'a/b'), [{ client: 1, qos: 0, rap: false, shared: false, ids: [] }]);
  assert.equal(core.subscribe(1, enc('a/b'), QOS1, 0, 9), true, 'a shared subscription is a different triple');
  assert.equal(core.subscriptionCount(), 2);
});

test('unsubscribe removes the subscription and prunes the emptied nodes', async () => {
  const core = await fresh();
  const base = core.trieNodeCount();
  core.subscribe(1, enc('a/b/c'), 0, 0, 0);
  core.subscribe(1, enc('a/+/#'), 0, 0, 0);
  core.subscribe(2, enc('a/b'), 0, 0, 0);
  core.subscribe(3, enc('a/b/c'), 0, 0, 7);
  assert.equal(core.trieNodeCount(), base + 5, 'a, b, c, +, #');
  assert.equal(core.unsubscribe(1, enc('a/b/c'), 0), true);
  assert.equal(core.unsubscribe(1, enc('a/b/c'), 0), false, 'already gone');
  assert.equal(core.unsubscribe(2, enc('a/b/c'), 0), false, 'other client');
  assert.equal(core.unsubscribe(3, enc('a/b/c'), 7), true);
  assert.equal(core.trieNodeCount(), base + 4, 'a/b/c pruned, a/b kept');
  assert.deepEqual(clients(core, 'a/b/c'), [1]);
  assert.equal(core.unsubscribe(1, enc('a/+/#'), 0), true);
  assert.equal(core.unsubscribe(2, enc('a/b'), 0), true);
  assert.equal(core.unsubscribe(2, enc('a/#/b'), 0), false, 'invalid filter: nothing to remove');
  assert.equal(core.trieNodeCount(), base);
  assert.equal(core.subscriptionCount(), 0);
  assert.deepEqual(clients(core, 'a/b/c'), []);
});

test('invalid filters are rejected with their CoreError code', async () => {
  const core = await fresh();
  assert.throws(() => core.subscribe(1, enc('a/#/b'), 0, 0, 0), (e: unknown) => e instanceof TopicFilterError && e.code === CoreError.HashNotLast);
  assert.throws(() => core.subscribe(1, enc('a+'), 0, 0, 0), (e: unknown) => e instanceof TopicFilterError && e.code === CoreError.PlusNotAlone);
  assert.throws(() => core.subscribe(1, enc(''), 0, 0, 0), (e: unknown) => e instanceof TopicFilterError && e.code === CoreError.Empty);
  assert.throws(() => core.subscribe(1, new Uint8Array([0x61, 0xff]), 0, 0, 0), (e: unknown) => e instanceof TopicFilterError && e.code === CoreError.BadUtf8);
  assert.equal(core.subscriptionCount(), 0);
  assert.equal(core.trieNodeCount(), 1);
});

test('shared group delivers to one member per message, round-robin, as a separate record', async () => {
  const core = await fresh();
  const G = 7;
  core.subscribe(10, enc('s/+'), QOS1, 70, G);
  core.subscribe(11, enc('s/+'), QOS2, 0, G);
  core.subscribe(12, enc('s/+'), QOS1 | RAP, 0, G);
  core.subscribe(10, enc('s/x'), 0, 0, 0);
  const picks: number[] = [];
  for (let i = 0; i < 9; i++) {
    const d = deliveries(core, 's/x');
    const shared = d.filter((x) => x.shared);
    assert.equal(shared.length, 1);
    assert.deepEqual(d.filter((x) => !x.shared), [{ client: 10, qos: 0, rap: false, shared: false, ids: [] }], 'non-shared record not merged');
    picks.push(shared[0].client);
    const s = shared[0];
    if (s.client === 10) assert.deepEqual(s, { client: 10, qos: 1, rap: false, shared: true, ids: [70] });
    if (s.client === 11) assert.deepEqual(s, { client: 11, qos: 2, rap: false, shared: true, ids: [] });
    if (s.client === 12) assert.deepEqual(s, { client: 12, qos: 1, rap: true, shared: true, ids: [] });
  }
  assert.deepEqual(picks.slice(0, 3).sort(), [10, 11, 12]);
  assert.deepEqual(picks.slice(3, 6), picks.slice(0, 3), 'rotation repeats');
  assert.deepEqual(picks.slice(6, 9), picks.slice(0, 3));
});

test('shared group prefers online members and falls back to round-robin when all are offline', async () => {
  const core = await fresh();
  for (const c of [1, 2, 3]) core.subscribe(c, enc('job/#'), QOS1, 0, 5);
  core.setClientOnline(2, false);
  const picks = Array.from({ length: 6 }, () => clients(core, 'job/1')[0]);
  assert.ok(!picks.includes(2), `offline member skipped: ${picks}`);
  assert.deepEqual(new Set(picks), new Set([1, 3]));
  core.setClientOnline(1, false);
  core.setClientOnline(3, false);
  const all = Array.from({ length: 6 }, () => clients(core, 'job/1')[0]);
  assert.deepEqual(all.slice(0, 3).sort(), [1, 2, 3], `all offline: plain round-robin ${all}`);
  core.setClientOnline(3, true);
  assert.deepEqual(Array.from({ length: 3 }, () => clients(core, 'job/1')[0]), [3, 3, 3]);
  core.setClientOnline(100000, false); // beyond every array so far
  assert.deepEqual(clients(core, 'job/1'), [3]);
});

test('with a reader check, a shared group skips members that may not read, online first, and delivers nothing when none may', async () => {
  const core = await fresh();
  for (const c of [1, 2, 3, 4]) core.subscribe(c, enc('job/#'), QOS1, 0, 5);
  core.subscribe(9, enc('job/#'), 0, 0, 0);
  const asked: number[] = [];
  const readers = new Set([2, 3, 4]);
  const mayRead = (client: number) => {
    asked.push(client);
    return readers.has(client);
  };
  const pick = () => {
    const m = core.matchBytes(enc('job/1'), 0, mayRead);
    const picked: number[] = [];
    for (let i = 0; i < m.count; i++) if (m.shared(i)) picked.push(m.client(i));
    return picked;
  };
  const picks = Array.from({ length: 6 }, () => pick()[0]);
  assert.deepEqual(new Set(picks), new Set([2, 3, 4]), `member 1 may not read: ${picks}`);
  assert.deepEqual(picks.slice(3), picks.slice(0, 3), 'the rotation goes on among the readers');
  assert.ok(!asked.includes(9), 'non-shared subscribers are not asked');
  core.setClientOnline(2, false);
  core.setClientOnline(3, false);
  assert.deepEqual(Array.from({ length: 3 }, () => pick()[0]), [4, 4, 4], 'the online reader is preferred');
  core.setClientOnline(4, false);
  assert.deepEqual(new Set(Array.from({ length: 6 }, () => pick()[0])), new Set([2, 3, 4]), 'all readers offline: round-robin among them');
  readers.clear();
  assert.deepEqual(pick(), [], 'no member may read: the group gets nothing');
  assert.deepEqual(clients(core, 'job/1').length, 2, 'without a check the group picks as before');
});

test('each (group, filter) pair delivers once; no-local does not apply to shared subscriptions', async () => {
  const core = await fresh();
  core.subscribe(1, enc('t/+'), NO_LOCAL, 0, 1);
  core.subscribe(2, enc('t/#'), 0, 0, 1);
  core.subscribe(3, enc('t/+'), 0, 0, 2);
  const d = deliveries(core, 't/x', 1);
  assert.deepEqual(d.map((x) => [x.client, x.shared]), [[1, true], [2, true], [3, true]]);
});

test('unsubscribing shared members keeps the rotation going and removes empty groups', async () => {
  const core = await fresh();
  for (const c of [1, 2, 3, 4]) core.subscribe(c, enc('q'), 0, 0, 9);
  clients(core, 'q');
  assert.equal(core.unsubscribe(2, enc('q'), 9), true);
  assert.equal(core.unsubscribe(3, enc('q'), 0), false, 'group is part of the identity');
  const picks = Array.from({ length: 6 }, () => clients(core, 'q')[0]);
  assert.deepEqual(new Set(picks), new Set([1, 3, 4]));
  for (const c of [1, 3, 4]) assert.equal(core.unsubscribe(c, enc('q'), 9), true);
  assert.deepEqual(clients(core, 'q'), []);
  assert.equal(core.trieNodeCount(), 1);
  assert.equal(core.subscriptionCount(), 0);
});

test('duplicate subscription ids of one client are listed once', async () => {
  const core = await fresh();
  core.subscribe(1, enc('a/+'), 0, 42, 0);
  core.subscribe(1, enc('a/#'), 0, 42, 0);
  core.subscribe(1, enc('+/b'), 0, 43, 0);
  assert.deepEqual(deliveries(core, 'a/b')[0].ids, [42, 43]);
});

test('match reads topic bytes in place and the result object is reused', async () => {
  const core = await fresh();
  core.subscribe(1, enc('x/y'), 0, 0, 0);
  const t = enc('x/y');
  const h = core.alloc(t.length);
  core.view(h).set(t);
  const m1 = core.match(core.ptr(h), t.length, 0);
  assert.equal(m1.count, 1);
  const m2 = core.match(core.ptr(h), 1, 0);
  assert.equal(m2, m1);
  assert.equal(m2.count, 0);
  core.unref(h);
});

test('long topics with many levels match without exhausting the stack', async () => {
  const core = await fresh();
  const deep = Array.from({ length: 20000 }, (_, i) => (i % 3 === 0 ? '+' : 'l' + (i % 7))).join('/');
  core.subscribe(1, enc(deep), 0, 0, 0);
  core.subscribe(2, enc('+/#'), 0, 0, 0);
  const topic = deep.replaceAll('+', 'v');
  assert.deepEqual(clients(core, topic), [1, 2]);
  assert.deepEqual(clients(core, topic + '/more'), [2]);
  core.unsubscribe(1, enc(deep), 0);
  core.unsubscribe(2, enc('+/#'), 0);
  assert.equal(core.trieNodeCount(), 1);
});

test('random filter/topic pairs (120,000) agree with the reference matcher', async () => {
  const core = await fresh();
  const r = rng(12345);
  let pairs = 0;
  let hits = 0;
  for (let f = 0; f < 2000; f++) {
    const filter = randomFilter(r);
    core.subscribe(1, enc(filter), 0, 0, 0);
    for (let k = 0; k < 60; k++) {
      // half random, half derived from the filter so that a good share should match
      const topic = r() < 0.5 ? randomTopic(r) : nearTopic(r, filter);
      if (topic === '') continue;
      const expected = refMatch(filter, topic);
      const got = core.matchBytes(enc(topic), 0).count === 1;
      if (got !== expected) assert.fail(`filter ${JSON.stringify(filter)} topic ${JSON.stringify(topic)}: expected ${expected}`);
      pairs++;
      if (expected) hits++;
    }
    assert.equal(core.unsubscribe(1, enc(filter), 0), true);
    assert.equal(core.trieNodeCount(), 1, `pruned after ${filter}`);
  }
  assert.ok(pairs >= 100000, `${pairs} pairs`);
  assert.ok(hits > pairs / 10, `enough positives: ${hits}`);
});

test('many subscriptions at once: every random topic matches exactly the reference set', async () => {
  const core = await fresh();
  const r = rng(777);
  const filters: string[] = [];
  for (let c = 1; c <= 3000; c++) {
    const f = randomFilter(r);
    filters.push(f);
    core.subscribe(c, enc(f), 0, c, 0);
  }
  assert.equal(core.subscriptionCount(), 3000);
  for (let k = 0; k < 1500; k++) {
    const topic = randomTopic(r);
    const expected: number[] = [];
    filters.forEach((f, i) => refMatch(f, topic) && expected.push(i + 1));
    const got = deliveries(core, topic);
    assert.deepEqual(got.map((d) => d.client), expected, topic);
    for (const d of got) assert.deepEqual(d.ids, [d.client]);
  }
  // remove half, check again, remove the rest
  for (let c = 1; c <= 3000; c += 2) assert.equal(core.unsubscribe(c, enc(filters[c - 1]), 0), true);
  for (let k = 0; k < 300; k++) {
    const topic = randomTopic(r);
    const expected: number[] = [];
    filters.forEach((f, i) => (i + 1) % 2 === 0 && refMatch(f, topic) && expected.push(i + 1));
    assert.deepEqual(clients(core, topic), expected, topic);
  }
  for (let c = 2; c <= 3000; c += 2) assert.equal(core.unsubscribe(c, enc(filters[c - 1]), 0), true);
  assert.equal(core.trieNodeCount(), 1);
  assert.equal(core.subscriptionCount(), 0);
});

test('when memory is exhausted subscribe throws CoreMemoryError and leaves the trie consistent', async () => {
  const core = await loadNodeCore({ memoryLimitBytes: 40 * 1024 * 1024, arenaCapBytes: 2 ** 40 });
  // fill memory with arena blocks until the limit stops them
  const blocks: number[] = [];
  for (let h = core.alloc(1 << 20); h !== 0; h = core.alloc(1 << 20)) blocks.push(h);
  const long = 'x'.repeat(3000);
  let added = 0;
  let failure: unknown;
  for (let i = 0; i < 100000 && !failure; i++) {
    try {
      core.subscribe(i + 1, enc(`${long}/${i}/${long}`), 0, 0, 0);
      added++;
    } catch (e) {
      failure = e;
    }
  }
  assert.ok(failure instanceof CoreMemoryError, String(failure));
  assert.equal(core.subscriptionCount(), added);
  for (const h of blocks) core.unref(h);
  core.arenaTrim();
  assert.equal(core.subscribe(999999, enc(`${long}/after`), 1, 0, 0), true, 'works again once memory is free');
  assert.deepEqual(clients(core, `${long}/after`), [999999]);
  assert.deepEqual(clients(core, `${long}/0/${long}`), [1]);
});

test('a shared record names its group; a non-shared one names none', async () => {
  const core = await fresh();
  core.subscribe(1, enc('job/#'), QOS1, 0, 7);
  core.subscribe(2, enc('job/+'), QOS1, 0, 300_000);
  core.subscribe(3, enc('job/#'), QOS1, 0, 0);
  const m = core.matchBytes(enc('job/1'), 0);
  const groups = new Map<number, number>();
  for (let i = 0; i < m.count; i++) groups.set(m.client(i), m.group(i));
  assert.deepEqual(groups, new Map([[1, 7], [2, 300_000], [3, 0]]));
  assert.equal(deliveries(core, 'job/1').filter((d) => d.shared).length, 2, 'the group bits do not disturb the other flags');
});
