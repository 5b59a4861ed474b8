// `npm run bench:replication`: what replicationFactor 2 costs. Three real `arbormq` processes with
// LevelDB stores (durability sync) joined through etcd on loopback; a QoS 1 publisher and a
// persistent QoS 1 subscriber on the first node, so every message is stored durably for the
// subscriber's session — and, at factor 2, by that session's buddy too. Measures broker CPU per
// message (all nodes) at full speed, and PUBACK latency at a fixed 10,000 msg/s. Writes the
// "## Replication" section of bench/RESULTS.md.
//
//   --quick (short windows)   --out FILE
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEtcd } from '../test/helpers/etcd.js';
import { spliceSection } from './browser.js';
import { ROOT } from './children.js';
import { closeAll, connectClient, type BenchConn } from './load/conn.js';
import { publishPacket, putPuback } from './load/packets.js';
import { cpuModel, cpuSeconds } from './proc.js';

const PAYLOAD = Buffer.alloc(64, 0x61);
const BIN = join(ROOT, 'bin/arbormq.js');
const NODES = 3;
const PACED_RATE = 10_000;

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } } });
const quick = values.quick!;
const WARMUP_MS = quick ? 500 : 1500;
const WINDOW_MS = quick ? 2000 : 5000;

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Node {
  child: ChildProcess;
  port: number;
  http: number;
}

async function startNodes(factor: number, etcd: string, dir: string): Promise<Node[]> {
  const secretFile = join(dir, 'secret');
  await writeFile(secretFile, 'a benchmark cluster secret\n');
  const nodes = await Promise.all(
    Array.from({ length: NODES }, async (_, i) => {
      const id = `r${factor}n${i + 1}`;
      const config = join(dir, `${id}.json`);
      const cluster = { nodeId: id, name: `repl${factor}`, etcd: [etcd], host: '127.0.0.1', port: 0, secretFile, replicationFactor: factor };
      await writeFile(config, JSON.stringify({ listeners: [{ port: 0, host: '127.0.0.1' }], http: { port: 0, host: '127.0.0.1' }, dataDir: join(dir, id), durability: 'sync', logLevel: 'warn', cluster }));
      const child = spawn(process.execPath, [BIN, '-c', config, '-v'], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.add(child);
      const ports = new Map<string, number>();
      let buffered = '';
      await new Promise<void>((resolve, reject) => {
        child.stderr!.on('data', (d: Buffer) => {
          buffered += d.toString();
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
            const m = /"msg":"listening","protocol":"(\w+)".*"port":(\d+)/.exec(buffered.slice(0, nl));
            buffered = buffered.slice(nl + 1);
            if (m) ports.set(m[1]!, Number(m[2]));
            if (ports.size === 2) resolve();
          }
        });
        child.once('exit', (code) => reject(new Error(`node ${id} exited with ${code}`)));
      });
      return { child, port: ports.get('mqtt')!, http: ports.get('http')! };
    }),
  );
  for (const deadline = Date.now() + 20_000; ; await sleep(100)) {
    const ok = await Promise.all(nodes.map((n) => fetch(`http://127.0.0.1:${n.http}/health`).then((r) => r.status === 200, () => false)));
    if (ok.every(Boolean)) return nodes;
    if (Date.now() > deadline) throw new Error('the nodes did not become healthy');
  }
}

async function stopNodes(nodes: Node[]): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      const exited = once(n.child, 'exit');
      n.child.kill('SIGTERM');
      await exited;
      children.delete(n.child);
    }),
  );
}

/** A persistent QoS 1 subscriber that acknowledges what it gets; counts deliveries. */
async function subscriber(node: Node): Promise<{ conn: BenchConn; received: () => number }> {
  let received = 0;
  const conn = await connectClient(node.port, 'repl-sub', 10_000, false);
  await conn.subscribe(['bench/r'], 1, 10_000);
  const acks = Buffer.alloc(4 * 1024);
  let pending = 0;
  const flush = (): void => {
    if (pending > 0) conn.write(Buffer.from(acks.subarray(0, pending * 4)));
    pending = 0;
  };
  conn.onPublish = (buf, start, _end, flags) => {
    received++;
    if ((flags & 6) === 0) return;
    const at = start + 2 + ((buf[start]! << 8) | buf[start + 1]!);
    putPuback(acks, pending * 4, (buf[at]! << 8) | buf[at + 1]!);
    if (++pending === 1024) flush();
  };
  conn.onChunkEnd = flush;
  return { conn, received: () => received };
}

interface Result {
  factor: number;
  rate: number;
  cpuPerMillion: number;
  perNode: number[];
  pacedRate: number;
  p50: number;
  p99: number;
}

async function run(factor: number, etcd: string, dir: string): Promise<Result> {
  const nodes = await startNodes(factor, etcd, dir);
  try {
    const sub = await subscriber(nodes[0]!);
    // The session is replicated to its buddy before the load starts.
    await sleep(500);
    const pub = await connectClient(nodes[0]!.port, 'repl-pub');
    // Full speed: 100 PUBLISHes in flight.
    let nextId = 1;
    let inflight = 0;
    let running = true;
    const fill = (): void => {
      const packets: Buffer[] = [];
      while (running && inflight < 100) {
        packets.push(publishPacket('bench/r', PAYLOAD, 1, nextId));
        nextId = nextId === 65535 ? 1 : nextId + 1;
        inflight++;
      }
      if (packets.length > 0) pub.write(Buffer.concat(packets));
    };
    pub.onPuback = () => void inflight--;
    pub.onChunkEnd = fill;
    fill();
    await sleep(WARMUP_MS);
    const cpu0 = nodes.map((n) => cpuSeconds(n.child.pid!));
    const n0 = sub.received();
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    const seconds = (performance.now() - t0) / 1000;
    const messages = sub.received() - n0;
    const cpu = nodes.map((n, i) => cpuSeconds(n.child.pid!) - cpu0[i]!);
    running = false;
    for (const deadline = Date.now() + 10_000; inflight > 0 && Date.now() < deadline; ) await sleep(20);
    // Paced: PACED_RATE msg/s in 1 ms steps; each PUBACK's latency from its PUBLISH.
    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    let measuring = false;
    pub.onPuback = (id) => {
      const at = sentAt.get(id);
      sentAt.delete(id);
      if (at !== undefined && measuring) latencies.push(performance.now() - at);
    };
    pub.onChunkEnd = () => undefined;
    let sent = 0;
    const start = performance.now();
    const pace = setInterval(() => {
      const due = Math.floor(((performance.now() - start) * PACED_RATE) / 1000) - sent;
      const packets: Buffer[] = [];
      for (let k = 0; k < due; k++) {
        if (sentAt.has(nextId)) break;
        sentAt.set(nextId, performance.now());
        packets.push(publishPacket('bench/r', PAYLOAD, 1, nextId));
        nextId = nextId === 65535 ? 1 : nextId + 1;
        sent++;
      }
      if (packets.length > 0) pub.write(Buffer.concat(packets));
    }, 1);
    await sleep(WARMUP_MS);
    measuring = true;
    const sent0 = sent;
    const p0 = performance.now();
    await sleep(WINDOW_MS);
    const pacedRate = ((sent - sent0) * 1000) / (performance.now() - p0);
    measuring = false;
    clearInterval(pace);
    closeAll([pub, sub.conn]);
    latencies.sort((a, b) => a - b);
    const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
    const total = cpu.reduce((a, b) => a + b, 0);
    return {
      factor,
      rate: messages / seconds,
      cpuPerMillion: (total * 1e6) / Math.max(1, messages),
      perNode: cpu.map((c) => (c * 1e6) / Math.max(1, messages)),
      pacedRate,
      p50: pct(0.5),
      p99: pct(0.99),
    };
  } finally {
    await stopNodes(nodes);
  }
}

function render(results: Result[], loads: number[]): string {
  const lines = [
    '## Replication',
    '',
    `\`npm run bench:replication${quick ? ' -- --quick' : ''}\` on ${cpuModel()} (${cpus().length} cores), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}:`,
    `${NODES} real \`arbormq\` processes with LevelDB stores (\`durability: sync\`) joined through etcd on loopback; a QoS 1`,
    'publisher and a persistent QoS 1 subscriber (which acknowledges at once) on the first node, 64-byte payloads: each',
    "message is stored for the subscriber's session before it is acknowledged — at factor 2 by the session's buddy as well.",
    `Full speed: 100 PUBLISHes in flight, ${WARMUP_MS} ms warm-up, ${WINDOW_MS} ms window; CPU read from /proc for every node`,
    `("CPU-s / M": CPU-seconds per million messages delivered, all nodes, then per node). Paced: ${PACED_RATE.toLocaleString('en-US')} msg/s`,
    `for ${WINDOW_MS} ms, each PUBACK's latency from its PUBLISH. Load average ${loads.map((l) => l.toFixed(1)).join(' → ')} (2 cores shared with other work).`,
    '',
    '| replication factor | msgs/s (full speed) | CPU-s / M (all nodes) | per node | paced msgs/s | PUBACK p50 | PUBACK p99 |',
    '| ---: | ---: | ---: | --- | ---: | ---: | ---: |',
    ...results.map(
      (r) =>
        `| ${r.factor} | ${Math.round(r.rate).toLocaleString('en-US')} | ${r.cpuPerMillion.toFixed(2)} | ${r.perNode.map((c) => c.toFixed(2)).join(' / ')} | ${Math.round(r.pacedRate).toLocaleString('en-US')} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms |`,
    ),
    '',
  ];
  const [one, two] = [results.find((r) => r.factor === 1), results.find((r) => r.factor === 2)];
  if (one && two) {
    lines.push(
      `Replication costs ${(two.cpuPerMillion / one.cpuPerMillion).toFixed(2)} × the CPU per message of an unreplicated durable message (target ≤ 2 ×) and adds ${(two.p50 - one.p50).toFixed(2)} ms at p50, ${(two.p99 - one.p99).toFixed(2)} ms at p99 to the acknowledgement at ${PACED_RATE.toLocaleString('en-US')} msg/s (target: p99 under 5 ms).`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  if (spawnSync('etcd', ['--version']).error) throw new Error('bench:replication needs etcd (apt-get install etcd-server)');
  const loadStart = loadavg()[0]!;
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-bench-replication-'));
  const etcd = await startEtcd();
  const results: Result[] = [];
  try {
    for (const factor of [1, 2]) {
      const r = await run(factor, etcd.url, dir);
      results.push(r);
      process.stderr.write(
        `factor ${factor}: ${Math.round(r.rate)} msg/s, ${r.cpuPerMillion.toFixed(2)} CPU-s per million; paced ${Math.round(r.pacedRate)} msg/s: PUBACK p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms\n`,
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
