// A reproducible stream of StoreBatches shaped like the broker's: deliveries created, rewritten
// (packet id, PUBREC) and deleted a little or a long while later, sessions ended and started again
// under the same client id (sequence numbers from 0 again), message bodies, QoS 2 identifiers and
// retained messages coming and going. The same seed gives the same batches in any process.
import { rng } from '../../bench/stats.js';
import { emptyBatch, type DeliveryKey, type StoreBatch, type StoredDelivery, type StoredMessage } from '../../host/core/model/store.js';

const message = (topic: string, n: number): StoredMessage => ({
  topic,
  payload: new Uint8Array([n & 255, (n >> 8) & 255, 7]),
  qos: 1,
  retain: false,
  forward: n % 3 === 0 ? new Uint8Array([0x03, 0x00, 0x01, 0x61]) : null,
  expiresAt: n % 5 === 0 ? 1_900_000_000_000 : 0,
});

export function workload(seed: number, count: number): StoreBatch[] {
  const rnd = rng(seed);
  const pick = <T>(list: T[]): T => list[Math.floor(rnd() * list.length)]!;
  const clients = ['alpha', 'bravo', 'charlie/ü', 'delta'];
  const nextSeq = new Map(clients.map((c) => [c, 0]));
  // Each delivery keeps one key object for all its changes, as the broker does.
  const live = new Map<string, { key: DeliveryKey; d: StoredDelivery }[]>(clients.map((c) => [c, []]));
  const messages: string[] = [];
  let n = 0;
  const batches: StoreBatch[] = [];
  for (let b = 0; b < count; b++) {
    const batch = emptyBatch();
    const ops = 1 + Math.floor(rnd() * 20);
    for (let o = 0; o < ops; o++) {
      const r = rnd();
      const clientId = pick(clients);
      const mine = live.get(clientId)!;
      n++;
      if (r < 0.4) {
        const seq = nextSeq.get(clientId)!;
        nextSeq.set(clientId, seq + 1);
        const inline = rnd() < 0.7 || messages.length === 0;
        const d: StoredDelivery = {
          clientId,
          seq,
          messageId: inline ? `i${n}` : pick(messages),
          qos: 1,
          retain: false,
          subscriptionIds: rnd() < 0.3 ? [n] : null,
          packetId: 0,
          released: false,
          ...(inline ? { message: message(`t/${clientId}/${n}`, n) } : {}),
        };
        const key = { clientId, seq };
        mine.push({ key, d });
        batch.deliveries.set(key, d);
      } else if (r < 0.65 && mine.length > 0) {
        // Mostly the oldest (acknowledged in order), sometimes any.
        const at = rnd() < 0.8 ? 0 : Math.floor(rnd() * mine.length);
        batch.deliveries.set(mine.splice(at, 1)[0]!.key, null);
      } else if (r < 0.75 && mine.length > 0) {
        const entry = pick(mine);
        const rewritten: StoredDelivery = { ...entry.d, packetId: 1 + (n % 65535), released: rnd() < 0.3 };
        if (rewritten.released) delete rewritten.message;
        entry.d = rewritten;
        batch.deliveries.set(entry.key, rewritten);
      } else if (r < 0.8) {
        if (rnd() < 0.5) {
          batch.sessions.set(clientId, { clientId, version: 5, expiryInterval: 60 + n, disconnectedAt: 0, subscriptions: [], will: null });
        } else {
          // The session ends: its deliveries go with it, and a new one starts its numbering again.
          batch.sessions.set(clientId, null);
          for (const { key } of mine) batch.deliveries.set(key, null);
          mine.length = 0;
          nextSeq.set(clientId, 0);
        }
      } else if (r < 0.87) {
        if (messages.length > 0 && rnd() < 0.4) batch.messages.set(messages.splice(Math.floor(rnd() * messages.length), 1)[0]!, null);
        else {
          const id = `m${n}`;
          messages.push(id);
          batch.messages.set(id, message(`shared/${n}`, n));
        }
      } else if (r < 0.94) {
        batch.incomingQos2.set(`${clientId}\u0000${1 + Math.floor(rnd() * 5)}`, rnd() < 0.5 ? true : null);
      } else {
        const topic = `retained/${Math.floor(rnd() * 5)}`;
        batch.retained.set(topic, rnd() < 0.7 ? { ...message(topic, n), retain: true } : null);
      }
    }
    batches.push(batch);
  }
  return batches;
}
