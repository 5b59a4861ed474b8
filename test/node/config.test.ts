import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { envName, loadConfig } from '../../host/node/config.js';
import { ConfigError } from '../../host/node/config-error.js';
import { collect, connectClient } from '../helpers/broker.js';
import { BIN, kill, startCli, type RunningCli } from '../helpers/cli.js';

describe('configuration: file, environment, command line', () => {
  let dir: string;
  const write = async (name: string, value: unknown): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value));
    return path;
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-config-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads a JSON file, resolving its relative paths against the file', async () => {
    const path = await write('full.json', {
      listeners: [{ port: 1883 }, { protocol: 'mqtts', port: 8883, certFile: 'tls/server.crt', keyFile: 'tls/server.key' }, { protocol: 'ws', port: 8080 }],
      http: { port: 9100 },
      passwordFile: 'passwd',
      maxConnections: 1000,
      maxPacketSize: 65536,
      logLevel: 'warn',
      sysInterval: 5,
    });
    const { server, logLevel } = await loadConfig({ config: path }, {}, '/somewhere/else');
    assert.equal(logLevel, 'warn');
    assert.equal(server.passwordFile, join(dir, 'passwd'));
    assert.equal(server.listeners![1]!.protocol, 'mqtts');
    assert.equal((server.listeners![1] as { certFile: string }).certFile, join(dir, 'tls/server.crt'));
    assert.deepEqual(server.http, { port: 9100 });
    assert.equal(server.maxConnections, 1000);
    assert.equal(server.maxPacketSize, 65536);
    assert.equal(server.sysInterval, 5);
  });

  it('lets ARBORMQ_* variables override the file, and command-line options override both', async () => {
    const path = await write('base.json', { maxConnections: 10, maxInflight: 5, listeners: [{ port: 1883 }, { protocol: 'ws', port: 8080 }] });
    const env = {
      ARBORMQ_CONFIG: path,
      ARBORMQ_MAX_CONNECTIONS: '20',
      ARBORMQ_ALLOW_ANONYMOUS: 'false',
      ARBORMQ_PORT: '1999',
      ARBORMQ_HTTP_PORT: '9200',
      ARBORMQ_MAX_UNAUTHENTICATED_BYTES: '131072',
      ARBORMQ_MAX_UNAUTHENTICATED_TOTAL_BYTES: '33554432',
    };
    const fromEnv = await loadConfig({}, env, dir);
    assert.equal(fromEnv.server.maxConnections, 20);
    assert.equal(fromEnv.server.maxUnauthenticatedBytes, 131072);
    assert.equal(fromEnv.server.maxUnauthenticatedTotalBytes, 33554432);
    assert.equal(fromEnv.server.maxInflight, 5);
    assert.equal(fromEnv.server.allowAnonymous, false);
    assert.equal(fromEnv.server.listeners![0]!.port, 1999);
    assert.deepEqual(fromEnv.server.http, { port: 9200 });
    const fromCli = await loadConfig({ port: '2000', host: '127.0.0.1', dataDir: 'state', verbose: true }, env, dir);
    assert.equal(fromCli.server.listeners![0]!.port, 2000);
    assert.deepEqual(
      fromCli.server.listeners!.map((l) => l.host),
      ['127.0.0.1', '127.0.0.1'],
    );
    assert.equal(fromCli.server.dataDir, join(dir, 'state'));
    assert.equal(fromCli.logLevel, 'debug');
  });

  it('--ws-port and ARBORMQ_WS_PORT add a WebSocket listener beside the MQTT one, or move the file\'s', async () => {
    const listeners = async (cli: Parameters<typeof loadConfig>[0], env: NodeJS.ProcessEnv = {}) => (await loadConfig(cli, env, dir)).server.listeners;
    assert.deepEqual(await listeners({ wsPort: '8080' }), [
      { protocol: 'mqtt', port: 1883 },
      { protocol: 'ws', port: 8080 },
    ]);
    assert.deepEqual(await listeners({}, { ARBORMQ_WS_PORT: '8081' }), [
      { protocol: 'mqtt', port: 1883 },
      { protocol: 'ws', port: 8081 },
    ]);
    // The command line wins over the environment; --port and --host apply to the listeners as usual.
    assert.deepEqual(await listeners({ wsPort: '8082', port: '1884', host: '127.0.0.1' }, { ARBORMQ_WS_PORT: '8081' }), [
      { protocol: 'mqtt', port: 1884, host: '127.0.0.1' },
      { protocol: 'ws', port: 8082, host: '127.0.0.1' },
    ]);
    const file = await write('ws.json', { listeners: [{ port: 1883 }, { protocol: 'ws', port: 9001, path: '/ws' }] });
    assert.deepEqual(await listeners({ config: file, wsPort: '0' }), [
      { protocol: 'mqtt', port: 1883 },
      { protocol: 'ws', port: 0, path: '/ws' },
    ]);
    await assert.rejects(loadConfig({ wsPort: 'web' }, {}, dir), /--ws-port: must be an integer from 0 to 65535, got "web"/);
    await assert.rejects(loadConfig({}, { ARBORMQ_WS_PORT: '70000' }, dir), /ARBORMQ_WS_PORT: must be from 0 to 65535/);
  });

  it('defaults $SYS to every 10 seconds for the command', async () => {
    assert.equal((await loadConfig({}, {}, dir)).server.sysInterval, 10);
  });

  it('names the field and the reason for every unusable setting', async () => {
    const cases: [unknown, RegExp][] = [
      [{ maxConection: 5 }, /bad\.json: maxConection: unknown setting/],
      [{ maxConnections: -1 }, /maxConnections: must be at least 0, got -1/],
      [{ maxQoS: 3 }, /maxQoS: must be from 0 to 2, got 3/],
      [{ allowAnonymous: 'yes' }, /allowAnonymous: must be true or false/],
      [{ logLevel: 'loud' }, /logLevel: must be one of debug, info, warn, error/],
      [{ listeners: [{ protocol: 'mqtts', port: 8883 }] }, /listeners\[0\]\.certFile: is required for mqtts/],
      [{ listeners: [{ protocol: 'wss', port: 1, certFile: 'c', keyFile: 'k', requireCertificate: true }] }, /listeners\[0\]\.caFile: is required with requireCertificate/],
      [{ listeners: [{ protocol: 'mqtts', port: 1, certFile: 'c', keyFile: 'k', useIdentityAsUsername: true }] }, /useIdentityAsUsername: needs requireCertificate/],
      [{ listeners: [{ protocol: 'mqtt', port: 1, path: '/mqtt' }] }, /listeners\[0\]\.path: not a setting of an mqtt listener/],
      [{ listeners: [{ protocol: 'quic', port: 1 }] }, /listeners\[0\]\.protocol: must be one of mqtt, mqtts, ws, wss/],
      [{ listeners: [{ port: 70000 }] }, /listeners\[0\]\.port: must be from 0 to 65535/],
      [{ http: { port: 9100, tls: true } }, /http\.tls: not a setting of the HTTP endpoint/],
      ['{ not json', /not valid JSON/],
    ];
    for (const [content, message] of cases) {
      const path = await write('bad.json', content);
      await assert.rejects(loadConfig({ config: path }, {}, dir), (e: Error) => e instanceof ConfigError && message.test(e.message), String(message));
    }
    await assert.rejects(loadConfig({}, { ARBORMQ_MAX_INFLIGHT: 'lots' }, dir), /ARBORMQ_MAX_INFLIGHT: must be an integer, got "lots"/);
    await assert.rejects(loadConfig({ port: '99999' }, {}, dir), /--port: must be from 0 to 65535/);
    await assert.rejects(loadConfig({ config: join(dir, 'missing.json') }, {}, dir), /--config: cannot read/);
  });

  it('timer overflow attack: refuses every duration outside its range (2^31-1 ms where it drives a timer), naming the field, and takes the range ends', async () => {
    const cases: [string, string, string][] = [
      ['connectTimeoutMs', '3000000000', 'must be from 1 to 2147483647 ms, got 3000000000'],
      ['connectTimeoutMs', '0', 'must be from 1 to 2147483647 ms, got 0'],
      ['shutdownTimeoutMs', '2147483648', 'must be from 0 to 2147483647 ms, got 2147483648'],
      ['sysInterval', '2200000', 'must be from 0 to 2147483 s, got 2200000'],
      ['authFailureWindowSeconds', '2147484', 'must be from 1 to 2147483 s, got 2147484'],
      ['maxKeepAlive', '65536', 'must be from 0 to 65535 s, got 65536'],
      ['maxSessionExpiry', '4294967296', 'must be from 0 to 4294967295 s, got 4294967296'],
    ];
    for (const [key, value, reason] of cases) {
      const path = await write('duration.json', `{ "${key}": ${value} }`);
      await assert.rejects(loadConfig({ config: path }, {}, dir), { name: 'ConfigError', message: `${path}: ${key}: ${reason}` });
      await assert.rejects(loadConfig({}, { [envName(key)]: value }, dir), { name: 'ConfigError', message: `${envName(key)}: ${reason}` });
    }
    const ends = await loadConfig({}, { ARBORMQ_CONNECT_TIMEOUT_MS: '2147483647', ARBORMQ_SHUTDOWN_TIMEOUT_MS: '2147483647', ARBORMQ_SYS_INTERVAL: '2147483' }, dir);
    assert.equal(ends.server.connectTimeoutMs, 2 ** 31 - 1);
    assert.equal(ends.server.shutdownTimeoutMs, 2 ** 31 - 1);
    assert.equal(ends.server.sysInterval, 2_147_483);
    for (const [variable, value] of [['ARBORMQ_CONNECT_TIMEOUT_MS', '3000000000'], ['ARBORMQ_SYS_INTERVAL', '2200000']]) {
      const r = spawnSync(process.execPath, [BIN, '--memory', '-p', '0', '--host', '127.0.0.1'], { encoding: 'utf8', env: { ...process.env, [variable]: value } });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`invalid configuration: ${variable}: must be from .* got ${value}`));
    }
  });

  it('makes `arbormq` exit 2 with the field and the reason, for a bad file and for a file it refers to', async () => {
    const bad = await write('exit.json', { listeners: [{ port: 0 }], maxInflight: 0 });
    const r = spawnSync(process.execPath, [BIN, '-c', bad], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid configuration: .*exit\.json: maxInflight: must be from 1 to 65535, got 0/);
    const missing = await write('missing-acl.json', { listeners: [{ port: 0, host: '127.0.0.1' }], aclFile: 'no-such-acl' });
    const m = spawnSync(process.execPath, [BIN, '-c', missing], { encoding: 'utf8' });
    assert.equal(m.status, 2);
    assert.match(m.stderr, /invalid configuration: aclFile: cannot read ACL file .*no-such-acl/);
    const acl = await write('broken.acl', 'topic read a\nwrite b\n');
    const broken = await write('broken-acl.json', { listeners: [{ port: 0, host: '127.0.0.1' }], aclFile: acl });
    const b = spawnSync(process.execPath, [BIN, '-c', broken], { encoding: 'utf8' });
    assert.equal(b.status, 2);
    assert.match(b.stderr, /aclFile: .*broken\.acl line 2: unknown keyword "write"/);
  });
});

describe('arbormq with a config file: TCP, WebSocket and HTTP listeners from one process', () => {
  let dir: string;
  let cli: RunningCli | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-cli-config-'));
  });
  after(async () => {
    await kill(cli);
    await rm(dir, { recursive: true, force: true });
  });

  it('serves MQTT.js over ws, applies an ARBORMQ_* limit, and exposes /metrics', async () => {
    const path = join(dir, 'arbormq.json');
    await writeFile(path, JSON.stringify({ listeners: [{ port: 0 }, { protocol: 'ws', port: 0 }], http: { port: 0 } }));
    cli = await startCli(['-c', path, '--host', '127.0.0.1', '--memory'], { env: { ARBORMQ_MAX_CONNECTIONS: '2' }, expect: 3 });
    const ws = await connectClient(`ws://127.0.0.1:${cli.ports.get('ws')}/mqtt`, { protocolVersion: 5 });
    await ws.subscribeAsync('cfg/#');
    const tcp = await connectClient(`mqtt://127.0.0.1:${cli.ports.get('mqtt')}`);
    const got = collect(ws, 1);
    await tcp.publishAsync('cfg/x', 'over ws');
    assert.equal((await got)[0]!.payload.toString(), 'over ws');
    await assert.rejects(connectClient(`mqtt://127.0.0.1:${cli.ports.get('mqtt')}`, { protocolVersion: 5 }), /Quota exceeded/i);
    const metrics = await (await fetch(`http://127.0.0.1:${cli.ports.get('http')}/metrics`)).text();
    assert.match(metrics, /^arbormq_clients_connected 2$/m);
    assert.match(metrics, /^arbormq_connections_refused_total\{reason="max_connections"\} 1$/m);
    ws.end(true);
    tcp.end(true);
    assert.equal(await cli.stop('SIGTERM'), 0);
  });
});
