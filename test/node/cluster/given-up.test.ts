import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { collect } from '../../helpers/broker.js';
import { startCluster, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';

describe('a member given up after departedGraceSeconds that comes back as the same process', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 2, { node: () => ({ departedGraceSeconds: 1 }) });
    await cluster.ready();
  });
  after(async () => {
    await cluster?.close();
    await etcd?.close();
  });

  it('receives the forwards sent to it afterwards: they are not taken for repeats of those before', { timeout: 60_000 }, async () => {
    const [n1, n2] = cluster.nodes;
    const routeAtN1 = async (): Promise<boolean> => ((await n1!.status()).peers.find((p) => p.node === 'n2')?.routes ?? 0) > 0;
    const sub = await n2!.client({ clientId: 'frozen-sub', clean: false });
    await sub.subscribeAsync('frozen/#', { qos: 1 });
    await until(routeAtN1, 'the route at n1', 5000);
    const pub = await n1!.client({ clientId: 'frozen-pub' });
    for (let i = 0; i < 20; i++) await pub.publishAsync('frozen/x', `before ${i}`, { qos: 1 });
    assert.equal((await collect(sub, 20)).length, 20);
    n2!.cli.child.kill('SIGSTOP');
    try {
      await until(() => n1!.cli.logs.some((l) => l.includes('gave up on a member that did not come back')), 'n1 to give n2 up', 15_000);
    } finally {
      n2!.cli.child.kill('SIGCONT');
    }
    await cluster.ready();
    await until(routeAtN1, 'the route at n1 again', 10_000);
    for (let i = 0; i < 5; i++) await pub.publishAsync('frozen/x', `after ${i}`, { qos: 1 });
    assert.deepEqual(
      (await collect(sub, 5, 10_000)).map((m) => m.payload.toString()),
      Array.from({ length: 5 }, (_, i) => `after ${i}`),
    );
  });
});
