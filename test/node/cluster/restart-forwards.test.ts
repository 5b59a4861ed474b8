import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChaosPublisher, ChaosSubscriber, deliveredTwice } from '../../chaos/peers.js';
import { startCluster, type ClusterNode, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';

const KILLS = 6;

describe('a subscriber\'s node SIGKILLed under QoS 2 load from another node', { skip: etcdMissing }, () => {
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

  it(`restarted ${KILLS} times, delivers every acknowledged message exactly once: the forwards its peer sends again are not taken for new [MQTT-4.3.3-9]`, { timeout: 120_000 }, async () => {
    const [n1, , n3] = cluster.nodes;
    // The nodes' ports change with each restart.
    const port = (node: ClusterNode) => (): number => Number(new URL(node.url).port);
    // Raw MQTT peers that keep their protocol state across connections and count each message at its first PUBLISH.
    const subscriber = new ChaosSubscriber('once-sub', 4, port(n1!), 2, 'once/t');
    const publisher = new ChaosPublisher('once-pub', 4, port(n3!), 2, 'once/t', 20);
    try {
      subscriber.start();
      await until(() => subscriber.ready, 'the subscription', 10_000);
      await until(async () => (await n3!.status()).peers.find((p) => p.node === 'n1')!.routes > 0, 'n3 to learn the route', 5000);
      publisher.start();
      for (let k = 0; k < KILLS; k++) {
        const at = publisher.acknowledged.size;
        await until(() => publisher.acknowledged.size >= at + 300, 'load before the kill', 20_000);
        await cluster.kill(n1!);
        await cluster.restart(n1!);
        await cluster.ready(60_000);
      }
      assert.deepEqual(await deliveredTwice(publisher, subscriber), [], 'messages delivered twice');
    } finally {
      publisher.stop();
      subscriber.stop();
    }
  });
});
