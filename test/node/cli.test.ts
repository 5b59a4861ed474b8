import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { collect, connectClient } from '../helpers/broker.js';

const BIN = fileURLToPath(new URL('../../bin/arbormq.js', import.meta.url));
const hasMosquittoClients = spawnSync('sh', ['-c', 'command -v mosquitto_sub && command -v mosquitto_pub']).status === 0;

/** Runs `arbormq` as a real process on an ephemeral port; resolves once it logs its port. */
async function startCli(args: string[] = []): Promise<{ child: ChildProcess; port: number; logs: string[] }> {
  const child = spawn(process.execPath, [BIN, '--port', '0', '--host', '127.0.0.1', '--memory', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = '';
    child.stderr!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        const entry = JSON.parse(line) as { msg: string; port?: number };
        if (entry.msg === 'listening') resolve(entry.port!);
      }
    });
    child.once('exit', (code) => reject(new Error(`arbormq exited with ${code}: ${logs.join('\n')}`)));
  });
  return { child, port, logs };
}

describe('arbormq command', () => {
  let cli: Awaited<ReturnType<typeof startCli>>;
  before(async () => {
    cli = await startCli();
  });
  after(async () => {
    if (cli.child.exitCode === null) {
      cli.child.kill('SIGKILL');
      await once(cli.child, 'exit');
    }
  });

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
    const url = `mqtt://127.0.0.1:${cli.port}`;
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
      const port = String(cli.port);
      const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-V', version, '-t', 'interop/#', '-q', '1', '-C', '2', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      sub.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((r) => setTimeout(r, 300));
      const pub1 = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', version, '-t', 'interop/a', '-m', 'one', '-q', '1'], { encoding: 'utf8' });
      assert.equal(pub1.status, 0, pub1.stderr);
      const pub2 = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', version, '-t', 'interop/b/c', '-m', 'two', '-q', '2'], { encoding: 'utf8' });
      assert.equal(pub2.status, 0, pub2.stderr);
      const [code] = (await Promise.race([once(sub, 'exit'), new Promise((_, reject) => setTimeout(() => reject(new Error(`mosquitto_sub got: ${out}`)), 5000))])) as [number];
      assert.equal(code, 0);
      assert.deepEqual(out.trim().split('\n'), ['interop/a one', 'interop/b/c two']);
    });
  }

  it('shuts down on SIGTERM, telling 5.0 clients 0x8B, and exits 0', async () => {
    const client = await connectClient(`mqtt://127.0.0.1:${cli.port}`, { protocolVersion: 5 });
    const reason = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
    cli.child.kill('SIGTERM');
    const [code] = (await once(cli.child, 'exit')) as [number];
    assert.equal(code, 0);
    assert.equal(await reason, 0x8b);
    client.end(true);
  });
});
