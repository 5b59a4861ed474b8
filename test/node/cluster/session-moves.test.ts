import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { Message } from '../../../host/core/model/message.js';
import { EntryReader, relayTarget, writeEntry } from '../../../host/node/cluster/forward-codec.js';
import { FrameReader, FrameType, FrameWriter } from '../../../host/node/cluster/frame.js';
import { MoveCut, MovedAway, type MoveWitness } from '../../../host/node/cluster/session-moves.js';
import { loadNodeCore } from '../../../host/node/load-core.js';
import { received as inbox } from '../../helpers/broker.js';
import { startCluster, type TestCluster, untilEveryAcknowledgedDelivered } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';

describe('the cut of a move', () => {
  /** Peers linked at the move, each node's process named `${node}-a`. */
  const witnesses = (nodes: string[]): Map<string, MoveWitness> => new Map(nodes.map((n) => [n, { incarnation: `${n}-a`, linked: true }]));

  it('a forward is the old owner\'s until its node\'s pass, and up to the pass\'s sequence number after it', () => {
    const cut = new MoveCut('n2/x/1', 'c', witnesses(['n1', 'n3']), () => undefined);
    clearTimeout(cut.timer);
    assert.equal(cut.before('n3', 'n3-a', 1000), true, 'no pass yet: routed before the node knew the new routes, as far as is known');
    cut.passed('n3', 7);
    assert.deepEqual([cut.before('n3', 'n3-a', 7), cut.before('n3', 'n3-a', 8)], [true, false]);
    const applied = new Map([['n1', 3], ['n3', 6]]);
    const current = (n: string) => ({ incarnation: `${n}-a`, applied: applied.get(n)! });
    assert.equal(cut.complete(current), false, 'n1 has not passed');
    cut.passed('n1', 3);
    assert.equal(cut.complete(current), false, 'forward 7 of n3 is still on its way');
    applied.set('n3', 7);
    assert.equal(cut.complete(current), true);
  });

  it('a node\'s process started after the move forwards nothing before the cut, and is not waited for, though its old process never passed', () => {
    const cut = new MoveCut('n2/x/1', 'c', witnesses(['n1', 'n3']), () => undefined);
    clearTimeout(cut.timer);
    cut.passed('n3', 7);
    assert.deepEqual([cut.before('n1', 'n1-a', 1), cut.before('n1', 'n1-b', 1)], [true, false], 'sequence numbers start again in the new process');
    assert.equal(cut.before('n4', 'n4-a', 1), false, 'a node unknown at the move learned the new routes first');
    const current = (n: string) => ({ incarnation: n === 'n1' ? 'n1-b' : `${n}-a`, applied: 7 });
    assert.equal(cut.complete(current), true);
  });

  it('the old owner relays what a node not linked to it at the move forwards, for the whole move, as a possible repeat, but not what a later process of it does', () => {
    const witnesses = new Map<string, MoveWitness>([
      ['n1', { incarnation: 'n1-a', linked: true }],
      ['n3', { incarnation: null, linked: false }],
      ['n4', { incarnation: 'n4-a', linked: false }],
    ]);
    const moved = new MovedAway('n2/x/1', 'c', witnesses, () => undefined, 'n2', ['a/#']);
    clearTimeout(moved.timer);
    moved.passed('n1', 5);
    assert.deepEqual([moved.before('n3', 'n3-a', 1000), moved.before('n4', 'n4-a', 1000), moved.before('n4', 'n4-b', 1)], [true, true, false]);
    assert.deepEqual([moved.uncertain('n1'), moved.uncertain('n3'), moved.uncertain('n5')], [false, true, true]);
    moved.localPassed = true;
    assert.equal(moved.complete((n) => ({ incarnation: `${n}-a`, applied: 5 })), false, 'n3 and n4 got no barrier and may never pass');
  });

  it('the old owner relays only topics the moved session\'s filters match', () => {
    const moved = new MovedAway('n2/x/1', 'c', new Map(), () => undefined, 'n2', ['a/+/c', 'd/#']);
    clearTimeout(moved.timer);
    assert.deepEqual(['a/b/c', 'd', 'd/e/f', 'a/b', '$SYS/d'].map((t) => moved.matches(t)), [true, true, true, false, false]);
  });

  it('a relayed entry names its session apart from the share groups it is for', async () => {
    const core = await loadNodeCore({});
    const handle = core.alloc(2 + 3 + 2);
    core.bytes().set([0, 3, 0x61, 0x2f, 0x62, 0x68, 0x69], core.ptr(handle));
    const message = Message.of(core, handle, 3, 7, 1, false, 0, 0, 0);
    const w = new FrameWriter(FrameType.Forward);
    writeEntry(w, 1, message, { plain: false, groups: ['g', relayTarget('client/1')], stamp: null }, 0);
    message.unref();
    const entry = new EntryReader(new FrameReader(w.finish()));
    entry.next();
    assert.deepEqual([entry.session, entry.groups, entry.topic()], ['client/1', ['g'], 'a/b']);
  });
});

describe('a session moving between nodes under load', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  before(async () => {
    etcd = await startEtcd();
    // Route announcements take 300 ms to leave each node: the nodes learn of a move late.
    cluster = await startCluster(etcd, 3, { env: () => ({ ARBORMQ_CLUSTER_FAULT: 'route-delay-ms=300' }) });
    await cluster.ready();
  });
  after(async () => {
    await cluster?.close();
    await etcd?.close();
  });

  it('misses no acknowledged QoS 1/2 message published on any node while the nodes learn its new routes, and delivers none twice', async () => {
    const [n1, n2, n3] = cluster.nodes;
    // One client on two connections keeps its QoS 2 state, as a real one does: a message it answered
    // with PUBREC on the first connection is received when its PUBREL comes on the second.
    const incomingStore = new mqtt.Store();
    const options = { clientId: 'mover', clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 600 }, incomingStore };
    const first = await n1!.client(options);
    await first.subscribeAsync('move/#', { qos: 2 });
    for (const node of [n2!, n3!]) await until(async () => (await node.status()).peers.find((p) => p.node === 'n1')!.routes > 0, `${node.id} to learn the route`, 5000);
    const acked = new Set<string>();
    let stop = false;
    const lane = async (pub: MqttClient, name: string): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const payload = `${name}-${i}`;
        await pub.publishAsync(`move/${name}/${i}`, payload, { qos: i % 2 === 0 ? 1 : 2 });
        acked.add(payload);
      }
    };
    const lanes: Promise<void>[] = [];
    for (const node of [n1!, n2!, n3!]) {
      const pub = await node.client({ clientId: `move-pub-${node.id}`, protocolVersion: 5 });
      for (let l = 0; l < 4; l++) lanes.push(lane(pub, `${node.id}.${l}`));
    }
    await until(() => acked.size >= 200, 'load before the move', 10_000);
    const moved = await n2!.client(options);
    const atMove = acked.size;
    // Past the window: the moved routes (300 ms late) are everywhere.
    await until(() => acked.size >= atMove + 600, 'load after the move', 20_000);
    stop = true;
    await Promise.all(lanes);
    await untilEveryAcknowledgedDelivered(acked, [first, moved]);
    const twice = inbox(moved).map((m) => m.payload.toString()).filter((p, i, all) => all.indexOf(p) !== i);
    assert.deepEqual(twice, [], 'nothing delivered twice to the moved session');
    assert.ok((await n2!.status()).takeovers >= 1);
  });
});
