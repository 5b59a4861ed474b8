import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../host/node/config.js';
import { ConfigError } from '../../../host/node/config-error.js';

describe('cluster configuration: file, ARBORMQ_CLUSTER_*, flags', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-cluster-config-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const file = async (value: unknown): Promise<string> => {
    const path = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
    await writeFile(path, JSON.stringify(value));
    return path;
  };

  it('reads the cluster object, resolving its files against the config file', async () => {
    const path = await file({ cluster: { nodeId: 'n1', etcd: ['http://127.0.0.1:2379'], port: 7883, advertise: 'ws://10.0.0.5:7883', secretFile: 'cluster.secret' } });
    const { server } = await loadConfig({ config: path }, {}, '/elsewhere');
    assert.deepEqual(server.cluster, { nodeId: 'n1', etcd: ['http://127.0.0.1:2379'], port: 7883, advertise: 'ws://10.0.0.5:7883', secretFile: join(dir, 'cluster.secret') });
  });

  it('without a cluster setting there is none', async () => {
    const { server } = await loadConfig({}, {}, dir);
    assert.equal(server.cluster, undefined);
  });

  it('takes every key from ARBORMQ_CLUSTER_*, and flags win over them', async () => {
    const env = {
      ARBORMQ_CLUSTER_NODE_ID: 'from-env',
      ARBORMQ_CLUSTER_ETCD: 'http://a:2379, http://b:2379',
      ARBORMQ_CLUSTER_PORT: '7000',
      ARBORMQ_CLUSTER_SECRET_FILE: 's',
      ARBORMQ_CLUSTER_LEASE_TTL_SECONDS: '3',
    };
    const { server } = await loadConfig({ cluster: { nodeId: 'from-flag', port: '7001', advertise: 'ws://h:7001' } }, env, dir);
    assert.deepEqual(server.cluster, {
      nodeId: 'from-flag',
      etcd: ['http://a:2379', 'http://b:2379'],
      port: 7001,
      secretFile: join(dir, 's'),
      leaseTtlSeconds: 3,
      advertise: 'ws://h:7001',
    });
  });

  it('refuses an incomplete or invalid setting, naming the field', async () => {
    const refused = async (cli: Parameters<typeof loadConfig>[0], env: NodeJS.ProcessEnv, field: RegExp): Promise<void> => {
      await assert.rejects(loadConfig(cli, env, dir), (error: Error) => error instanceof ConfigError && field.test(error.message));
    };
    await refused({ cluster: { nodeId: 'n1' } }, {}, /cluster\.etcd/);
    await refused({ cluster: { etcd: 'http://e:2379' } }, {}, /cluster\.nodeId/);
    await refused({ cluster: { nodeId: 'n1', etcd: 'http://e:2379' } }, {}, /cluster\.secretFile/);
    await refused({ cluster: { nodeId: 'bad id', etcd: 'http://e:2379', secretFile: 's' } }, {}, /--node-id/);
    await refused({ cluster: { nodeId: 'n1', etcd: 'ftp://e', secretFile: 's' } }, {}, /--cluster-etcd/);
    await refused({ cluster: { nodeId: 'n1', etcd: 'http://e:2379', secretFile: 's', port: '70000' } }, {}, /--cluster-port/);
    await refused({ cluster: { nodeId: 'n1', etcd: 'http://e:2379', secretFile: 's', advertise: 'http://h:1' } }, {}, /--cluster-advertise/);
    await refused({}, { ARBORMQ_CLUSTER_NODE_ID: 'n1', ARBORMQ_CLUSTER_ETCD: 'http://e:2379', ARBORMQ_CLUSTER_CERT_FILE: 'c' }, /certFile/);
    await refused({ config: await file({ cluster: { nodeId: 'n1', etcd: ['http://e:2379'], secretFile: 's', bogus: 1 } }) }, {}, /cluster\.bogus/);
  });
});
