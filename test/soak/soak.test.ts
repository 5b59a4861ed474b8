import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { arenaBackToBaseline, runSoak } from './soak.js';

const MiB = 1024 * 1024;

/**
 * The short version of `npm run soak`: one minute of mixed load on a real arbormq process with
 * LevelDB. The bounds are loose (the machine is shared and a minute is short for a trend); the arena
 * returning exactly to its baseline is the strict part.
 */
describe('soak (60 seconds of mixed load)', () => {
  it('keeps memory flat after warm-up and returns the arena to its baseline once the load is gone', { timeout: 180_000 }, async () => {
    const result = await runSoak({ seconds: 60, rate: 300, warmupSeconds: 20 });
    assert.ok(result.delivered > 10_000, `${result.delivered} messages delivered`);
    assert.ok(result.connects > 100, `${result.connects} connections`);
    assert.equal(result.final.connections, 0);
    assert.equal(result.final.arenaHandles, result.baseline.arenaHandles, 'arena blocks back to baseline');
    assert.ok(arenaBackToBaseline(result), `arena bytes ${result.baseline.arenaBytes} before, ${result.final.arenaBytes} after`);
    assert.ok(result.heapFloorGrowth < 24 * MiB, `the lowest JS heap grew ${(result.heapFloorGrowth / MiB).toFixed(1)} MiB between the halves of the measured window`);
    assert.ok(result.rssFloorGrowth < 64 * MiB, `the lowest RSS grew ${(result.rssFloorGrowth / MiB).toFixed(1)} MiB between the halves of the measured window`);
  });
});
