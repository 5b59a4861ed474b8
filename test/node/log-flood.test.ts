import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventsIn, recorder } from '../helpers/log-lines.js';
import mqttPacket from 'mqtt-packet';
import { startBroker } from '../helpers/broker.js';
import { Peer } from '../helpers/peer.js';
import { until } from '../helpers/wait.js';

// Floods from the network end to end: the log lines they cause, and the counters the server exports.

/** `n` QoS 1 PUBLISHes in one write, then waits for their `n` PUBACKs. */
async function flood(raw: Peer, protocolVersion: 4 | 5, topic: string, n: number): Promise<void> {
  const packets = Array.from({ length: n }, (_, i) =>
    mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(`m${i}`), qos: 1, messageId: (i % 65535) + 1, dup: false, retain: false }, { protocolVersion }),
  );
  raw.send(Buffer.concat(packets));
  await until(() => raw.packets.filter((p) => p.cmd === 'puback').length >= n, `${n} PUBACKs`, 30_000);
  assert.equal(raw.packets.filter((p) => p.cmd === 'puback').length, n);
}

describe('log lines that input can cause per packet', () => {
  it('log flood attack: publishers filling an offline persistent QoS 1 queue get a bounded number of "queue full" lines, and the counter counts every drop', async () => {
    const { lines, logger } = recorder();
    const b = await startBroker({ maxQueuedMessages: 10, logger });
    const away = await b.raw();
    await away.handshake({ protocolVersion: 4, clientId: 'away', clean: false });
    away.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood', qos: 1 }] });
    await away.next('suback');
    away.destroy();
    await until(() => b.broker.sessions.get('away')?.outlet === null);
    for (const protocolVersion of [4, 5] as const) {
      const publisher = await b.raw();
      await publisher.handshake({ protocolVersion });
      await flood(publisher, protocolVersion, 'flood', 3000);
    }
    const dropped = b.broker.metrics.queueDropped;
    assert.equal(dropped, 6000 - 10);
    assert.match(b.server.metricsText(), /^arbormq_log_lines_suppressed_total [1-9]\d*$/m);
    await b.close();
    const queueFull = lines.filter((l) => l.msg === 'session queue full, message dropped');
    // One line when the first drop happened, one summary per interval after it (the run is shorter than one), one at shutdown.
    assert.ok(queueFull.length <= 3, `${queueFull.length} lines`);
    assert.equal(eventsIn(lines, 'session queue full, message dropped'), dropped, 'the lines account for every drop');
    assert.ok(lines.length < 50, `${lines.length} lines in all`);
  });

  it('log flood attack: PUBLISHes to $SYS that are refused one by one get a bounded number of "not authorized" lines, and the counter counts each', async () => {
    const { lines, logger } = recorder();
    const b = await startBroker({ logger });
    const attacker = await b.raw();
    await attacker.handshake({ protocolVersion: 5 });
    await flood(attacker, 5, '$SYS/broker/version', 2000);
    assert.equal(b.broker.metrics.publishDenied, 2000);
    assert.match(b.server.metricsText(), /^arbormq_publishes_refused_total\{reason="not_authorized"\} 2000$/m);
    await b.close();
    assert.ok(lines.filter((l) => l.msg === 'publish not authorized').length <= 3);
    assert.equal(eventsIn(lines, 'publish not authorized'), 2000);
  });
});

