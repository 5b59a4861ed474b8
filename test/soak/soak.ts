import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { connectClient } from '../helpers/broker.js';
import { kill, startCli, type RunningCli } from '../helpers/cli.js';
import { pace, until } from '../helpers/wait.js';

/**
 * A real `arbormq` process with LevelDB under mixed load for a while: clients connecting and leaving,
 * QoS 0, 1 and 2 streams, retained updates, wildcard and shared subscriptions, persistent sessions
 * going offline and coming back. Its /metrics is sampled every second (RSS, JS heap, arena bytes and
 * live handles, connections); at the end everything is wound down and the arena must be back where
 * it started.
 */

export interface SoakOptions {
  seconds: number;
  /** Publishes per second over all publishers (each stream gets a share). */
  rate?: number;
  /** Seconds of warm-up left out of the memory trend. */
  warmupSeconds?: number;
  progress?: (sample: Sample) => void;
}

export interface Sample {
  /** Seconds since the load started. */
  t: number;
  rss: number;
  heap: number;
  arenaBytes: number;
  /** Wasm memory the arena has reserved (slabs and huge blocks). */
  arenaReserved: number;
  arenaHandles: number;
  connections: number;
  received: number;
  sent: number;
}

export interface SoakResult {
  samples: Sample[];
  /** Before the load started and after it was wound down. */
  baseline: Sample;
  final: Sample;
  /** Least-squares slope after warm-up, bytes per minute. */
  rssSlope: number;
  heapSlope: number;
  /** Growth of the lowest heap (after a GC) and RSS from the first to the second half of the measured window, bytes. */
  heapFloorGrowth: number;
  rssFloorGrowth: number;
  published: number;
  delivered: number;
  connects: number;
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^arbormq_${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no arbormq_${name} in /metrics`);
  return Number(m[1]);
}

async function sample(httpPort: number, t: number): Promise<Sample> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return {
    t,
    rss: metric(text, 'process_resident_memory_bytes'),
    heap: metric(text, 'process_heap_used_bytes'),
    arenaBytes: metric(text, 'arena_bytes_in_use'),
    arenaReserved: metric(text, 'arena_bytes_reserved'),
    arenaHandles: metric(text, 'arena_live_handles'),
    connections: metric(text, 'connections'),
    received: metric(text, 'messages_received_total'),
    sent: metric(text, 'messages_sent_total'),
  };
}

/** Least-squares slope of `y` over `t` (seconds), per minute. */
export function slopePerMinute(samples: Sample[], y: (s: Sample) => number): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const my = samples.reduce((a, s) => a + y(s), 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (y(s) - my);
    den += (s.t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60;
}

function floorGrowth(samples: Sample[], y: (s: Sample) => number): number {
  const half = Math.floor(samples.length / 2);
  const low = (xs: Sample[]): number => Math.min(...xs.map(y));
  return half === 0 ? 0 : low(samples.slice(half)) - low(samples.slice(0, half));
}

/** Runs `body` every `ms` until stopped; errors of a round are counted, not thrown (a client may be between connections). */
function every(ms: number, body: () => Promise<void> | void): { stop(): Promise<void> } {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      try {
        await body();
      } catch {
        // 0x97 for a full session queue, or a client between connections: the next round goes on
      }
      await pace(Math.max(0, ms - (Date.now() - started)));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const rate = options.rate ?? 600;
  const warmup = options.warmupSeconds ?? Math.min(120, Math.round(options.seconds / 5));
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-soak-'));
  let cli: RunningCli | undefined;
  const clients: MqttClient[] = [];
  const loops: { stop(): Promise<void> }[] = [];
  let published = 0;
  let delivered = 0;
  let connects = 0;
  try {
    cli = await startCli(['--port', '0', '--host', '127.0.0.1', '--data-dir', dir], {
      env: { ARBORMQ_HTTP_PORT: '0', ARBORMQ_HTTP_HOST: '127.0.0.1', ARBORMQ_SYS_INTERVAL: '2' },
      expect: 2,
    });
    const url = `mqtt://127.0.0.1:${cli.ports.get('mqtt')}`;
    const httpPort = cli.ports.get('http')!;
    const open = async (options: Parameters<typeof connectClient>[1]): Promise<MqttClient> => {
      const c = await connectClient(url, options);
      connects++;
      c.on('message', () => delivered++);
      return c;
    };
    // $SYS is published (retained, in the arena) before the baseline is taken.
    let baseline!: Sample;
    await until(async () => (baseline = await sample(httpPort, 0)).arenaHandles > 0, 'the $SYS topics to be published', 10_000);

    // Steady subscribers: a wildcard at QoS 0, one at QoS 1, a shared group at QoS 2.
    for (const [filter, qos, version] of [
      ['soak/+/temp', 0, 4],
      ['soak/#', 1, 5],
      ['$share/workers/soak/jobs/#', 2, 5],
      ['$share/workers/soak/jobs/#', 2, 4],
      ['$share/workers/soak/jobs/#', 2, 5],
    ] as const) {
      const c = await open({ protocolVersion: version });
      await c.subscribeAsync(filter, { qos });
      clients.push(c);
    }
    // Publishers: QoS 0 readings, QoS 1 and QoS 2 jobs, retained state.
    const publisher = await open({ protocolVersion: 5, clientId: 'soak-publisher' });
    clients.push(publisher);
    const tickMs = 100;
    const perTick = Math.max(1, Math.round((rate * tickMs) / 1000 / 4));
    let n = 0;
    loops.push(
      every(tickMs, async () => {
        const pending: Promise<unknown>[] = [];
        for (let i = 0; i < perTick; i++, n++) {
          publisher.publish(`soak/${n % 50}/temp`, String(n), { qos: 0 });
          pending.push(publisher.publishAsync(`soak/jobs/${n % 7}`, Buffer.alloc(200 + (n % 1800), n), { qos: 1 }));
          pending.push(publisher.publishAsync(`soak/jobs/urgent/${n % 3}`, String(n), { qos: 2, properties: { userProperties: { n: String(n) } } }));
          pending.push(publisher.publishAsync(`soak/state/${n % 100}`, Buffer.alloc(n % 500, 1), { qos: 1, retain: true }));
          published += 4;
        }
        await Promise.all(pending);
      }),
    );
    // Persistent sessions: away a few seconds, back for their queue, in turn.
    const persistent = ['soak-p0', 'soak-p1', 'soak-p2', 'soak-p3'];
    for (const clientId of persistent) {
      const c = await open({ clientId, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
      await c.subscribeAsync('soak/jobs/#', { qos: 1 });
      await c.endAsync();
    }
    let turn = 0;
    loops.push(
      every(1500, async () => {
        const clientId = persistent[turn++ % persistent.length]!;
        const c = await open({ clientId, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
        await pace(500);
        await c.endAsync();
      }),
    );
    // Churn: short-lived clients connect, subscribe, publish, leave.
    let churned = 0;
    loops.push(
      every(200, async () => {
        const version = churned++ % 2 === 0 ? 4 : 5;
        const c = await open({ protocolVersion: version, clientId: `soak-churn-${churned % 20}`, clean: true });
        await c.subscribeAsync(['soak/state/#', 'soak/+/temp'], { qos: 1 });
        await c.publishAsync(`soak/churn/${churned % 10}`, 'hello', { qos: 1 });
        published++;
        await c.endAsync();
      }),
    );

    const samples: Sample[] = [];
    const started = Date.now();
    while (Date.now() - started < options.seconds * 1000) {
      const next = started + (samples.length + 1) * 1000;
      await pace(Math.max(0, next - Date.now()));
      const s = await sample(httpPort, (Date.now() - started) / 1000);
      samples.push(s);
      options.progress?.(s);
    }

    // Wind down: load stops, retained state is cleared, persistent sessions end, everyone leaves.
    for (const loop of loops.splice(0)) await loop.stop();
    for (let k = 0; k < 100; k++) await publisher.publishAsync(`soak/state/${k}`, '', { qos: 1, retain: true });
    for (const clientId of persistent) {
      const c = await open({ clientId, clean: true, protocolVersion: 5, properties: { sessionExpiryInterval: 0 } });
      await c.endAsync();
    }
    for (const c of clients.splice(0)) await c.endAsync();
    let final = await sample(httpPort, (Date.now() - started) / 1000);
    // Whether it got there is the caller's to judge, from `final`.
    await until(
      async () => {
        final = await sample(httpPort, (Date.now() - started) / 1000);
        return final.arenaHandles === baseline.arenaHandles && final.connections === 0;
      },
      'the arena back to its baseline and every client gone',
      10_000,
    ).catch(() => undefined);
    const measured = samples.filter((s) => s.t >= warmup);
    return {
      samples,
      baseline,
      final,
      rssSlope: slopePerMinute(measured, (s) => s.rss),
      heapSlope: slopePerMinute(measured, (s) => s.heap),
      heapFloorGrowth: floorGrowth(measured, (s) => s.heap),
      rssFloorGrowth: floorGrowth(measured, (s) => s.rss),
      published,
      delivered,
      connects,
    };
  } finally {
    for (const loop of loops) await loop.stop();
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await kill(cli);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The arena holds after the wind-down exactly the blocks it held before the load: the retained `$SYS`
 * values. Their bytes may differ by what the counters' digits added (a few hundred bytes).
 */
export function arenaBackToBaseline(result: SoakResult): boolean {
  return result.final.arenaHandles === result.baseline.arenaHandles && Math.abs(result.final.arenaBytes - result.baseline.arenaBytes) < 1024;
}

/** A small SVG line chart of RSS, JS heap and arena bytes over time (MiB). */
export function memoryChart(result: SoakResult, title: string): string {
  const w = 640;
  const h = 260;
  const left = 48;
  const bottom = 30;
  const top = 28;
  const right = 12;
  const samples = result.samples;
  const mib = (b: number): number => b / 1024 / 1024;
  const series: [string, string, (s: Sample) => number][] = [
    ['RSS', '#d62728', (s) => mib(s.rss)],
    ['JS heap', '#1f77b4', (s) => mib(s.heap)],
    ['arena in use', '#2ca02c', (s) => mib(s.arenaBytes)],
  ];
  const tMax = Math.max(1, ...samples.map((s) => s.t));
  const yMax = Math.max(1, ...samples.flatMap((s) => series.map(([, , y]) => y(s)))) * 1.1;
  const x = (t: number): number => left + (t / tMax) * (w - left - right);
  const y = (v: number): number => h - bottom - (v / yMax) * (h - bottom - top);
  const ticks = (max: number, count: number): number[] => {
    const step = Math.max(1, Math.ceil(max / count / 10) * 10);
    return Array.from({ length: Math.floor(max / step) + 1 }, (_, i) => i * step);
  };
  const lines = series.map(
    ([, color, f]) => `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${samples.map((s) => `${x(s.t).toFixed(1)},${y(f(s)).toFixed(1)}`).join(' ')}"/>`,
  );
  const legend = series.map(([name, color], i) => `<text x="${left + 8 + i * 120}" y="${top - 10}" fill="${color}">${name}</text>`);
  const yTicks = ticks(yMax, 5).map((v) => `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text><line x1="${left}" x2="${w - right}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
  const xTicks = ticks(tMax, 6).map((t) => `<text x="${x(t)}" y="${h - bottom + 16}" text-anchor="middle">${t}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    ...yTicks,
    `<line x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}" stroke="#888"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}" stroke="#888"/>`,
    ...xTicks,
    `<text x="${w - right}" y="${h - 4}" text-anchor="end">seconds</text>`,
    `<text x="8" y="${top - 10}">MiB</text>`,
    `<text x="${w - right}" y="${top - 10}" text-anchor="end">${title}</text>`,
    ...lines,
    ...legend,
    '</svg>',
    '',
  ].join('\n');
}
