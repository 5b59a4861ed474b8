// QoS 1 point to point: 50 publisher/subscriber pairs on their own topic. Each publisher keeps
// 10 PUBLISHes unacknowledged by the broker; each subscriber PUBACKs what it receives.
//
// `persistent` (the p2p-qos1-durable scenarios): the subscribers connect with CleanSession = 0, so a
// broker with a store records every message (body + delivery) and deletes it on PUBACK, and the
// publisher's PUBACK waits for that record to be durable. The broker's storage writes
// (/proc/<pid>/io write_bytes) over the windows show that it did.

import { storageWriteBytes } from '../proc.js';
import { closeAll, connectMany, firstLost, type BenchConn } from './conn.js';
import { progress } from './ipc.js';
import { measureWindows, settle } from './measure.js';
import { publishPacket, putPuback } from './packets.js';
import { PAYLOAD_BYTES } from './throughput.js';
import type { LoadConfig, ScenarioResult } from './types.js';

const PAIRS = 50;
/** PUBLISHes a publisher keeps unacknowledged (fewer for large payloads, see e2eCapFor). */
const IN_FLIGHT = 10;
/** End-to-end cap per pair (sent, not yet received): the broker acks on routing, not on delivery. */
const E2E_CAP = 100;
/** Payload bytes in flight end to end over all pairs at most: 1 MB payloads go one at a time per pair. */
const E2E_BYTES = 64 * 1024 * 1024;

function e2eCapFor(payloadBytes: number): number {
  return Math.max(1, Math.min(E2E_CAP, Math.floor(E2E_BYTES / (PAIRS * payloadBytes))));
}

interface Pair {
  pub: BenchConn;
  sub: BenchConn;
  /** packets[id], id 1..inFlight, encoded once: an acknowledged id is free to be sent again. */
  packets: Buffer[];
  /** Acknowledged ids waiting for end-to-end room. */
  ready: number[];
  sent: number;
  received: number;
}

export async function p2pQos1(cfg: LoadConfig, options: { persistent?: boolean } = {}): Promise<ScenarioResult> {
  const persistent = options.persistent === true;
  progress('connecting', { pairs: PAIRS, persistent });
  // Persistent sessions outlive the run in the broker's store: client ids unique to this run.
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const subs = await connectMany(cfg.port, persistent ? `p2p-psub-${run}` : `p2p-sub-${process.pid}`, PAIRS, 10_000, !persistent);
  await Promise.all(subs.map((s, i) => s.subscribe([`bench/p2p/${i}`], 1, 10_000)));
  const pubs = await connectMany(cfg.port, `p2p-pub-${process.pid}`, PAIRS);
  progress('subscribed');

  const payload = Buffer.alloc(cfg.payloadBytes ?? PAYLOAD_BYTES, 0x63);
  const e2eCap = e2eCapFor(payload.length);
  const inFlight = Math.min(IN_FLIGHT, e2eCap);
  let running = true;
  let totalReceived = 0;
  let protocolErrors = 0;
  const pairs: Pair[] = pubs.map((pub, i) => ({
    pub,
    sub: subs[i]!,
    packets: [Buffer.alloc(0), ...Array.from({ length: inFlight }, (_, k) => publishPacket(`bench/p2p/${i}`, payload, 1, k + 1))],
    ready: [],
    sent: 0,
    received: 0,
  }));

  const send = (pair: Pair): void => {
    if (!running || pair.ready.length === 0) return;
    const out: Buffer[] = [];
    while (pair.ready.length > 0 && pair.sent - pair.received < e2eCap) {
      out.push(pair.packets[pair.ready.pop()!]!);
      pair.sent++;
    }
    if (out.length > 0) pair.pub.writeAll(out);
  };

  for (const pair of pairs) {
    pair.pub.onPuback = (id) => {
      if (id >= 1 && id <= inFlight) pair.ready.push(id);
      else protocolErrors++;
    };
    pair.pub.onChunkEnd = () => send(pair);
    // PUBACKs for everything in one chunk go out in one write.
    let acks = Buffer.allocUnsafe(4 * 256);
    let nAcks = 0;
    pair.sub.onPublish = (buf, start, _end, flags) => {
      pair.received++;
      totalReceived++;
      if (((flags >> 1) & 3) === 0) return;
      const topicLength = (buf[start]! << 8) | buf[start + 1]!;
      const at = start + 2 + topicLength;
      if (nAcks * 4 + 4 > acks.length) {
        const bigger = Buffer.allocUnsafe(acks.length * 2);
        acks.copy(bigger, 0, 0, nAcks * 4);
        acks = bigger;
      }
      putPuback(acks, nAcks * 4, (buf[at]! << 8) | buf[at + 1]!);
      nAcks++;
    };
    pair.sub.onChunkEnd = () => {
      if (nAcks > 0) {
        // A copy: `acks` is reused for the next chunk while this write may still be queued.
        pair.sub.write(Buffer.from(acks.subarray(0, nAcks * 4)));
        nAcks = 0;
      }
      send(pair);
    };
  }
  for (const pair of pairs) {
    for (let id = 1; id <= inFlight; id++) pair.ready.push(id);
    send(pair);
  }

  const notes: string[] = [];
  const metrics: ScenarioResult['metrics'] = {};
  // Storage bytes the broker wrote during the measured windows, per message received.
  let written = 0;
  let windowStart = NaN;
  const onWindow = (_: number, phase: 'start' | 'end'): void => {
    if (phase === 'start') windowStart = storageWriteBytes(cfg.brokerPid);
    else written += storageWriteBytes(cfg.brokerPid) - windowStart;
  };
  try {
    const windows = await measureWindows(cfg, () => totalReceived, onWindow);
    const messages = windows.reduce((n, w) => n + w.messages, 0);
    if (Number.isFinite(written) && messages > 0) {
      metrics.storageBytesPerMsg = written / messages;
      if (persistent && written === 0) notes.push('the broker wrote nothing to storage during the windows: was persistence on?');
    }
    return { unit: 'msgs/s', windows, metrics, notes };
  } finally {
    running = false;
    const sent = (): number => pairs.reduce((n, p) => n + p.sent, 0);
    await settle(() => totalReceived >= sent(), () => totalReceived, 1000, 5000);
    const lost = Math.max(0, sent() - totalReceived);
    metrics.lost = lost;
    if (lost > 0) notes.push(`${lost} of ${sent()} QoS 1 messages not delivered within 5 s of the end`);
    if (protocolErrors > 0) notes.push(`${protocolErrors} PUBACKs with unknown packet ids`);
    const gone = firstLost([...subs, ...pubs]);
    if (gone) notes.push(gone);
    closeAll([...subs, ...pubs]);
  }
}
