import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { collect } from '../../helpers/broker.js';
import { connectWhenAccepted, refusedWith, startCluster, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';

describe('ownership of persistent sessions across node restarts (replicationFactor 1)', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  const clients: MqttClient[] = [];
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 3);
    await cluster.ready();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await cluster?.close();
    await etcd?.close();
  });

  it('a new persistent session at replicationFactor 1 asks no peer for a replica: its CONNECT does not wait for a frozen peer', async () => {
    const [n1, , n3] = cluster.nodes;
    n3!.cli.child.kill('SIGSTOP');
    try {
      const asked = performance.now();
      const client = await n1!.client({ clientId: 'new-while-frozen', clean: false });
      const ms = performance.now() - asked;
      assert.equal(client.connected, true);
      // A replica request waits up to 2 s for a frozen peer's answer; an etcd transaction takes milliseconds.
      assert.ok(ms < 1500, `the CONNECT took ${Math.round(ms)} ms`);
    } finally {
      n3!.cli.child.kill('SIGCONT');
    }
  });

  it('a node SIGKILLed and back only after its lease expired keeps its sessions: a client reconnecting elsewhere meanwhile is refused (5.0: 0x88, 3.1.1: 0x03), then finds its session with every acknowledged message', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const v5 = { clientId: 'slow-restart-5', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } } as const;
    const v4 = { clientId: 'slow-restart-4', clean: false } as const;
    for (const options of [v5, v4]) {
      const sub = await n1!.client(options);
      await sub.subscribeAsync('slow/#', { qos: 1 });
      await sub.endAsync();
    }
    await until(async () => (await n2!.status()).peers.find((p) => p.node === 'n1')!.routes > 0, 'the route at n2', 5000);
    const pub = await n2!.client({ clientId: 'slow-restart-pub' });
    for (let i = 0; i < 10; i++) await pub.publishAsync('slow/x', `m${i}`, { qos: 1 });
    await cluster.kill(n1!);
    // n1's lease (3 s) expires: its session keys go with it, and it is still not back.
    await until(async () => (await n2!.status()).peers.find((p) => p.node === 'n1')?.url === null, 'n1 to leave the membership', 10_000);
    assert.equal(await refusedWith(n2!.url, v5), 0x88);
    assert.equal(await refusedWith(n3!.url, v4), 3);
    await cluster.restart(n1!);
    await cluster.ready();
    for (const [options, node] of [
      [v5, n2!],
      [v4, n3!],
    ] as const) {
      const back = await connectWhenAccepted(node, options);
      clients.push(back);
      const messages = await collect(back, 10, 10_000);
      assert.deepEqual(
        messages.map((m) => m.payload.toString()),
        Array.from({ length: 10 }, (_, i) => `m${i}`),
        `${options.clientId} gets every acknowledged message`,
      );
    }
  });
});
