import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runFuzz, totalCases } from './fuzz.js';

/**
 * The suite's fuzzing run (`npm run fuzz -- --cases 1000000` runs more with the same generators):
 * 50,000 cases of structure-aware mutations of valid 3.1.1 / 5.0 packets of every type and of random
 * bytes — through the codec, an in-process broker, TCP and WebSocket sockets beside a bystander client
 * — and of command sequences for the wasm core's exports. The seed is printed to repeat a failure.
 */
describe('fuzzing (50,000 cases)', () => {
  it('no crash, hang, wrong answer or leak; the bystander keeps exchanging messages', { timeout: 300_000 }, async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const result = await runFuzz({ seed, codecCases: 30_000, brokerCases: 14_000, socketCases: 1_000, coreCases: 5_000 });
    const repeat = `repeat with: npm run fuzz -- --seed ${seed} (or runFuzz({ seed: ${seed}, … }))`;
    assert.deepEqual(result.failures, [], repeat);
    assert.equal(totalCases(result), 50_000);
    assert.ok(result.exchanged >= 100, `the bystanders exchanged ${result.exchanged} messages`);
    assert.ok(result.heapGrowthBytes < 32 * 1024 * 1024, `the heap grew ${result.heapGrowthBytes} bytes over the run; ${repeat}`);
  });
});
