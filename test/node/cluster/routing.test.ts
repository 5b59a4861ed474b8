import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { collect, expectOnly } from '../../helpers/broker.js';
import { Peer } from '../../helpers/peer.js';
import { until } from '../../helpers/wait.js';
import { BIN } from '../../helpers/cli.js';
import { startCluster, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { LINK_PROTOCOL_VERSION } from '../../../host/node/cluster/frame.js';

describe('a cluster of three arbormq processes routes as one broker', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 3, { config: { sysInterval: 1 }, node: () => ({ departedGraceSeconds: 1 }) });
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

  it('`arbormq cluster status` prints every member, its links and their route counts', async () => {
    await cluster.nodes[1]!.client({ clientId: 'status-sub' }).then((c) => c.subscribeAsync('status/+/x'));
    await until(async () => (await cluster.nodes[0]!.status()).peers.find((p) => p.node === 'n2')!.routes === 1, 'the route', 5000);
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'cluster', 'status', '--cluster-etcd', etcd.url]);
    assert.match(stdout, /^cluster arbormq: 3 members/);
    for (const node of cluster.nodes) assert.match(stdout, new RegExp(`\\n${node.id}  ws://127\\.0\\.0\\.1:\\d+  protocol ${LINK_PROTOCOL_VERSION}  healthy`));
    assert.match(stdout, /-> n2\s+up\s+1 routes/);
  });

  it('each link is on /metrics and under $SYS/broker/cluster/', async () => {
    const n1 = cluster.nodes[0]!;
    const metrics = await n1.metrics();
    assert.match(metrics, /^arbormq_cluster_lease 1$/m);
    assert.match(metrics, /^arbormq_cluster_peer_up\{peer="n2"\} 1$/m);
    assert.match(metrics, /^arbormq_cluster_etcd_rtt_seconds \d/m);
    const watcher = await n1.client({ clientId: 'sys-watcher' });
    await watcher.subscribeAsync('$SYS/broker/cluster/peers/+/up');
    const values = await collect(watcher, 2);
    assert.deepEqual(values.map((m) => [m.topic, m.payload.toString()]).sort(), [
      ['$SYS/broker/cluster/peers/n2/up', '1'],
      ['$SYS/broker/cluster/peers/n3/up', '1'],
    ]);
  });

  it('clients on different nodes exchange QoS 0, 1 and 2 messages through wildcard filters', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const sub2 = await n2!.client({ clientId: 'sub2', protocolVersion: 5 });
    const sub3 = await n3!.client({ clientId: 'sub3' });
    await sub2.subscribeAsync('sensors/+/temp', { qos: 2 });
    await sub3.subscribeAsync('sensors/#', { qos: 1 });
    await until(async () => (await n1!.status()).peers.every((p) => p.routes >= 1), 'n1 to learn both routes', 5000);
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

  it('a message crosses to a node once however many subscribers it has there, never further, and not at all where nobody matches', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const subs = await Promise.all(Array.from({ length: 20 }, (_, i) => n2!.client({ clientId: `fan-${i}` })));
    await Promise.all(subs.map((s) => s.subscribeAsync('fan/out', { qos: 0 })));
    const third = await n3!.client({ clientId: 'fan-n3' });
    await third.subscribeAsync('fan/#', { qos: 0 });
    await until(async () => (await n1!.status()).peers.every((p) => p.routes >= 2), 'n1 to learn both routes', 5000);
    const sent = async (from: typeof n1, to: string): Promise<number> => (await from!.status()).peers.find((p) => p.node === to)!.messagesOut;
    const before = { n1n2: await sent(n1, 'n2'), n1n3: await sent(n1, 'n3'), n2n3: await sent(n2, 'n3') };
    const pub = await n1!.client({ clientId: 'fan-pub' });
    for (let i = 0; i < 10; i++) await pub.publishAsync('fan/out', `m${i}`, { qos: 0 });
    await pub.publishAsync('elsewhere/x', 'nobody', { qos: 0 });
    for (const s of subs) assert.equal((await collect(s, 10)).length, 10);
    assert.equal((await collect(third, 10)).length, 10);
    assert.equal((await sent(n1, 'n2')) - before.n1n2, 10, 'once per message, not per subscriber');
    assert.equal((await sent(n1, 'n3')) - before.n1n3, 10);
    assert.equal((await sent(n2, 'n3')) - before.n2n3, 0, 'one hop: n2 does not pass on what it received');
    // What n2 passed on would reach n3 before a marker n2 forwards now.
    await subs[0]!.publishAsync('fan/marker', 'end', { qos: 0 });
    await expectOnly(third, 'fan/marker=end');
    assert.ok((await n1!.metrics()).includes('arbormq_cluster_forwarded_messages_total{peer="n2",direction="out"}'));
  });

  it('a shared group spans the nodes: each message reaches one member, a member on the publishing node first', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const members = [
      ...(await Promise.all([0, 1].map((i) => n1!.client({ clientId: `w1-${i}` })))),
      ...(await Promise.all([0, 1].map((i) => n2!.client({ clientId: `w2-${i}` })))),
    ];
    await Promise.all(members.map((m) => m.subscribeAsync('$share/workers/jobs/+', { qos: 1 })));
    await until(async () => (await n3!.status()).peers.filter((p) => p.node !== 'n3').every((p) => p.routes >= 1), 'n3 to learn the group routes', 5000);
    const received = new Map<string, string[]>();
    members.forEach((m, i) => m.on('message', (_t, payload) => {
      const who = i < 2 ? 'n1' : 'n2';
      received.set(who, [...(received.get(who) ?? []), payload.toString()]);
    }));
    const pub3 = await n3!.client({ clientId: 'jobs-pub3' });
    for (let i = 0; i < 20; i++) await pub3.publishAsync(`jobs/${i}`, `a${i}`, { qos: 1 });
    const pub1 = await n1!.client({ clientId: 'jobs-pub1' });
    for (let i = 0; i < 10; i++) await pub1.publishAsync(`jobs/${i}`, `b${i}`, { qos: 1 });
    const all = () => [...received.values()].flat();
    await until(() => all().length >= 30, '30 deliveries', 5000);
    assert.equal(all().length, 30, 'each message once');
    assert.equal(new Set(all()).size, 30);
    const fromN1 = all().filter((p) => p.startsWith('b'));
    assert.deepEqual(received.get('n1')!.filter((p) => p.startsWith('b')).length, fromN1.length, 'n1\'s messages stay with n1\'s members');
    assert.ok(received.get('n2')!.some((p) => p.startsWith('a')), 'messages from a node without members spread over the nodes');
  });

  it('a persistent session moves with its queued messages when its client reconnects to another node; the old connection hears 0x8E', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const first = await n1!.client({ clientId: 'mover', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } });
    await first.subscribeAsync('moves/#', { qos: 1 });
    await first.endAsync();
    await until(async () => (await n2!.status()).peers.find((p) => p.node === 'n1')!.routes > 0, 'the route to stay', 5000);
    const pub = await n2!.client({ clientId: 'mover-pub' });
    for (let i = 0; i < 5; i++) await pub.publishAsync(`moves/${i}`, `q${i}`, { qos: 1 });
    const moved = await n3!.client({ clientId: 'mover', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } });
    assert.deepEqual((await collect(moved, 5)).map((m) => m.payload.toString()), ['q0', 'q1', 'q2', 'q3', 'q4']);
    // and on again, taking it from a live connection
    const disconnected = new Promise<number | undefined>((resolve) => moved.once('disconnect', (packet) => resolve(packet.reasonCode)));
    const third = await n1!.client({ clientId: 'mover', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } });
    assert.equal(await disconnected, 0x8e);
    await pub.publishAsync('moves/after', 'later', { qos: 1 });
    const got = [];
    while (got.at(-1)?.payload.toString() !== 'later') got.push(...(await collect(third, 1)));
    // Whatever the second connection had not acknowledged yet comes again, marked DUP [MQTT-4.4.0-1].
    assert.ok(got.slice(0, -1).every((m) => m.packet.dup && /^q\d$/.test(m.payload.toString())), JSON.stringify(got.map((m) => m.payload.toString())));
    const owned = await Promise.all(cluster.nodes.map(async (n) => (await n.status()).ownedSessions));
    assert.equal(owned[0]! >= 1, true, 'n1 owns it now');
  });

  it('a QoS 2 packet identifier awaiting PUBREL moves with the session: the resent PUBLISH is not delivered twice [MQTT-4.3.3-10]', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const watcher = await n3!.client({ clientId: 'q2-watcher' });
    await watcher.subscribeAsync('q2/moves', { qos: 2 });
    await until(async () => (await n1!.status()).peers.find((p) => p.node === 'n3')!.routes > 0, 'the route', 5000);
    const port = (node: typeof n1): number => Number(new URL(node!.url).port);
    const publish = { cmd: 'publish', topic: 'q2/moves', payload: Buffer.from('once'), qos: 2, messageId: 7, retain: false } as const;
    const first = await new Peer().tcp(port(n1));
    first.sendPacket({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'q2-mover', clean: false, keepalive: 60 });
    await first.next('connack');
    first.sendPacket({ ...publish, dup: false });
    await first.next('pubrec');
    first.destroy();
    const second = await new Peer().tcp(port(n2));
    second.sendPacket({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'q2-mover', clean: false, keepalive: 60 });
    assert.equal(((await second.next('connack')) as { sessionPresent: boolean }).sessionPresent, true);
    second.sendPacket({ ...publish, dup: true });
    await second.next('pubrec');
    second.sendPacket({ cmd: 'pubrel', messageId: 7 });
    await second.next('pubcomp');
    second.destroy();
    assert.deepEqual((await collect(watcher, 1)).map((m) => m.payload.toString()), ['once']);
    // A second delivery would reach n3 from n2 before a marker published there now.
    const marker = await n2!.client({ clientId: 'q2-marker' });
    await marker.publishAsync('q2/moves', 'marker', { qos: 2 });
    await expectOnly(watcher, 'q2/moves=marker');
  });

  it('two CONNECTs racing for one client id on two nodes end with exactly one session', async () => {
    const [n1, n2] = cluster.nodes;
    const options = { clientId: 'racer', clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } };
    const refusals: string[] = [];
    const attempt = (node: typeof n1) => node!.client(options).catch((error: Error) => (refusals.push(error.message), null));
    let [a, b] = await Promise.all([attempt(n1), attempt(n2)]);
    // Both may be refused (0x88) while a loaded machine keeps etcd from answering in time: the client then
    // tries again, as a real one would; the race must never leave two connected.
    if (a === null && b === null) a = await attempt(n1);
    await until(() => [a, b].filter((c) => c?.connected).length === 1, `one of the two to remain connected (refused: ${refusals.join('; ') || 'none'})`, 5000);
    const winner = a?.connected ? a : b!;
    await winner.subscribeAsync('race/t', { qos: 1 });
    const pub = await n2!.client({ clientId: 'race-pub' });
    await pub.publishAsync('race/t', 'x', { qos: 1 });
    assert.equal((await collect(winner, 1))[0]!.payload.toString(), 'x');
  });

  it('a clean-session client id connecting on another node closes the first connection', async () => {
    const [n1, n2] = cluster.nodes;
    const first = await n1!.client({ clientId: 'twice', protocolVersion: 5 });
    const closed = new Promise<number | undefined>((resolve) => first.once('disconnect', (packet) => resolve(packet.reasonCode)));
    await n2!.client({ clientId: 'twice', protocolVersion: 5 });
    assert.equal(await closed, 0x8e);
  });

  it('a will is published once, by the node that held the connection, when its session is taken over', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const watcher = await n3!.client({ clientId: 'will-watcher' });
    await watcher.subscribeAsync('wills/#', { qos: 1 });
    await until(async () => (await n1!.status()).peers.find((p) => p.node === 'n3')!.routes > 0, 'the watcher route', 5000);
    await n1!.client({ clientId: 'testament', clean: false, will: { topic: 'wills/testament', payload: Buffer.from('gone'), qos: 1, retain: false } });
    await n2!.client({ clientId: 'testament', clean: false });
    assert.deepEqual((await collect(watcher, 1)).map((m) => m.payload.toString()), ['gone']);
    // A second will would reach n3 from n1 or n2 before the markers published there now.
    const markers = await Promise.all([n1!.client({ clientId: 'will-mark-1' }), n2!.client({ clientId: 'will-mark-2' })]);
    await Promise.all(markers.map((m, i) => m.publishAsync('wills/marker', `n${i + 1}`, { qos: 1 })));
    await expectOnly(watcher, 'wills/marker=n1', 'wills/marker=n2');
  });

  it('retained messages reach a node that joins later, and a change made anywhere wins everywhere', async () => {
    const [n1, n2] = cluster.nodes;
    const pub = await n1!.client({ clientId: 'retainer' });
    await pub.publishAsync('config/a', 'one', { qos: 1, retain: true });
    await pub.publishAsync('config/b', 'gone soon', { qos: 1, retain: true });
    const pub2 = await n2!.client({ clientId: 'retainer2' });
    await pub2.publishAsync('config/a', 'two', { qos: 1, retain: true });
    await pub2.publishAsync('config/b', '', { qos: 1, retain: true });
    const n4 = await cluster.add();
    await cluster.ready();
    const late = await n4.client({ clientId: 'late' });
    await late.subscribeAsync('config/#', { qos: 1 });
    const got = await collect(late, 1);
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.packet.retain]), [['config/a', 'two', true]]);
    for (const node of [n1!, n2!]) {
      const c = await node.client();
      await c.subscribeAsync('config/#', { qos: 1 });
      assert.deepEqual((await collect(c, 1)).map((m) => m.payload.toString()), ['two'], `on ${node.id}`);
    }
  });

  it('concurrent retained updates on different nodes end with the same message on every node', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const a = await n1!.client({ clientId: 'concurrent-a' });
    const b = await n2!.client({ clientId: 'concurrent-b' });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => [a.publishAsync('contested', `a${i}`, { qos: 1, retain: true }), b.publishAsync('contested', `b${i}`, { qos: 1, retain: true })]).flat(),
    );
    const value = async (node: typeof n1): Promise<string> => {
      const c = await node!.client();
      await c.subscribeAsync('contested', { qos: 1 });
      const [m] = await collect(c, 1);
      await c.endAsync();
      return m!.payload.toString();
    };
    await until(async () => new Set(await Promise.all([n1, n2, n3].map(value))).size === 1, 'one value everywhere', 5000);
  });

  it('a node that leaves is waited for a moment, then its routes are gone from every other node', async () => {
    const n4 = cluster.nodes.find((n) => n.id === 'n4')!;
    const sub = await n4.client({ clientId: 'leaving-sub' });
    await sub.subscribeAsync('leaving/#');
    await until(async () => ((await cluster.nodes[0]!.status()).peers.find((p) => p.node === 'n4')?.routes ?? 0) > 0, 'the route', 5000);
    await cluster.stop(n4);
    await until(async () => (await cluster.nodes[0]!.status()).peers.every((p) => p.node !== 'n4'), 'n4 to be given up', 10_000);
    await cluster.ready();
  });

  it('etcd holds member keys and persistent-session keys and homes, and nothing per message or subscription', async () => {
    const res = await fetch(`${etcd.url}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from('\0').toString('base64'), range_end: Buffer.from('\0').toString('base64'), keys_only: true }),
    });
    const keys = ((await res.json()) as { kvs?: { key: string }[] }).kvs!.map((kv) => Buffer.from(kv.key, 'base64').toString());
    const members = keys.filter((k) => k.startsWith('/arbormq/arbormq/members/'));
    const sessions = keys.filter((k) => k.startsWith('/arbormq/arbormq/sessions/'));
    const homes = keys.filter((k) => k.startsWith('/arbormq/arbormq/homes/'));
    assert.deepEqual(members.sort(), ['/arbormq/arbormq/members/n1', '/arbormq/arbormq/members/n2', '/arbormq/arbormq/members/n3']);
    assert.equal(keys.length, members.length + sessions.length + homes.length, JSON.stringify(keys));
    assert.ok(sessions.length <= 6, `only the persistent sessions these tests made: ${JSON.stringify(sessions)}`);
    assert.deepEqual(
      homes.map((k) => k.slice('/arbormq/arbormq/homes/'.length)).sort(),
      sessions.map((k) => k.slice('/arbormq/arbormq/sessions/'.length)).sort(),
      'a home per persistent session',
    );
  });
});
