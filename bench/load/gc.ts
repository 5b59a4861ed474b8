// GC mode: a fixed number of QoS 0 messages, 1 publisher → 1 subscriber, with the broker
// runner's GC counters and heap read before and after (Node brokers only).

import { brokerStats, progress } from './ipc.js';
import { markNow, settle, windowBetween } from './measure.js';
import { qos0Rig } from './throughput.js';
import type { LoadConfig, Metric, ScenarioResult } from './types.js';

interface GcCounters {
  minor: number;
  major: number;
  incremental: number;
  weakcb: number;
  pauseMs: number;
}

interface NodeStats {
  gc?: GcCounters;
  gcAfterForced?: GcCounters;
  heapUsed?: number;
  heapUsedAfterGc?: number;
  rss?: number;
}

export async function gcRun(cfg: LoadConfig): Promise<ScenarioResult> {
  const total = cfg.quick ? 200_000 : 1_000_000;
  const rig = await qos0Rig(cfg, {
    tag: 'gc',
    publishers: 1,
    subscribers: 1,
    topicOf: () => 'bench/gc/topic',
    filter: 'bench/gc/topic',
    batch: 64,
    windowDeliveries: 16_384,
  });
  rig.setTotal(total);
  // Forced collection first so "before" is the live heap; its own GC events are excluded.
  const before = (await brokerStats(true)) as NodeStats | null;
  const base = before?.gcAfterForced ?? before?.gc;
  const a = markNow(cfg, 0);
  rig.pump.start();
  progress('measuring', { total });
  const deadline = cfg.quick ? 20_000 : 120_000;
  const finished = await settle(() => rig.flow.received >= total, () => rig.flow.received, 3000, deadline);
  const b = markNow(cfg, rig.flow.received);
  const after = (await brokerStats(true)) as NodeStats | null;
  const notes: string[] = [];
  const metrics: Record<string, Metric> = { messages: total };
  await rig.finish(notes, metrics);
  if (!finished) notes.push(`only ${b.count} of ${total} messages arrived`);

  if (base && after?.gc) {
    metrics.gcMinor = after.gc.minor - base.minor;
    metrics.gcMajor = after.gc.major - base.major;
    metrics.gcIncremental = after.gc.incremental - base.incremental;
    metrics.gcWeakcb = after.gc.weakcb - base.weakcb;
    metrics.gcPauseMs = after.gc.pauseMs - base.pauseMs;
    // heapUsed right after the run (no forced GC) minus the live heap before: garbage + growth.
    metrics.heapGrowthBytes = after.heapUsed! - (before!.heapUsedAfterGc ?? before!.heapUsed!);
    // Live heap after a full collection minus before: what the run left behind.
    if (after.heapUsedAfterGc !== undefined && before!.heapUsedAfterGc !== undefined) {
      metrics.heapRetainedBytes = after.heapUsedAfterGc - before!.heapUsedAfterGc;
    }
    metrics.rssGrowthBytes = after.rss! - before!.rss!;
  } else {
    notes.push('no GC counters: not a Node broker');
  }
  return { unit: 'msgs/s', windows: [windowBetween(a, b)], metrics, notes };
}
