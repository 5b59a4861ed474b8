import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { collect, connectClient } from '../helpers/broker.js';
import { BIN, kill, startCli, type RunningCli } from '../helpers/cli.js';
import { until } from '../helpers/wait.js';

const hasMosquittoClients = spawnSync('sh', ['-c', 'command -v mosquitto_sub && command -v mosquitto_pub']).status === 0;

describe('arbormq command', () => {
  let cli: RunningCli;
  let port: number;
  before(async () => {
    cli = await startCli(['--port', '0', '--host', '127.0.0.1', '--memory']);
    port = cli.ports.get('mqtt')!;
  });
  after(() => kill(cli));

  it('prints usage for --help and exits 0', () => {
    const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /Usage: arbormq/);
    assert.match(r.stdout, /--port/);
  });

  it('rejects an invalid port with a message and exit code 2', () => {
    const r = spawnSync(process.execPath, [BIN, '--port', 'abc'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid configuration: --port: must be an integer/);
  });

  it('serves MQTT.js clients over TCP', async () => {
    const url = `mqtt://127.0.0.1:${port}`;
    const sub = await connectClient(url);
    await sub.subscribeAsync('cli/#', { qos: 1 });
    const pub = await connectClient(url, { protocolVersion: 5 });
    const got = collect(sub, 1);
    await pub.publishAsync('cli/hello', 'world', { qos: 1 });
    assert.equal((await got)[0]!.payload.toString(), 'world');
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  for (const version of ['mqttv311', 'mqttv5'] as const) {
    it(`interoperates with mosquitto_pub and mosquitto_sub (${version})`, { skip: hasMosquittoClients ? false : 'mosquitto_pub/mosquitto_sub not installed (apt-get install mosquitto-clients)' }, async () => {
      const p = String(port);
      // -d: its debug lines (line-buffered by stdbuf) say when the SUBACK came; the messages are the other lines.
      const sub = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', '-h', '127.0.0.1', '-p', p, '-V', version, '-t', 'interop/#', '-q', '1', '-C', '2', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      sub.stdout.on('data', (d: Buffer) => (log += d.toString()));
      await until(() => log.includes('received SUBACK'), 'mosquitto_sub to subscribe').catch((error: Error) => {
        sub.kill();
        throw error;
      });
      const pub1 = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', p, '-V', version, '-t', 'interop/a', '-m', 'one', '-q', '1'], { encoding: 'utf8' });
      assert.equal(pub1.status, 0, pub1.stderr);
      const pub2 = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', p, '-V', version, '-t', 'interop/b/c', '-m', 'two', '-q', '2'], { encoding: 'utf8' });
      assert.equal(pub2.status, 0, pub2.stderr);
      const [code] = (await Promise.race([once(sub, 'close'), new Promise((_, reject) => setTimeout(() => reject(new Error(`mosquitto_sub got: ${log}`)), 5000))])) as [number];
      assert.equal(code, 0);
      assert.deepEqual(
        log.trim().split('\n').filter((line) => line.startsWith('interop/')),
        ['interop/a one', 'interop/b/c two'],
      );
    });
  }

  it('--ws-port adds a WebSocket listener that MQTT.js reaches on /mqtt, beside the TCP one', async () => {
    const both = await startCli(['--port', '0', '--ws-port', '0', '--host', '127.0.0.1', '--memory'], { expect: 2 });
    try {
      const ws = await connectClient(`ws://127.0.0.1:${both.ports.get('ws')}/mqtt`, { protocolVersion: 5 });
      await ws.subscribeAsync('web/#', { qos: 1 });
      const tcp = await connectClient(`mqtt://127.0.0.1:${both.ports.get('mqtt')}`);
      const got = collect(ws, 1);
      await tcp.publishAsync('web/page', 'to the browser', { qos: 1 });
      assert.equal((await got)[0]!.payload.toString(), 'to the browser');
      await Promise.all([ws.endAsync(), tcp.endAsync()]);
      assert.equal(await both.stop('SIGTERM'), 0);
    } finally {
      await kill(both);
    }
  });

  it('shuts down on SIGTERM, telling 5.0 clients 0x8B, and exits 0', async () => {
    const client = await connectClient(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5 });
    const reason = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
    const code = await cli.stop('SIGTERM');
    assert.equal(code, 0);
    assert.equal(await reason, 0x8b);
    client.end(true);
  });
});
