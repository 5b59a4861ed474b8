import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Message } from '../../host/core/model/message.js';
import { loadNodeCore } from '../../host/node/load-core.js';

describe('Message expiry', () => {
  it('reports the full interval, never one second more, for every size up to 0xFFFFFFFF s read at its arrival time [MQTT-3.3.2-6]', async () => {
    const core = await loadNodeCore();
    const intervals = [0, 1, 2, 59, 2147483, 2147484, 0x7fffffff, 0xfffffffe, 0xffffffff];
    // Same-instant reads happen when the clock is coarse (browsers) or the delivery is immediate.
    for (let i = 0; i < 20_000; i++) {
      const arrived = Math.random() * 1e9;
      const interval = intervals[i % intervals.length]!;
      const message = Message.create(core, 't', new Uint8Array(0), 1, false, null, arrived + interval * 1000)!;
      assert.equal(message.remainingExpiry(arrived), interval, `${interval} s from ${arrived}`);
      assert.equal(message.remainingExpiry(arrived + 999), interval === 0 ? 0 : interval, 'less than a second later rounds up to the same');
      assert.equal(message.remainingExpiry(arrived + interval * 1000 + 5), 0, 'past its expiry: 0, never negative');
      message.unref();
    }
    assert.equal(core.arenaStats().liveHandles, 0);
  });
});
