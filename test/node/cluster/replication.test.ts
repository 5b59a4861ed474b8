import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { rendezvousPick } from '../../../host/node/cluster/rendezvous.js';
import { received as inbox } from '../../helpers/broker.js';
import { startCluster, type ClusterNode, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { freePort } from '../../helpers/server.js';
import { startProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';
import { pace, until } from '../../helpers/wait.js';

/** Connects once the node accepts the session: refused (0x88) while the cluster cannot yet say who owns it. */
async function reconnect(node: ClusterNode, options: IClientOptions): Promise<MqttClient> {
  let client: MqttClient | null = null;
  await until(
    async () => {
      client = await node.client(options).catch(() => null);
      return client !== null;
    },
    `${String(options.clientId)} to connect to ${node.id}`,
    20_000,
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
  await until(() => acked.length >= killAfter, 'some acknowledgements', 10_000);
  await cluster.kill(victim);
  return { acked, settled: Promise.all(sends) };
}

/**
 * etcd and three nodes at replicationFactor 2 (departedGraceSeconds 2), started before the tests of
 * the describe block that calls it and stopped after them; `env` is a node's environment (fault points).
 */
function replicatedCluster(env?: (id: string) => NodeJS.ProcessEnv | undefined): { cluster: TestCluster } {
  const suite = {} as { cluster: TestCluster; etcd: TestEtcd };
  before(async () => {
    suite.etcd = await startEtcd();
    suite.cluster = await startCluster(suite.etcd, 3, { node: () => ({ replicationFactor: 2, departedGraceSeconds: 2 }), env });
    await suite.cluster.ready();
  });
  after(async () => {
    await suite.cluster?.close();
    await suite.etcd?.close();
  });
  return suite;
}

describe('replicated sessions (replicationFactor 2)', { skip: etcdMissing, timeout: 120_000 }, () => {
  const suite = replicatedCluster();
  /** The session the first test moved to another node, and its client there. */
  let lost: { options: IClientOptions & { clientId: string }; client: MqttClient } | null = null;

  it('SIGKILL of the owner under QoS 1 load, never restarted: the subscriber reconnecting to another node gets every acknowledged message', async () => {
    const [n1, n2, n3] = suite.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const members = ['n1', 'n2', 'n3'];
    // A client id whose buddy is not the node it reconnects to: the session comes from the buddy over the link.
    const clientId = ['lost-a', 'lost-b', 'lost-c', 'lost-d'].find((id) => buddyOf(id, members, 'n3') === 'n2')!;
    const options = { clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
    const sub = await n3.client(options);
    await sub.subscribeAsync('lost/#', { qos: 1 });
    await until(async () => (await n1.status()).peers.find((p) => p.node === 'n3')!.routes > 0, 'the route', 5000);
    const { acked, settled } = await publishAndKill(suite.cluster, n1, n3, 'lost', 400, 50);
    sub.end(true);
    const again = await reconnect(n1, options);
    await settled;
    const delivered = (): Set<string> => new Set([...inbox(sub), ...inbox(again)].map((m) => m.payload.toString()));
    await until(() => acked.every((m) => delivered().has(m)), `every acknowledged message (${acked.length})`, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${acked.filter((m) => !delivered().has(m)).join(' ')}\n${[n1, n2].map((n) => n.cli.logs.join('\n')).join('\n')}`);
    });
    assert.ok(acked.length >= 50);
    assert.equal((await n2.status()).replication.failovers + (await n1.status()).replication.failovers, 1);
    lost = { options, client: again };
  });

  it('the old owner returning after a failover drops its stale copy: the session stays where it went and loses nothing', async () => {
    const [n1, , n3] = suite.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await suite.cluster.restart(n3);
    await suite.cluster.ready();
    await until(() => n3.cli.logs.some((l) => l.includes('dropping the stale copy') && l.includes(lost!.options.clientId)), 'the stale copy dropped', 10_000);
    // (A node too loaded to prove its lease in time closes its persistent sessions: the client comes back to it then.)
    const client = lost!.client.connected ? lost!.client : await reconnect(n1, lost!.options);
    const before = inbox(client).length;
    const pub = await n3.client({ clientId: 'after-return-pub', protocolVersion: 5 });
    for (let i = 0; i < 20; i++) await pub.publishAsync(`lost/after/${i}`, `after${i}`, { qos: 1 });
    await until(() => inbox(client).length >= before + 20, 'the messages published on the returned node', 10_000);
    assert.equal((await n3.status()).ownedSessions, 0);
    assert.ok((await n1.status()).ownedSessions >= 1);
  });

  it('the buddy SIGKILLed instead: acknowledgements go on, a new buddy is synced, and it can take the session over', async () => {
    const alive = suite.cluster.nodes.filter((n) => n.id !== 'n3') as ClusterNode[];
    const [n1, n2] = alive as [ClusterNode, ClusterNode];
    const n3 = suite.cluster.nodes[2]!;
    // Owner n2; its buddy is killed, so the remaining node must become the new buddy and get the session in full.
    const clientId = ['kept-a', 'kept-b', 'kept-c', 'kept-d', 'kept-e'].find((id) => buddyOf(id, ['n1', 'n2', 'n3'], 'n2') === 'n3')!;
    const options = { clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
    const sub = await n2.client(options);
    await sub.subscribeAsync('kept/#', { qos: 1 });
    await until(async () => (await n1.status()).peers.find((p) => p.node === 'n2')!.routes > 0, 'the route', 5000);
    await until(async () => (await n3.status()).replication.replicaSessions > 0, 'the replica on n3', 5000);
    // The subscriber goes offline: what follows queues in its session, on its owner and its buddies.
    await sub.endAsync();
    const { acked, settled } = await publishAndKill(suite.cluster, n1, n3, 'kept', 300, 30);
    await settled;
    assert.equal(acked.length, 300, 'every message is acknowledged: the new buddy takes the dead one\'s place');
    await until(async () => (await n1.status()).replication.replicaSessions > 0, 'the session replicated to n1', 10_000);
    // The owner now goes too, for good: the new buddy has everything.
    await suite.cluster.kill(n2);
    const again = await reconnect(n1, options);
    const delivered = (): Set<string> => new Set(inbox(again).map((m) => m.payload.toString()));
    await until(() => acked.every((m) => delivered().has(m)), `every acknowledged message (${acked.length})`, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${acked.filter((m) => !delivered().has(m)).length}\n${n1.cli.logs.join('\n')}`);
    });
  });
});

/** Three replicating nodes where n1 reaches etcd through one proxy, and dials n2 (ids sort) through another. */
interface PartitionableCluster {
  cluster: TestCluster;
  etcdProxy: TcpProxy;
  linkProxy: TcpProxy;
  close(): Promise<void>;
}

async function startPartitionableCluster(more: Record<string, unknown> = {}, env?: (id: string) => NodeJS.ProcessEnv | undefined): Promise<PartitionableCluster> {
  const etcd = await startEtcd();
  const etcdProxy = await startProxy(Number(new URL(etcd.url).port));
  const n2Port = await freePort();
  const linkProxy = await startProxy(n2Port);
  const cluster = await startCluster(etcd, 3, {
    node: (id) => ({
      replicationFactor: 2,
      departedGraceSeconds: 2,
      ...more,
      ...(id === 'n1' ? { etcd: [`http://127.0.0.1:${etcdProxy.port}`] } : {}),
      ...(id === 'n2' ? { port: n2Port, advertise: `ws://127.0.0.1:${linkProxy.port}` } : {}),
    }),
    env,
  });
  await cluster.ready();
  return {
    cluster,
    etcdProxy,
    linkProxy,
    async close() {
      await cluster.close();
      await linkProxy.close();
      await etcdProxy.close();
      await etcd.close();
    },
  };
}

/**
 * A persistent session owned by n1 whose buddy is n2 (its client id picked among `${prefix}-a…e`),
 * subscribed to `${prefix}/#` at QoS 1 and then offline, once n2 holds its replica and n3 its route.
 */
async function offlineSessionOfN1WithBuddyN2(setup: PartitionableCluster, prefix: string): Promise<IClientOptions> {
  const [n1, n2, n3] = setup.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const clientId = ['a', 'b', 'c', 'd', 'e'].map((s) => `${prefix}-${s}`).find((id) => buddyOf(id, ['n1', 'n2', 'n3'], 'n1') === 'n2')!;
  const options = { clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
  const sub = await reconnect(n1, options);
  await sub.subscribeAsync(`${prefix}/#`, { qos: 1 });
  await until(async () => (await n2.status()).replication.replicaSessions > 0, 'the replica on n2', 5000);
  await until(async () => (await n3.status()).peers.find((p) => p.node === 'n1')!.routes > 0, 'the route', 5000);
  await sub.endAsync();
  return options;
}

describe('replicated sessions: a node cut off from etcd', { skip: etcdMissing, timeout: 120_000 }, () => {
  const members = ['n1', 'n2', 'n3'];
  let setup: PartitionableCluster;
  before(async () => {
    setup = await startPartitionableCluster();
  });
  after(() => setup?.close());

  it('a node cut off from etcd stops serving its persistent sessions before its buddy takes them over; nothing acknowledged is lost', async () => {
    const [n1, n2, n3] = setup.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const { cluster, etcdProxy } = setup;
    const clientId = 'isolated-sub';
    const options = { clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
    const sub = await n1.client(options);
    await sub.subscribeAsync('iso/#', { qos: 1 });
    const buddy = cluster.nodes.find((n) => n.id === buddyOf(clientId, members, 'n1'))!;
    await until(async () => (await buddy.status()).replication.replicaSessions > 0, 'the replica', 5000);
    await until(async () => (await n3.status()).peers.find((p) => p.node === 'n1')!.routes > 0, 'the route', 5000);
    const pub = await n3.client({ clientId: 'iso-pub', protocolVersion: 5 });
    const acked: string[] = [];
    const sends: Promise<void>[] = [];
    let publishing = true;
    const closedAt = new Promise<number>((resolve) => sub.once('close', () => resolve(Date.now())));
    const load = (async () => {
      for (let i = 0; publishing; i++) {
        sends.push(pub.publishAsync(`iso/${i}`, `m${i}`, { qos: 1 }).then(() => void acked.push(`m${i}`), () => undefined));
        await pace(10);
      }
    })();
    await until(() => acked.length >= 20, 'some acknowledgements', 5000);
    etcdProxy.partition();
    let failoverSeenAt = 0;
    await until(async () => (await buddy.status()).replication.failovers > 0 && (failoverSeenAt = Date.now()) > 0, 'the buddy to take the session over', 20_000);
    assert.ok((await closedAt) < failoverSeenAt, 'the isolated node closed the connection before the buddy took the session over');
    assert.equal((await n1.status()).replication.fenced, true);
    const again = await reconnect(n2, options);
    publishing = false;
    await load;
    // Publishes forwarded to the isolated node are refused once the grace for it ends (none is acknowledged unkept).
    await Promise.all(sends);
    const delivered = (): Set<string> => new Set([...inbox(sub), ...inbox(again)].map((m) => m.payload.toString()));
    await until(() => acked.every((m) => delivered().has(m)), `every acknowledged message (${acked.length})`, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${acked.filter((m) => !delivered().has(m)).join(' ')}`);
    });
    etcdProxy.heal();
    await until(() => n1.cli.logs.some((l) => l.includes('dropping the stale copy') && l.includes(clientId)), 'the stale copy dropped on the returning node', 20_000);
    await cluster.ready();
  });
});

describe('replicated sessions: a link partition between owner and buddy', { skip: etcdMissing, timeout: 120_000 }, () => {
  let setup: PartitionableCluster;
  before(async () => {
    setup = await startPartitionableCluster();
  });
  after(() => setup?.close());

  it('a link partition between owner and buddy holds acknowledgements back until it heals; the buddy then has what was acknowledged', async () => {
    const [n1, n2, n3] = setup.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const { cluster, linkProxy } = setup;
    const options = await offlineSessionOfN1WithBuddyN2(setup, 'split');
    linkProxy.partition();
    await until(async () => !(await n1.status()).peers.find((p) => p.node === 'n2')!.up, 'the link down', 10_000);
    const pub = await n3.client({ clientId: 'split-pub', protocolVersion: 5 });
    let acked = false;
    const sent = pub.publishAsync('split/1', 'held', { qos: 1 }).then(() => void (acked = true));
    await until(async () => (await n1.status()).replication.unacknowledged > 0, 'the replication frame waiting for the buddy', 5000);
    assert.equal(acked, false, 'not acknowledged while the buddy cannot have it');
    linkProxy.heal();
    await until(() => acked, 'the acknowledgement once the link is healed', 20_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${[n1, n2].map((n) => n.cli.logs.join('\n')).join('\n')}`);
    });
    await sent;
    // The owner is lost for good: the buddy has the message.
    await cluster.kill(n1);
    const again = await reconnect(n2, options);
    await until(() => inbox(again).some((m) => m.payload.toString() === 'held'), 'the message from the buddy', 20_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${n2.cli.logs.join('\n')}`);
    });
  });

  it('QoS 2 queued for an offline session is delivered exactly once after its owner is lost for good', async () => {
    const [, n2, n3] = setup.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    // n1 is gone: n3 is the only possible buddy of a session owned by n2, and the node the client comes back to.
    const options = { clientId: 'once-sub', clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
    const sub = await reconnect(n2, options);
    await sub.subscribeAsync('once/#', { qos: 2 });
    await until(async () => (await n3.status()).replication.replicaSessions > 0, 'the replica on n3', 10_000);
    await until(async () => (await n3.status()).peers.find((p) => p.node === 'n2')!.routes > 0, 'the route', 5000);
    await sub.endAsync();
    const pub = await n3.client({ clientId: 'once-pub', protocolVersion: 5 });
    for (let i = 0; i < 100; i++) await pub.publishAsync(`once/${i}`, `q${i}`, { qos: 2 });
    await setup.cluster.kill(n2);
    const again = await reconnect(n3, options);
    await until(() => new Set(inbox(again).map((m) => m.payload.toString())).size === 100, 'the 100 messages', 20_000);
    assert.equal(inbox(again).length, 100, 'each exactly once');
  });
});

describe('replicated sessions: a link partition longer than the replication backlog', { skip: etcdMissing, timeout: 120_000 }, () => {
  const BACKLOG = 64 * 1024;
  let setup: PartitionableCluster;
  before(async () => {
    setup = await startPartitionableCluster({ maxReplicationBacklogBytes: BACKLOG });
  });
  after(() => setup?.close());

  it('past maxReplicationBacklogBytes the owner keeps no frames for the buddy and holds acknowledgements; healed, the buddy gets the session in full and has every acknowledged message', async () => {
    const [n1, n2, n3] = setup.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const { cluster, linkProxy } = setup;
    const options = await offlineSessionOfN1WithBuddyN2(setup, 'behind');
    const pub = await n3.client({ clientId: 'behind-pub', protocolVersion: 5 });
    // Acknowledged before the partition: in the buddy's store already.
    for (let i = 0; i < 5; i++) await pub.publishAsync(`behind/before/${i}`, `before${i}`, { qos: 1 });
    linkProxy.partition();
    await until(async () => !(await n1.status()).peers.find((p) => p.node === 'n2')!.up, 'the link down', 10_000);
    // Each one larger than the bound: the owner builds one replica at a time, so the first commit
    // during the partition must put the buddy past it, however the publishes fall into commits.
    const payload = (i: number): Buffer => Buffer.concat([Buffer.from(`during${i} `), Buffer.alloc(BACKLOG + 16 * 1024, 0x61)]);
    const acked = new Set<number>();
    const sends = Array.from({ length: 12 }, (_, i) => pub.publishAsync(`behind/during/${i}`, payload(i), { qos: 1 }).then(() => void acked.add(i)));
    await until(async () => (await n1.status()).replication.buddiesBehind === 1, 'the buddy to fall behind', 10_000);
    const behind = await n1.status();
    assert.equal(behind.replication.unacknowledgedBytes, 0, 'no frame is kept for a buddy that is behind');
    assert.ok(n1.cli.logs.some((l) => l.includes('too far behind')), 'the owner says the buddy fell behind');
    assert.equal(acked.size, 0, 'nothing is acknowledged while the buddy cannot have it');
    linkProxy.heal();
    await until(() => acked.size === 12, 'every publish acknowledged once the link is healed', 20_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${[n1, n2].map((n) => n.cli.logs.join('\n')).join('\n')}`);
    });
    await Promise.all(sends);
    assert.equal((await n1.status()).replication.buddiesBehind, 0);
    // The owner is lost for good: the buddy has every acknowledged message, before the partition and during it.
    await cluster.kill(n1);
    const again = await reconnect(n2, options);
    const expected = [...Array.from({ length: 5 }, (_, i) => `before${i}`), ...Array.from({ length: 12 }, (_, i) => `during${i}`)];
    const delivered = (): Set<string> => new Set(inbox(again).map((m) => m.payload.toString().split(' ')[0]!));
    await until(() => expected.every((m) => delivered().has(m)), 'every acknowledged message from the buddy', 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${expected.filter((m) => !delivered().has(m)).join(' ')}\n${n2.cli.logs.join('\n')}`);
    });
  });
});

describe('replicated sessions: a session that ends as its buddy catches up', { skip: etcdMissing, timeout: 120_000 }, () => {
  const BACKLOG = 64 * 1024;
  // n1 holds the commit that sends a buddy back from behind its sessions in full: the session ends before it goes.
  const CATCH_UP_DELAY_MS = 2000;
  let setup: PartitionableCluster;
  before(async () => {
    setup = await startPartitionableCluster({ maxReplicationBacklogBytes: BACKLOG }, (id) => (id === 'n1' ? { ARBORMQ_CLUSTER_FAULT: `catch-up-delay-ms=${CATCH_UP_DELAY_MS}` } : undefined));
  });
  after(() => setup?.close());

  it('acknowledgements held while the buddy was behind go once it has dropped a session that ended before its snapshot was sent', async () => {
    const [n1, n2, n3] = setup.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const { linkProxy } = setup;
    const options = await offlineSessionOfN1WithBuddyN2(setup, 'ending');
    const pub = await n3.client({ clientId: 'ending-pub', protocolVersion: 5 });
    // Acknowledged: the buddy has every commit before it (the session going offline included).
    await pub.publishAsync('ending/0', 'before', { qos: 1 });
    linkProxy.partition();
    await until(async () => !(await n1.status()).peers.find((p) => p.node === 'n2')!.up, 'the link down', 10_000);
    let acked = false;
    // Larger than the bound: the commit that queues it puts the buddy behind.
    const sent = pub.publishAsync('ending/1', Buffer.alloc(BACKLOG + 16 * 1024, 0x61), { qos: 1 }).then(() => void (acked = true));
    await until(async () => (await n1.status()).replication.buddiesBehind === 1, 'the buddy to fall behind', 10_000);
    assert.equal(acked, false, 'not acknowledged while the buddy cannot have it');
    linkProxy.heal();
    await until(async () => (await n1.status()).replication.buddiesBehind === 0, 'the buddy back from behind', 20_000);
    // Clean Start, no expiry: the session ends before the held commit sends it in full.
    await n1.client({ clientId: options.clientId, clean: true, protocolVersion: 5 });
    await until(() => acked, 'the acknowledgement held for the buddy', CATCH_UP_DELAY_MS + 10_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${[n1, n2].map((n) => n.cli.logs.join('\n')).join('\n')}`);
    });
    await sent;
    await until(async () => (await n2.status()).replication.replicaSessions === 0, 'the buddy to drop the ended session', 10_000);
  });
});

/** Whether `observer` no longer counts `node` as a member (its lease expired). */
const gone = async (observer: ClusterNode, node: string): Promise<boolean> => ((await observer.status()).peers.find((p) => p.node === node)?.url ?? null) === null;

/** An offline persistent session owned by `owner` with `count` QoS 1 messages queued and acknowledged, replicated to `buddy`. */
async function queuedSession(
  cluster: TestCluster,
  prefix: string,
  owner: ClusterNode,
  buddy: ClusterNode,
  publisher: ClusterNode,
  count: number,
): Promise<{ options: IClientOptions & { clientId: string }; acked: string[] }> {
  const members = cluster.nodes.map((n) => n.id);
  const clientId = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((s) => `${prefix}-${s}`).find((id) => buddyOf(id, members, owner.id) === buddy.id)!;
  const options = { clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
  // Counted, not just seen: the buddy may keep replicas of other sessions already.
  const replicas = (await buddy.status()).replication.replicaSessions;
  const sub = await reconnect(owner, options);
  await sub.subscribeAsync(`${prefix}/#`, { qos: 1 });
  await until(async () => (await buddy.status()).replication.replicaSessions > replicas, `the replica on ${buddy.id}`, 10_000);
  const pub = await publisher.client({ clientId: `${prefix}-pub`, protocolVersion: 5 });
  // The route is at the publisher's node once a probe published there arrives (before, it goes nowhere).
  await until(
    async () => {
      await pub.publishAsync(`${prefix}/probe`, 'probe', { qos: 1 });
      return inbox(sub).length > 0;
    },
    'the route',
    10_000,
  );
  await sub.endAsync();
  const acked: string[] = [];
  for (let i = 0; i < count; i++) {
    await pub.publishAsync(`${prefix}/${i}`, `m${i}`, { qos: 1 });
    acked.push(`m${i}`);
  }
  await pub.endAsync();
  return { options, acked };
}

describe('replicated sessions: owner and buddy both killed', { skip: etcdMissing, timeout: 120_000 }, () => {
  const suite = replicatedCluster();

  it('the buddy killed, then the owner while the buddy is down: the buddy restarted claims the session itself, with every acknowledged message', async () => {
    const [n1, n2, n3] = suite.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const { options, acked } = await queuedSession(suite.cluster, 'orphan', n1, n2, n3, 50);
    await suite.cluster.kill(n2);
    // Before n2's lease expires, so that no new buddy gets the session: only the dead n2 has it.
    await suite.cluster.kill(n1);
    await until(async () => (await gone(n3, 'n1')) && (await gone(n3, 'n2')), 'n1 and n2 gone from the members', 20_000);
    await suite.cluster.restart(n2);
    // No client asks for it: the restarted buddy finds the owner gone and takes the session over on its own.
    await until(async () => (await n2.status()).replication.failovers === 1, 'the restarted buddy to take the session over', 20_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${n2.cli.logs.join('\n')}`);
    });
    assert.equal((await n2.status()).ownedSessions, 1);
    const again = await reconnect(n3, options);
    const delivered = (): Set<string> => new Set(inbox(again).map((m) => m.payload.toString()));
    await until(() => acked.every((m) => delivered().has(m)), `every acknowledged message (${acked.length})`, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${acked.filter((m) => !delivered().has(m)).join(' ')}`);
    });
    await again.endAsync();
    // The old owner comes back too: its copy is stale and goes.
    await suite.cluster.restart(n1);
    await suite.cluster.ready();
    await until(() => n1.cli.logs.some((l) => l.includes('dropping the stale copy') && l.includes(options.clientId)), 'the stale copy dropped on n1', 20_000);
  });

  it('owner and buddy SIGKILLed together and both restarted: the session is back on one node with every acknowledged message', async () => {
    const [n1, n2, n3] = suite.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const { options, acked } = await queuedSession(suite.cluster, 'both', n1, n2, n3, 50);
    await Promise.all([suite.cluster.kill(n1), suite.cluster.kill(n2)]);
    await Promise.all([suite.cluster.restart(n1), suite.cluster.restart(n2)]);
    await suite.cluster.ready();
    const again = await reconnect(n3, options);
    const delivered = (): Set<string> => new Set(inbox(again).map((m) => m.payload.toString()));
    await until(() => acked.every((m) => delivered().has(m)), `every acknowledged message (${acked.length})`, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${acked.filter((m) => !delivered().has(m)).join(' ')}\n${[n1, n2, n3].map((n) => n.cli.logs.join('\n')).join('\n')}`);
    });
    // n3 took it over from whichever of the two had it; neither keeps a copy.
    await until(async () => (await n1.status()).ownedSessions === 0 && (await n2.status()).ownedSessions === 0, 'n1 and n2 to own nothing', 10_000);
  });
});

describe('replicated sessions: an owner whose proof of its lease lapses for moments', { skip: etcdMissing, timeout: 120_000 }, () => {
  // n1 handles each etcd keepalive answer 2 s late (TTL 3 s, one keepalive a second): for half of
  // every second it cannot prove its lease, while etcd keeps it all along (a busy node).
  const suite = replicatedCluster((id) => (id === 'n1' ? { ARBORMQ_CLUSTER_FAULT: 'keepalive-late-ms=2000' } : undefined));

  it('forwards whose replicated commit a lapse catches are acknowledged once the lease is proven again, and the buddy has them', async () => {
    const [n1, n2, n3] = suite.cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const clientId = ['lapse-a', 'lapse-b', 'lapse-c', 'lapse-d', 'lapse-e'].find((id) => buddyOf(id, ['n1', 'n2', 'n3'], 'n1') === 'n2')!;
    const options = { clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
    // n1 closes the connections of its persistent sessions while it cannot prove its lease: the set-up goes again until it fits between two lapses.
    await until(
      async () => {
        const sub = await n1.client(options).catch(() => null);
        const subscribed = await sub?.subscribeAsync('lapse/#', { qos: 1 }).then(() => true, () => false);
        await sub?.endAsync().catch(() => undefined);
        return subscribed === true;
      },
      'the session on n1',
      20_000,
    );
    await until(async () => (await n3.status()).peers.find((p) => p.node === 'n1')!.routes > 0, 'the route', 5000);
    const lapses = (): number => n1.cli.logs.filter((l) => l.includes('lease not proven')).length;
    const pub = await n3.client({ clientId: 'lapse-pub', protocolVersion: 5 });
    const acked: string[] = [];
    // One at a time, so that no later forward's acknowledgement covers one the lapse caught; for three lapses.
    for (let i = 0, enough = lapses() + 3; lapses() < enough; i++) {
      let done = false;
      pub.publishAsync(`lapse/${i}`, `m${i}`, { qos: 1 }).then(() => (done = true), () => undefined);
      await until(() => done, `the PUBACK of message ${i} (n1 lapsed ${lapses()} times so far)`, 10_000);
      acked.push(`m${i}`);
      await pace(20);
    }
    // The owner is lost for good: the buddy has every acknowledged message.
    await suite.cluster.kill(n1);
    const again = await reconnect(n2, options);
    const delivered = (): Set<string> => new Set(inbox(again).map((m) => m.payload.toString()));
    await until(() => acked.every((m) => delivered().has(m)), `every acknowledged message (${acked.length})`, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${acked.filter((m) => !delivered().has(m)).join(' ')}\n${n2.cli.logs.join('\n')}`);
    });
  });
});

/**
 * An owner frozen (SIGSTOP) past its lease while forwards for its session wait at another node — its
 * peers keep its routes for `departedGraceSeconds` (30 s, the default) in case it returns — and back
 * before that, after its buddy took the session over.
 */
describe('replicated sessions: an owner paused past its lease and back within the departed grace', { skip: etcdMissing, timeout: 120_000 }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 3, { node: () => ({ replicationFactor: 2 }) });
    await cluster.ready();
  });
  after(async () => {
    await cluster?.close();
    await etcd?.close();
  });

  it('relays what was forwarded to it for the session it finds taken over, and confirms none of it unkept: every acknowledged message reaches the new owner', async () => {
    const [n1] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const members = ['n1', 'n2', 'n3'];
    const clientId = ['frozen-a', 'frozen-b', 'frozen-c', 'frozen-d'].find((id) => buddyOf(id, members, 'n1') === 'n2')!;
    const [, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const options = { clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
    const sub = await n1.client(options);
    await sub.subscribeAsync('frozen/#', { qos: 1 });
    await until(async () => (await n2.status()).replication.replicaSessions > 0, 'the replica on n2', 5000);
    await until(async () => (await n3.status()).peers.find((p) => p.node === 'n1')!.routes > 0, 'the route on n3', 5000);
    const pub = await n3.client({ clientId: 'frozen-pub', protocolVersion: 5 });
    const acked = new Set<string>();
    let publishing = true;
    const sends: Promise<void>[] = [];
    const load = (async () => {
      for (let i = 0; publishing; i++) {
        sends.push(pub.publishAsync(`frozen/${i}`, `m${i}`, { qos: 1 }).then(() => void acked.add(`m${i}`), () => undefined));
        await pace(10);
      }
    })();
    await until(() => acked.size >= 20, 'some acknowledgements', 5000);
    n1.cli.child.kill('SIGSTOP');
    try {
      await until(async () => (await n2.status()).replication.failovers > 0, 'n2 to take the session over', 20_000);
      await pace(1000);
    } finally {
      n1.cli.child.kill('SIGCONT');
    }
    await until(() => n1.cli.logs.some((l) => l.includes('dropping the stale copy') && l.includes(clientId)), 'n1 to drop its stale copy', 20_000);
    const again = await reconnect(n2, options);
    await pace(500);
    publishing = false;
    await load;
    await Promise.all(sends);
    const delivered = (): Set<string> => new Set([...inbox(sub), ...inbox(again)].map((m) => m.payload.toString()));
    await until(() => [...acked].every((m) => delivered().has(m)), `every acknowledged message (${acked.size})`, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${[...acked].filter((m) => !delivered().has(m)).join(" ")}`);
    });
  });
});
