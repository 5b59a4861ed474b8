import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareStamps, HybridClock, ZERO_STAMP } from '../../../host/node/cluster/hlc.js';

describe('hybrid logical clock', () => {
  it('stamps increase even when the wall clock stands still or goes back', () => {
    let wall = 1000;
    const clock = new HybridClock('n1', () => wall);
    const a = clock.now();
    const b = clock.now();
    wall = 900;
    const c = clock.now();
    assert.ok(compareStamps(a, b) < 0 && compareStamps(b, c) < 0);
  });

  it('after seeing a peer stamp from its future, the next local stamp orders after it', () => {
    const clock = new HybridClock('n1', () => 1000);
    clock.observe({ wall: 5000, logical: 7, node: 'n2' });
    assert.ok(compareStamps(clock.now(), { wall: 5000, logical: 7, node: 'n2' }) > 0);
  });

  it('every node orders two stamps the same way: wall, then counter, then node id; any stamp beats the zero stamp', () => {
    const x = { wall: 10, logical: 0, node: 'n2' };
    const y = { wall: 10, logical: 0, node: 'n1' };
    assert.equal(compareStamps(x, y), 1);
    assert.equal(compareStamps(y, x), -1);
    assert.ok(compareStamps({ wall: 1, logical: 0, node: '' }, ZERO_STAMP) > 0);
  });
});
