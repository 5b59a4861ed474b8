import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNodeCore } from '../../host/node/load-core.js';
import type { Core } from '../../host/core/wasm/core.js';
import { rng } from '../../bench/stats.js';
import { refMatch } from '../helpers/reference.js';

const te = new TextEncoder();
const enc = (s: string) => te.encode(s);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

const WORDS = ['a', 'b', 'c', '', 'ab', 'abcdefghij', 'ü', '$x'];

function randomLevels(r: () => number, wild: boolean): string {
  const n = 1 + Math.floor(r() * 4);
  const levels: string[] = [];
  for (let i = 0; i < n; i++) levels.push(wild && r() < 0.3 ? '+' : WORDS[Math.floor(r() * WORDS.length)]);
  if (wild && r() < 0.3) levels[n - 1] = '#';
  if (r() < 0.12) levels[0] = r() < 0.5 ? '$SYS' : '$a';
  const s = levels.join('/');
  return s === '' ? randomLevels(r, wild) : s;
}

function retained(core: Core, filter: string) {
  return sorted(core.retainMatch(enc(filter)));
}

test('set stores a handle, replacing returns the previous one, delete returns and removes it', async () => {
  const core = await loadNodeCore();
  assert.equal(core.retainSet(enc('a/b'), 11), 0);
  assert.equal(core.retainCount(), 1);
  assert.equal(core.retainSet(enc('a/b'), 12), 11);
  assert.equal(core.retainCount(), 1);
  assert.equal(core.retainSet(enc('a'), 13), 0);
  assert.equal(core.retainSet(enc('a/b/c'), 14), 0);
  assert.equal(core.retainCount(), 3);
  assert.deepEqual(retained(core, 'a/b'), [12]);
  assert.equal(core.retainDelete(enc('a/b')), 12);
  assert.equal(core.retainDelete(enc('a/b')), 0, 'already deleted');
  assert.equal(core.retainDelete(enc('nope')), 0);
  assert.deepEqual(retained(core, 'a/b'), []);
  assert.deepEqual(retained(core, 'a/#'), [13, 14]);
  assert.equal(core.retainSet(enc('a'), 0), 13, 'handle 0 deletes');
  assert.equal(core.retainDelete(enc('a/b/c')), 14);
  assert.equal(core.retainCount(), 0);
  assert.equal(core.retainNodeCount(), 1, 'all nodes pruned');
});

test('set and delete read topic bytes in place and do not touch refcounts', async () => {
  const core = await loadNodeCore();
  const t = enc('sensors/1/temp');
  const h = core.alloc(t.length);
  core.view(h).set(t);
  assert.equal(core.retainSetAt(core.ptr(h), t.length, h), 0);
  assert.equal(core.refcount(h), 1);
  assert.deepEqual(core.retainMatch(enc('sensors/+/temp')), [h]);
  assert.equal(core.retainDeleteAt(core.ptr(h), t.length), h);
  assert.equal(core.refcount(h), 1);
  core.unref(h);
});

test('wildcard filters find the stored topics, empty levels included', async () => {
  const core = await loadNodeCore();
  const topics = ['sport', 'sport/', 'sport/tennis', 'sport/tennis/player1', 'sport/tennis/player1/ranking', '/finance', 'finance', 'a//b', 'a/x/b'];
  topics.forEach((t, i) => core.retainSet(enc(t), i + 1));
  const ids = (...names: string[]) => sorted(names.map((n) => topics.indexOf(n) + 1));
  assert.deepEqual(retained(core, 'sport/#'), ids('sport', 'sport/', 'sport/tennis', 'sport/tennis/player1', 'sport/tennis/player1/ranking'));
  assert.deepEqual(retained(core, 'sport/+'), ids('sport/', 'sport/tennis'));
  assert.deepEqual(retained(core, 'sport/tennis/player1/#'), ids('sport/tennis/player1', 'sport/tennis/player1/ranking'));
  assert.deepEqual(retained(core, '+/+'), ids('sport/', 'sport/tennis', '/finance'));
  assert.deepEqual(retained(core, '/+'), ids('/finance'));
  assert.deepEqual(retained(core, '+'), ids('sport', 'finance'));
  assert.deepEqual(retained(core, 'a/+/b'), ids('a//b', 'a/x/b'));
  assert.deepEqual(retained(core, '#'), sorted(topics.map((_, i) => i + 1)));
  assert.deepEqual(retained(core, 'nothing/#'), []);
});

test('$ topics are hidden from first-level wildcards, found by literal $ filters', async () => {
  const core = await loadNodeCore();
  core.retainSet(enc('$SYS/broker/uptime'), 1);
  core.retainSet(enc('$SYS'), 2);
  core.retainSet(enc('x/$y'), 3);
  core.retainSet(enc('y'), 4);
  assert.deepEqual(retained(core, '#'), [3, 4]);
  assert.deepEqual(retained(core, '+'), [4]);
  assert.deepEqual(retained(core, '+/broker/uptime'), []);
  assert.deepEqual(retained(core, '+/+'), [3]);
  assert.deepEqual(retained(core, '$SYS/#'), [1, 2]);
  assert.deepEqual(retained(core, '$SYS/+/uptime'), [1]);
  assert.deepEqual(retained(core, 'x/+'), [3]);
});

test('random filters against stored topics (>100,000 pairs) agree with the reference matcher, across deletes', async () => {
  const core = await loadNodeCore();
  const r = rng(4242);
  const stored = new Map<string, number>();
  while (stored.size < 600) {
    const t = randomLevels(r, false);
    if (!stored.has(t)) {
      stored.set(t, stored.size + 1);
      assert.equal(core.retainSet(enc(t), stored.get(t)!), 0);
    }
  }
  assert.equal(core.retainCount(), 600);
  let pairs = 0;
  let positives = 0;
  const check = (rounds: number) => {
    for (let k = 0; k < rounds; k++) {
      const filter = randomLevels(r, true);
      const expected: number[] = [];
      for (const [t, h] of stored) if (refMatch(filter, t)) expected.push(h);
      pairs += stored.size;
      positives += expected.length;
      assert.deepEqual(retained(core, filter), sorted(expected), filter);
    }
  };
  check(150);
  // delete half, check again
  let i = 0;
  for (const [t, h] of [...stored]) {
    if (i++ % 2) continue;
    assert.equal(core.retainDelete(enc(t)), h);
    stored.delete(t);
  }
  check(100);
  assert.ok(pairs >= 100000, `${pairs} pairs`);
  assert.ok(positives > 1000, `${positives} positives`);
  for (const t of stored.keys()) core.retainDelete(enc(t));
  assert.equal(core.retainCount(), 0);
  assert.equal(core.retainNodeCount(), 1);
});
