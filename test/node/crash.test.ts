import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { connectClient, received } from '../helpers/broker.js';
import { startCli, type RunningCli } from '../helpers/cli.js';
import { until } from '../helpers/wait.js';

/**
 * The promise of issue 5: nothing acknowledged is lost, not even to kill -9. A real arbormq process
 * with a LevelDB data directory is SIGKILLed while a publisher streams to an offline persistent
 * session; after a restart the subscriber gets every message that was acknowledged.
 */
describe('crash safety (SIGKILL)', () => {
  let dir: string;
  let cli: RunningCli | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-crash-'));
  });
  afterEach(async () => {
    await cli?.stop('SIGKILL');
    cli = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (): Promise<string> => {
    cli = await startCli(['--port', '0', '--host', '127.0.0.1', '--data-dir', dir]);
    return `mqtt://127.0.0.1:${cli.ports.get('mqtt')}`;
  };

  /**
   * Streams numbered messages (fewer than the default 1000-message session queue, so none is
   * dropped by the overflow policy) until the broker dies; `acked` collects what it acknowledged.
   */
  function stream(pub: MqttClient, qos: 1 | 2, acked: Set<number>): void {
    let n = 0;
    const next = (): void => {
      if (!pub.connected || n >= 900) return;
      const i = n++;
      pub.publish('crash/t', String(i), { qos }, (error) => {
        if (!error) acked.add(i);
      });
      if (n % 50 === 0) setImmediate(next);
      else next();
    };
    next();
  }

  /**
   * Restarts the killed broker and brings the subscriber back; a marker published now at `qos` goes
   * behind everything queued for the session. It must be at `qos`: MQTT.js emits a QoS 2 message only
   * when its PUBREL arrives, so a QoS 1 marker can be emitted while QoS 2 messages sent before it
   * still wait for theirs; a QoS 2 marker's PUBREL follows theirs [MQTT-4.6.0-4].
   * Asserts that every message in `acked` arrived (QoS 2: exactly once).
   */
  async function assertDeliveredAfterRestart(subOptions: IClientOptions, qos: 1 | 2, acked: ReadonlySet<number>): Promise<void> {
    const url = await start();
    const back = await connectClient(url, subOptions);
    const marker = await connectClient(url, { clientId: `crash-marker-${qos}`, reconnectPeriod: 0 });
    await marker.publishAsync('crash/t', 'end', { qos });
    await marker.endAsync();
    await until(() => received(back).some((m) => m.payload.toString() === 'end'), 'the backlog, then the marker', 10_000);
    const counts = new Map<number, number>();
    for (const m of received(back)) {
      if (m.payload.toString() === 'end') continue;
      const i = Number(m.payload.toString());
      counts.set(i, (counts.get(i) ?? 0) + 1);
    }
    const missing = [...acked].filter((i) => !counts.has(i));
    assert.deepEqual(missing, [], `${missing.length} acknowledged messages lost of ${acked.size}`);
    if (qos === 2) {
      const twice = [...counts].filter(([, c]) => c > 1).map(([i]) => i);
      assert.deepEqual(twice, [], 'QoS 2 delivered more than once');
    }
    await back.endAsync();
  }

  /** A persistent session subscribed to crash/t at `qos`, offline: what is published there queues for it. */
  async function offlineSubscriber(url: string, qos: 1 | 2): Promise<IClientOptions> {
    const subOptions = { clientId: `crash-sub-${qos}`, clean: false, reconnectPeriod: 0 };
    const sub = await connectClient(url, subOptions);
    await sub.subscribeAsync('crash/t', { qos });
    await sub.endAsync();
    return subOptions;
  }

  for (const qos of [1, 2] as const) {
    it(`delivers every ${qos === 1 ? 'PUBACKed QoS 1 message at least once' : 'acknowledged QoS 2 message exactly once'} after the broker is killed mid-stream`, async () => {
      const url = await start();
      const subOptions = await offlineSubscriber(url, qos);
      const pub = await connectClient(url, { clientId: `crash-pub-${qos}`, reconnectPeriod: 0 });
      pub.on('error', () => undefined);
      const acked = new Set<number>();
      stream(pub, qos, acked);
      await until(() => acked.size >= 300, '300 acknowledgements');
      assert.ok(acked.size >= 300, `only ${acked.size} acknowledged before the kill`);
      await cli!.stop('SIGKILL');
      pub.end(true);
      await assertDeliveredAfterRestart(subOptions, qos, new Set(acked));
    });
  }

  // Nothing unacknowledged is stored, so the last messages sent after the restart are acknowledged
  // ones too (mid-stream, the last are mostly ones the publisher had no PUBCOMP for yet).
  it('delivers every acknowledged QoS 2 message exactly once after the broker is killed with none in flight', async () => {
    const url = await start();
    const subOptions = await offlineSubscriber(url, 2);
    const pub = await connectClient(url, { clientId: 'crash-pub-idle', reconnectPeriod: 0 });
    const sent = Array.from({ length: 150 }, (_, i) => i);
    await Promise.all(sent.map((i) => pub.publishAsync('crash/t', String(i), { qos: 2 })));
    await cli!.stop('SIGKILL');
    pub.end(true);
    await assertDeliveredAfterRestart(subOptions, 2, new Set(sent));
  });
});
