// `npm run bench:replication`: what replicationFactor 2 costs. Three real `arbormq` processes with
// LevelDB stores (durability sync) joined through etcd on loopback; a QoS 1 publisher and a
// persistent QoS 1 subscriber on the first node, so every message is stored durably for the
// subscriber's session — and, at factor 2, by that session's buddy too. Measures broker CPU per
// message (all nodes) at full speed, and PUBACK latency (timed by a publisher in a process of its own)
// and CPU per message at a fixed rate; factors 1
// and 2 alternate. Before each run, the same rate through group commits on the same disk with no
// broker (bench/disk-floor.ts): the latency floor the disk sets.
// Writes the "## Replication" section of bench/RESULTS.md.
//
//   --quick (short windows)   --out FILE   --rate MSGS_PER_S (paced, default 10000)
//   --rounds N (each factor N times, alternated; default 2)
//   --cpu-prof DIR (each node writes a V8 CPU profile there when it stops)
//   --before DIR (another built checkout: each round runs it too, right before this one)
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { etcdMissing, startEtcd } from '../scripts/etcd.js';
import { spliceSection } from './browser.js';
import { ROOT } from './children.js';
import { type DiskFloor, diskFloor } from './disk-floor.js';
import { type BenchNode, startNodes, stopNodes } from './load/cluster-nodes.js';
import { type BenchConn, closeAll, connectClient } from './load/conn.js';
import { pacedRun } from './load/paced-run.js';
import { ackingSubscriber, PacketIds, windowedPublisher } from './load/qos1-window.js';
import { cpuModel, cpuSeconds } from './proc.js';

const PAYLOAD = Buffer.alloc(64, 0x61);
const NODES = 3;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    rate: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '2' },
    'cpu-prof': { type: 'string' },
    before: { type: 'string' },
  },
});
const quick = values.quick!;
const PACED_RATE = Number(values.rate);
const ROUNDS = Number(values.rounds);
const profile = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']] : [];
const WARMUP_MS = quick ? 500 : 1500;
const WINDOW_MS = quick ? 2000 : 5000;
/** The trees measured, alternated: the --before checkout first, then this one. */
const TREES = [...(values.before ? [{ label: `before (${values.before})`, root: values.before }] : []), { label: values.before ? 'this' : '', root: ROOT }];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Result {
  tree: string;
  factor: number;
  round: number;
  /** One-minute load average when the run ended. */
  load: number;
  rate: number;
  cpuPerMillion: number;
  perNode: number[];
  pacedRate: number;
  /** CPU-seconds per million messages delivered in the paced window, all nodes. */
  pacedCpuPerMillion: number;
  p50: number;
  p99: number;
  /** The same rate acknowledged by group commits on the nodes' disk with no broker, right before the run. */
  floor: DiskFloor;
}

async function run(tree: (typeof TREES)[number], t: number, factor: number, round: number, etcd: string, dir: string): Promise<Result> {
  const floor = diskFloor(dir, PACED_RATE, WINDOW_MS);
  const ids = Array.from({ length: NODES }, (_, i) => `r${factor}x${round}t${t}n${i + 1}`);
  const nodes = await startNodes({
    root: tree.root,
    ids,
    name: `repl${factor}x${round}t${t}`,
    etcd,
    dir,
    config: (id) => ({ dataDir: join(dir, id), durability: 'sync' }),
    cluster: { replicationFactor: factor },
    execArgv: profile,
  });
  try {
    const sub = await ackingSubscriber(nodes[0]!.port, 'repl-sub', 'bench/r', false);
    // The session is replicated to its buddy before the load starts.
    await sleep(500);
    const pub = await connectClient(nodes[0]!.port, 'repl-pub');
    const ids = new PacketIds();
    // Full speed first: it also warms the nodes up (compiled code, grown heaps) for the paced latencies.
    const full = await fullSpeed(nodes, pub, sub, ids);
    const paced = await pacedRun({
      port: nodes[0]!.port,
      pids: nodes.map((n) => n.child.pid!),
      received: sub.received,
      topic: 'bench/r',
      rate: PACED_RATE,
      warmupMs: WARMUP_MS,
      windowMs: WINDOW_MS,
      payloadBytes: PAYLOAD.length,
    });
    closeAll([pub, sub.conn]);
    return { tree: tree.label, factor, round, load: loadavg()[0]!, ...full, ...paced, floor };
  } finally {
    await stopNodes(nodes);
  }
}

type Subscriber = Awaited<ReturnType<typeof ackingSubscriber>>;

/** 100 PUBLISHes in flight: messages delivered per second and the CPU per message, every node. */
async function fullSpeed(nodes: BenchNode[], pub: BenchConn, sub: Subscriber, ids: PacketIds): Promise<Pick<Result, 'rate' | 'cpuPerMillion' | 'perNode'>> {
  const publisher = windowedPublisher(pub, 'bench/r', PAYLOAD, ids);
  await sleep(WARMUP_MS);
  const cpu0 = nodes.map((n) => cpuSeconds(n.child.pid!));
  const n0 = sub.received();
  const t0 = performance.now();
  await sleep(WINDOW_MS);
  const seconds = (performance.now() - t0) / 1000;
  const messages = sub.received() - n0;
  const cpu = nodes.map((n, i) => cpuSeconds(n.child.pid!) - cpu0[i]!);
  await publisher.stop();
  const total = cpu.reduce((a, b) => a + b, 0);
  return { rate: messages / seconds, cpuPerMillion: (total * 1e6) / Math.max(1, messages), perNode: cpu.map((c) => (c * 1e6) / Math.max(1, messages)) };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

function render(results: Result[], loads: number[]): string {
  const trees = TREES.length > 1;
  const args = `--rate ${PACED_RATE} --rounds ${ROUNDS}${quick ? ' --quick' : ''}${trees ? ` --before ${values.before}` : ''}`;
  const lines = [
    '## Replication',
    '',
    `\`npm run bench:replication -- ${args}\` on ${cpuModel()} (${cpus().length} cores), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}:`,
    `${NODES} real \`arbormq\` processes with LevelDB stores (\`durability: sync\`) joined through etcd on loopback; a QoS 1`,
    'publisher and a persistent QoS 1 subscriber (which acknowledges at once) on the first node, 64-byte payloads: each',
    "message is stored for the subscriber's session before it is acknowledged — at factor 2 by the session's buddy as well.",
    `Factors 1 and 2 alternate${trees ? ', each run of the before tree right before the same run of this one' : ''}, ${ROUNDS} round(s) each, a fresh cluster per run. Full speed: 100 PUBLISHes in flight, ${WARMUP_MS} ms warm-up,`,
    `${WINDOW_MS} ms window; CPU read from /proc for every node ("CPU-s / M": CPU-seconds per million messages delivered, all nodes,`,
    `then per node, the owner first). Paced: ${PACED_RATE.toLocaleString('en-US')} msg/s for ${WINDOW_MS} ms from a publisher in a process of its own, each PUBACK's latency from its PUBLISH, and the CPU per message at that rate, after the full-speed window.`,
    `"Disk alone": right before each run, the same rate acknowledged by group commits (append ${results[0]?.floor.bytesPerMessage ?? 200} bytes per message, \`fdatasync\`) on the nodes' filesystem with no broker (bench/disk-floor.ts):`,
    'the latency any durable broker acknowledging after a synced write could reach on this disk at that moment, and its syncs\' own p50 / p99.',
    `Load average ${loads.map((l) => l.toFixed(1)).join(' → ')} over the whole run (2 cores shared with other work); each run's is in the table.`,
    '',
    `| round |${trees ? ' tree |' : ''} replication factor | load | msgs/s (full speed) | CPU-s / M (all nodes) | per node | paced msgs/s | paced CPU-s / M | PUBACK p50 | PUBACK p99 | disk alone p50 / p99 | its syncs p50 / p99 |`,
    `| ---: |${trees ? ' --- |' : ''} ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |`,
    ...results.map(
      (r) =>
        `| ${r.round} |${trees ? ` ${r.tree} |` : ''} ${r.factor} | ${r.load.toFixed(1)} | ${Math.round(r.rate).toLocaleString('en-US')} | ${r.cpuPerMillion.toFixed(2)} | ${r.perNode.map((c) => c.toFixed(2)).join(' / ')} | ${Math.round(r.pacedRate).toLocaleString('en-US')} | ${r.pacedCpuPerMillion.toFixed(2)} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${r.floor.ackP50.toFixed(2)} / ${r.floor.ackP99.toFixed(2)} ms | ${r.floor.syncP50.toFixed(2)} / ${r.floor.syncP99.toFixed(2)} ms |`,
    ),
    '',
  ];
  for (const tree of TREES) {
    const of = results.filter((r) => r.tree === tree.label);
    const [one, two] = [of.filter((r) => r.factor === 1), of.filter((r) => r.factor === 2)];
    if (one.length === 0 || two.length === 0) continue;
    // A run that delivered nothing in its window (the machine stalled it) has no CPU per message.
    const delivered = (rs: Result[]): Result[] => rs.filter((r) => r.rate > 0);
    const cpu = (rs: Result[]): number => mean(delivered(rs).map((r) => r.cpuPerMillion));
    const pacedCpu = (rs: Result[]): number => mean(rs.filter((r) => r.pacedRate > 0).map((r) => r.pacedCpuPerMillion));
    const p = (rs: Result[], f: (r: Result) => number): number => mean(rs.map(f));
    const stalled = of.length - delivered(of).length;
    const perRound = (cost: (r: Result) => number): string =>
      [...new Set(of.map((r) => r.round))]
        .flatMap((round) => {
          const [a, b] = [one.find((r) => r.round === round), two.find((r) => r.round === round)];
          return a && b && cost(a) > 0 && cost(b) > 0 ? [(cost(b) / cost(a)).toFixed(2)] : [];
        })
        .join(', ');
    lines.push(
      `${trees ? `${tree.label}: over` : 'Over'} the rounds, replication costs ${(cpu(two) / cpu(one)).toFixed(2)} × the CPU per message of an unreplicated durable message (per round: ${perRound((r) => (r.rate > 0 ? r.cpuPerMillion : 0))}${stalled > 0 ? `; ${stalled} run(s) that delivered nothing in the window left out` : ''}; target ≤ 2 ×); at ${PACED_RATE.toLocaleString('en-US')} msg/s, where both factors carry the same load, ${(pacedCpu(two) / pacedCpu(one)).toFixed(2)} × (per round: ${perRound((r) => (r.pacedRate > 0 ? r.pacedCpuPerMillion : 0))}). At that rate the PUBACK p50 is ${p(one, (r) => r.p50).toFixed(2)} ms at factor 1 and ${p(two, (r) => r.p50).toFixed(2)} ms at factor 2, the p99 ${p(one, (r) => r.p99).toFixed(2)} ms and ${p(two, (r) => r.p99).toFixed(2)} ms (target: p99 under 5 ms at 10,000 msg/s); the disk alone, acknowledging at its syncs with no broker, gave p99 ${p(of, (r) => r.floor.ackP99).toFixed(2)} ms (each run's: ${of.map((r) => r.floor.ackP99.toFixed(1)).join(', ')}).`,
      '',
    );
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  if (etcdMissing) throw new Error(`bench:replication needs etcd: ${etcdMissing}`);
  const loadStart = loadavg()[0]!;
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-bench-replication-'));
  const etcd = await startEtcd();
  const results: Result[] = [];
  try {
    // Alternated, so that both factors see the same changes in the machine's load.
    for (let round = 1; round <= ROUNDS; round++) for (const factor of [1, 2]) for (const [t, tree] of TREES.entries()) {
      const r = await run(tree, t, factor, round, etcd.url, dir);
      results.push(r);
      process.stderr.write(
        `round ${round}${tree.label ? ` ${tree.label}` : ''} factor ${factor} (load ${r.load.toFixed(1)}): ${Math.round(r.rate)} msg/s, ${r.cpuPerMillion.toFixed(2)} CPU-s per million; paced ${Math.round(r.pacedRate)} msg/s, ${r.pacedCpuPerMillion.toFixed(2)} CPU-s per million: PUBACK p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms; disk alone p50 ${r.floor.ackP50.toFixed(2)} ms, p99 ${r.floor.ackP99.toFixed(2)} ms\n`,
      );
    }
  } finally {
    await etcd.close();
    await rm(dir, { recursive: true, force: true });
  }
  const out = values.out ?? join(ROOT, 'bench/RESULTS.md');
  const existing = await readFile(out, 'utf8').catch(() => '');
  await writeFile(out, spliceSection(existing, render(results, [loadStart, loadavg()[0]!]), 'Replication'));
  process.stderr.write(`wrote the Replication section of ${out}\n`);
  process.exit(0);
}

await main();
