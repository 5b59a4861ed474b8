// ArborMQ in its own process for the benchmark. Runs the compiled dist/ when it is at least as new
// as every host/ source (realistic: what `npm start` runs), else the sources through tsx.
//
// State is in memory unless ARBORMQ_BENCH_DATA_DIR names a directory (the p2p-qos1-durable
// scenarios set it, a fresh temp dir per attempt): LevelDB there, with ARBORMQ_BENCH_DURABILITY
// ('sync', the default, or 'os') deciding whether each group commit is fsynced. ARBORMQ_BENCH_ACL_FILE
// (the fan-out-acl scenario) names an ACL file the broker enforces; ARBORMQ_BENCH_COPY_LIMIT (the
// payload sweep) sets copyLimitBytes.

import { fileURLToPath } from 'node:url';
import type * as ServerModule from '../../host/node/server.js';
import { pickBuild } from '../arbormq-build.js';
import { filesystemOf } from '../proc.js';
import { observeGc, serve } from './probe.js';

// ARBORMQ_ROOT points at another checkout (built: build/arbor.wasm present) to compare revisions.
const root = process.env.ARBORMQ_ROOT ?? fileURLToPath(new URL('../../', import.meta.url));

/** Limits raised over the defaults so they do not decide a scenario's outcome (reported in RESULTS.md). */
const ARBORMQ_OPTIONS = {
  maxQueuedMessages: 100_000,
  maxWriteBufferBytes: 64 * 1024 * 1024,
  // The payload sweep (bench/payload.ts) varies the copy/reference threshold.
  ...(process.env.ARBORMQ_BENCH_COPY_LIMIT ? { copyLimitBytes: Number(process.env.ARBORMQ_BENCH_COPY_LIMIT) } : {}),
};

function persistence(): { dataDir: string; durability: 'sync' | 'os' } | null {
  const dataDir = process.env.ARBORMQ_BENCH_DATA_DIR;
  if (!dataDir) return null;
  const durability = process.env.ARBORMQ_BENCH_DURABILITY ?? 'sync';
  if (durability !== 'sync' && durability !== 'os') throw new Error(`ARBORMQ_BENCH_DURABILITY must be sync or os, not "${durability}"`);
  return { dataDir, durability };
}

observeGc();
const { url, build } = pickBuild(root);
const { ArborServer } = (await import(url)) as typeof ServerModule;
const store = persistence();
const aclFile = process.env.ARBORMQ_BENCH_ACL_FILE || undefined;
const server = await ArborServer.start({ listeners: [{ port: 0, host: '127.0.0.1' }], ...ARBORMQ_OPTIONS, ...(store ?? {}), aclFile });
const broker = server.broker;

serve(
  {
    port: server.port,
    pid: process.pid,
    info: {
      build: process.env.ARBORMQ_ROOT ? `${build} at ${root}` : build,
      options: ARBORMQ_OPTIONS,
      ...(store ? { store: { kind: 'LevelDB', ...store, filesystem: filesystemOf(store.dataDir) } } : {}),
      ...(aclFile ? { aclFile } : {}),
    },
  },
  () => {
    // The broker's internals move fast: a renamed field must not take the benchmark down.
    try {
      return {
        metrics: { ...broker.metrics },
        connections: broker.connections?.size,
        wasmMemoryBytes: broker.core.memory.buffer.byteLength,
        arenaLiveHandles: broker.core.arenaStats().liveHandles,
      };
    } catch (error) {
      return { statsError: (error as Error).message };
    }
  },
);
