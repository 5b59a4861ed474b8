import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defects, runChaos } from './chaos.js';

/**
 * The short version of `npm run chaos`: a real arbormq process SIGKILLed at random moments of a
 * QoS 1 / QoS 2 stream between two persistent sessions. The seed is printed on failure.
 */
describe('SIGKILL at random moments (chaos, a few kill points)', () => {
  const seed = Math.floor(Math.random() * 2 ** 31);
  for (const version of [4, 5] as const) {
    for (const qos of [1, 2] as const) {
      const what = qos === 1 ? 'every acknowledged QoS 1 message at least once' : 'every acknowledged QoS 2 message exactly once [MQTT-4.3.3-9] [MQTT-4.3.3-12]';
      it(`MQTT ${version === 4 ? '3.1.1' : '5.0'}: delivers ${what} across 3 kills`, async () => {
        const result = await runChaos({ version, qos, kills: 3, seed: seed + version * 10 + qos });
        assert.deepEqual(defects(result), [], `seed ${result.options.seed}`);
        assert.ok(result.acknowledged > 0, 'messages flowed');
      });
    }
  }
});
