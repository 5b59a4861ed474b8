// The control channel every broker runner shares with the orchestrator: one JSON line on stdout
// when listening, then a JSON line answering each {"cmd":"stats"} read from stdin. The runner
// exits when stdin closes, so a crashed orchestrator leaves no broker behind.

import { constants, PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

export interface GcCounters {
  minor: number;
  major: number;
  incremental: number;
  weakcb: number;
  /** Total GC pause, milliseconds. */
  pauseMs: number;
}

const gc: GcCounters = { minor: 0, major: 0, incremental: 0, weakcb: 0, pauseMs: 0 };
let observing = false;

/** Counts this process's GC events by kind (PerformanceObserver 'gc'). */
export function observeGc(): void {
  if (observing) return;
  observing = true;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
      else if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) gc.incremental++;
      else if (kind === constants.NODE_PERFORMANCE_GC_WEAKCB) gc.weakcb++;
      gc.pauseMs += e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
}

export interface Ready {
  port: number;
  /** The process whose CPU and memory are the broker's (Mosquitto's own pid, not the runner's). */
  pid: number;
  info: Record<string, unknown>;
}

type Extra = () => Record<string, unknown>;

function send(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function nodeStats(forceGc: boolean, extra: Extra): Promise<Record<string, unknown>> {
  // Counters are read before any forced collection so that collection is not counted in a window.
  const mem = process.memoryUsage();
  const out: Record<string, unknown> = { gc: { ...gc }, heapUsed: mem.heapUsed, rss: mem.rss, ...extra() };
  const collect = (globalThis as { gc?: () => void }).gc;
  if (forceGc && collect) {
    collect();
    out.heapUsedAfterGc = process.memoryUsage().heapUsed;
    // GC entries reach the observer asynchronously; let the forced ones arrive before the next read.
    await sleep(20);
    out.gcAfterForced = { ...gc };
  }
  return out;
}

/** Announces the listener and serves stats requests until stdin closes or a signal arrives. */
export function serve(ready: Ready, extra: Extra = () => ({}), onExit: () => void = () => undefined, isNode = true): void {
  send({ type: 'ready', ...ready });
  const exit = (): void => {
    try {
      onExit();
    } finally {
      process.exit(0);
    }
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let cmd: { cmd?: string; id?: number; forceGc?: boolean };
    try {
      cmd = JSON.parse(line) as typeof cmd;
    } catch {
      return;
    }
    if (cmd.cmd !== 'stats') return;
    const stats = isNode ? nodeStats(cmd.forceGc === true, extra) : Promise.resolve(extra());
    void stats.then((s) => send({ type: 'stats', id: cmd.id, stats: s }));
  });
  lines.on('close', exit);
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
  // Manual inspection: `kill -USR2 <pid>` prints the counters.
  process.on('SIGUSR2', () => void (isNode ? nodeStats(false, extra) : Promise.resolve(extra())).then((s) => send({ type: 'stats', id: -1, stats: s })));
}
