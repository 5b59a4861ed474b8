// Idle connections: how fast the broker accepts N MQTT connections and what each costs in RSS.

import { cpuSeconds, openFilesLimit, rssBytes } from '../proc.js';
import { BenchConn, closeAll } from './conn.js';
import { progress } from './ipc.js';
import { sleep } from './measure.js';
import type { LoadConfig, ScenarioResult } from './types.js';

/** Connections being set up at once: enough to keep the broker busy, few enough for its backlog. */
const CONCURRENCY = 256;
/** File descriptors the processes keep for themselves (stdio, listeners, the wasm loader…). */
const FD_RESERVE = 100;

export async function idle(cfg: LoadConfig): Promise<ScenarioResult> {
  const wanted = cfg.quick ? 2_000 : 10_000;
  const notes: string[] = [];
  const limit = Math.min(openFilesLimit('self'), openFilesLimit(cfg.brokerPid));
  const target = Math.min(wanted, limit - FD_RESERVE);
  if (target < wanted) notes.push(`open-files limit ${limit}: ${target} connections instead of ${wanted}`);

  await sleep(200); // let the freshly started broker settle before the baseline
  const rssBefore = rssBytes(cfg.brokerPid);
  const cpuBefore = cpuSeconds(cfg.brokerPid);
  const conns: BenchConn[] = [];
  let started = 0;
  let done = 0;
  const errors: string[] = [];
  const t0 = performance.now();
  const deadline = t0 + (cfg.quick ? 15_000 : 60_000);

  const worker = async (): Promise<void> => {
    while (started < target && performance.now() < deadline && errors.length < 20) {
      const i = started++;
      try {
        const c = await BenchConn.open(cfg.port, 10_000);
        conns.push(c);
        await c.handshake(`idle-${process.pid}-${i}`, Math.max(1000, deadline - performance.now()));
        done++;
        if (done % 1000 === 0) progress('connecting', { connected: done, target });
      } catch (error) {
        errors.push((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpuConnect = cpuSeconds(cfg.brokerPid) - cpuBefore;
  progress('settling', { connected: done });
  await sleep(cfg.quick ? 300 : 1000);
  const rssAfter = rssBytes(cfg.brokerPid);
  const stillOpen = conns.filter((c) => !c.lost).length;
  closeAll(conns);

  if (errors.length > 0) notes.push(`${errors.length} connection(s) failed, first: ${errors[0]}`);
  if (stillOpen < done) notes.push(`${done - stillOpen} connection(s) closed by the broker while idle`);
  const metrics: ScenarioResult['metrics'] = {
    connections: done,
    target: wanted,
    connectSeconds: seconds,
    rssBeforeBytes: rssBefore,
    rssAfterBytes: rssAfter,
    rssPerConnBytes: done > 0 ? (rssAfter - rssBefore) / done : NaN,
    cpuMsPer1kConnects: done > 0 ? (cpuConnect * 1000) / (done / 1000) : NaN,
    fdLimit: limit,
  };
  if (done === 0) throw new Error(`no connection succeeded: ${errors[0] ?? 'timeout'}`);
  const rate = done / seconds;
  return {
    unit: 'connections/s',
    windows: [{ seconds, messages: done, rate, brokerCpuS: cpuConnect, cpuPerMillion: NaN, genCpuPct: NaN }],
    metrics,
    notes,
  };
}
