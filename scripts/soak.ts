// npm run soak [-- --minutes 10 --rate 600 --chart bench/soak.svg]: a real arbormq process with LevelDB
// under mixed load (churn, QoS 0/1/2, retained updates, wildcard and shared subscriptions, persistent
// sessions away and back), sampled every second; writes a memory chart and prints the figures for
// docs/RELIABILITY.md. Exits 1 if the arena did not return to its baseline.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { arenaBackToBaseline, memoryChart, runSoak } from '../test/soak/soak.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '600' },
    chart: { type: 'string', default: 'bench/soak.svg' },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
if (!(minutes > 0) || !(rate > 0)) {
  console.error('usage: npm run soak -- [--minutes M] [--rate PUBLISHES_PER_SECOND] [--chart FILE.svg]');
  process.exit(2);
}
const MiB = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;
console.log(`soak: ${minutes} min, about ${rate} publishes/s, LevelDB`);
const result = await runSoak({
  seconds: minutes * 60,
  rate,
  progress: (s) => {
    if (Math.round(s.t) % 10 === 0) {
      console.log(`  ${s.t.toFixed(0)} s: RSS ${MiB(s.rss)}, heap ${MiB(s.heap)}, arena ${MiB(s.arenaBytes)} in ${s.arenaHandles} blocks (${MiB(s.arenaReserved)} reserved), ${s.connections} connections, ${s.received} received, ${s.sent} sent`);
    }
  },
});
await writeFile(values.chart, memoryChart(result, `${minutes} min soak, ${rate} publishes/s`));
const last = result.samples.at(-1)!;
const arenaBack = arenaBackToBaseline(result);
console.log(
  [
    `soak: ${minutes} min, ${result.published} PUBLISHes sent by the load, ${result.delivered} messages delivered to it, ${result.connects} connections`,
    `  broker counted ${last.received} received, ${last.sent} sent`,
    `  RSS slope after warm-up ${MiB(result.rssSlope)}/min, heap slope ${MiB(result.heapSlope)}/min`,
    `  lowest heap, second half minus first half of the measured window: ${MiB(result.heapFloorGrowth)}; RSS: ${MiB(result.rssFloorGrowth)}`,
    `  arena: ${result.baseline.arenaHandles} blocks / ${result.baseline.arenaBytes} bytes before, ${result.final.arenaHandles} / ${result.final.arenaBytes} after — ${arenaBack ? 'back to baseline' : 'NOT back to baseline'}`,
    `  chart: ${values.chart}`,
  ].join('\n'),
);
process.exit(arenaBack ? 0 : 1);
