// Runs one scenario once: a fresh broker, a generator process against it, a timeout over both.
// Failures (timeout, broker death, generator error) come back as data, with the last progress
// the generator reported, so the report can say where and how it failed.

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type BrokerName, type BrokerProcess } from './broker-process.js';
import { ROOT, spawnTs, stopChild } from './children.js';
import { peakRssBytes } from './proc.js';
import { writeBenchAcl } from './acl-file.js';
import { ACL_SCENARIOS, DURABLE_SCENARIOS, skipReason, type IdlePlan, type LoadConfig, type ScenarioName, type ScenarioResult } from './load/types.js';

export interface Attempt {
  ok: boolean;
  result?: ScenarioResult;
  error?: string;
  /** The broker runner's counters after the scenario (ArborMQ: drops, arena; Node: GC, heap). */
  brokerStats?: Record<string, unknown> | null;
  brokerInfo?: Record<string, unknown>;
  /** The broker's peak RSS (VmHWM) at the end of the attempt. */
  brokerPeakRssBytes?: number;
}

export interface AttemptOptions {
  broker: BrokerName;
  scenario: ScenarioName;
  quick: boolean;
  warmupMs: number;
  windowMs: number;
  windows: number;
  timeoutMs: number;
  /** Payload size for fan-out and p2p-qos1 (the payload sweep); default 64 bytes. */
  payloadBytes?: number;
  /** The idle scenario at scale (bench/idle.ts). */
  idle?: IdlePlan;
  /** More environment for the broker runner (e.g. ARBORMQ_BENCH_COPY_LIMIT, ARBORMQ_BENCH_NOFILE). */
  brokerEnv?: Record<string, string>;
}

export async function runAttempt(o: AttemptOptions): Promise<Attempt> {
  const skip = skipReason(o.scenario, o.broker);
  if (skip) return { ok: false, error: skip };
  // The durable scenarios: a fresh LevelDB data directory for this attempt only, removed afterwards;
  // the ACL ones: the 1,000-rule ACL file, in a temp directory removed afterwards.
  const durability = DURABLE_SCENARIOS[o.scenario];
  const dataDir = durability ? mkdtempSync(join(tmpdir(), 'arbormq-bench-data-')) : null;
  const aclDir = ACL_SCENARIOS.has(o.scenario) ? mkdtempSync(join(tmpdir(), 'arbormq-bench-acl-')) : null;
  const env: Record<string, string> = { ...o.brokerEnv };
  if (dataDir && durability) Object.assign(env, { ARBORMQ_BENCH_DATA_DIR: dataDir, ARBORMQ_BENCH_DURABILITY: durability });
  if (aclDir) {
    // Readable by all: Mosquitto started as root reads it after dropping to its own user.
    chmodSync(aclDir, 0o755);
    env.ARBORMQ_BENCH_ACL_FILE = join(aclDir, 'acl');
    writeBenchAcl(env.ARBORMQ_BENCH_ACL_FILE);
  }
  try {
    return await attempt(o, env);
  } finally {
    for (const dir of [dataDir, aclDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

async function attempt(o: AttemptOptions, env: Record<string, string>): Promise<Attempt> {
  let broker: BrokerProcess;
  try {
    broker = await startBroker(o.broker, { env });
  } catch (error) {
    return { ok: false, error: `broker did not start: ${(error as Error).message}` };
  }
  const cfg: LoadConfig = {
    scenario: o.scenario,
    port: broker.port,
    brokerPid: broker.pid,
    quick: o.quick,
    warmupMs: o.warmupMs,
    windowMs: o.windowMs,
    windows: o.windows,
    ...(o.payloadBytes !== undefined ? { payloadBytes: o.payloadBytes } : {}),
    ...(o.idle ? { idle: o.idle } : {}),
  };
  const gen = spawnTs(join(ROOT, 'bench/load/main.ts'), [JSON.stringify(cfg)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, ...o.brokerEnv } });
  let genStderr = '';
  gen.stderr!.on('data', (d: Buffer) => {
    genStderr = (genStderr + d.toString()).slice(-3000);
  });
  let last: { phase: string; detail: Record<string, unknown> } = { phase: 'starting', detail: {} };
  const where = (): string => `in phase "${last.phase}"${Object.keys(last.detail).length ? ` ${JSON.stringify(last.detail)}` : ''}`;

  let timer: ReturnType<typeof setTimeout> | undefined;
  let poll: ReturnType<typeof setInterval> | undefined;
  const outcome = await new Promise<Attempt>((resolve) => {
    gen.on('message', (msg: { type: string; [k: string]: unknown }) => {
      if (msg.type === 'progress') last = { phase: msg.phase as string, detail: (msg.detail as Record<string, unknown>) ?? {} };
      else if (msg.type === 'result') resolve({ ok: true, result: msg.result as ScenarioResult });
      else if (msg.type === 'error') resolve({ ok: false, error: `${msg.message as string} (${where()})` });
      else if (msg.type === 'stats-request') {
        void broker.stats(msg.forceGc === true).then((stats) => {
          if (gen.connected) gen.send({ type: 'stats-response', id: msg.id, stats });
        });
      }
    });
    gen.once('exit', (code, signal) => {
      // A result or error sent just before exiting is delivered before 'exit'.
      setTimeout(() => resolve({ ok: false, error: `load generator exited (${signal ?? code}) ${where()}: ${genStderr.trim().split('\n').slice(-3).join(' | ')}` }), 200);
    });
    timer = setTimeout(() => resolve({ ok: false, error: `timed out after ${Math.round(o.timeoutMs / 1000)} s ${where()}` }), o.timeoutMs);
    poll = setInterval(() => {
      const why = broker.exitReason();
      if (why) resolve({ ok: false, error: `broker ${why} ${where()}: ${broker.stderrTail().split('\n').slice(-5).join(' | ')}` });
    }, 200);
  });
  clearTimeout(timer);
  clearInterval(poll);
  outcome.brokerInfo = broker.info;
  outcome.brokerStats = broker.exitReason() ? null : await broker.stats();
  if (!broker.exitReason()) outcome.brokerPeakRssBytes = peakRssBytes(broker.pid);
  await stopChild(gen, 1000);
  await broker.stop();
  return outcome;
}
