import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsTrie } from '../../bench/js-trie.js';
import { wildcardData, topicTree, topicsMatching, wildcardTopics } from '../../bench/load/wildcard-data.js';
import { rng } from '../../bench/stats.js';
import { filterMatches } from '../../bench/topic-match.js';

describe('bench topic matchers', () => {
  it('filterMatches follows §4.7', () => {
    assert.ok(filterMatches('a/#', 'a'));
    assert.ok(filterMatches('a/#', 'a/b/c'));
    assert.ok(filterMatches('#', 'a/b'));
    assert.ok(filterMatches('a/+/c', 'a/b/c'));
    assert.ok(filterMatches('+', ''));
    assert.ok(!filterMatches('a/+', 'a'));
    assert.ok(!filterMatches('a/+', 'a/b/c'));
    assert.ok(!filterMatches('#', '$SYS/x'));
    assert.ok(!filterMatches('+/x', '$SYS/x'));
    assert.ok(filterMatches('$SYS/#', '$SYS/x'));
  });

  it('the wildcard reference (topic-tree walk) agrees with filterMatches', () => {
    const topics = wildcardTopics();
    const root = topicTree(topics);
    const { filters } = wildcardData(100, 10_000);
    const sample = filters.flat().filter((_, i) => i % 200 === 0);
    for (const f of sample) {
      const got = new Set<number>();
      topicsMatching(root, f, (t) => got.add(t));
      const want = topics.flatMap((t, i) => (filterMatches(f, t) ? [i] : []));
      assert.deepEqual([...got].sort((a, b) => a - b), want, f);
    }
  });

  it('the wildcard data set has 10,000 distinct filters with + and # and 30,000 topics', () => {
    const d = wildcardData();
    const all = d.filters.flat();
    assert.equal(new Set(all).size, 10_000);
    assert.equal(d.topics.length, 30_000);
    assert.ok(all.some((f) => f.includes('+')) && all.some((f) => f.includes('#')));
    assert.equal(d.filters.length, 100);
  });

  it('JsTrie returns each client once for exactly the filters that match', () => {
    const random = rng(5);
    const words = ['a', 'b', 'c', '$x'];
    const level = (wild: boolean): string => {
      const r = random();
      if (wild && r < 0.15) return '+';
      return words[Math.floor(random() * (wild ? 3 : 4))]!;
    };
    const trie = new JsTrie();
    const subs: [number, string, number][] = [];
    for (let i = 0; i < 300; i++) {
      const depth = 1 + Math.floor(random() * 3);
      // The first level may be '$x' (matched only literally) as well as a word or '+'.
      const parts = Array.from({ length: depth }, (_, k) => level(k > 0 || random() < 0.7));
      if (random() < 0.2) parts.push('#');
      const filter = parts.join('/');
      const client = 1 + Math.floor(random() * 20);
      const qos = Math.floor(random() * 3);
      trie.subscribe(client, filter, qos);
      subs.push([client, filter, qos]);
    }
    for (let i = 0; i < 300; i++) {
      const depth = 1 + Math.floor(random() * 3);
      const topic = Array.from({ length: depth }, (_, k) => (k === 0 ? words[Math.floor(random() * 4)]! : words[Math.floor(random() * 3)]!)).join('/');
      const want = new Map<number, number>();
      // Later subscriptions of the same (client, filter) replace earlier ones.
      const latest = new Map<string, number>();
      for (const [c, f, q] of subs) latest.set(`${c} ${f}`, q);
      for (const [key, q] of latest) {
        const [c, f] = [Number(key.slice(0, key.indexOf(' '))), key.slice(key.indexOf(' ') + 1)];
        if (filterMatches(f, topic)) want.set(c, Math.max(want.get(c) ?? -1, q));
      }
      assert.deepEqual(new Map([...trie.match(topic)].sort((a, b) => a[0] - b[0])), new Map([...want].sort((a, b) => a[0] - b[0])), topic);
    }
  });
});
