// `npm run bench:idle`: idle MQTT connections at scale — ArborMQ, Mosquitto and the plain Node relay
// (bench/brokers/relay.ts: a bare `net` server that only answers CONNECT, the cost of Node's own
// sockets) in the same run. For each count: connect (CONNECT clean session), RSS growth per
// connection, connect rate and broker CPU per connection, then hold every connection for
// --hold seconds with PINGREQs at 3/4 of its keep alive: no connection may be dropped, every PINGREQ
// answered. Writes the "Idle connections at scale" section of bench/RESULTS.md.
//
//   --counts 10000,100000   --hold 60   --keep-alive 20   --brokers arbormq,mosquitto,relay
//   --warm 2000 (connections opened and closed first: the broker's one-time costs,
//     compiling its code above all, are not a connection's)
//   --nofile 210000 (open-files limit to ask for; needs permission to raise the hard limit)
//   --before DIR: also ArborMQ from another built checkout (ARBORMQ_ROOT, see brokers/arbormq.ts), run
//     right before this one's at each count: a before/after comparison in one run
//   --out FILE

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spliceSection } from './browser.js';
import { BROKER_LABEL, type BrokerName } from './broker-process.js';
import { mosquittoPath } from './brokers/mosquitto-path.js';
import { ROOT } from './children.js';
import { runAttempt } from './scenario-process.js';

const { values } = parseArgs({
  options: {
    counts: { type: 'string', default: '10000,100000' },
    hold: { type: 'string', default: '60' },
    'keep-alive': { type: 'string', default: '20' },
    warm: { type: 'string', default: '2000' },
    brokers: { type: 'string', default: 'arbormq,mosquitto,relay' },
    nofile: { type: 'string', default: '210000' },
    before: { type: 'string' },
    out: { type: 'string' },
  },
  strict: true,
});
const counts = values.counts!.split(',').map(Number);
const holdSeconds = Number(values.hold);
const keepAlive = Number(values['keep-alive']);
interface Variant {
  broker: BrokerName;
  label: string;
  env: Record<string, string>;
}
const variants: Variant[] = [];
for (const broker of (values.brokers!.split(',') as BrokerName[]).filter((b) => b !== 'mosquitto' || mosquittoPath() !== null)) {
  if (broker === 'arbormq' && values.before) variants.push({ broker, label: `ArborMQ before (${values.before})`, env: { ARBORMQ_ROOT: values.before } });
  variants.push({ broker, label: broker === 'relay' ? 'bare Node net server (relay)' : BROKER_LABEL[broker], env: {} });
}
const out = values.out ?? join(ROOT, 'bench/RESULTS.md');
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const fmt = (n: unknown, digits = 0): string =>
  typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';
const kib = (n: unknown): string => (typeof n === 'number' ? fmt(n / 1024, 2) : '—');
const mib = (n: unknown): string => (typeof n === 'number' ? fmt(n / (1024 * 1024), 1) : '—');

/** ArborMQ's own count of why it closed connections (its runner reports broker.metrics). */
function brokerCounters(stats: Record<string, unknown> | null | undefined): string[] {
  const metrics = stats?.metrics as Record<string, number> | undefined;
  if (!metrics) return [];
  return [`broker counted ${metrics.keepAliveTimeouts ?? '?'} keep-alive timeouts, ${metrics.connectTimeouts ?? '?'} CONNECT timeouts`];
}

const started = new Date();
const loadBefore = loadavg();
const lines: string[] = [];
for (const connections of counts) {
  for (const { broker, label, env } of variants) {
    log(`[${connections} idle] ${label}…`);
    const load = loadavg()[0]!;
    const a = await runAttempt({
      broker,
      scenario: 'idle',
      quick: false,
      warmupMs: 0,
      windowMs: 0,
      windows: 1,
      timeoutMs: 180_000 + connections + holdSeconds * 1000,
      idle: { connections, holdSeconds, keepAlive, warm: Number(values.warm) },
      brokerEnv: { ARBORMQ_BENCH_NOFILE: values.nofile!, ...env },
    });
    if (!a.ok || !a.result) {
      lines.push(`| ${fmt(connections)} | ${label} | failed: ${a.error} | | | | | | | | | | ${load.toFixed(1)} |`);
      log(`  failed: ${a.error}`);
      continue;
    }
    const m = a.result.metrics;
    const w = a.result.windows[0]!;
    const row = [
      fmt(connections),
      label,
      fmt(m.connections),
      fmt(w.rate),
      `${fmt(w.genCpuPct)}%`,
      fmt(Number(m.cpuMsPer1kConnects) / 1000, 3),
      fmt(1e6 / Number(m.cpuMsPer1kConnects)),
      kib(m.rssPerConnBytes),
      `${mib(m.rssBeforeBytes)} → ${mib(m.rssAfterBytes)} → ${mib(m.rssAfterHoldBytes)}`,
      `${fmt(m.pingresps)} / ${fmt(m.pingsSent)}`,
      fmt(m.lost),
      fmt(typeof m.holdCpuS === 'number' ? (m.holdCpuS * 1e6) / Number(m.holdPings) : NaN, 1),
      load.toFixed(1),
      [...a.result.notes, ...brokerCounters(a.brokerStats)].join('; '),
    ];
    lines.push(`| ${row.join(' | ')} |`);
    log(`  ${lines[lines.length - 1]}`);
  }
}
const loadAfter = loadavg();
const argv = process.argv.slice(2).join(' ');
const section = [
  '## Idle connections at scale',
  '',
  `\`npm run bench:idle${argv ? ` -- ${argv}` : ''}\` on ${started.toISOString()}, Node ${process.version}; ${Math.round((Date.now() - started.getTime()) / 1000)} s in all. Load average ${loadBefore.map((x) => x.toFixed(2)).join(' / ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(' / ')} after (the 2 cores are shared: rates move with it, CPU per connection and RSS much less).`,
  '',
  `Each connection: TCP from the load generator (127.0.0.2, .3, … past 20,000), CONNECT clean session with keep alive ${keepAlive} s, CONNACK awaited, 256 handshakes at a time, all from one generator process${Number(values.warm) > 0 ? `, after ${fmt(Number(values.warm))} connections opened and closed to warm the broker up: a Node broker compiles its code on the first connections, once per process, and that is not a connection's cost` : ''}. "generator CPU" is that process's CPU over the connecting, in % of one core: near 100 % it, not the broker, sets "conn/s". "CPU ms / conn" is the broker's CPU over the connecting per connection, and "conn/s per broker core" what that allows the broker on a core of its own (1 / CPU per connection). "RSS / conn" is the broker's RSS growth from before the first connection to 1 s after the last CONNACK, divided by the connections. From its CONNACK on every connection sends PINGREQ every ${Math.floor((keepAlive * 3) / 4)} s (spread over that period), and after the last CONNACK all are held ${holdSeconds} s more: "PINGRESP / PINGREQ" and "dropped" (over the whole run) show keep alive serviced for all of them, "CPU µs / PINGREQ" the broker's CPU over the hold per PINGREQ sent in it (all its idle work included). The broker and the generator are raised to the open-files limit asked for (--nofile) where the hard limit allows it; else to the hard limit, and the notes say how many connections that left.`,
  '',
  '| connections asked | broker | connected | conn/s | generator CPU | CPU ms / conn | conn/s per broker core | RSS / conn KiB | RSS MiB before → connected → after hold | PINGRESP / PINGREQ | dropped | CPU µs / PINGREQ | load (1 min) | notes |',
  '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |',
  ...lines,
  '',
].join('\n');
process.stdout.write(section);
const current = existsSync(out) ? readFileSync(out, 'utf8') : '';
writeFileSync(out, spliceSection(current, section, 'Idle connections at scale'));
log(`wrote the "Idle connections at scale" section of ${out}`);
