import { qos0Throughput } from './throughput.js';
import type { LoadConfig, ScenarioResult } from './types.js';

/** 8 publishers → 1 subscriber on bench/#. */
export function fanIn(cfg: LoadConfig): Promise<ScenarioResult> {
  return qos0Throughput(cfg, {
    tag: 'fanin',
    publishers: 8,
    subscribers: 1,
    topicOf: (p) => `bench/fanin/${p}`,
    filter: 'bench/#',
    batch: 64,
    windowDeliveries: 16_384,
  });
}
