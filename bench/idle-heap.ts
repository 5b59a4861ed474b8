// `npm run bench:idle-heap`: where the bytes of one idle connection go. A server process —
// ArborMQ (this checkout, or ARBORMQ_ROOT's; dist when it is current, see arbormq-build.ts) or a bare Node `net` server that only answers
// CONNECT — and a client process that opens connections (CONNECT clean session, keep alive 300,
// CONNACK awaited): --warm of them, then --connections more. The figures are the growth from the
// first count to the second, per connection (the first connections pay for what is made once:
// compiled code, the young generation growing to its working size, malloc arenas). Each sample
// comes after two full GCs.
//
// Two passes, each with a fresh server: one reads RSS, V8 heap used and committed, external and
// wasm memory; the other takes a heap snapshot at both counts (a snapshot leaves megabytes of freed
// native memory in the process, which would blur the first pass's RSS) and groups the difference
// by V8 node type and constructor: what each connection adds to the JavaScript heap, class by class.
// RSS growth beyond the committed heap and wasm memory is native: libuv handles, Node's C++
// wrappers of them, malloc's overhead.
//
//   --server arbormq|bare   --warm 2000   --connections 10000   --top 40
//   --snapshots DIR (keep before.heapsnapshot and after.heapsnapshot there, for DevTools)   --json (an IdleCost)

import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pickBuild } from './arbormq-build.js';
import { BenchConn } from './load/conn.js';
import { rssBytes } from './proc.js';

const { values } = parseArgs({
  options: {
    server: { type: 'string', default: 'arbormq' },
    warm: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '10000' },
    top: { type: 'string', default: '40' },
    snapshots: { type: 'string' },
    json: { type: 'boolean', default: false },
    // Internal: this file run as one pass's server ("rss" or "heap"), or as its clients (the port).
    pass: { type: 'string' },
    clients: { type: 'string' },
  },
  strict: true,
});
const self = fileURLToPath(import.meta.url);

interface Sample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  wasm: number;
}

interface Group {
  count: number;
  bytes: number;
}

interface PassResult {
  what: string;
  warm: number;
  connected: number;
  before: Sample;
  after: Sample;
  /** "type name" → [objects, bytes] added per connection (heap pass only). */
  classes: [string, number, number][];
}

if (values.clients !== undefined) await clients(Number(values.clients));
else if (values.pass !== undefined) await serve(values.pass === 'heap');
else await main();

/** The client process: each message from the server opens that many more connections, then reports how many are open. */
async function clients(port: number): Promise<void> {
  const conns: BenchConn[] = [];
  let id = 0;
  process.on('message', (count) => {
    let left = count as number;
    const worker = async (): Promise<void> => {
      while (left > 0) {
        left--;
        const clientId = `heap-${id++}`;
        const c = await BenchConn.open(port, 30_000);
        await c.handshake(clientId, 30_000, true, 300);
        conns.push(c);
      }
    };
    void Promise.all(Array.from({ length: 128 }, worker)).then(() => process.send!({ connected: conns.filter((c) => !c.lost).length }));
  });
  // Held until the server process disconnects.
  process.on('disconnect', () => process.exit(0));
}

async function startServer(): Promise<{ what: string; port: number; wasmBytes: () => number; check: () => number }> {
  if (values.server === 'bare') {
    const CONNACK = Buffer.from([0x20, 2, 0, 0]);
    let open = 0;
    const server = createServer((socket: Socket) => {
      open++;
      socket.on('error', () => socket.destroy());
      socket.on('close', () => open--);
      socket.on('data', (chunk: Buffer) => {
        if (chunk[0] === 0x10) socket.write(CONNACK);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    return { what: 'bare Node net server (answers CONNECT; data, error and close listeners)', port, wasmBytes: () => 0, check: () => open };
  }
  const root = process.env.ARBORMQ_ROOT ?? fileURLToPath(new URL('../', import.meta.url));
  const { url, build } = pickBuild(root);
  const { ArborServer } = (await import(url)) as typeof import('../host/node/server.js');
  const server = await ArborServer.start({ listeners: [{ port: 0, host: '127.0.0.1' }], memory: true });
  const broker = server.broker;
  return { what: `ArborMQ (${build} at ${root})`, port: server.port, wasmBytes: () => broker.core.memory.buffer.byteLength, check: () => broker.connections.size };
}

/** One pass's server process: connects `warm`, samples, connects `connections` more, samples; sends its PassResult. */
async function serve(snapshots: boolean): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const dir = values.snapshots ?? mkdtempSync(join(tmpdir(), 'arbormq-idle-heap-'));
  const { what, port, wasmBytes, check } = await startServer();
  const sample = (label: string): Sample => {
    gc();
    gc();
    const m = process.memoryUsage();
    const s = { rss: rssBytes(process.pid), heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, wasm: wasmBytes() };
    if (snapshots) writeHeapSnapshot(join(dir, `${label}.heapsnapshot`));
    return s;
  };
  const child = fork(self, ['--clients', String(port)], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const open = (count: number): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      const exited = (code: number | null): void => reject(new Error(`client process exited (${code}) while connecting`));
      child.once('exit', exited);
      child.once('message', (m) => {
        child.off('exit', exited);
        // Let the last handshakes' garbage settle before sampling.
        setTimeout(() => resolve((m as { connected: number }).connected), 1000);
      });
      child.send(count);
    });
  const warm = await open(Number(values.warm));
  const before = sample('before');
  const total = await open(Number(values.connections));
  const after = sample('after');
  const served = check();
  if (served !== total) throw new Error(`the server holds ${served} connections, the clients ${total}`);
  child.disconnect();
  child.kill();
  const connected = total - warm;
  const classes: PassResult['classes'] = [];
  if (snapshots) {
    const b = groups(join(dir, 'before.heapsnapshot'));
    for (const [key, g] of groups(join(dir, 'after.heapsnapshot'))) {
      const g0 = b.get(key) ?? { count: 0, bytes: 0 };
      classes.push([key, (g.count - g0.count) / connected, (g.bytes - g0.bytes) / connected]);
    }
    classes.sort((x, y) => y[2] - x[2]);
  }
  if (!values.snapshots) rmSync(dir, { recursive: true, force: true });
  process.send!({ what, warm, connected, before, after, classes } satisfies PassResult, () => process.exit(0));
}

/** Self sizes of a heap snapshot's nodes, grouped as "type name" (strings, code and arrays by type only). */
function groups(file: string): Map<string, Group> {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const named = new Set(['object', 'closure', 'native', 'hidden', 'synthetic']);
  const out = new Map<string, Group>();
  const nodes = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + typeAt]!]!;
    const name = named.has(type) ? snapshot.strings[nodes[i + nameAt]!]! : '';
    const key = name ? `${type} ${name.length > 60 ? `${name.slice(0, 57)}…` : name}` : type;
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += nodes[i + sizeAt]!;
    out.set(key, g);
  }
  return out;
}

function pass(heap: boolean): Promise<PassResult> {
  return new Promise((resolve, reject) => {
    const args = ['--pass', heap ? 'heap' : 'rss', '--server', values.server!, '--warm', values.warm!, '--connections', values.connections!];
    if (values.snapshots) args.push('--snapshots', values.snapshots);
    const child = fork(self, args, {
      execArgv: ['--import', 'tsx'],
      stdio: 'inherit',
    });
    child.once('message', (m) => resolve(m as PassResult));
    child.once('exit', (code) => reject(new Error(`the ${heap ? 'heap' : 'rss'} pass exited (${code}) without a result`)));
  });
}

/** What one idle connection adds, in bytes: the first pass's memory figures and the second's heap classes. */
export interface IdleCost {
  what: string;
  warm: number;
  connections: number;
  rss: number;
  heapCommitted: number;
  heapUsed: number;
  external: number;
  wasm: number;
  /** RSS − heap committed − wasm. */
  native: number;
  /** V8 heap used in the snapshot pass, and the snapshot's self sizes summed. */
  snapshotHeapUsed: number;
  snapshotSelfSizes: number;
  /** [type and constructor, objects, bytes] per connection, largest first. */
  classes: [string, number, number][];
}

async function main(): Promise<void> {
  const r = await pass(false);
  const h = await pass(true);
  const per = (k: keyof Sample, p: PassResult = r): number => (p.after[k] - p.before[k]) / p.connected;
  const cost: IdleCost = {
    what: r.what,
    warm: r.warm,
    connections: r.connected,
    rss: per('rss'),
    heapCommitted: per('heapTotal'),
    heapUsed: per('heapUsed'),
    external: per('external'),
    wasm: per('wasm'),
    native: per('rss') - per('heapTotal') - per('wasm'),
    snapshotHeapUsed: per('heapUsed', h),
    snapshotSelfSizes: h.classes.reduce((sum, c) => sum + c[2], 0),
    classes: h.classes.filter((c) => Math.abs(c[2]) >= 1),
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(cost)}\n`);
    return;
  }
  const b = (n: number): string => n.toFixed(0);
  const lines = [
    `${cost.what}: ${cost.connections} idle connections opened after ${cost.warm}, growth per connection; Node ${process.version}`,
    '',
    '| per connection | bytes |',
    '| --- | ---: |',
    `| RSS growth | ${b(cost.rss)} |`,
    `| V8 heap committed (heapTotal) | ${b(cost.heapCommitted)} |`,
    `| V8 heap used | ${b(cost.heapUsed)} |`,
    `| external (ArrayBuffers, Buffers; wasm memory included) | ${b(cost.external)} |`,
    `| wasm memory | ${b(cost.wasm)} |`,
    `| native: RSS − heap committed − wasm (libuv handles, Node's C++ wrappers, malloc) | ${b(cost.native)} |`,
    `| heap snapshot self sizes (the sum of the table below, second pass; its V8 heap used: ${b(cost.snapshotHeapUsed)}) | ${b(cost.snapshotSelfSizes)} |`,
    '',
    '| heap snapshot node (type, constructor) | objects / conn | bytes / conn |',
    '| --- | ---: | ---: |',
    ...cost.classes.slice(0, Number(values.top)).map(([key, count, bytes]) => `| ${key.replace(/\|/g, '\\|')} | ${count.toFixed(2)} | ${b(bytes)} |`),
    '',
  ];
  process.stdout.write(lines.join('\n'));
}
