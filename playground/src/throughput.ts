// Rates from the broker's cumulative counters: the difference between two samples over the time
// between them.
import type { BrokerStats } from '../../host/core/sys.js';

export interface Rates {
  publishIn: number;
  publishOut: number;
  bytesIn: number;
  bytesOut: number;
}

const ZERO: Rates = { publishIn: 0, publishOut: 0, bytesIn: 0, bytesOut: 0 };

export class Throughput {
  private last: { at: number; stats: BrokerStats } | null = null;

  /** Per-second rates since the previous sample (zero for the first). */
  sample(stats: BrokerStats, at = performance.now()): Rates {
    const previous = this.last;
    this.last = { at, stats };
    if (!previous || at <= previous.at) return ZERO;
    const seconds = (at - previous.at) / 1000;
    const per = (now: number, before: number): number => Math.max(0, now - before) / seconds;
    return {
      publishIn: per(stats.publishReceived, previous.stats.publishReceived),
      publishOut: per(stats.publishSent, previous.stats.publishSent),
      bytesIn: per(stats.bytesReceived, previous.stats.bytesReceived),
      bytesOut: per(stats.bytesSent, previous.stats.bytesSent),
    };
  }
}
