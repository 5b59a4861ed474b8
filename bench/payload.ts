// `npm run bench:payload`: fan-out 1 → 100 and point-to-point QoS 1 at payload sizes from 100 B to
// 1 MB, against ArborMQ, Aedes, Mosquitto and a plain Node relay (bench/brokers/relay.ts, the
// practical limit of one Node process moving bytes) in the same run, each attempt in fresh processes
// (bench/scenario-process.ts). Per size the brokers run one after another, so noise on the shared
// machine spreads over all of them. Writes the "Payload sweep" section of bench/RESULTS.md.
//
//   --sizes 100,1024,10240,65536,262144,1048576   --brokers arbormq,aedes,mosquitto,relay
//   --scenarios fan-out,p2p-qos1   --windows 2   --window-ms 2000   --out FILE (default RESULTS.md)
//   --copy-limits 512,2048,8192,65536: ArborMQ once per copyLimitBytes value instead (the threshold
//     sweep; writes the "Copy/reference threshold" section)
//   --before DIR: also ArborMQ from another built checkout (ARBORMQ_ROOT, see brokers/arbormq.ts),
//     right before this one's at each size and scenario (with --copy-limits: each limit for both)

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spliceSection } from './browser.js';
import { BROKER_LABEL, type BrokerName } from './broker-process.js';
import { mosquittoPath } from './brokers/mosquitto-path.js';
import { ROOT } from './children.js';
import type { ScenarioName } from './load/types.js';
import { runAttempt, type Attempt } from './scenario-process.js';
import { median } from './stats.js';

interface Row {
  size: number;
  scenario: ScenarioName;
  label: string;
  ok: boolean;
  error?: string;
  /** Median over windows: messages received per second (deliveries for fan-out). */
  rate: number;
  bytesPerSecond: number;
  cpuSecondsPerGB: number;
  peakRssBytes: number;
  genCpuPct: number;
  lost: number;
  notes: string[];
}

interface Variant {
  broker: BrokerName;
  label: string;
  env?: Record<string, string>;
}

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1024,10240,65536,262144,1048576' },
    brokers: { type: 'string', default: 'arbormq,aedes,mosquitto,relay' },
    scenarios: { type: 'string', default: 'fan-out,p2p-qos1' },
    windows: { type: 'string', default: '2' },
    'window-ms': { type: 'string', default: '2000' },
    'copy-limits': { type: 'string' },
    before: { type: 'string' },
    out: { type: 'string' },
  },
  strict: true,
});

const sizes = values.sizes!.split(',').map(Number);
const scenarios = values.scenarios!.split(',') as ScenarioName[];
for (const s of scenarios) if (s !== 'fan-out' && s !== 'p2p-qos1') throw new Error(`--scenarios: fan-out or p2p-qos1, not ${s}`);
const copyLimits = values['copy-limits']?.split(',').map(Number);
const before = values.before;
/** ArborMQ from the --before checkout, then from this one. */
const withBefore = (label: string, env: Record<string, string> = {}): Variant[] => [
  ...(before ? [{ broker: 'arbormq' as const, label: `${label} before (${before})`, env: { ...env, ARBORMQ_ROOT: before } }] : []),
  { broker: 'arbormq', label, env },
];
const variants: Variant[] = copyLimits
  ? copyLimits.flatMap((n) => withBefore(`ArborMQ, copyLimitBytes ${n}`, { ARBORMQ_BENCH_COPY_LIMIT: String(n) }))
  : (values.brokers!.split(',') as BrokerName[])
      .filter((b) => b !== 'mosquitto' || mosquittoPath() !== null)
      .flatMap((broker) => (broker === 'arbormq' ? withBefore(BROKER_LABEL[broker]) : [{ broker, label: BROKER_LABEL[broker] }]));
const windows = Number(values.windows);
const windowMs = Number(values['window-ms']);
const out = values.out ?? join(ROOT, 'bench/RESULTS.md');

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';
const sizeLabel = (n: number): string => (n >= 1024 * 1024 ? `${n / (1024 * 1024)} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`);
const mb = (n: number): string => fmt(n / 1e6, n >= 1e8 ? 0 : 1);

function row(size: number, scenario: ScenarioName, label: string, a: Attempt): Row {
  const w = a.result?.windows ?? [];
  const messages = w.reduce((n, x) => n + x.messages, 0);
  const cpu = w.reduce((n, x) => n + x.brokerCpuS, 0);
  const rate = median(w.map((x) => x.rate));
  return {
    size,
    scenario,
    label,
    ok: a.ok,
    ...(a.error ? { error: a.error } : {}),
    rate,
    bytesPerSecond: rate * size,
    cpuSecondsPerGB: messages > 0 ? cpu / ((messages * size) / 1e9) : NaN,
    peakRssBytes: a.brokerPeakRssBytes ?? NaN,
    genCpuPct: median(w.map((x) => x.genCpuPct)),
    lost: Number(a.result?.metrics.lost ?? 0),
    notes: a.result?.notes ?? [],
  };
}

const started = new Date();
const loadBefore = loadavg();
const rows: Row[] = [];
for (const size of sizes) {
  for (const scenario of scenarios) {
    for (const v of variants) {
      log(`[${sizeLabel(size)} ${scenario}] ${v.label}…`);
      const attempt = await runAttempt({
        broker: v.broker,
        scenario,
        quick: false,
        warmupMs: 1000,
        windowMs,
        windows,
        timeoutMs: 60_000 + windows * windowMs,
        payloadBytes: size,
        ...(v.env ? { brokerEnv: v.env } : {}),
      });
      const r = row(size, scenario, v.label, attempt);
      rows.push(r);
      log(r.ok ? `  ${fmt(r.rate)} msgs/s, ${mb(r.bytesPerSecond)} MB/s, ${fmt(r.cpuSecondsPerGB, 2)} CPU-s/GB, peak RSS ${mb(r.peakRssBytes)} MB` : `  failed: ${r.error}`);
    }
  }
}
const loadAfter = loadavg();
const seconds = (Date.now() - started.getTime()) / 1000;

const relayOf = (size: number, scenario: ScenarioName): Row | undefined => rows.find((r) => r.size === size && r.scenario === scenario && r.label === BROKER_LABEL.relay && r.ok);
const heading = copyLimits ? 'Copy/reference threshold' : 'Payload sweep';
const argv = process.argv.slice(2).join(' ');
const lines = [
  `## ${heading}`,
  '',
  `\`npm run bench:payload${argv ? ` -- ${argv}` : ''}\` on ${started.toISOString()}, Node ${process.version}; warm-up 1 s, then ${windows} window(s) of ${windowMs} ms per attempt, median reported; ${Math.round(seconds)} s in all. Load average (1/5/15 min) ${loadBefore.map((x) => x.toFixed(2)).join(' / ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(' / ')} after: the 2 cores are shared, compare CPU-s per GB more than rates.`,
  '',
  'fan-out: 1 publisher → 100 subscribers of one topic, QoS 0, rate in deliveries/s; p2p-qos1: 50 publisher/subscriber pairs, QoS 1. Payloads in flight are capped by bytes (fan-out ≤ 256 MiB of deliveries, ≥ 2 messages; p2p ≤ 64 MiB over all pairs, ≥ 1 per pair), so large payloads run with shallower windows than the 64-byte scenarios. "MB/s" is payload bytes delivered per second (10^6 bytes); "CPU-s / GB" the broker process\'s CPU seconds per 10^9 payload bytes delivered; "peak RSS" the broker\'s VmHWM at the end of the attempt' +
    (copyLimits ? '.' : '; "vs relay" the share of the Node relay\'s MB/s in the same run.'),
  '',
  `| payload | scenario | broker | msgs/s | MB/s | CPU-s / GB | peak RSS MB | generator CPU | ${copyLimits ? '' : 'vs relay | '}notes |`,
  `| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ${copyLimits ? '' : '---: | '}--- |`,
];
for (const r of rows) {
  const relay = relayOf(r.size, r.scenario);
  const share = relay && r.label !== BROKER_LABEL.relay && relay.bytesPerSecond > 0 ? `${Math.round((100 * r.bytesPerSecond) / relay.bytesPerSecond)} %` : '';
  const notes = r.ok ? [...r.notes, ...(r.lost > 0 ? [`${r.lost} lost`] : [])].join('; ') : `failed: ${r.error}`;
  lines.push(
    `| ${sizeLabel(r.size)} | ${r.scenario} | ${r.label} | ${r.ok ? fmt(r.rate) : '—'} | ${r.ok ? mb(r.bytesPerSecond) : '—'} | ${fmt(r.cpuSecondsPerGB, 2)} | ${mb(r.peakRssBytes)} | ${fmt(r.genCpuPct)}% | ${copyLimits ? '' : `${share} | `}${notes} |`,
  );
}
const section = `${lines.join('\n')}\n`;
process.stdout.write(section);
writeFileSync(out, spliceSection(existsSync(out) ? readFileSync(out, 'utf8') : '', section, heading));
log(`wrote the "${heading}" section of ${out}`);
