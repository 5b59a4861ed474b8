import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { received as inbox } from '../../helpers/broker.js';
import { startCluster, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';

describe('forwards de-duplicated across a crash of the receiving node', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  before(async () => {
    etcd = await startEtcd();
    // n2 kills itself once a forward it received is durable and before it confirms it.
    cluster = await startCluster(etcd, 2, { env: (id) => (id === 'n2' ? { ARBORMQ_CLUSTER_FAULT: 'crash-before-forward-ack' } : undefined) });
    await cluster.ready();
  });
  after(async () => {
    await cluster?.close();
    await etcd?.close();
  });

  it('a QoS 2 forward made durable but not confirmed before a SIGKILL is delivered exactly once after the restart', async () => {
    const [n1, n2] = cluster.nodes;
    const options = { clientId: 'once-sub', clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 600 } };
    const sub = await n2!.client(options);
    await sub.subscribeAsync('once/#', { qos: 2 });
    await until(async () => (await n1!.status()).peers.find((p) => p.node === 'n2')!.routes > 0, 'the route', 5000);
    await sub.endAsync();
    const pub = await n1!.client({ clientId: 'once-pub', protocolVersion: 5 });
    const crashed = once(n2!.cli.child, 'exit');
    const count = 50;
    const sends = Array.from({ length: count }, (_, i) => pub.publishAsync(`once/${i}`, `m${i}`, { qos: 2 }));
    const [, signal] = (await crashed) as [number | null, string | null];
    assert.equal(signal, 'SIGKILL', 'n2 crashed at the fault point');
    await cluster.restart(n2!, {});
    // The forwards n2 had made durable are sent again, with the ones it never received.
    await Promise.all(sends);
    await pub.publishAsync('once/end', 'end', { qos: 2 });
    const again = await n2!.client({ ...options, clean: false });
    await until(() => inbox(again).some((m) => m.payload.toString() === 'end'), 'the last message', 15_000);
    // The session's queue is in order: everything queued before 'end' has arrived with it.
    const payloads = inbox(again).map((m) => m.payload.toString());
    const expected = [...Array.from({ length: count }, (_, i) => `m${i}`), 'end'];
    assert.deepEqual([...payloads].sort(), [...expected].sort(), 'each message exactly once');
  });
});
