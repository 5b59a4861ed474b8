import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlushQueue } from '../../host/core/outbox.js';
import { collect, startBroker } from '../helpers/broker.js';

const SIZES = [10, 3000, 100_000];

// Copied into the write batch or written by reference to the stored copy: a subscriber gets the same bytes.
for (const copyLimitBytes of [0, 2048, 1_000_000]) {
  for (const protocolVersion of [4, 5] as const) {
    test(`copyLimitBytes ${copyLimitBytes}: payloads of ${SIZES.join(', ')} bytes arrive intact to two subscribers (MQTT ${protocolVersion === 5 ? '5.0, with forwarded user properties' : '3.1.1'})`, async () => {
      const broker = await startBroker({ copyLimitBytes });
      try {
        const subs = [await broker.client({ protocolVersion }), await broker.client({ protocolVersion })];
        for (const sub of subs) await sub.subscribeAsync('copy/limit', { qos: 1 });
        const pub = await broker.client({ protocolVersion });
        const payloads = SIZES.map((n, i) => Buffer.alloc(n, 0x41 + i).fill(i, 0, 1));
        const got = subs.map((sub) => collect(sub, payloads.length));
        for (const payload of payloads) {
          await pub.publishAsync('copy/limit', payload, { qos: 1, ...(protocolVersion === 5 ? { properties: { userProperties: { k: 'v' } } } : {}) });
        }
        for (const messages of await Promise.all(got)) {
          assert.deepEqual(messages.map((m) => m.payload), payloads);
          if (protocolVersion === 5) for (const m of messages) assert.deepEqual({ ...m.packet.properties?.userProperties }, { k: 'v' });
        }
      } finally {
        await broker.close();
      }
    });
  }
}

test('FlushQueue: output queued by several callbacks of one turn goes out together once the turn\'s I/O is done, each target once', async () => {
  const queue = new FlushQueue();
  const order: string[] = [];
  const target = (name: string): { flush(): void } => ({ flush: () => order.push(name) });
  const [a, b, c] = ['a', 'b', 'c'].map(target);
  await new Promise<void>((done) =>
    setImmediate(() => {
      // One callback of a turn queues output for two targets (a fan-out)…
      queue.add(a!);
      queue.add(b!);
      queueMicrotask(() => {
        order.push('end of the first callback');
        // …a later callback of the same turn for a third.
        queue.add(c!);
      });
      setImmediate(() => {
        order.push('next turn');
        done();
      });
    }),
  );
  assert.deepEqual(order, ['end of the first callback', 'a', 'b', 'c', 'next turn']);
});
