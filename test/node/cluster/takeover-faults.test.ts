import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { collect } from '../../helpers/broker.js';
import { connectWhenAccepted, refusedWith, startCluster, type ClusterNode, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';
import { ChaosSubscriber } from '../../chaos/peers.js';

const TAKEOVER_TIMEOUT_MS = 5000;

/** A persistent session at `home` subscribed to `topic/#`, offline, with `n` acknowledged messages "0" … queued from `from`. */
async function queued(home: ClusterNode, from: ClusterNode, clientId: string, topic: string, n: number, qos: 1 | 2 = 1): Promise<void> {
  const sub = await home.client({ clientId, clean: false });
  await sub.subscribeAsync(`${topic}/#`, { qos });
  await sub.endAsync();
  await until(async () => (await from.status()).peers.find((p) => p.node === home.id)!.routes > 0, `the route at ${from.id}`, 5000);
  const pub = await from.client({ clientId: `${clientId}-pub` });
  for (let i = 0; i < n; i++) await pub.publishAsync(`${topic}/x`, `${i}`, { qos });
}

/** `client` receives the `n` messages queued(), in order. */
async function assertAll(client: MqttClient, n: number): Promise<void> {
  const messages = await collect(client, n, 10_000);
  assert.deepEqual(
    messages.map((m) => m.payload.toString()),
    Array.from({ length: n }, (_, i) => `${i}`),
  );
}

/**
 * A QoS 2 subscriber that keeps its session and its protocol state across connections, reconnecting
 * to whichever node `at()` names whenever it loses its connection; it counts every message it is
 * given as new (a PUBLISH whose packet identifier it holds is a resend).
 */
function qos2Subscriber(clientId: string, filter: string, at: () => ClusterNode): ChaosSubscriber {
  return new ChaosSubscriber(clientId, 4, () => Number(new URL(at().url).port), 2, filter);
}

/** `sub` is connected again, and what its node sent it before answering a PINGREQ has arrived. */
async function caughtUp(sub: ChaosSubscriber, connectsBefore: number): Promise<void> {
  await until(() => sub.connects > connectsBefore && sub.connected, `${sub.clientId} to be accepted again`, 20_000);
  await sub.roundTrip();
}

const twice = (sub: ChaosSubscriber): number[] => [...sub.counts].filter(([, n]) => n > 1).map(([m]) => m);

/**
 * Hand-overs that fail half-way. n2 SIGKILLs itself right after it installed a session handed over
 * to it (before that is durable); n1 answers takeover requests only after the asking node gave up.
 */
describe('a session hand-over that fails half-way loses nothing', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  const clients: MqttClient[] = [];
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 3, {
      env: (id) =>
        id === 'n2' ? { ARBORMQ_CLUSTER_FAULT: 'crash-after-take-in' } : id === 'n1' ? { ARBORMQ_CLUSTER_FAULT: `takeover-reply-delay-ms=${TAKEOVER_TIMEOUT_MS + 1500}` } : undefined,
    });
    await cluster.ready();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await cluster?.close();
    await etcd?.close();
  });
  const track = (client: MqttClient): MqttClient => (clients.push(client), client);

  it('the new owner SIGKILLed after the old one answered, before the session was durable there: the old owner keeps it and takes it back', { timeout: 60_000 }, async () => {
    const [n1, n2, n3] = cluster.nodes;
    await queued(n3!, n1!, 'half-moved', 'half', 10);
    const options = { clientId: 'half-moved', clean: false } as const;
    // n2 takes the session over and dies with it in memory only.
    assert.equal(await refusedWith(n2!.url, options), -1, 'the connection closes with n2, without a CONNACK');
    await until(() => n2!.cli.child.exitCode !== null || n2!.cli.child.signalCode !== null, 'n2 to die', 5000);
    await cluster.restart(n2!, { ARBORMQ_CLUSTER_FAULT: '' });
    await cluster.ready();
    await assertAll(track(await connectWhenAccepted(n1!, options)), 10);
  });

  it(`an old owner answering after the ${TAKEOVER_TIMEOUT_MS / 1000} s the new one waits (the CONNECT refused 0x88, the key given back) keeps the session`, { timeout: 60_000 }, async () => {
    const [n1, , n3] = cluster.nodes;
    await queued(n1!, n3!, 'late-reply', 'late', 10);
    const options = { clientId: 'late-reply', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 }, connectTimeout: TAKEOVER_TIMEOUT_MS * 2 } as const;
    assert.equal(await refusedWith(n3!.url, options), 0x88);
    // n1 hands the session over 1.5 s later, and n3 answers that it did not take it: n1 keeps it.
    await assertAll(track(await connectWhenAccepted(n1!, options)), 10);
  });

  it('a QoS 2 session moved to a node killed before its new home was recorded, taken back by the old owner, delivers no message twice: the client is let in only once the move is settled [MQTT-4.3.3-9]', { timeout: 90_000 }, async () => {
    const [n1, n2, n3] = cluster.nodes;
    // n3 records a new home 2 s after the session is durable there: without the rule, its client is served meanwhile.
    await cluster.kill(n3!);
    await cluster.restart(n3!, { ARBORMQ_CLUSTER_FAULT: 'settle-delay-ms=2000' });
    await cluster.ready();
    await queued(n2!, n1!, 'settle-first', 'settle', 10, 2);
    let at = n3!;
    const sub = qos2Subscriber('settle-first', 'settle/#', () => at);
    try {
      sub.start();
      // Released too: a resend under an identifier the client still holds would not count as a second delivery.
      await until(() => sub.counts.size === 10 && sub.holding === 0, 'the 10 messages at n3, released', 15_000);
      at = n2!;
      const connects = sub.connects;
      // Back only once its lease expired: n2 takes back what n3 did not settle when n3 leaves (a restart would also claim it).
      await cluster.kill(n3!);
      await until(async () => (await n2!.status()).peers.find((p) => p.node === 'n3')?.url === null, 'n3 to leave the membership', 10_000);
      await cluster.restart(n3!, { ARBORMQ_CLUSTER_FAULT: '' });
      await cluster.ready();
      await caughtUp(sub, connects);
      assert.deepEqual(twice(sub), []);
    } finally {
      sub.stop();
    }
  });

  it('a session taken back from a node that did not keep it is relayed there no more: moved there next, it receives each message once [MQTT-4.3.3-9]', { timeout: 90_000 }, async () => {
    const [, n2, n3] = cluster.nodes;
    // The first test restarted n2 without its fault point.
    await cluster.kill(n2!);
    await cluster.restart(n2!, { ARBORMQ_CLUSTER_FAULT: 'crash-after-take-in' });
    await cluster.ready();
    let at = n3!;
    const sub = qos2Subscriber('relayed-once', 'once/#', () => at);
    try {
      sub.start();
      await until(() => sub.ready, 'the subscription at n3', 10_000);
      // To n2, which dies with the session in memory only; n3 keeps relaying to n2 what n3 gets for it until it takes it back.
      at = n2!;
      sub.drop();
      await until(() => n2!.cli.child.signalCode !== null, 'n2 to die', 10_000);
      const connects = sub.connects;
      await cluster.restart(n2!, { ARBORMQ_CLUSTER_FAULT: '' });
      await cluster.ready();
      await caughtUp(sub, connects);
      const pub = await n3!.client({ clientId: 'relayed-once-pub' });
      for (let i = 0; i < 5; i++) await pub.publishAsync('once/x', `${i}`, { qos: 2 });
      await until(() => sub.counts.size === 5, 'the 5 messages at n2', 10_000);
      await sub.roundTrip();
      assert.deepEqual(twice(sub), []);
    } finally {
      sub.stop();
    }
  });
});

/**
 * The old owner of a session restarts and, slow to claim its sessions again with its new lease
 * (reclaim-delay-ms: a large store to restore), finds the session's key written by a node whose
 * takeover is not settled. n2 SIGKILLs itself right after it installed the session handed over to
 * it. The lease TTL is long enough that n1's old lease still holds the key when n2 takes it over, and
 * n2's still holds it when n1 claims its sessions again.
 */
describe('a restarted node claiming its sessions again keeps one whose takeover is not settled', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  const clients: MqttClient[] = [];
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 2, {
      node: () => ({ leaseTtlSeconds: 10 }),
      env: (id) => (id === 'n2' ? { ARBORMQ_CLUSTER_FAULT: 'crash-after-take-in' } : undefined),
    });
    await cluster.ready();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await cluster?.close();
    await etcd?.close();
  });

  it('the new owner SIGKILLed before the session was durable there, the old owner re-claiming after it: the old owner keeps its copy, takes it back and delivers every message', { timeout: 90_000 }, async () => {
    const [n1, n2] = cluster.nodes;
    await queued(n1!, n2!, 'kept-on-reclaim', 'kept', 10);
    await cluster.kill(n1!);
    await cluster.restart(n1!, { ARBORMQ_CLUSTER_FAULT: 'reclaim-delay-ms=5000' });
    await cluster.ready();
    const options = { clientId: 'kept-on-reclaim', clean: false } as const;
    assert.equal(await refusedWith(n2!.url, options), -1, 'n2 takes the session over from n1 and dies with it in memory only');
    await until(() => n1!.cli.logs.some((l) => l.includes('claimed the sessions again')), 'n1 to claim its sessions again', 20_000);
    const claimed = JSON.parse(n1!.cli.logs.find((l) => l.includes('claimed the sessions again'))!) as { unsettled?: number };
    assert.equal(claimed.unsettled, 1, "n1 claimed its sessions again while n2's takeover held the key, unsettled");
    await cluster.restart(n2!, { ARBORMQ_CLUSTER_FAULT: '' });
    await cluster.ready();
    const client = await connectWhenAccepted(n1!, options);
    clients.push(client);
    await assertAll(client, 10);
  });
});
