// Idle connections: how fast the broker accepts N MQTT connections and what each costs in RSS.
// At scale (bench/idle.ts: cfg.idle) every connection sends PINGREQ at 3/4 of its keep alive from its
// CONNACK on, and after the last CONNACK all are held open for a while: the broker must service keep
// alive for all of them and drop none. Past one loopback address's ephemeral ports they come from
// 127.0.0.2, .3, ….

import { cpuSeconds, openFilesLimit, rssBytes } from '../proc.js';
import { BenchConn, closeAll } from './conn.js';
import { progress } from './ipc.js';
import { sleep } from './measure.js';
import type { LoadConfig, ScenarioResult } from './types.js';

/** Connections being set up at once: enough to keep the broker busy, few enough for its backlog. */
const CONCURRENCY = 256;
/** File descriptors the processes keep for themselves (stdio, listeners, the wasm loader…). */
const FD_RESERVE = 100;
/** Connections per source address: below the 28,000-odd ephemeral ports of one address. */
const PER_SOURCE_ADDRESS = 20_000;

export async function idle(cfg: LoadConfig): Promise<ScenarioResult> {
  const wanted = cfg.idle?.connections ?? (cfg.quick ? 2_000 : 10_000);
  const keepAlive = cfg.idle?.keepAlive ?? 300;
  const holdSeconds = cfg.idle?.holdSeconds ?? 0;
  const notes: string[] = [];
  const limit = Math.min(openFilesLimit('self'), openFilesLimit(cfg.brokerPid));
  const target = Math.min(wanted, limit - FD_RESERVE);
  if (target < wanted) notes.push(`open-files limit ${limit}: ${target} connections instead of ${wanted}`);
  const source = (i: number): string | undefined => (target > PER_SOURCE_ADDRESS ? `127.0.0.${2 + Math.floor(i / PER_SOURCE_ADDRESS)}` : undefined);

  const warm = cfg.idle?.warm ?? 0;
  if (warm > 0) {
    progress('warming', { connections: warm });
    const warmed: BenchConn[] = [];
    for (let i = 0; i < warm; i += CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONCURRENCY, warm - i) }, async (_, j) => {
        // From the default address without a bind: a port bound explicitly stays out of connect()'s own
        // choice while in TIME_WAIT, and 2,000 of them per broker would leave too few for 19,900 connections.
        const c = await BenchConn.open(cfg.port, 10_000);
        await c.handshake(`warm-${process.pid}-${i + j}`, 10_000, true, keepAlive);
        return c;
      });
      warmed.push(...(await Promise.all(batch)));
    }
    closeAll(warmed);
    await sleep(500);
  }
  await sleep(200); // let the freshly started broker settle before the baseline
  const rssBefore = rssBytes(cfg.brokerPid);
  const cpuBefore = cpuSeconds(cfg.brokerPid);
  const genCpuBefore = process.cpuUsage();
  const conns: BenchConn[] = [];
  let started = 0;
  let done = 0;
  const errors: string[] = [];
  const t0 = performance.now();
  const deadline = t0 + (cfg.quick ? 15_000 : 60_000 + target / 2);

  const pinger = holdSeconds > 0 ? new Pinger(conns, keepAlive) : null;
  const worker = async (): Promise<void> => {
    while (started < target && performance.now() < deadline && errors.length < 20) {
      const i = started++;
      try {
        const c = await BenchConn.open(cfg.port, 10_000, source(i));
        await c.handshake(`idle-${process.pid}-${i}`, Math.max(1000, deadline - performance.now()), true, keepAlive);
        conns.push(c);
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
  const genCpu = process.cpuUsage(genCpuBefore);
  // This process opens every connection: when it is near a whole core, it (not the broker) sets the rate.
  const genCpuPct = ((genCpu.user + genCpu.system) / 1e6 / seconds) * 100;
  progress('settling', { connected: done });
  await sleep(cfg.quick ? 300 : 1000);
  const rssAfter = rssBytes(cfg.brokerPid);
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
  if (pinger) Object.assign(metrics, await hold(cfg, pinger, holdSeconds, keepAlive));
  const stillOpen = conns.filter((c) => !c.lost).length;
  closeAll(conns);

  if (errors.length > 0) notes.push(`${errors.length} connection(s) failed, first: ${errors[0]}`);
  if (stillOpen < done) notes.push(`${done - stillOpen} connection(s) closed by the broker while idle`);
  if (done === 0) throw new Error(`no connection succeeded: ${errors[0] ?? 'timeout'}`);
  const rate = done / seconds;
  return {
    unit: 'connections/s',
    windows: [{ seconds, messages: done, rate, brokerCpuS: cpuConnect, cpuPerMillion: NaN, genCpuPct }],
    metrics,
    notes,
  };
}

/** Every second, PINGREQ from the connections whose turn it is: each once per 3/4 of its keep alive. */
class Pinger {
  sent = 0;
  private second = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly period: number;

  constructor(
    readonly conns: BenchConn[],
    keepAlive: number,
  ) {
    this.period = Math.max(1, Math.floor((keepAlive * 3) / 4));
    this.timer = setInterval(() => this.tick(), 1000);
  }

  private tick(): void {
    const conns = this.conns;
    for (let i = this.second++ % this.period; i < conns.length; i += this.period) {
      if (conns[i]!.lost) continue;
      conns[i]!.ping();
      this.sent++;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Holds the connections `seconds` after the last CONNACK, still PINGing; then stops the pings. */
async function hold(cfg: LoadConfig, pinger: Pinger, seconds: number, keepAlive: number): Promise<ScenarioResult['metrics']> {
  const cpu0 = cpuSeconds(cfg.brokerPid);
  const sent0 = pinger.sent;
  for (let second = 0; second < seconds; second++) {
    progress('holding', { second, pings: pinger.sent });
    await sleep(1000);
  }
  const holdCpuS = cpuSeconds(cfg.brokerPid) - cpu0;
  const holdPings = pinger.sent - sent0;
  pinger.stop();
  await sleep(1000); // the last PINGRESPs
  const conns = pinger.conns;
  return {
    holdSeconds: seconds,
    keepAlive,
    pingsSent: pinger.sent,
    pingresps: conns.reduce((n, c) => n + c.pingresps, 0),
    /** Over the whole run: while connecting the others and while holding. */
    lost: conns.filter((c) => c.lost).length,
    holdCpuS,
    holdPings,
    rssAfterHoldBytes: rssBytes(cfg.brokerPid),
  };
}
