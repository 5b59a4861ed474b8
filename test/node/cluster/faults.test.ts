import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { FrameReader, FrameType, FrameWriter, LINK_PROTOCOL_VERSION } from '../../../host/node/cluster/frame.js';
import { LINK_PATH } from '../../../host/node/cluster/link-listener.js';
import { collect, received as inbox } from '../../helpers/broker.js';
import { until } from '../../helpers/wait.js';
import { refusedWith, startCluster, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { freePort } from '../../helpers/server.js';
import { startProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';

describe('cluster faults: links, etcd, nodes', { skip: etcdMissing }, () => {
  let etcd: TestEtcd;
  let cluster: TestCluster;
  let proxy: TcpProxy;
  before(async () => {
    etcd = await startEtcd();
    // n1 dials n2 (ids sort) through a proxy the tests can cut.
    const n2Port = await freePort();
    proxy = await startProxy(n2Port);
    cluster = await startCluster(etcd, 3, {
      node: (id) => (id === 'n2' ? { port: n2Port, advertise: `ws://127.0.0.1:${proxy.port}` } : {}),
    });
    await cluster.ready();
  });
  after(async () => {
    await cluster?.close();
    await proxy?.close();
    await etcd?.close();
  });

  it('refuses a link speaking another protocol version or without the secret, saying why in the log', async () => {
    const n1 = cluster.nodes[0]!;
    const url = new URL(LINK_PATH, (await n1.status()).url);
    const attempt = async (version: number, mac: string): Promise<string> => {
      const socket = new WebSocket(url);
      const frames: Buffer[] = [];
      socket.on('message', (data: Buffer) => frames.push(data));
      await until(() => frames.length > 0, 'the challenge', 5000);
      const hello = new FrameReader(frames.shift()!);
      assert.equal(hello.type, FrameType.Hello);
      hello.u16();
      const challenge = hello.json<{ cluster: string }>();
      socket.send(new FrameWriter(FrameType.Proof).u16(version).json({ cluster: challenge.cluster, node: 'intruder', nonce: 'ab', incarnation: 'x', mac }).finish());
      await until(() => frames.length > 0, 'the refusal', 5000);
      const refusal = new FrameReader(frames.shift()!);
      assert.equal(refusal.type, FrameType.Refuse);
      socket.terminate();
      return refusal.string();
    };
    assert.match(await attempt(99, ''), new RegExp(`incompatible link protocol: the peer speaks version 99, this node speaks version ${LINK_PROTOCOL_VERSION}`));
    assert.match(await attempt(LINK_PROTOCOL_VERSION, '00'.repeat(32)), /did not prove the cluster secret/);
    await until(() => n1.cli.logs.some((l) => l.includes('cluster link refused') && l.includes('incompatible link protocol')), 'the log line', 2000);
  });

  it('a link cut mid-forward loses no acknowledged message', async () => {
    const [n1, n2] = cluster.nodes;
    const sub = await n2!.client({ clientId: 'cut-sub', clean: false });
    await sub.subscribeAsync('cut/#', { qos: 1 });
    await until(async () => (await n1!.status()).peers.find((p) => p.node === 'n2')!.routes > 0, 'the route', 5000);
    const pub = await n1!.client({ clientId: 'cut-pub' });
    const acked: string[] = [];
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      // Cut while forwards are on their way: some are sent but not yet confirmed.
      if (i === 100) proxy.cut();
      sends.push(pub.publishAsync(`cut/${i}`, `m${i}`, { qos: 1 }).then(() => void acked.push(`m${i}`)));
      if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(sends);
    await until(() => {
      const delivered = new Set(inbox(sub).map((m) => m.payload.toString()));
      return acked.every((m) => delivered.has(m));
    }, 'every acknowledged message', 10_000);
    await until(async () => (await n1!.status()).peers.find((p) => p.node === 'n2')!.up, 'the link to be back', 5000);
  });

  it('with etcd down, connected clients keep working, CONNECTs needing ownership get 0x88 / 0x03, and all is back with etcd', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const sub = await n2!.client({ clientId: 'etcd-sub' });
    await sub.subscribeAsync('etcd/#', { qos: 1 });
    const pub = await n1!.client({ clientId: 'etcd-pub' });
    await until(async () => (await n1!.status()).peers.find((p) => p.node === 'n2')!.routes > 0, 'the route', 5000);
    await etcd.stop();
    try {
      await until(async () => (await n3!.health()).code === 503, 'n3 to be fenced', 10_000);
      assert.equal((await n3!.health()).status, 'no etcd lease');
      await pub.publishAsync('etcd/down', 'still routed', { qos: 1 });
      assert.equal((await collect(sub, 1))[0]!.payload.toString(), 'still routed');
      assert.equal(await refusedWith(n3!.url, { clientId: 'needs-owner5', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 60 } }), 0x88);
      assert.equal(await refusedWith(n3!.url, { clientId: 'needs-owner4', clean: false }), 3);
      const clean = await n3!.client({ clientId: 'clean-while-down' });
      assert.equal(clean.connected, true, 'a clean session needs no ownership');
    } finally {
      await etcd.restart();
    }
    await cluster.ready();
    const back = await n3!.client({ clientId: 'needs-owner5', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 60 } });
    assert.equal(back.connected, true);
  });

  it('SIGKILL of a node under QoS 1 load: after its restart every acknowledged message reaches its persistent subscriber', async () => {
    const [n1, , n3] = cluster.nodes;
    const options = { clientId: 'survivor', clean: false };
    const sub = await n3!.client(options);
    await sub.subscribeAsync('load/#', { qos: 1 });
    await until(async () => (await n1!.status()).peers.find((p) => p.node === 'n3')!.routes > 0, 'the route', 5000);
    const pub = await n1!.client({ clientId: 'load-pub', protocolVersion: 5 });
    const acked: string[] = [];
    const sends = Array.from({ length: 300 }, (_, i) =>
      pub.publishAsync(`load/${i}`, `m${i}`, { qos: 1 }).then(
        () => void acked.push(`m${i}`),
        () => undefined,
      ),
    );
    await until(() => acked.length >= 30, 'some acknowledgements', 5000);
    await cluster.kill(n3!);
    sub.end(true);
    await cluster.restart(n3!);
    await Promise.all(sends);
    const again = await n3!.client(options);
    const delivered = (): Set<string> => new Set([...inbox(sub), ...inbox(again)].map((m) => m.payload.toString()));
    await until(() => acked.every((m) => delivered().has(m)), `every acknowledged message (${acked.length})`, 15_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${acked.filter((m) => !delivered().has(m)).join(' ')}\n${n3!.cli.logs.join('\n')}`);
    });
    assert.ok(acked.length >= 30);
  });
});
