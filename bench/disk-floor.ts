// The acknowledgement latency this machine's disk allows a durable broker, with no broker at all:
// messages "arrive" at a fixed rate and a loop of group commits (append the batch, fdatasync) stands
// for the broker's store. Each message is acknowledged when the first commit started after its
// arrival is synced — the best any group commit can do: a message that arrives while a commit is
// syncing waits for it and then for its own. A disk whose syncs are usually fast but now and then
// slow gives a tail far beyond its syncs' own 99th percentile, because a slow sync holds back every
// message that arrives during it (time-weighted, not counted per sync).
//
// Synchronous on purpose: it runs alone (between broker runs), and a timer or a thread-pool hop
// would add this process's latency to the disk's.

import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { percentileSorted } from './stats.js';

export interface DiskFloor {
  rate: number;
  seconds: number;
  bytesPerMessage: number;
  commits: number;
  /** fdatasync latency per commit, ms. */
  syncP50: number;
  syncP99: number;
  /** Each message's wait from its arrival to the sync of its commit, ms. */
  ackP50: number;
  ackP99: number;
}

/** Group commits in a temp file under `parent` (the filesystem the brokers store on) for `ms`, at `rate` messages/s of `bytesPerMessage`. */
export function diskFloor(parent: string, rate: number, ms: number, bytesPerMessage = 200): DiskFloor {
  const dir = mkdtempSync(join(parent, 'disk-floor-'));
  const fd = openSync(join(dir, 'log'), 'a');
  const interval = 1000 / rate;
  const acks: number[] = [];
  const syncs: number[] = [];
  try {
    const t0 = performance.now();
    let next = 0;
    for (let start = 0; start < ms; start = performance.now() - t0) {
      const arrived = Math.floor(start / interval) + 1;
      if (arrived === next) continue;
      const began = performance.now();
      writeSync(fd, Buffer.alloc((arrived - next) * bytesPerMessage, 0x61));
      fdatasyncSync(fd);
      const synced = performance.now();
      syncs.push(synced - began);
      for (let i = next; i < arrived; i++) acks.push(synced - t0 - i * interval);
      next = arrived;
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  acks.sort((a, b) => a - b);
  syncs.sort((a, b) => a - b);
  return {
    rate,
    seconds: ms / 1000,
    bytesPerMessage,
    commits: syncs.length,
    syncP50: percentileSorted(syncs, 50),
    syncP99: percentileSorted(syncs, 99),
    ackP50: percentileSorted(acks, 50),
    ackP99: percentileSorted(acks, 99),
  };
}
