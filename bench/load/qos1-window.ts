// The QoS 1 point-to-point pair of the cluster benchmarks: a publisher keeping a window of
// PUBLISHes unacknowledged (refilled on PUBACK), and a subscriber that acknowledges what it gets.
import { connectClient, type BenchConn } from './conn.js';
import { publishPacket, putPuback } from './packets.js';

/** A QoS 1 subscriber of `filter` that PUBACKs everything it gets (batched per received chunk); counts deliveries. */
export async function ackingSubscriber(port: number, clientId: string, filter: string, clean = true): Promise<{ conn: BenchConn; received: () => number }> {
  let received = 0;
  const conn = await connectClient(port, clientId, 10_000, clean);
  await conn.subscribe([filter], 1, 10_000);
  const acks = Buffer.alloc(4 * 1024);
  let pending = 0;
  const flush = (): void => {
    // A copy: `acks` is reused while this write may still be queued.
    if (pending > 0) conn.write(Buffer.from(acks.subarray(0, pending * 4)));
    pending = 0;
  };
  conn.onPublish = (buf, start, _end, flags) => {
    received++;
    if ((flags & 6) === 0) return;
    const at = start + 2 + ((buf[start]! << 8) | buf[start + 1]!);
    putPuback(acks, pending * 4, (buf[at]! << 8) | buf[at + 1]!);
    if (++pending === 1024) flush();
  };
  conn.onChunkEnd = flush;
  return { conn, received: () => received };
}

/** Packet ids 1..65535 in turn. */
export class PacketIds {
  private next = 1;
  take(): number {
    const id = this.next;
    this.next = id === 65535 ? 1 : id + 1;
    return id;
  }
}

/**
 * Publishes QoS 1 to `topic` as fast as PUBACKs come back, `window` unacknowledged at most.
 * `stop()` stops sending and resolves once the window is empty (or after 10 s).
 */
export function windowedPublisher(pub: BenchConn, topic: string, payload: Buffer, ids: PacketIds, window = 100): { stop(): Promise<void> } {
  let inflight = 0;
  let running = true;
  const fill = (): void => {
    const packets: Buffer[] = [];
    while (running && inflight < window) {
      packets.push(publishPacket(topic, payload, 1, ids.take()));
      inflight++;
    }
    if (packets.length > 0) pub.writeAll(packets);
  };
  pub.onPuback = () => void inflight--;
  pub.onChunkEnd = fill;
  fill();
  return {
    async stop() {
      running = false;
      for (const deadline = Date.now() + 10_000; inflight > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      pub.onPuback = () => undefined;
      pub.onChunkEnd = () => undefined;
    },
  };
}
