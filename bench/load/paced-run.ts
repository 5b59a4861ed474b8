// One paced window: a QoS 1 publisher at a fixed rate in a process of its own
// (load/paced-publisher.ts), each PUBACK's latency from its PUBLISH, and the CPU the broker
// processes spent per message delivered to `sub` meanwhile.
import { spawnTs, stopChild } from '../children.js';
import { cpuSeconds } from '../proc.js';
import type { PacedMessage } from './paced-publisher.js';

export interface PacedResult {
  /** PUBLISHes sent per second in the window. */
  pacedRate: number;
  /** CPU-seconds per million messages delivered in the window, all the broker processes. */
  pacedCpuPerMillion: number;
  p50: number;
  p99: number;
}

export interface PacedOptions {
  port: number;
  /** The broker processes whose CPU counts. */
  pids: number[];
  /** Deliveries the subscriber has received so far. */
  received: () => number;
  topic: string;
  rate: number;
  warmupMs: number;
  windowMs: number;
  payloadBytes: number;
}

export async function pacedRun(o: PacedOptions): Promise<PacedResult> {
  const child = spawnTs('bench/load/paced-publisher.ts', [String(o.port), 'paced-pub', o.topic, String(o.rate), String(o.warmupMs), String(o.windowMs), String(o.payloadBytes)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  try {
    let cpu0: number[] = [];
    let received0 = 0;
    let cpu = 0;
    let received = 0;
    let pacedRate = 0;
    const result = await new Promise<PacedMessage>((resolve, reject) => {
      child.on('message', (m: PacedMessage) => {
        if (m.type === 'window-start') {
          cpu0 = o.pids.map(cpuSeconds);
          received0 = o.received();
        } else if (m.type === 'window-end') {
          cpu = o.pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - cpu0[i]!, 0);
          received = o.received() - received0;
          pacedRate = m.rate!;
        } else resolve(m);
      });
      child.once('exit', (code) => reject(new Error(`the paced publisher exited with ${code} before its result`)));
    });
    return { pacedRate, pacedCpuPerMillion: (cpu * 1e6) / Math.max(1, received), p50: result.p50!, p99: result.p99! };
  } finally {
    await stopChild(child);
  }
}
