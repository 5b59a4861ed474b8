import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rendezvousPick } from '../../../host/node/cluster/rendezvous.js';

const ids = Array.from({ length: 6000 }, (_, i) => `client-${i}`);

describe('rendezvous hashing of buddies', () => {
  it('spreads client ids evenly over the members', () => {
    const counts = new Map<string, number>();
    for (const id of ids) {
      const node = rendezvousPick(id, ['n1', 'n2', 'n3'])!;
      counts.set(node, (counts.get(node) ?? 0) + 1);
    }
    assert.deepEqual([...counts.keys()].sort(), ['n1', 'n2', 'n3']);
    for (const [node, n] of counts) assert.ok(Math.abs(n - ids.length / 3) < ids.length * 0.05, `${node} got ${n} of ${ids.length}`);
  });

  it('is the same whatever order the members are listed in, and a member leaving moves only what it held', () => {
    for (const id of ids) {
      const before = rendezvousPick(id, ['n1', 'n2', 'n3', 'n4']);
      assert.equal(rendezvousPick(id, ['n4', 'n3', 'n1', 'n2']), before);
      const after = rendezvousPick(id, ['n1', 'n2', 'n4']);
      if (before !== 'n3') assert.equal(after, before, `${id} moved from ${before} to ${after}`);
    }
  });

  it('picks nobody among no members', () => {
    assert.equal(rendezvousPick('a', []), null);
  });
});
