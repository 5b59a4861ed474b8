import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IdleCost } from '../../bench/idle-heap.js';
import { spawnTs, stopChild } from '../../bench/children.js';

/** What an idle connection costs the broker's heap, measured by bench/idle-heap.ts over real TCP. */
describe('npm run bench:idle-heap', () => {
  it('an idle ArborMQ connection adds at most 2.5 KiB of V8 heap, with no listener closures, in-flight map or handler state of its own', { timeout: 120_000 }, async () => {
    const child = spawnTs('bench/idle-heap.ts', ['--server', 'arbormq', '--warm', '200', '--connections', '800', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 0, err);
    } finally {
      await stopChild(child);
    }
    const cost = JSON.parse(out) as IdleCost;
    assert.equal(cost.connections, 800);
    const per = (key: string): number => cost.classes.find(([k]) => k === key)?.[1] ?? 0;
    // Every connection is there: one Connection, one Session, one Node socket each.
    for (const key of ['object Connection', 'object Session', 'object Socket']) assert.ok(Math.abs(per(key) - 1) < 0.01, `${key}: ${per(key)} per connection`);
    // The transport's events reach the connection through one shared listener per socket event.
    for (const key of ['closure data', 'closure close', 'closure drain']) assert.ok(per(key) < 0.01, `${key}: ${per(key)} per connection`);
    assert.ok(per('object ClientState') < 0.01, `ClientState: ${per('object ClientState')} per connection`);
    assert.ok(per('object Map') < 0.01, `Map: ${per('object Map')} per connection (a session's in-flight map)`);
    assert.ok(cost.heapUsed <= 2560, `V8 heap used per idle connection: ${cost.heapUsed.toFixed(0)} bytes`);
  });
});
