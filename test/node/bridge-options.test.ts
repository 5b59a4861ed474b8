// The "bridges" setting: read from the config file (paths relative to it), refused with the field
// named when it cannot work, and run by a real `arbormq` process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../host/node/config.js';
import { ConfigError } from '../../host/node/config-error.js';
import { ArborServer } from '../../host/node/server.js';
import { collect } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';
import { BIN, kill, startCli, type RunningCli } from '../helpers/cli.js';
import { local, startServer, type TestServer } from '../helpers/server.js';

describe('bridges in the config file', () => {
  let dir: string;
  const write = async (name: string, value: unknown): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value));
    return path;
  };
  const run = (config: string) => spawnSync(process.execPath, [BIN, '-c', config, '--memory', '--port', '0', '--host', '127.0.0.1'], { encoding: 'utf8', timeout: 20_000 });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-bridge-config-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads each bridge, its files relative to the config file', async () => {
    const path = await write('bridges.json', {
      bridges: [
        {
          name: 'cloud',
          url: 'mqtts://broker.example:8883',
          clientId: 'site-1',
          username: 'site',
          passwordFile: 'secrets/bridge.pass',
          caFile: 'tls/ca.crt',
          protocolVersion: 4,
          keepAlive: 20,
          backoff: { initialMs: 1000, maxMs: 60_000 },
          topics: [{ filter: 'sensors/#', direction: 'out', qos: 1, localPrefix: 'site/', remotePrefix: 'cloud/site-1/' }],
        },
      ],
    });
    const { server } = await loadConfig({ config: path }, {}, '/elsewhere');
    assert.deepEqual(server.bridges, [
      {
        name: 'cloud',
        url: 'mqtts://broker.example:8883',
        clientId: 'site-1',
        username: 'site',
        passwordFile: join(dir, 'secrets/bridge.pass'),
        caFile: join(dir, 'tls/ca.crt'),
        protocolVersion: 4,
        keepAlive: 20,
        backoff: { initialMs: 1000, maxMs: 60_000 },
        topics: [{ filter: 'sensors/#', direction: 'out', qos: 1, localPrefix: 'site/', remotePrefix: 'cloud/site-1/' }],
      },
    ]);
  });

  it('refuses what cannot work, naming the field, with exit code 2', async () => {
    const cases: [unknown, RegExp][] = [
      [{ name: 'x', url: 'mqtt://h', topics: [{ filter: 'a', direction: 'out' }], password: 'inline' }, /bridges\[0\]\.password: not a setting of a bridge/],
      [{ url: 'mqtt://h', topics: [] }, /bridges\[0\]\.name: is required/],
      [{ name: 'a/b', url: 'mqtt://h', topics: [{ filter: 'a', direction: 'out' }] }, /bridges\[0\]\.name: is required, without "\/"/],
      [{ name: 'x', url: 'http://h', topics: [{ filter: 'a', direction: 'out' }] }, /bridges\[0\]: url must be an mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\/ URL/],
      [{ name: 'x', url: 'mqtt://h', topics: [{ filter: 'a', direction: 'sideways' }] }, /bridges\[0\]: topics\[0\]\.direction must be 'in', 'out' or 'both'/],
      [{ name: 'x', url: 'mqtt://h', topics: [{ filter: 'a', direction: 'out', qos: '1' }] }, /bridges\[0\]\.topics\[0\]\.qos: must be an integer/],
      [{ name: 'x', url: 'mqtt://h', passwordFile: 'missing', topics: [{ filter: 'a', direction: 'out' }] }, /bridges\[0\]\.passwordFile: cannot read/],
      [{ name: 'x', url: 'mqtt://h', caFile: 'bridges.json', topics: [{ filter: 'a', direction: 'out' }] }, /bridges\[0\]\.caFile: TLS files need an mqtts:\/\/ or wss:\/\/ url/],
    ];
    for (const [i, [bridge, expected]] of cases.entries()) {
      const path = await write(`bad-${i}.json`, { bridges: [bridge] });
      await assert.rejects(
        loadConfig({ config: path }, {}, dir).then(({ server }) => ArborServer.start({ ...server, memory: true, listeners: [local] })),
        (error: Error) => error instanceof ConfigError && expected.test(error.message),
        `case ${i}`,
      );
    }
    const twice = { name: 'same', url: 'mqtt://h', topics: [{ filter: 'a', direction: 'out' }] };
    const r = run(await write('twice.json', { bridges: [twice, twice] }));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid configuration: bridges\[1\]\.name: "same" names another bridge too/);
  });

  describe('run by the arbormq command', () => {
    let remote: TestServer;
    let cli: RunningCli | undefined;
    before(async () => {
      remote = await startServer({ listeners: [local] });
    });
    after(async () => {
      await kill(cli);
      await remote.close();
    });

    it('carries messages to the remote broker, logs its state, and stops cleanly on SIGTERM', async () => {
      await writeFile(join(dir, 'bridge.pass'), 'not-checked\n');
      const config = await write('run.json', {
        bridges: [{ name: 'up', url: remote.url('mqtt'), clientId: 'cli-bridge', username: 'u', passwordFile: 'bridge.pass', backoff: { initialMs: 50, maxMs: 200 }, topics: [{ filter: 'cli/#', direction: 'out' }] }],
      });
      const sink = await remote.client(remote.url('mqtt'), { protocolVersion: 5 });
      await sink.subscribeAsync('cli/#', { qos: 1 });
      cli = await startCli(['-c', config, '--port', '0', '--host', '127.0.0.1', '--data-dir', join(dir, 'data')]);
      const online = (): boolean => cli!.logs.some((l) => l.includes('"msg":"bridge online"') && l.includes('"bridge":"up"'));
      await until(online, 'the bridge to be online', 10_000);
      assert.ok(online(), cli.logs.join('\n'));
      const app = await remote.client(`mqtt://127.0.0.1:${cli.ports.get('mqtt')}`, { protocolVersion: 5 });
      await app.publishAsync('cli/hello', 'through the bridge', { qos: 1 });
      const [m] = await collect(sink, 1, 5000);
      assert.equal(`${m!.topic}=${m!.payload}`, 'cli/hello=through the bridge');
      await app.endAsync();
      assert.equal(await cli.stop(), 0);
    });
  });
});
