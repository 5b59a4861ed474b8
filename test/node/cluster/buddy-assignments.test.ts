import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BuddyAssignments } from '../../../host/node/cluster/buddy-assignments.js';

describe('buddy assignments (which buddy keeps each replicated session)', () => {
  it('lists each buddy that keeps a session once, and drops one once its last session moved or ended', () => {
    const a = new BuddyAssignments();
    a.set('s1', 'n2');
    a.set('s2', 'n2');
    a.set('s3', 'n3');
    a.set('s1', 'n2');
    assert.deepEqual([...a.nodes()].sort(), ['n2', 'n3']);
    assert.equal(a.size, 3);
    a.set('s3', 'n2');
    assert.deepEqual([...a.nodes()], ['n2']);
    a.delete('s1');
    a.delete('s1');
    assert.deepEqual([...a.nodes()], ['n2']);
    a.delete('s2');
    a.delete('s3');
    assert.deepEqual([...a.nodes()], []);
    assert.equal(a.size, 0);
  });

  it('answers which buddy a session went to, and iterates every session with its buddy', () => {
    const a = new BuddyAssignments();
    a.set('s1', 'n2');
    a.set('s2', 'n3');
    assert.equal(a.get('s1'), 'n2');
    assert.equal(a.has('s3'), false);
    assert.deepEqual([...a], [
      ['s1', 'n2'],
      ['s2', 'n3'],
    ]);
  });
});
