// Warm-up, then fixed-length windows: messages received, broker CPU from /proc, generator CPU.

import { cpuSeconds } from '../proc.js';
import { progress } from './ipc.js';
import type { LoadConfig, WindowResult } from './types.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Mark {
  t: number;
  count: number;
  brokerCpu: number;
  genCpu: number;
}

function mark(pid: number, count: number): Mark {
  const u = process.cpuUsage();
  return { t: performance.now(), count, brokerCpu: cpuSeconds(pid), genCpu: (u.user + u.system) / 1e6 };
}

export function windowBetween(a: Mark, b: Mark): WindowResult {
  const seconds = (b.t - a.t) / 1000;
  const messages = b.count - a.count;
  const brokerCpuS = b.brokerCpu - a.brokerCpu;
  return {
    seconds,
    messages,
    rate: messages / seconds,
    brokerCpuS,
    cpuPerMillion: messages > 0 ? brokerCpuS / (messages / 1e6) : NaN,
    genCpuPct: ((b.genCpu - a.genCpu) / seconds) * 100,
  };
}

export function markNow(cfg: LoadConfig, count: number): Mark {
  return mark(cfg.brokerPid, count);
}

/**
 * Runs the warm-up then cfg.windows windows while traffic flows; `count` is the running total
 * of messages received. `onWindow` sees each window's start and end (latency sample ranges).
 */
export async function measureWindows(
  cfg: LoadConfig,
  count: () => number,
  onWindow: (index: number, phase: 'start' | 'end') => void = () => undefined,
): Promise<WindowResult[]> {
  progress('warm-up', { received: count() });
  await sleep(cfg.warmupMs);
  const out: WindowResult[] = [];
  for (let w = 0; w < cfg.windows; w++) {
    progress('measuring', { window: w + 1, received: count() });
    onWindow(w, 'start');
    const a = mark(cfg.brokerPid, count());
    await sleep(cfg.windowMs);
    const b = mark(cfg.brokerPid, count());
    onWindow(w, 'end');
    out.push(windowBetween(a, b));
  }
  return out;
}

/** Waits until `done()` or until `progressOf()` stops moving for `quietMs`; bounded by `maxMs`. */
export async function settle(done: () => boolean, progressOf: () => number, quietMs: number, maxMs: number): Promise<boolean> {
  const start = performance.now();
  let last = progressOf();
  let lastAt = start;
  while (!done()) {
    const now = performance.now();
    if (now - start > maxMs || now - lastAt > quietMs) return false;
    await sleep(10);
    const p = progressOf();
    if (p !== last) {
      last = p;
      lastAt = performance.now();
    }
  }
  return true;
}
