import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { startCluster, type TestCluster, untilEveryAcknowledgedDelivered } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';

const ROUTE_DELAY = 'route-delay-ms=300';

/**
 * A move whose old owner dies before it relayed what was its to relay. Route announcements take
 * 300 ms to leave each node, so n3 routes to n1 for a while after n1 handed the session to n2; n1
 * SIGKILLs itself when the first such forward comes, before relaying it.
 */
describe('an old owner SIGKILLed before it relayed a moved session\'s forwards', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  const clients: MqttClient[] = [];
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 3, { env: (id) => ({ ARBORMQ_CLUSTER_FAULT: id === 'n1' ? `${ROUTE_DELAY},crash-before-relay` : ROUTE_DELAY }) });
    await cluster.ready();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await cluster?.close();
    await etcd?.close();
  });

  it('loses none of them: the nodes that routed them before their cut send them to the new owner when the old one is back as a new process', { timeout: 90_000 }, async () => {
    const [n1, n2, n3] = cluster.nodes;
    const options = { clientId: 'relayed', clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 600 } };
    const first = await n1!.client(options);
    clients.push(first);
    await first.subscribeAsync('relay/#', { qos: 1 });
    await until(async () => (await n3!.status()).peers.find((p) => p.node === 'n1')!.routes > 0, 'n3 to learn the route', 5000);
    const acked = new Set<string>();
    let stop = false;
    const pub = await n3!.client({ clientId: 'relay-pub', protocolVersion: 5 });
    clients.push(pub);
    const lane = async (name: string): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const payload = `${name}-${i}`;
        await pub.publishAsync(`relay/${name}`, payload, { qos: 1 });
        acked.add(payload);
      }
    };
    const lanes = [0, 1, 2, 3].map((l) => lane(`l${l}`));
    await until(() => acked.size >= 100, 'load before the move', 10_000);
    const moved = await n2!.client(options);
    clients.push(moved);
    await until(() => n1!.cli.child.exitCode !== null || n1!.cli.child.signalCode !== null, 'n1 to die before relaying', 5000);
    await cluster.restart(n1!, { ARBORMQ_CLUSTER_FAULT: ROUTE_DELAY });
    await cluster.ready();
    const atRestart = acked.size;
    await until(() => acked.size >= atRestart + 200, 'load after the restart', 20_000);
    stop = true;
    await Promise.all(lanes);
    await untilEveryAcknowledgedDelivered(acked, [first, moved]);
    assert.equal(moved.connected, true, 'the session stayed with n2');
  });
});

/**
 * A move whose cut stays open — its old owner SIGKILLed before its pass — while a node that
 * forwards to the new owner restarts. Route announcements leave n3 (the new owner) 1 s late, so
 * neither n1 nor n2 has passed when both die; n3 keeps the cut open until it expires.
 */
describe('a node restarted while the cut of a move to another node is open', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  const clients: MqttClient[] = [];
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 3, { env: (id) => (id === 'n3' ? { ARBORMQ_CLUSTER_FAULT: 'route-delay-ms=1000' } : undefined) });
    await cluster.ready();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await cluster?.close();
    await etcd?.close();
  });

  it('has the new owner deliver what the restarted process forwards: its sequence numbers start again and are not before its old pass', { timeout: 90_000 }, async () => {
    const [n1, n2, n3] = cluster.nodes;
    const options = { clientId: 'cut-open', clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 600 } };
    const first = await n2!.client(options);
    clients.push(first);
    await first.subscribeAsync('cut/#', { qos: 1 });
    await until(async () => (await n1!.status()).peers.find((p) => p.node === 'n2')!.routes > 0, 'n1 to learn the route', 5000);
    const acked = new Set<string>();
    const publish = async (name: string, count: number): Promise<void> => {
      const pub = await n1!.client({ clientId: `cut-pub-${name}`, protocolVersion: 5, reconnectPeriod: 0 });
      clients.push(pub);
      for (let i = 0; i < count; i++) {
        const payload = `${name}-${i}`;
        await pub.publishAsync('cut/a', payload, { qos: 1 });
        acked.add(payload);
      }
    };
    await publish('before', 100);
    const moved = await n3!.client(options);
    clients.push(moved);
    await Promise.all([cluster.kill(n1!), cluster.kill(n2!)]);
    await Promise.all([cluster.restart(n1!), cluster.restart(n2!)]);
    await cluster.ready();
    await publish('after', 200);
    await untilEveryAcknowledgedDelivered(acked, [first, moved]);
  });
});
