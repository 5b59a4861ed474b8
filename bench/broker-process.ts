// The orchestrator's handle on one broker runner (bench/brokers/<name>.ts): its port, the pid to
// measure, and a stats request over the runner's stdin.

import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { alive } from './proc.js';
import { ROOT, spawnTs, stopChild, trackPid, untrackPid } from './children.js';

/** `relay` is not a broker: the plain Node relay the payload sweep measures as the practical limit. */
export type BrokerName = 'arbormq' | 'aedes' | 'mosquitto' | 'relay';
export const BROKER_LABEL: Record<BrokerName, string> = { arbormq: 'ArborMQ', aedes: 'Aedes', mosquitto: 'Mosquitto', relay: 'Node relay' };

export interface BrokerProcess {
  name: BrokerName;
  port: number;
  pid: number;
  info: Record<string, unknown>;
  /** Counters from the runner (GC, heap, broker metrics); null if it did not answer in time. */
  stats(forceGc?: boolean): Promise<Record<string, unknown> | null>;
  /** Why it died, if it did ("exit code 1", "signal SIGSEGV"); null while running. */
  exitReason(): string | null;
  stderrTail(): string;
  stop(): Promise<void>;
}

/**
 * Starts `bench/brokers/<name>.ts`. `env` adds to the runner's environment: the durable scenarios
 * pass ARBORMQ_BENCH_DATA_DIR and ARBORMQ_BENCH_DURABILITY (see bench/brokers/arbormq.ts), the ACL
 * ones ARBORMQ_BENCH_ACL_FILE.
 */
export async function startBroker(name: BrokerName, options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<BrokerProcess> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  // Only the scenarios that ask for persistence get it, whatever the orchestrator's environment holds.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.ARBORMQ_BENCH_DATA_DIR;
  delete env.ARBORMQ_BENCH_DURABILITY;
  delete env.ARBORMQ_BENCH_ACL_FILE;
  delete env.ARBORMQ_BENCH_COPY_LIMIT;
  const child: ChildProcess = spawnTs(join(ROOT, 'bench/brokers', `${name}.ts`), [], {
    stdio: ['pipe', 'pipe', 'pipe'],
    nodeFlags: ['--expose-gc'],
    env: { ...env, ...options.env },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exitReason: string | null = null;
  child.once('exit', (code, signal) => {
    exitReason = signal ? `killed by ${signal}` : `exited with code ${code}`;
  });
  const waiting = new Map<number, (s: Record<string, unknown>) => void>();
  let nextId = 1;
  const lines = createInterface({ input: child.stdout! });

  const ready = await new Promise<{ port: number; pid: number; info: Record<string, unknown> }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`${name} runner ${exitReason}: ${stderr.trim()}`));
    });
    lines.on('line', (line) => {
      let msg: { type?: string; id?: number; stats?: Record<string, unknown>; port?: number; pid?: number; info?: Record<string, unknown> };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      if (msg.type === 'ready') {
        clearTimeout(timer);
        resolve({ port: msg.port!, pid: msg.pid!, info: msg.info ?? {} });
      } else if (msg.type === 'stats' && msg.id !== undefined) {
        waiting.get(msg.id)?.(msg.stats ?? {});
        waiting.delete(msg.id);
      }
    });
  }).catch(async (error: unknown) => {
    await stopChild(child, 500);
    throw error;
  });
  if (ready.pid !== child.pid) trackPid(ready.pid);

  return {
    name,
    port: ready.port,
    pid: ready.pid,
    info: ready.info,
    stats(forceGc = false) {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(null);
      const id = nextId++;
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve(null);
        }, 5000);
        waiting.set(id, (s) => {
          clearTimeout(timer);
          resolve(s);
        });
        child.stdin!.write(`${JSON.stringify({ cmd: 'stats', id, forceGc })}\n`);
      });
    },
    exitReason: () => exitReason,
    stderrTail: () => stderr.trim(),
    async stop() {
      child.stdin!.end();
      await stopChild(child);
      if (ready.pid !== child.pid) {
        if (alive(ready.pid)) {
          try {
            process.kill(ready.pid, 'SIGKILL');
          } catch {
            // exited meanwhile
          }
        }
        untrackPid(ready.pid);
      }
    },
  };
}
