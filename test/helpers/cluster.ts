import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { ClusterStatus } from '../../host/node/cluster/cluster.js';
import { connectClient, received } from './broker.js';
import { until } from './wait.js';
import { kill, startCli, type RunningCli } from './cli.js';
import type { TestEtcd } from './etcd.js';

/** One `arbormq` process of a test cluster. */
export interface ClusterNode {
  id: string;
  cli: RunningCli;
  /** mqtt://127.0.0.1:<port> of the current process. */
  url: string;
  http: string;
  /** An MQTT.js client of this node, ended by the cluster's close(). */
  client(options?: IClientOptions): Promise<MqttClient>;
  status(): Promise<ClusterStatus>;
  metrics(): Promise<string>;
  health(): Promise<{ code: number; status: string }>;
}

export interface TestCluster {
  nodes: ClusterNode[];
  /** Waits until every running node answers /health 200 (lease held, linked to every member). */
  ready(ms?: number): Promise<void>;
  /** SIGKILLs a node (its data stays). */
  kill(node: ClusterNode): Promise<void>;
  /** Stops a node gracefully (SIGTERM). */
  stop(node: ClusterNode): Promise<void>;
  /** Starts a stopped or killed node again with the same id and data; its ports change. `env` replaces the setup's. */
  restart(node: ClusterNode, env?: NodeJS.ProcessEnv): Promise<void>;
  /** Adds a node (`n<k>`). */
  add(): Promise<ClusterNode>;
  /** Ends every client, stops every node, removes their data. */
  close(): Promise<void>;
}

/**
 * `count` real `arbormq` processes joined through `etcd`, each with its own data directory, MQTT and
 * HTTP ports and link port on loopback (all port 0), and a shared secret file.
 */
export interface ClusterSetup {
  /** More top-level settings for every node. */
  config?: Record<string, unknown>;
  /** More `cluster` settings for one node (e.g. a fixed port and an advertised URL). */
  node?: (id: string) => Record<string, unknown>;
  /** Environment of one node's process (e.g. ARBORMQ_CLUSTER_FAULT). */
  env?: (id: string) => NodeJS.ProcessEnv | undefined;
}

export async function startCluster(etcd: TestEtcd, count: number, setup: ClusterSetup = {}): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-cluster-'));
  const secretFile = join(dir, 'cluster.secret');
  await writeFile(secretFile, 'a test secret of the test cluster\n');
  const clients: MqttClient[] = [];
  const nodes: ClusterNode[] = [];
  const launch = async (node: ClusterNode, env = setup.env?.(node.id)): Promise<void> => {
    const config = join(dir, `${node.id}.json`);
    await mkdir(join(dir, node.id), { recursive: true });
    await writeFile(
      config,
      JSON.stringify({
        listeners: [{ port: 0, host: '127.0.0.1' }],
        http: { port: 0, host: '127.0.0.1' },
        dataDir: join(dir, node.id),
        sysInterval: 0,
        ...setup.config,
        cluster: { nodeId: node.id, etcd: [etcd.url], host: '127.0.0.1', port: 0, secretFile, leaseTtlSeconds: 3, ...setup.node?.(node.id) },
      }),
    );
    node.cli = await startCli(['-c', config], { expect: 2, env });
    node.url = `mqtt://127.0.0.1:${node.cli.ports.get('mqtt')}`;
    node.http = `http://127.0.0.1:${node.cli.ports.get('http')}`;
  };
  const make = (id: string): ClusterNode => {
    const node: ClusterNode = {
      id,
      cli: undefined as unknown as RunningCli,
      url: '',
      http: '',
      async client(options = {}) {
        const c = await connectClient(node.url, options);
        clients.push(c);
        return c;
      },
      async status() {
        return (await (await fetch(`${node.http}/cluster`)).json()) as ClusterStatus;
      },
      async metrics() {
        return (await fetch(`${node.http}/metrics`)).text();
      },
      async health() {
        const res = await fetch(`${node.http}/health`);
        return { code: res.status, status: ((await res.json()) as { status: string }).status };
      },
    };
    return node;
  };
  const running = (n: ClusterNode): boolean => n.cli !== undefined && n.cli.child.exitCode === null && n.cli.child.signalCode === null;
  const cluster: TestCluster = {
    nodes,
    async ready(ms = 20_000) {
      await until(
        async () => {
          for (const node of nodes.filter(running)) {
            const health = await node.health().catch(() => ({ code: 0 }));
            if (health.code !== 200) return false;
          }
          return true;
        },
        'every node to be healthy',
        ms,
      );
    },
    kill: (node) => kill(node.cli),
    async stop(node) {
      await node.cli.stop();
    },
    restart: (node, env) => launch(node, env),
    async add() {
      const node = make(`n${nodes.length + 1}`);
      await launch(node);
      nodes.push(node);
      return node;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await Promise.all(nodes.map((n) => (running(n) ? n.cli.stop() : undefined)));
      await Promise.all(nodes.map((n) => kill(n.cli)));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    const first = Array.from({ length: count }, (_, i) => make(`n${i + 1}`));
    nodes.push(...first);
    // Every launch settles before a failed one closes the cluster: a node still starting then would be left running.
    const failed = (await Promise.allSettled(first.map((n) => launch(n)))).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}

/**
 * The CONNACK code a client is refused with (5.0 reason code or 3.1.1 return code), -1 when the
 * connection closed without a CONNACK; throws if it is accepted.
 */
export async function refusedWith(url: string, options: IClientOptions): Promise<number> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  try {
    return await new Promise<number>((resolve, reject) => {
      client.once('connect', (connack) => reject(new Error(`the CONNECT was accepted (session present: ${connack.sessionPresent})`)));
      client.once('error', (error) => resolve((error as { code?: number }).code ?? -1));
      client.once('close', () => resolve(-1));
    });
  } finally {
    client.end(true);
  }
}

/** An MQTT.js client of `node` once the cluster accepts its CONNECT (refused with 0x88 while a session's node is claiming it). */
export async function connectWhenAccepted(node: ClusterNode, options: IClientOptions, ms = 15_000): Promise<MqttClient> {
  let client: MqttClient | null = null;
  await until(
    async () => {
      client = await connectClient(node.url, options).catch(() => null);
      return client !== null;
    },
    `${options.clientId} to be accepted by ${node.id}`,
    ms,
  );
  return client!;
}

/** Waits until every acknowledged payload is among those `clients` received; fails naming the first missing ones. */
export async function untilEveryAcknowledgedDelivered(acked: ReadonlySet<string>, clients: MqttClient[], ms = 15_000): Promise<void> {
  const delivered = (): Set<string> => new Set(clients.flatMap((c) => received(c).map((m) => m.payload.toString())));
  await until(() => [...acked].every((m) => delivered().has(m)), `every acknowledged message (${acked.size})`, ms).catch((error: Error) => {
    const have = delivered();
    const missing = [...acked].filter((m) => !have.has(m));
    throw new Error(`${error.message}; ${missing.length} missing: ${missing.slice(0, 20).join(' ')}`);
  });
}
