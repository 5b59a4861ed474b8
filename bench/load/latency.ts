// Latency 1 → 1 at a fixed rate: each PUBLISH carries process.hrtime.bigint() at the moment it is
// written; the subscriber (same process, same clock) subtracts it on arrival.

import { closeAll, connectClient, firstLost } from './conn.js';
import { progress } from './ipc.js';
import { measureWindows, settle } from './measure.js';
import { publishPacket, putPuback } from './packets.js';
import { percentileSorted } from '../stats.js';
import type { LoadConfig, ScenarioResult } from './types.js';

const RATE = 5000;
const PAYLOAD_BYTES = 16;
/** Behind schedule by more than this many messages (event loop stalled): skip, do not burst. */
const MAX_CATCH_UP = 250;

export async function latency(cfg: LoadConfig, qos: 0 | 1): Promise<ScenarioResult> {
  progress('connecting');
  const tag = `lat${qos}-${process.pid}`;
  const sub = await connectClient(cfg.port, `${tag}-sub`);
  const topic = `bench/latency/${qos}`;
  await sub.subscribe([topic], qos, 10_000);
  const pub = await connectClient(cfg.port, `${tag}-pub`);
  progress('subscribed');

  const template = publishPacket(topic, Buffer.alloc(PAYLOAD_BYTES), qos, qos ? 1 : undefined);
  const stampAt = template.length - PAYLOAD_BYTES;
  const idAt = stampAt - 2;
  let nextId = 1;
  let inFlight = 0;
  pub.onPuback = () => {
    inFlight--;
  };

  // Samples (ns) of the current window only; warm-up and gaps are not recorded.
  const capacity = Math.ceil((RATE * cfg.windowMs) / 1000) * 2 + 1000;
  let samples = new Float64Array(capacity);
  let nSamples = 0;
  let recording = false;
  const all: Float64Array[] = [];
  let received = 0;
  let acks = Buffer.allocUnsafe(4 * 256);
  let nAcks = 0;
  sub.onPublish = (buf, start, end, flags) => {
    const now = process.hrtime.bigint();
    received++;
    const q = (flags >> 1) & 3;
    const topicLength = (buf[start]! << 8) | buf[start + 1]!;
    const payloadAt = start + 2 + topicLength + (q > 0 ? 2 : 0);
    if (end - payloadAt >= 8 && recording && nSamples < capacity) {
      samples[nSamples++] = Number(now - buf.readBigUInt64BE(payloadAt));
    }
    if (q > 0) {
      if (nAcks * 4 + 4 > acks.length) {
        const bigger = Buffer.allocUnsafe(acks.length * 2);
        acks.copy(bigger, 0, 0, nAcks * 4);
        acks = bigger;
      }
      const idPos = start + 2 + topicLength;
      putPuback(acks, nAcks * 4, (buf[idPos]! << 8) | buf[idPos + 1]!);
      nAcks++;
    }
  };
  sub.onChunkEnd = () => {
    if (nAcks > 0) {
      sub.write(Buffer.from(acks.subarray(0, nAcks * 4)));
      nAcks = 0;
    }
  };

  let sent = 0;
  let skipped = 0;
  let running = true;
  const t0 = process.hrtime.bigint();
  const tick = (): void => {
    if (!running) return;
    const due = Math.floor((Number(process.hrtime.bigint() - t0) * RATE) / 1e9) - sent - skipped;
    let n = due;
    if (n > MAX_CATCH_UP) {
      skipped += n - MAX_CATCH_UP;
      n = MAX_CATCH_UP;
    }
    if (n > 0) {
      const batch = Buffer.allocUnsafe(template.length * n);
      for (let i = 0; i < n; i++) {
        const at = i * template.length;
        template.copy(batch, at);
        if (qos) {
          batch.writeUInt16BE(nextId, at + idAt);
          nextId = nextId === 65535 ? 1 : nextId + 1;
        }
      }
      // One stamp for the batch, taken last: the bytes leave with this write.
      const stamp = process.hrtime.bigint();
      for (let i = 0; i < n; i++) batch.writeBigUInt64BE(stamp, i * template.length + stampAt);
      pub.write(batch);
      sent += n;
      if (qos) inFlight += n;
    }
    setTimeout(tick, 1);
  };
  tick();

  const notes: string[] = [];
  const metrics: ScenarioResult['metrics'] = {};
  try {
    const windows = await measureWindows(cfg, () => received, (_w, phase) => {
      if (phase === 'start') {
        samples = new Float64Array(capacity);
        nSamples = 0;
        recording = true;
      } else {
        recording = false;
        all.push(samples.subarray(0, nSamples));
      }
    });
    const pooled = new Float64Array(all.reduce((n, a) => n + a.length, 0));
    let o = 0;
    for (const a of all) {
      pooled.set(a, o);
      o += a.length;
    }
    pooled.sort();
    const us = (p: number): number => percentileSorted(pooled, p) / 1000;
    metrics.samples = pooled.length;
    metrics.p50us = us(50);
    metrics.p99us = us(99);
    metrics.p999us = us(99.9);
    metrics.maxUs = pooled.length ? pooled[pooled.length - 1]! / 1000 : NaN;
    metrics.targetRate = RATE;
    return { unit: 'msgs/s', windows, metrics, notes };
  } finally {
    running = false;
    await settle(() => received >= sent && inFlight <= 0, () => received, 1000, 3000);
    if (skipped > 0) notes.push(`generator fell behind schedule: ${skipped} sends skipped`);
    if (received < sent) notes.push(`${sent - received} of ${sent} messages not received`);
    const gone = firstLost([sub, pub]);
    if (gone) notes.push(gone);
    closeAll([sub, pub]);
  }
}
