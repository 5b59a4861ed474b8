import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { collect } from '../../helpers/broker.js';
import { startCluster, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';

describe('a node restarted with persistent subscriptions', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 2);
    await cluster.ready();
  });
  after(async () => {
    await cluster?.close();
    await etcd?.close();
  });

  it('announces its restored routes in the snapshot, not as a delta before it: its links stay up and the routes work', async () => {
    const [n1, n2] = cluster.nodes;
    const sub = await n2!.client({ clientId: 'restored-sub', clean: false });
    await sub.subscribeAsync('restored/#', { qos: 1 });
    await sub.endAsync();
    await cluster.stop(n2!);
    await cluster.restart(n2!);
    await cluster.ready();
    const back = await n2!.client({ clientId: 'restored-sub', clean: false });
    assert.equal(back.connected, true);
    const pub = await n1!.client({ clientId: 'restored-pub' });
    await until(async () => (await n1!.status()).peers.find((p) => p.node === 'n2')!.routes > 0, 'the route', 5000).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify((await n1!.status()).peers)}\n${n1!.cli.logs.join('\n')}\n${n2!.cli.logs.join('\n')}`);
    });
    await pub.publishAsync('restored/x', 'after the restart', { qos: 1 });
    assert.equal((await collect(back, 1))[0]!.payload.toString(), 'after the restart');
    const errors = [...n1!.cli.logs, ...n2!.cli.logs].filter((l) => l.includes('protocol error'));
    assert.deepEqual(errors, [], 'no link was closed for a protocol error');
  });

  it('lets a client in only once it knows the routes of every member, and answers /health 503 until then: a QoS 1 message published there at once reaches a subscriber of another node', async () => {
    const [n1, n2] = cluster.nodes;
    // n2 announces its routes 1 s late, its snapshot to a node that has just started too.
    await cluster.stop(n2!);
    await cluster.restart(n2!, { ARBORMQ_CLUSTER_FAULT: 'route-delay-ms=1000' });
    await cluster.ready();
    const sub = await n2!.client({ clientId: 'routes-known-sub', clean: false });
    await sub.subscribeAsync('known/#', { qos: 1 });
    await cluster.stop(n1!);
    await cluster.restart(n1!);
    const said = new Set<string>();
    await until(
      async () => {
        const health = await n1!.health().catch(() => null);
        if (health) said.add(health.status);
        return health?.code === 200;
      },
      'n1 healthy',
      15_000,
    );
    assert.ok(said.has('no routes from n2 yet'), `/health said ${[...said].join(', ')}`);
    // Healthy means a CONNECT is let in at once.
    const pub = await n1!.client({ clientId: 'routes-known-pub' });
    try {
      await pub.publishAsync('known/x', 'published at once', { qos: 1 });
      assert.equal((await collect(sub, 1, 5000))[0]!.payload.toString(), 'published at once');
    } finally {
      await pub.endAsync();
    }
  });
});
