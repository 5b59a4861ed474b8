// Folds the attempts of one (broker, scenario) into the figures the report prints: medians over
// measured windows, scenario metrics (medians when several fresh runs), notes, failure.

import type { Attempt } from './scenario-process.js';
import type { Metric, WindowResult } from './load/types.js';
import { median } from './stats.js';

export interface Summary {
  /** Every attempt succeeded. */
  ok: boolean;
  /** Attempts that produced figures (some may have failed after others succeeded). */
  succeeded: number;
  attempts: number;
  error?: string;
  unit: string;
  /** Median rate over measured windows. */
  rate: number;
  rates: number[];
  cpuPerMillion: number;
  genCpuPct: number;
  metrics: Record<string, Metric>;
  notes: string[];
  brokerStats?: Record<string, unknown> | null;
  /** What the broker runner said about itself (build, options; the store in the durable scenarios). */
  brokerInfo?: Record<string, unknown>;
}

export function summarize(attempts: Attempt[]): Summary {
  const done = attempts.filter((a) => a.ok && a.result);
  const windows: WindowResult[] = done.flatMap((a) => a.result!.windows);
  const metrics: Record<string, Metric> = {};
  const keys = new Set(done.flatMap((a) => Object.keys(a.result!.metrics)));
  for (const k of keys) {
    const vals = done.map((a) => a.result!.metrics[k]).filter((v) => v !== undefined);
    if (vals.every((v) => typeof v === 'number')) metrics[k] = median(vals as number[]);
    else if (vals.every((v) => typeof v === 'boolean')) metrics[k] = (vals as boolean[]).every(Boolean);
    else metrics[k] = vals[vals.length - 1] ?? null;
  }
  const notes = [...new Set(done.flatMap((a) => a.result!.notes))];
  const failed = attempts.find((a) => !a.ok);
  const last = attempts[attempts.length - 1];
  return {
    ok: failed === undefined && done.length > 0,
    succeeded: done.length,
    attempts: attempts.length,
    error: failed?.error,
    unit: done[0]?.result!.unit ?? '',
    rate: median(windows.map((w) => w.rate)),
    rates: windows.map((w) => w.rate),
    cpuPerMillion: median(windows.map((w) => w.cpuPerMillion)),
    genCpuPct: median(windows.map((w) => w.genCpuPct)),
    metrics,
    notes,
    brokerStats: last?.brokerStats,
    brokerInfo: attempts.find((a) => a.brokerInfo)?.brokerInfo,
  };
}
