import { qos0Throughput } from './throughput.js';
import type { LoadConfig, ScenarioResult } from './types.js';

/** 1 publisher → 100 subscribers of one topic; the rate counts deliveries. */
export function fanOut(cfg: LoadConfig): Promise<ScenarioResult> {
  return qos0Throughput(cfg, {
    tag: 'fanout',
    publishers: 1,
    subscribers: 100,
    topicOf: () => 'bench/fanout/topic',
    filter: 'bench/fanout/topic',
    batch: 16,
    // 512 messages in flight, 51,200 deliveries: deep enough to keep the broker busy.
    windowDeliveries: 512 * 100,
  });
}
