// A persistent session belongs to the user who created it on every node of a cluster: a takeover
// from another node is refused to anyone else, and the session, its connection and its queue stay
// where they were.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { collect, connectClient } from '../../helpers/broker.js';
import { writePasswordFile } from '../../helpers/access-files.js';
import { startCluster, type TestCluster } from '../../helpers/cluster.js';
import { etcdMissing, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';

describe('a persistent session across the nodes of a cluster with passwords and an ACL', { skip: etcdMissing }, () => {
  let dir: string;
  let etcd: TestEtcd;
  let cluster: TestCluster;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-cluster-owner-'));
    await writePasswordFile(join(dir, 'passwd'), ['alice', 'bob', 'admin']);
    await writeFile(join(dir, 'acl'), 'user admin\ntopic readwrite #\npattern readwrite %u/#\n');
    etcd = await startEtcd();
    cluster = await startCluster(etcd, 2, { config: { passwordFile: join(dir, 'passwd'), aclFile: join(dir, 'acl') } });
    await cluster.ready();
  });
  after(async () => {
    await cluster?.close();
    await etcd?.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const [version, refused] of [[5, 0x87], [4, 0x05]] as const) {
    it(`another user naming it on another node is refused (CONNACK 0x${refused.toString(16).padStart(2, '0')}) and takes neither the connection nor the queue (MQTT ${version === 5 ? '5.0' : '3.1.1'})`, async () => {
      const [n1, n2] = cluster.nodes;
      const clientId = `alice-phone-${version}`;
      const persistent = { clientId, clean: false, protocolVersion: version, ...(version === 5 ? { properties: { sessionExpiryInterval: 600 } } : {}) };
      const alice = await n1!.client({ ...persistent, username: 'alice', password: 'pw' });
      await alice.subscribeAsync('alice/#', { qos: 1 });
      await until(async () => (await n2!.status()).peers.find((p) => p.node === 'n1')!.routes > 0, 'n2 to learn alice/#', 5000);
      const admin = await n2!.client({ username: 'admin', password: 'pw', protocolVersion: 5 });
      const bobAs = { ...persistent, username: 'bob', password: 'pw' };

      const refusal = (e: { code?: number }): boolean => e.code === refused;
      await assert.rejects(connectClient(n2!.url, bobAs), refusal, 'alice connected on n1');
      await admin.publishAsync('alice/1', 'live', { qos: 1 });
      assert.deepEqual((await collect(alice, 1, 5000)).map((m) => m.payload.toString()), ['live'], 'alice is still connected on n1 and subscribed');

      await alice.endAsync();
      await admin.publishAsync('alice/2', 'queued', { qos: 1 });
      await assert.rejects(connectClient(n2!.url, bobAs), refusal, 'alice away');
      const back = await n2!.client({ ...persistent, username: 'alice', password: 'pw' });
      assert.deepEqual((await collect(back, 1, 5000)).map((m) => [m.topic, m.payload.toString()]), [['alice/2', 'queued']], 'her queue moved with her, not to bob');
    });
  }
});
