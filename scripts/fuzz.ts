// npm run fuzz [-- --cases 1000000 --seed N]: structure-aware and random MQTT input against the codec,
// the broker in-process, real TCP and WebSocket sockets (beside a bystander client) and the wasm
// core's exports. Exits 1 on any crash, hang, leak or wrong answer; the seed makes a run repeatable.
import { parseArgs } from 'node:util';
import { runFuzz, totalCases } from '../test/fuzz/fuzz.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '1000000' },
    seed: { type: 'string' },
  },
});
const cases = Number(values.cases);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(cases) || cases < 100 || !Number.isInteger(seed)) {
  console.error('usage: npm run fuzz -- [--cases N (≥ 100)] [--seed S]');
  process.exit(2);
}
// The same shares as the suite's run: the codec alone is cheapest, sockets the dearest.
const share = (fraction: number): number => Math.floor(cases * fraction);
const options = { seed, brokerCases: share(0.3), socketCases: share(0.02), coreCases: share(0.08), codecCases: 0 };
options.codecCases = cases - options.brokerCases - options.socketCases - options.coreCases;
console.log(
  `fuzz: ${cases} cases (codec ${options.codecCases}, broker ${options.brokerCases}, sockets ${options.socketCases}, wasm core ${options.coreCases}), seed ${seed} (repeat with --seed ${seed})`,
);
const started = Date.now();
const result = await runFuzz({ ...options, progress: (line) => console.log(`  ${line} — ${((Date.now() - started) / 1000).toFixed(0)} s`) });
for (const f of result.failures) {
  console.log(`FAILURE in ${f.target} (seed ${f.seed}, path ${f.path}): ${f.error}\n  input: ${f.input}`);
}
console.log(
  `fuzz: ${totalCases(result)} cases in ${((Date.now() - started) / 1000).toFixed(0)} s, ${result.failures.length} failures, ` +
    `heap growth ${(result.heapGrowthBytes / 1024 / 1024).toFixed(1)} MiB, ${result.exchanged} bystander exchanges — ${result.failures.length > 0 ? 'FAILED' : 'passed'}`,
);
process.exit(result.failures.length > 0 ? 1 : 0);
