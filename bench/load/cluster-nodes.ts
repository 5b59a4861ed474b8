// Real `arbormq` cluster nodes for the cluster benchmarks: one process per node, joined through an
// etcd, each listening for MQTT and HTTP on a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from '../children.js';


export interface BenchNode {
  id: string;
  child: ChildProcess;
  /** MQTT port. */
  port: number;
  http: number;
}

export interface NodesOptions {
  ids: string[];
  /** Cluster name (distinct per set of nodes sharing one etcd). */
  name: string;
  etcd: string;
  /** Where the configs, the secret and the nodes' data go. */
  dir: string;
  /** Top-level config of each node besides listeners, http and cluster (store, log level). */
  config(id: string): Record<string, unknown>;
  /** Cluster settings besides the node id, name, etcd, address and secret; false: standalone brokers, no cluster at all. */
  cluster?: Record<string, unknown> | false;
  /** Node flags before the script (e.g. --cpu-prof). */
  execArgv?: string[];
  /** The built checkout whose bin/arbormq.js runs (default: this one). */
  root?: string;
}

/** Every process any startNodes started, killed if the benchmark exits without stopping them. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts the nodes and waits until each answers /health with 200 (in a cluster: joined, linked to every other). */
export async function startNodes(o: NodesOptions): Promise<BenchNode[]> {
  const secretFile = join(o.dir, 'secret');
  await writeFile(secretFile, 'a benchmark cluster secret\n');
  const nodes = await Promise.all(o.ids.map((id) => startNode(id, o, secretFile)));
  for (const deadline = Date.now() + 20_000; ; await sleep(100)) {
    const ok = await Promise.all(nodes.map((n) => fetch(`http://127.0.0.1:${n.http}/health`).then((r) => r.status === 200, () => false)));
    if (ok.every(Boolean)) return nodes;
    if (Date.now() > deadline) throw new Error('the nodes did not become healthy');
  }
}

async function startNode(id: string, o: NodesOptions, secretFile: string): Promise<BenchNode> {
  const config = join(o.dir, `${id}.json`);
  const cluster = o.cluster === false ? undefined : { nodeId: id, name: o.name, etcd: [o.etcd], host: '127.0.0.1', port: 0, secretFile, ...o.cluster };
  await writeFile(config, JSON.stringify({ logLevel: 'warn', ...o.config(id), listeners: [{ port: 0, host: '127.0.0.1' }], http: { port: 0, host: '127.0.0.1' }, cluster }));
  const child = spawn(process.execPath, [...(o.execArgv ?? []), join(o.root ?? ROOT, 'bin/arbormq.js'), '-c', config, '-v'], { stdio: ['ignore', 'ignore', 'pipe'] });
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
  return { id, child, port: ports.get('mqtt')!, http: ports.get('http')! };
}

/** SIGTERM to every node (a CPU profile is written then), resolved once all exited. */
export async function stopNodes(nodes: BenchNode[]): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      const exited = once(n.child, 'exit');
      n.child.kill('SIGTERM');
      await exited;
      children.delete(n.child);
    }),
  );
}
