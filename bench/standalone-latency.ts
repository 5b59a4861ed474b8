// `npm run bench:standalone-latency`: one broker process, no cluster, under a QoS 1 publisher at a
// fixed rate (in a process of its own, timing each PUBACK from its PUBLISH) to a persistent QoS 1
// subscriber on the same broker, 64-byte payloads: ArborMQ keeping no state (`memory: true`),
// ArborMQ with LevelDB at `durability: sync` (each PUBACK waits for a synced write), and Mosquitto
// with `persistence false`. The floor under bench:replication's latencies, measured side by side;
// the brokers alternate round by round, a fresh process each run. Writes the "Standalone: persistent
// QoS 1 at a fixed rate" section of bench/RESULTS.md.
//
//   --rounds N (default 3)   --rate MSGS_PER_S (default 10000)   --out FILE
//   --before DIR (another built checkout: each round runs its ArborMQ too, right before this one's)
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBroker } from './broker-process.js';
import { mosquittoPath } from './brokers/mosquitto-path.js';
import { spliceSection } from './browser.js';
import { ROOT } from './children.js';
import { startNodes, stopNodes } from './load/cluster-nodes.js';
import { closeAll } from './load/conn.js';
import { type PacedResult, pacedRun } from './load/paced-run.js';
import { ackingSubscriber } from './load/qos1-window.js';
import { cpuModel } from './proc.js';

const HEADING = 'Standalone: persistent QoS 1 at a fixed rate';
const TOPIC = 'bench/s';
const PAYLOAD_BYTES = 64;
const WARMUP_MS = 1500;
const WINDOW_MS = 5000;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    rate: { type: 'string', default: '10000' },
    out: { type: 'string' },
    before: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const RATE = Number(values.rate);

interface Contender {
  label: string;
  /** Starts the broker: its port, the pid to measure, and how to stop it. */
  start(dir: string): Promise<{ port: number; pid: number; stop(): Promise<void> }>;
}

type Keeping = 'memory' | 'sync';

const arbormq = (label: string, root: string, keeping: Keeping): Contender => ({
  label: `${label}, ${keeping === 'memory' ? 'memory' : 'durability sync'}`,
  async start(dir) {
    const store = keeping === 'memory' ? { memory: true } : { dataDir: join(dir, 'data'), durability: 'sync' };
    const [node] = await startNodes({ root, ids: ['m'], name: 'standalone', etcd: '', dir, cluster: false, config: () => ({ logLevel: 'warn', ...store }) });
    return { port: node!.port, pid: node!.child.pid!, stop: () => stopNodes([node!]) };
  },
});

const mosquitto: Contender = {
  label: 'Mosquitto (persistence false)',
  async start() {
    const broker = await startBroker('mosquitto');
    return { port: broker.port, pid: broker.pid, stop: () => broker.stop() };
  },
};

const contenders = (['memory', 'sync'] as const).flatMap((keeping) => [
  ...(values.before ? [arbormq(`ArborMQ before (${values.before})`, values.before, keeping)] : []),
  arbormq(values.before ? 'ArborMQ (this tree)' : 'ArborMQ', ROOT, keeping),
]);
if (mosquittoPath()) contenders.push(mosquitto);
else process.stderr.write('mosquitto is not installed: ArborMQ runs alone\n');

interface Run extends PacedResult {
  label: string;
  round: number;
  load: number;
}

async function measure(c: Contender, round: number): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-bench-standalone-'));
  const broker = await c.start(dir);
  try {
    const sub = await ackingSubscriber(broker.port, 'standalone-sub', TOPIC, false);
    const paced = await pacedRun({ port: broker.port, pids: [broker.pid], received: sub.received, topic: TOPIC, rate: RATE, warmupMs: WARMUP_MS, windowMs: WINDOW_MS, payloadBytes: PAYLOAD_BYTES });
    closeAll([sub.conn]);
    return { label: c.label, round, load: loadavg()[0]!, ...paced };
  } finally {
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function render(runs: Run[]): string {
  const args = `--rounds ${ROUNDS} --rate ${RATE}${values.before ? ` --before ${values.before}` : ''}`;
  return [
    `## ${HEADING}`,
    '',
    `\`npm run bench:standalone-latency -- ${args}\` on ${cpuModel()} (${cpus().length} cores), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}:`,
    `one broker process, no cluster — ArborMQ keeping no state (\`memory: true\`), ArborMQ with LevelDB at \`durability: sync\` (each PUBACK`,
    `waits for a synced write), Mosquitto with \`persistence false\` — serving a QoS 1 publisher at ${RATE.toLocaleString('en-US')} msg/s (in a process of its`,
    `own, timing each PUBACK from its PUBLISH) and a persistent QoS 1 subscriber that acknowledges at once, 64-byte payloads,`,
    `${WARMUP_MS} ms warm-up, ${WINDOW_MS} ms window; the brokers alternate round by round, a fresh process each run.`,
    '',
    '| round | broker | load | msgs/s | broker CPU-s / M | PUBACK p50 | PUBACK p99 |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...runs.map((r) => `| ${r.round} | ${r.label} | ${r.load.toFixed(1)} | ${Math.round(r.pacedRate).toLocaleString('en-US')} | ${r.pacedCpuPerMillion.toFixed(2)} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms |`),
    '',
    ...contenders.map((c) => {
      const of = runs.filter((r) => r.label === c.label);
      return `- ${c.label}: median p50 ${median(of.map((r) => r.p50)).toFixed(2)} ms, p99 ${median(of.map((r) => r.p99)).toFixed(2)} ms, ${median(of.map((r) => r.pacedCpuPerMillion)).toFixed(2)} CPU-s per million.`;
    }),
    '',
  ].join('\n');
}

const runs: Run[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const c of contenders) {
    const r = await measure(c, round);
    process.stderr.write(`round ${round} ${c.label} (load ${r.load.toFixed(1)}): ${Math.round(r.pacedRate)} msg/s, ${r.pacedCpuPerMillion.toFixed(2)} CPU-s per million, PUBACK p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms\n`);
    runs.push(r);
  }
}
const out = values.out ?? join(ROOT, 'bench/RESULTS.md');
const existing = await readFile(out, 'utf8').catch(() => '');
await writeFile(out, spliceSection(existing, render(runs), HEADING));
process.stderr.write(`wrote the ${HEADING} section of ${out}\n`);
