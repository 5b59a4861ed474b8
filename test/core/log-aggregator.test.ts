import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { LogAggregator } from '../../host/core/model/log-aggregator.js';
import type { Logger, LogLevel } from '../../host/core/model/options.js';
import { RawClient, startBroker, until } from '../helpers/broker.js';

interface Line {
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown> | undefined;
}

function recorder(): { lines: Line[]; logger: Logger } {
  const lines: Line[] = [];
  return { lines, logger: (level, msg, fields) => lines.push({ level, msg, fields }) };
}

/** How many events the lines with `msg` stand for: one each, or their `repeated` count. */
const eventsIn = (lines: Line[], msg: string): number =>
  lines.filter((l) => l.msg === msg).reduce((n, l) => n + ((l.fields?.repeated as number | undefined) ?? 1), 0);

/** `n` QoS 1 PUBLISHes in one write, then waits for their `n` PUBACKs. */
async function flood(raw: RawClient, protocolVersion: 4 | 5, topic: string, n: number): Promise<void> {
  const packets = Array.from({ length: n }, (_, i) =>
    mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(`m${i}`), qos: 1, messageId: (i % 65535) + 1, dup: false, retain: false }, { protocolVersion }),
  );
  raw.send(Buffer.concat(packets));
  await until(() => raw.packets.filter((p) => p.cmd === 'puback').length >= n, 30_000);
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
    await until(() => b.server.broker.sessions.get('away')?.outlet === null);
    for (const protocolVersion of [4, 5] as const) {
      const publisher = await b.raw();
      await publisher.handshake({ protocolVersion });
      await flood(publisher, protocolVersion, 'flood', 3000);
    }
    const dropped = b.server.broker.metrics.queueDropped;
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
    assert.equal(b.server.broker.metrics.publishDenied, 2000);
    assert.match(b.server.metricsText(), /^arbormq_publishes_refused_total\{reason="not_authorized"\} 2000$/m);
    await b.close();
    assert.ok(lines.filter((l) => l.msg === 'publish not authorized').length <= 3);
    assert.equal(eventsIn(lines, 'publish not authorized'), 2000);
  });
});

describe('LogAggregator', () => {
  it('writes the first event of a key at once and the rest as one line per interval with their count', async () => {
    const { lines, logger } = recorder();
    const logs = new LogAggregator(logger, 50);
    for (let i = 0; i < 1000; i++) logs.note('warn', 'dropped', 'client-a', { n: i });
    logs.note('warn', 'dropped', 'client-b', { n: 0 });
    assert.deepEqual(lines.map((l) => [l.msg, l.fields]), [
      ['dropped', { n: 0 }],
      ['dropped', { n: 0 }],
    ]);
    await until(() => lines.length === 3);
    assert.deepEqual(lines[2], { level: 'warn', msg: 'dropped', fields: { n: 999, repeated: 999, intervalSeconds: 0.05 } });
    // Still flooding: the next interval is one summary line, no line per event.
    for (let i = 0; i < 10; i++) logs.note('warn', 'dropped', 'client-a', { n: 1000 + i });
    assert.equal(lines.length, 3);
    await until(() => lines.length === 4);
    assert.equal(lines[3]!.fields!.repeated, 10);
    assert.equal(logs.suppressed, 1009);
    logs.flush();
  });

  it('counts the events of keys beyond the first 100 of an interval together', () => {
    const { lines, logger } = recorder();
    const logs = new LogAggregator(logger, 60_000);
    for (let i = 0; i < 150; i++) logs.note('info', 'no CONNECT in time', `10.0.0.${i}:1`, { address: `10.0.0.${i}:1` });
    assert.equal(lines.length, 100);
    logs.flush();
    assert.equal(lines.length, 101);
    assert.equal(lines[100]!.fields!.repeated, 50);
    assert.equal(eventsIn(lines, 'no CONNECT in time'), 150);
  });
});
