import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventsIn, recorder } from '../helpers/log-lines.js';
import { LogAggregator } from '../../host/core/model/log-aggregator.js';
import { until } from '../helpers/wait.js';

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
