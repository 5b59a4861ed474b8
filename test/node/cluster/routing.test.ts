import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { collect, eventually } from '../../helpers/broker.js';
import { startCluster, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';

describe('a cluster of three arbormq processes routes as one broker', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 3);
    await cluster.ready();
  });
  after(async () => {
    await cluster?.close();
    await etcd?.close();
  });

  it('every node holds its lease and links to both others, and says so on /health and /cluster', async () => {
    for (const node of cluster.nodes) {
      assert.deepEqual(await node.health(), { code: 200, status: 'ok' });
      const status = await node.status();
      assert.equal(status.lease, true);
      assert.deepEqual(
        status.peers.map((p) => [p.node, p.up]),
        cluster.nodes.filter((n) => n !== node).map((n) => [n.id, true]),
      );
    }
  });

  it('clients on different nodes exchange QoS 0, 1 and 2 messages through wildcard filters', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const sub2 = await n2!.client({ clientId: 'sub2', protocolVersion: 5 });
    const sub3 = await n3!.client({ clientId: 'sub3' });
    await sub2.subscribeAsync('sensors/+/temp', { qos: 2 });
    await sub3.subscribeAsync('sensors/#', { qos: 1 });
    await eventually(async () => (await n1!.status()).peers.every((p) => p.routes >= 1), 5000, 'n1 to learn both routes');
    const pub = await n1!.client({ clientId: 'pub1', protocolVersion: 5 });
    await pub.publishAsync('sensors/kitchen/temp', 'q0', { qos: 0 });
    await pub.publishAsync('sensors/kitchen/temp', 'q1', { qos: 1 });
    await pub.publishAsync('sensors/kitchen/temp', 'q2', { qos: 2 });
    await pub.publishAsync('sensors/kitchen/humidity', 'h', { qos: 1 });
    const at2 = await collect(sub2, 3);
    assert.deepEqual(at2.map((m) => [m.topic, m.payload.toString(), m.packet.qos]), [
      ['sensors/kitchen/temp', 'q0', 0],
      ['sensors/kitchen/temp', 'q1', 1],
      ['sensors/kitchen/temp', 'q2', 2],
    ]);
    const at3 = await collect(sub3, 4);
    assert.deepEqual(at3.map((m) => [m.payload.toString(), m.packet.qos]), [['q0', 0], ['q1', 1], ['q2', 1], ['h', 1]]);
  });
});
