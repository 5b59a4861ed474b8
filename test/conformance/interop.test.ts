import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type ServerTestBroker, startBroker } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';

/**
 * Interoperability with another implementation: a scripted session through Mosquitto's
 * command-line clients (Debian's mosquitto-clients), for both protocol versions.
 */
const available = spawnSync('sh', ['-c', 'command -v mosquitto_sub && command -v mosquitto_pub']).status === 0;
const skip = available ? false : 'mosquitto_pub / mosquitto_sub not installed (apt-get install mosquitto-clients)';

/** Runs mosquitto_pub to completion (asynchronously: the broker under test lives in this process). */
async function pub(port: number, args: string[]): Promise<void> {
  const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = once(child, 'close');
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill(), 5000);
  const [code] = (await exited) as [number | null];
  clearTimeout(timer);
  assert.equal(code, 0, `mosquitto_pub ${args.join(' ')}: ${stderr}`);
}

/** Starts mosquitto_sub and resolves, once it has printed `count` lines, with them. */
async function sub(b: ServerTestBroker, args: string[], count: number, after: () => Promise<void> = async () => undefined): Promise<string[]> {
  const before = new Set(b.broker.connections);
  const child = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(b.port), '-C', String(count), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  // 'close', not 'exit': only then has all of stdout been read. Listened for at once: with a
  // retained message it may come before `after` runs.
  const exited = once(child, 'close');
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let done = false;
  void exited.then(() => (done = true));
  // Subscribed (or already done: a retained message can satisfy -C before this looks).
  await until(() => done || [...b.broker.connections].some((c) => !before.has(c) && (c.session?.subscriptions.size ?? 0) > 0), 'mosquitto_sub to subscribe');
  await after();
  const timer = setTimeout(() => child.kill(), 5000);
  await exited;
  clearTimeout(timer);
  return out.trimEnd().split('\n');
}

describe('interoperability with mosquitto_pub / mosquitto_sub', { skip }, () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  for (const version of ['mqttv311', 'mqttv5'] as const) {
    it(`runs a scripted session: retained, QoS 2, wildcards, persistent session (${version})`, async () => {
      const V = ['-V', version];
      // 1. A retained message reaches a later subscriber with the retain flag set.
      await pub(b.port, [...V, '-t', 'interop/state', '-m', 'on', '-r', '-q', '1']);
      assert.deepEqual(await sub(b, [...V, '-t', 'interop/+', '-F', '%r %t %p'], 1), ['1 interop/state on']);
      // 2. QoS 2 end to end, through a wildcard subscription, in order.
      const got = await sub(b, [...V, '-t', 'interop/q2/#', '-q', '2', '-F', '%q %t %p'], 2, async () => {
        await pub(b.port, [...V, '-t', 'interop/q2/a', '-m', 'first', '-q', '2']);
        await pub(b.port, [...V, '-t', 'interop/q2/b/c', '-m', 'second', '-q', '2']);
      });
      assert.deepEqual(got, ['2 interop/q2/a first', '2 interop/q2/b/c second']);
      // 3. A persistent session queues QoS 1 while its client is away.
      const persistent = [...V, '-i', `interop-${version}`, '-c', '-q', '1', '-t', 'interop/queue'];
      if (version === 'mqttv5') persistent.push('-x', '60');
      await sub(b, [...persistent, '-W', '1'], 1);
      await pub(b.port, [...V, '-t', 'interop/queue', '-m', 'while away', '-q', '1']);
      assert.deepEqual(await sub(b, [...persistent, '-F', '%t %p'], 1), ['interop/queue while away']);
      // 4. Clear the retained message.
      await pub(b.port, [...V, '-t', 'interop/state', '-n', '-r', '-q', '1']);
    });
  }

  it('forwards MQTT 5.0 user properties and content type from mosquitto_pub to mosquitto_sub', async () => {
    const got = await sub(b, ['-V', 'mqttv5', '-t', 'interop/props', '-F', '%P|%C|%p'], 1, () =>
      pub(b.port, ['-V', 'mqttv5', '-t', 'interop/props', '-m', 'x', '-D', 'publish', 'user-property', 'k', 'v', '-D', 'publish', 'content-type', 'text/plain']),
    );
    assert.deepEqual(got, ['k:v|text/plain|x']);
  });
});
