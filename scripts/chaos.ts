// npm run chaos [-- --kills 120 --seed N]: the broker SIGKILLed at random moments under QoS 1 and
// QoS 2 streams with persistent sessions on both sides, MQTT 3.1.1 and 5.0; exits 1 if an
// acknowledged message went missing or a QoS 2 message arrived twice. The seed makes a run repeatable.
import { parseArgs } from 'node:util';
import { defects, runChaos, type ChaosResult } from '../test/chaos/chaos.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '120' },
    seed: { type: 'string' },
  },
});
const kills = Number(values.kills);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(kills) || kills < 1 || !Number.isInteger(seed)) {
  console.error('usage: npm run chaos -- [--kills N] [--seed S]');
  process.exit(2);
}
console.log(`chaos: ${kills} kill points, seed ${seed} (repeat with --seed ${seed})`);
const combos = [
  { version: 4, qos: 1 },
  { version: 4, qos: 2 },
  { version: 5, qos: 1 },
  { version: 5, qos: 2 },
] as const;
const results: ChaosResult[] = [];
let failed = false;
for (let i = 0; i < combos.length; i++) {
  const share = Math.floor(kills / combos.length) + (i < kills % combos.length ? 1 : 0);
  const { version, qos } = combos[i]!;
  const started = Date.now();
  const result = await runChaos({ version, qos, kills: share, seed: seed + i });
  results.push(result);
  const found = defects(result);
  failed ||= found.length > 0;
  console.log(
    `MQTT ${version === 4 ? '3.1.1' : '5.0'} QoS ${qos}: ${result.kills} kills, ${result.published} published, ` +
      `${result.acknowledged} acknowledged, ${result.missing.length} missing, ${result.duplicates.length} duplicated, ` +
      `${result.refused} refused and resent — ${((Date.now() - started) / 1000).toFixed(1)} s` +
      (found.length > 0 ? `\n  DEFECTS: ${found.join('; ')}` : '') +
      (found.length > 0 && result.brokerWarnings.length > 0 ? `\n  broker warnings (${result.brokerWarnings.length}, first 5):\n    ${result.brokerWarnings.slice(0, 5).join('\n    ')}` : ''),
  );
}
const total = (f: (r: ChaosResult) => number): number => results.reduce((n, r) => n + f(r), 0);
console.log(
  `chaos: ${total((r) => r.kills)} kill points, ${total((r) => r.acknowledged)} acknowledged messages, ` +
    `${total((r) => r.missing.length)} missing, ${total((r) => (r.options.qos === 2 ? r.duplicates.length : 0))} QoS 2 duplicates — ${failed ? 'FAILED' : 'passed'}`,
);
process.exit(failed ? 1 : 0);
