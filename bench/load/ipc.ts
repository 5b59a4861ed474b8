// The generator's channel to the orchestrator (Node IPC): progress for failure reports, broker
// stats (relayed to the broker runner's stdin), and the result.

import type { ScenarioResult } from './types.js';

type BrokerStats = Record<string, unknown> | null;

const waiting = new Map<number, (s: BrokerStats) => void>();
let nextId = 1;

process.on('message', (msg: { type?: string; id?: number; stats?: BrokerStats }) => {
  if (msg.type === 'stats-response' && msg.id !== undefined) {
    waiting.get(msg.id)?.(msg.stats ?? null);
    waiting.delete(msg.id);
  }
});
// The orchestrator is gone: nobody will read the result, and nobody would kill us.
process.on('disconnect', () => process.exit(2));

function send(msg: object): void {
  process.send?.(msg);
}

/** Where the scenario is, with counters: the orchestrator reports the last one if it times out. */
export function progress(phase: string, detail: Record<string, unknown> = {}): void {
  send({ type: 'progress', phase, detail });
}

/** The broker runner's counters (GC, heap, metrics); null for brokers without them or on timeout. */
export function brokerStats(forceGc = false): Promise<BrokerStats> {
  if (!process.send) return Promise.resolve(null);
  const id = nextId++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      resolve(null);
    }, 10_000);
    waiting.set(id, (s) => {
      clearTimeout(timer);
      resolve(s);
    });
    send({ type: 'stats-request', id, forceGc });
  });
}

export function sendResult(result: ScenarioResult): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      resolve();
      return;
    }
    process.send({ type: 'result', result }, () => resolve());
  });
}
