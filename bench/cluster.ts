// `npm run bench:cluster`: ArborMQ clusters of 1, 2 and 3 nodes (real processes, etcd on loopback)
// under locally routed fan-in, cross-node fan-out, a QoS 0 hop, and cross-node QoS 1 point to point,
// with each node's CPU read from /proc. Writes the "## Cluster" section of bench/RESULTS.md.
//
//   --quick (short windows)   --nodes 1,2,3   --out FILE
//   --cpu-prof DIR (each node writes a V8 CPU profile there when it stops)
//   --scenarios fan-in,fan-out,hop,qos1,fan-in-paced (a subset; the hop is computed when hop runs with 1 node)
//   --paced-rate R (fan-in-paced: messages per second per node, the same for every cluster size)
//   --rounds R (every size R times, in turn: the paced figures are compared round by round)
//
// With fan-in-paced, each size also runs the same paced load on as many standalone brokers (no
// cluster configured), right before the cluster: N brokers that share nothing scale by N on N cores
// by construction, and they share this machine's cores exactly as the N nodes do. What a clustered
// node costs per message beyond a standalone one at the same rate, beside it, is the cluster's own
// cost, apart from the contention of 2 cores (which moves one node's figure 1.7× between runs).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { etcdMissing, startEtcd } from '../scripts/etcd.js';
import { spliceSection } from './browser.js';
import { ROOT } from './children.js';
import { startNodes as startClusterNodes, stopNodes, type BenchNode as Node } from './load/cluster-nodes.js';
import { closeAll, connectClient, type BenchConn } from './load/conn.js';
import { publishPacket, repeated } from './load/packets.js';
import { ackingSubscriber, PacketIds, windowedPublisher } from './load/qos1-window.js';
import { cpuModel, cpuSeconds } from './proc.js';
import { median } from './stats.js';

const PAYLOAD = Buffer.alloc(64, 0x61);

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, nodes: { type: 'string', default: '1,2,3' }, out: { type: 'string' }, 'cpu-prof': { type: 'string' }, scenarios: { type: 'string', default: 'fan-in,fan-out,hop,qos1,fan-in-paced' }, 'paced-rate': { type: 'string', default: '100000' }, rounds: { type: 'string', default: '1' } } });
const scenarios = new Set(values.scenarios!.split(','));
const profile = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']] : [];
const quick = values.quick!;
const WARMUP_MS = quick ? 500 : 1500;
const WINDOW_MS = quick ? 1500 : 4000;
const sizes = values.nodes!.split(',').map(Number);
const PACED_RATE = Number(values['paced-rate']);
const PACED = 'local fan-in, paced';
const STANDALONE = 'local fan-in, paced, standalone brokers';
const HOP = 'p2p QoS 0 (hop)';
const ROUNDS = Number(values.rounds);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts `n` nodes (in memory: the hop and routing are measured, not the disk); standalone: as many brokers with no cluster. */
function startNodes(n: number, round: number, etcd: string, dir: string, standalone = false): Promise<Node[]> {
  const ids = Array.from({ length: n }, (_, i) => `b${n}r${round}${standalone ? 's' : 'n'}${i + 1}`);
  return startClusterNodes({ ids, name: `bench${n}r${round}`, etcd, dir, config: () => ({ memory: true }), execArgv: profile, ...(standalone ? { cluster: false } : {}) });
}

interface Measured {
  /** Messages received by subscribers per second. */
  rate: number;
  /** Broker CPU-seconds per million received messages, all nodes together. */
  cpuPerMillion: number;
  /** The same per node, in node order. */
  perNode: number[];
}

/** Keeps a QoS 0 publisher's socket fed without building an unbounded buffer. */
function pump(conn: BenchConn, batch: Buffer, running: () => boolean): void {
  const tick = (): void => {
    if (!running()) return;
    while (conn.writableLength < 128 * 1024) conn.write(batch);
    setImmediate(tick);
  };
  tick();
}

/** Feeds a QoS 0 publisher `rate` messages a second, in writes of `batch`'s 64 messages. */
function pace(conn: BenchConn, batch: Buffer, rate: number, running: () => boolean): void {
  const start = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    if (!running()) return clearInterval(timer);
    for (const due = ((performance.now() - start) / 1000) * rate; sent + 64 <= due; sent += 64) conn.write(batch);
  }, 5);
}

/**
 * Runs a QoS 0 load: `publishers` [node, topic] pairs, `subscribers` [node, filter] pairs; counts
 * deliveries. With `rate`, each publisher sends that many messages a second; else as fast as it can.
 */
async function qos0(nodes: Node[], publishers: [number, string][], subscribers: [number, string][], rate?: number): Promise<Measured> {
  let received = 0;
  const subs = await Promise.all(subscribers.map(([n, filter], i) => connectClient(nodes[n]!.port, `s${i}`).then(async (c) => {
    await c.subscribe([filter], 0, 10_000);
    c.onPublish = () => void received++;
    return c;
  })));
  await sleep(300); // routes announced (batched per turn, one round trip)
  const pubs = await Promise.all(publishers.map(([n], i) => connectClient(nodes[n]!.port, `p${i}`)));
  let running = true;
  pubs.forEach((c, i) => {
    const batch = repeated(publishPacket(publishers[i]![1], PAYLOAD, 0), 64);
    if (rate) pace(c, batch, rate, () => running);
    else pump(c, batch, () => running);
  });
  const result = await measure(nodes, () => received);
  running = false;
  closeAll([...pubs, ...subs]);
  await sleep(200);
  return result;
}

async function measure(nodes: Node[], count: () => number): Promise<Measured> {
  await sleep(WARMUP_MS);
  const cpu0 = nodes.map((n) => cpuSeconds(n.child.pid!));
  const n0 = count();
  const t0 = performance.now();
  await sleep(WINDOW_MS);
  const seconds = (performance.now() - t0) / 1000;
  const messages = count() - n0;
  const cpu = nodes.map((n, i) => cpuSeconds(n.child.pid!) - cpu0[i]!);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { rate: messages / seconds, cpuPerMillion: (total * 1e6) / Math.max(1, messages), perNode: cpu.map((c) => (c * 1e6) / Math.max(1, messages)) };
}

/** QoS 1 point to point: a window of 100 unacknowledged PUBLISHes from a client of the first node to a subscriber of the last. */
async function p2pQos1(nodes: Node[]): Promise<Measured> {
  const sub = await ackingSubscriber(nodes.at(-1)!.port, 'q1-sub', 'bench/q1');
  await sleep(300);
  const pub = await connectClient(nodes[0]!.port, 'q1-pub');
  const publisher = windowedPublisher(pub, 'bench/q1', PAYLOAD, new PacketIds());
  const result = await measure(nodes, sub.received);
  await publisher.stop();
  closeAll([pub, sub.conn]);
  await sleep(200);
  return result;
}

interface Row {
  round: number;
  nodes: number;
  scenario: string;
  result: Measured;
}

/** Forwards per link frame so far, from the first node's /cluster (how well forwards are batched). */
async function forwardsPerFrame(node: Node): Promise<number> {
  const status = (await (await fetch(`http://127.0.0.1:${node.http}/cluster`)).json()) as { peers: { messagesOut: number; framesOut: number }[] };
  const messages = status.peers.reduce((a, p) => a + p.messagesOut, 0);
  const frames = status.peers.reduce((a, p) => a + p.framesOut, 0);
  return messages / Math.max(1, frames);
}

async function main(): Promise<void> {
  if (etcdMissing) throw new Error(`bench:cluster needs etcd: ${etcdMissing}`);
  const loadStart = loadavg()[0]!;
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-bench-cluster-'));
  const etcd = await startEtcd();
  const rows: Row[] = [];
  const batching: [number, number][] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) for (const n of sizes) {
      const all = Array.from({ length: n }, (_, i) => i);
      const log = (scenario: string, result: Measured): void => {
        rows.push({ round, nodes: n, scenario, result });
        process.stderr.write(`${ROUNDS > 1 ? `round ${round}: ` : ''}${n} node(s) ${scenario}: ${Math.round(result.rate)} msg/s, ${result.cpuPerMillion.toFixed(2)} CPU-s per million\n`);
      };
      // Locally routed fan-in: per node, 4 publishers to one subscriber of the same node.
      const localPublishers = all.flatMap((i) => [0, 1, 2, 3].map((p): [number, string] => [i, `bench/local/${i}/${p}`]));
      const localSubscribers = all.map((i): [number, string] => [i, `bench/local/${i}/#`]);
      if (scenarios.has('fan-in-paced')) {
        const standalone = await startNodes(n, round, etcd.url, dir, true);
        log(STANDALONE, await qos0(standalone, localPublishers, localSubscribers, PACED_RATE / 4));
        await stopNodes(standalone);
      }
      const nodes = await startNodes(n, round, etcd.url, dir);
      if (scenarios.has('fan-in')) log('local fan-in', await qos0(nodes, localPublishers, localSubscribers));
      // The same at one rate per node for every cluster size: what clustering adds to a node's CPU per
      // message once the shared cores are not what limits the nodes' batching.
      if (scenarios.has('fan-in-paced')) log(PACED, await qos0(nodes, localPublishers, localSubscribers, PACED_RATE / 4));
      // Cross-node fan-out: one publisher on the first node, 4 subscribers on every other node (on the only node when alone).
      const far = n === 1 ? [0] : all.slice(1);
      if (scenarios.has('fan-out')) log('cross-node fan-out', await qos0(nodes, [[0, 'bench/fanout']], far.flatMap((i) => [0, 1, 2, 3].map((): [number, string] => [i, 'bench/fanout']))));
      // One hop: one publisher, one subscriber on the next node (the same node when alone).
      if (scenarios.has('hop')) log(HOP, await qos0(nodes, [[0, 'bench/hop']], [[n === 1 ? 0 : 1, 'bench/hop']]));
      if (scenarios.has('qos1')) log('p2p QoS 1', await p2pQos1(nodes));
      if (n > 1) batching.push([n, await forwardsPerFrame(nodes[0]!)]);
      await stopNodes(nodes);
    }
  } finally {
    await etcd.close();
    await rm(dir, { recursive: true, force: true });
  }
  const out = values.out ?? join(ROOT, 'bench/RESULTS.md');
  let existing = '';
  try {
    existing = await readFile(out, 'utf8');
  } catch {
    // a new file
  }
  await writeFile(out, spliceSection(existing, render(rows, batching, [loadStart, loadavg()[0]!]), 'Cluster'));
  process.stderr.write(`wrote the Cluster section of ${out}\n`);
  process.exit(0);
}

function render(rows: Row[], batching: [number, number][], loads: number[]): string {
  /** Round by round, what a message delivered across a link costs beyond one delivered on its node. */
  const hops = (n: number): number[] =>
    rows
      .filter((r) => r.nodes === n && r.scenario === HOP)
      .flatMap((remote) => rows.filter((r) => r.round === remote.round && r.nodes === 1 && r.scenario === HOP).map((local) => remote.result.cpuPerMillion - local.result.cpuPerMillion));
  const lines = [
    '## Cluster',
    '',
    `\`npm run bench:cluster${quick ? ' -- --quick' : ''}\` on ${cpuModel()} (${cpus().length} cores), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}:`,
    `real \`arbormq\` processes (in-memory store) joined through etcd on loopback, 64-byte payloads, QoS 0 unless`,
    `named, ${WARMUP_MS} ms warm-up then a ${WINDOW_MS} ms window; the load generator shares the machine. Broker CPU is`,
    'read from /proc for every node; "CPU-s / M" is CPU-seconds per million messages delivered, summed over the nodes',
    `and then per node. The machine's load average during the run was ${loads.map((l) => l.toFixed(1)).join(' → ')} (other work shares its 2 cores: absolute rates`,
    'vary from run to run; the CPU per message is the figure to compare).',
    '',
    `|${ROUNDS > 1 ? ' round |' : ''} nodes | scenario | msgs/s delivered | CPU-s / M (all nodes) | CPU-s / M per node |`,
    `|${ROUNDS > 1 ? ' ---: |' : ''} --- | --- | ---: | ---: | --- |`,
    ...rows.map((r) => `|${ROUNDS > 1 ? ` ${r.round} |` : ''} ${r.nodes} | ${r.scenario} | ${Math.round(r.result.rate).toLocaleString('en-US')} | ${r.result.cpuPerMillion.toFixed(2)} | ${r.result.perNode.map((c) => c.toFixed(2)).join(' / ')} |`),
    '',
  ];
  for (const n of sizes.filter((s) => s > 1)) {
    const costs = hops(n);
    if (costs.length === 0) continue;
    const cost = median(costs);
    lines.push(
      `The cost of a hop on ${n} nodes: a message delivered across one link costs ${cost.toFixed(2)} CPU-seconds per million more than one delivered on its own node (${cost.toFixed(2)} µs of CPU per message, both nodes together${costs.length > 1 ? `; median of ${costs.length} rounds: ${costs.map((c) => c.toFixed(2)).join(', ')}` : ''}).`,
    );
  }
  for (const [n, perFrame] of batching) lines.push(`Batching on ${n} nodes: ${perFrame.toFixed(0)} forwards per link frame on average over the run.`);
  const fanIn = (n: number): Measured | undefined => rows.find((r) => r.nodes === n && r.scenario === 'local fan-in')?.result;
  const one = fanIn(1);
  for (const n of sizes.filter((s) => s > 1)) {
    const many = fanIn(n);
    if (!one || !many) continue;
    lines.push(
      `Locally routed fan-in on ${n} nodes: ${many.cpuPerMillion.toFixed(2)} CPU-s per million against ${one.cpuPerMillion.toFixed(2)} on one node; with a core per node, ${n} nodes would deliver about ${((n * one.cpuPerMillion) / many.cpuPerMillion).toFixed(2)} × one node (target ≥ ${(0.8 * n).toFixed(1)}).`,
    );
  }
  const paced = (n: number, scenario: string): Measured[] => rows.filter((r) => r.nodes === n && r.scenario === scenario).map((r) => r.result);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const onePaced = paced(1, PACED);
  for (const n of sizes.filter((s) => s > 1)) {
    const many = paced(n, PACED);
    if (onePaced.length === 0 || many.length === 0) continue;
    const [one, all] = [mean(onePaced.map((m) => m.cpuPerMillion)), mean(many.map((m) => m.cpuPerMillion))];
    lines.push(
      `Locally routed fan-in paced at ${PACED_RATE.toLocaleString('en-US')} msg/s per node on ${n} nodes: ${all.toFixed(2)} CPU-s per million against ${one.toFixed(2)} on one node at the same rate; scaled by that, ${n} nodes with a core each would deliver about ${((n * one) / all).toFixed(2)} × one node (target ≥ ${(0.8 * n).toFixed(1)}).`,
    );
  }
  for (const n of sizes) {
    // Round by round: each cluster beside the standalone brokers that ran right before it.
    const ratios = rows
      .filter((r) => r.nodes === n && r.scenario === PACED)
      .flatMap((c) => rows.filter((s) => s.round === c.round && s.nodes === n && s.scenario === STANDALONE).map((s) => c.result.cpuPerMillion / s.result.cpuPerMillion));
    if (ratios.length === 0) continue;
    const ratio = median(ratios);
    const measured = `${ratio.toFixed(2)} × the CPU per message (median of ${ratios.length} round${ratios.length > 1 ? 's' : ''}: ${ratios.map((x) => x.toFixed(2)).join(', ')})`;
    lines.push(
      n === 1
        ? `1 clustered node against 1 standalone broker at ${PACED_RATE.toLocaleString('en-US')} msg/s: ${measured}, what being in a cluster costs a node whose messages stay on it.`
        : `${n} clustered nodes against ${n} standalone brokers at the same ${PACED_RATE.toLocaleString('en-US')} msg/s per node: ${measured}. Standalone brokers share nothing and scale by ${n} on ${n} cores, so with a core each the cluster would deliver about ${(n / ratio).toFixed(2)} × one node (target ≥ ${(0.8 * n).toFixed(1)}).`,
    );
  }
  return `${lines.join('\n')}\n`;
}

await main();
