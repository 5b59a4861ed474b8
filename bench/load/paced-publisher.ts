// A QoS 1 publisher at a fixed rate in a process of its own, timing each PUBACK from its PUBLISH:
// nothing else runs on its event loop, so a late PUBACK is the broker's, not the load generator's
// (in the benchmark's own process, the subscriber's 10,000 deliveries a second queued ahead of it).
//
//   node --import tsx bench/load/paced-publisher.ts PORT CLIENT_ID TOPIC RATE WARMUP_MS WINDOW_MS PAYLOAD_BYTES
//
// Tells its parent (Node IPC) { type: 'window-start' } and { type: 'window-end', rate } around the
// measured window, then { type: 'result', p50, p99, acks } once every PUBACK is back, and exits.
import { connectClient } from './conn.js';
import { publishPacket } from './packets.js';
import { PacketIds } from './qos1-window.js';
import { percentileSorted } from '../stats.js';

export interface PacedMessage {
  type: 'window-start' | 'window-end' | 'result';
  rate?: number;
  p50?: number;
  p99?: number;
  acks?: number;
}

const [port, clientId, topic, rate, warmupMs, windowMs, payloadBytes] = process.argv.slice(2);
const RATE = Number(rate);
const payload = Buffer.alloc(Number(payloadBytes), 0x61);
const send = (m: PacedMessage): void => void process.send!(m);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const pub = await connectClient(Number(port), clientId!);
const ids = new PacketIds();
const sentAt = new Map<number, number>();
const latencies: number[] = [];
/** The window: the PUBLISHes sent in it are timed, however late their PUBACKs come. */
let from = Infinity;
let to = Infinity;
pub.onPuback = (id) => {
  const at = sentAt.get(id);
  sentAt.delete(id);
  if (at !== undefined && at >= from && at < to) latencies.push(performance.now() - at);
};
let sent = 0;
const start = performance.now();
// In 1 ms steps: each sends what is due by then.
const pace = setInterval(() => {
  const due = Math.floor(((performance.now() - start) * RATE) / 1000) - sent;
  const packets: Buffer[] = [];
  for (let k = 0; k < due; k++) {
    const id = ids.take();
    // Still unacknowledged after 65535 more: the broker is that far behind.
    if (sentAt.has(id)) break;
    sentAt.set(id, performance.now());
    packets.push(publishPacket(topic!, payload, 1, id));
    sent++;
  }
  if (packets.length > 0) pub.writeAll(packets);
}, 1);
await sleep(Number(warmupMs));
from = performance.now();
send({ type: 'window-start' });
const sent0 = sent;
await sleep(Number(windowMs));
to = performance.now();
send({ type: 'window-end', rate: ((sent - sent0) * 1000) / (to - from) });
clearInterval(pace);
for (const deadline = Date.now() + 10_000; sentAt.size > 0 && Date.now() < deadline; ) await sleep(20);
latencies.sort((a, b) => a - b);
send({ type: 'result', p50: percentileSorted(latencies, 50), p99: percentileSorted(latencies, 99), acks: latencies.length });
pub.socket.destroy();
process.disconnect();
