import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { rendezvousPick } from '../../../host/node/cluster/rendezvous.js';
import { eventually, received as inbox } from '../../helpers/broker.js';
import { startCluster, type ClusterNode, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';

/** Connects once the node accepts the session: refused (0x88) while the cluster cannot yet say who owns it. */
async function reconnect(node: ClusterNode, options: IClientOptions): Promise<MqttClient> {
  let client: MqttClient | null = null;
  await eventually(
    async () => {
      client = await node.client(options).catch(() => null);
      return client !== null;
    },
    20_000,
    `${String(options.clientId)} to connect to ${node.id}`,
  );
  return client!;
}

/** The buddy replication picks for `clientId` when `owner` owns it, as every node computes it. */
const buddyOf = (clientId: string, members: string[], owner: string): string => rendezvousPick(clientId, members.filter((m) => m !== owner))!;

/**
 * Publishes QoS 1 `count` messages under `prefix`, SIGKILLs `victim` once `killAfter` are
 * acknowledged, and returns the payloads acknowledged (the publisher keeps sending meanwhile).
 */
async function publishAndKill(
  cluster: TestCluster,
  publisher: ClusterNode,
  victim: ClusterNode,
  prefix: string,
  count: number,
  killAfter: number,
): Promise<{ acked: string[]; settled: Promise<unknown> }> {
  const pub = await publisher.client({ clientId: `${prefix}-pub`, protocolVersion: 5 });
  const acked: string[] = [];
  const sends = Array.from({ length: count }, (_, i) =>
    pub.publishAsync(`${prefix}/${i}`, `m${i}`, { qos: 1 }).then(
      () => void acked.push(`m${i}`),
      () => undefined,
    ),
  );
  await eventually(() => acked.length >= killAfter, 10_000, 'some acknowledgements');
  await cluster.kill(victim);
  return { acked, settled: Promise.all(sends) };
}

describe('replicated sessions (replicationFactor 2)', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 3, { node: () => ({ replicationFactor: 2, departedGraceSeconds: 2 }) });
    await cluster.ready();
  });
  after(async () => {
    await cluster?.close();
    await etcd?.close();
  });

  it('SIGKILL of the owner under QoS 1 load, never restarted: the subscriber reconnecting to another node gets every acknowledged message', async () => {
    const [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const members = ['n1', 'n2', 'n3'];
    // A client id whose buddy is not the node it reconnects to: the session comes from the buddy over the link.
    const clientId = ['lost-a', 'lost-b', 'lost-c', 'lost-d'].find((id) => buddyOf(id, members, 'n3') === 'n2')!;
    const options = { clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
    const sub = await n3.client(options);
    await sub.subscribeAsync('lost/#', { qos: 1 });
    await eventually(async () => (await n1.status()).peers.find((p) => p.node === 'n3')!.routes > 0, 5000, 'the route');
    const { acked, settled } = await publishAndKill(cluster, n1, n3, 'lost', 400, 50);
    sub.end(true);
    const again = await reconnect(n1, options);
    await settled;
    const delivered = (): Set<string> => new Set([...inbox(sub), ...inbox(again)].map((m) => m.payload.toString()));
    await eventually(() => acked.every((m) => delivered().has(m)), 20_000, `every acknowledged message (${acked.length})`).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${acked.filter((m) => !delivered().has(m)).join(' ')}\n${[n1, n2].map((n) => n.cli.logs.join('\n')).join('\n')}`);
    });
    assert.ok(acked.length >= 50);
    const status = await n2.status();
    assert.ok(status.replication, 'status reports replication');
  });
});
