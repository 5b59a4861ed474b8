// bench/RESULTS.md from a run's results: machine and method, one table per scenario, ratios,
// core micro-benchmarks, GC, and the Notes section the lead fills in.

import type { BrokerName } from './broker-process.js';
import type { CoreOutcome } from './core-process.js';
import { ACL_RULES } from './acl-file.js';
import { DURABLE_SCENARIOS, PERSISTENCE_NOT_COMPARABLE, type Metric, type ScenarioName } from './load/types.js';
import type { RunResults } from './run.js';
import type { Summary } from './summary.js';

const GEN_BOUND_PCT = 90;

const int = (n: unknown): string => (typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const dec = (n: unknown, d = 2): string => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(d) : '—');
const mib = (n: unknown): string => (typeof n === 'number' && Number.isFinite(n) ? `${+(n / 1048576).toFixed(1)} MiB` : '—');
const kib = (n: unknown): string => (typeof n === 'number' && Number.isFinite(n) ? `${(n / 1024).toFixed(1)} KiB` : '—');
const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '—');
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

type Column = [title: string, value: (s: Summary) => string];

const RATE: Column = ['msgs/s', (s) => int(s.rate)];
const DELIVERIES: Column = ['deliveries/s', (s) => int(s.rate)];
/** Lowest and highest window: how much the shared machine moved the figure. */
const SPREAD: Column = ['window range', (s) => (s.rates.length > 1 ? `${int(Math.min(...s.rates))} – ${int(Math.max(...s.rates))}` : '—')];
const CPU: Column = ['broker CPU-s / 1M msgs', (s) => dec(s.cpuPerMillion)];
const GEN: Column = ['generator CPU', (s) => (Number.isFinite(s.genCpuPct) ? `${Math.round(s.genCpuPct)}%${s.genCpuPct >= GEN_BOUND_PCT ? ' ⚠' : ''}` : '—')];
const LOST: Column = ['lost', (s) => int(s.metrics.lost)];
const US_TITLES: Record<string, string> = { p50us: 'p50 µs', p99us: 'p99 µs', p999us: 'p99.9 µs', maxUs: 'max µs' };
const us = (k: string): Column => [US_TITLES[k] ?? k, (s) => int(s.metrics[k])];

const SECTIONS: Record<ScenarioName, { title: string; what: string; columns: Column[] }> = {
  'fan-in': { title: 'Fan-in, QoS 0', what: '8 publishers → 1 subscriber on `bench/#`, 64-byte payloads.', columns: [RATE, SPREAD, CPU, GEN, LOST] },
  'fan-out': { title: 'Fan-out, QoS 0', what: '1 publisher → 100 subscribers of one topic; the rate counts deliveries.', columns: [DELIVERIES, SPREAD, CPU, GEN, LOST] },
  'fan-out-acl': {
    title: 'Fan-out, QoS 0, with a 1,000-rule ACL',
    what: `The fan-out load against a broker enforcing an ACL file of ${ACL_RULES.toLocaleString('en-US')} rules (bench/acl-file.ts: 350 users, deny lines inside the subtree the load uses, \`pattern\` lines with \`%c\` / \`%u\`, which make part of every subscriber's rules its own); each delivery is checked against the subscriber's read rules. Target: within 20% of the fan-out rate without an ACL.`,
    columns: [DELIVERIES, SPREAD, CPU, GEN, LOST],
  },
  'p2p-qos1': {
    title: 'Point to point, QoS 1',
    what: '50 publisher/subscriber pairs, each publisher keeping 10 PUBLISHes unacknowledged, each subscriber PUBACKing.',
    columns: [RATE, SPREAD, CPU, GEN, LOST],
  },
  // Rendered together by durableSection (one row per durability), right after the in-memory figures.
  'p2p-qos1-durable': { title: 'Point to point, QoS 1, durable (LevelDB, fsync)', what: '', columns: [RATE, SPREAD, CPU, GEN, LOST] },
  'p2p-qos1-durable-os': { title: 'Point to point, QoS 1, durable (LevelDB, no fsync)', what: '', columns: [RATE, SPREAD, CPU, GEN, LOST] },
  'latency-qos0': { title: 'Latency, QoS 0', what: '1 → 1 at a fixed 5,000 msg/s; publish-to-receive time, all measured windows pooled.', columns: [us('p50us'), us('p99us'), us('p999us'), us('maxUs'), ['samples', (s) => int(s.metrics.samples)], RATE, CPU] },
  'latency-qos1': { title: 'Latency, QoS 1', what: 'As above with QoS 1 publish and subscription (subscriber PUBACKs).', columns: [us('p50us'), us('p99us'), us('p999us'), us('maxUs'), ['samples', (s) => int(s.metrics.samples)], RATE, CPU] },
  idle: {
    title: 'Idle connections',
    what: 'N MQTT connections opened 256 at a time until all are CONNACKed; broker RSS after minus before, divided by N.',
    columns: [
      ['connections', (s) => int(s.metrics.connections)],
      ['connect rate (conn/s)', (s) => int(s.rate)],
      ['RSS / connection', (s) => kib(s.metrics.rssPerConnBytes)],
      ['broker CPU ms / 1k connects', (s) => int(s.metrics.cpuMsPer1kConnects)],
      ['RSS before → after', (s) => `${mib(s.metrics.rssBeforeBytes)} → ${mib(s.metrics.rssAfterBytes)}`],
    ],
  },
  wildcard: {
    title: 'Wildcard routing',
    what: '10,000 distinct filters with `+` and `#` over 100 connections (100 each), rounds of publishes over 30,000 distinct topics, then an exact check: each connection must receive each topic once per publish if any of its filters matches (one copy however many match).',
    columns: [DELIVERIES, SPREAD, CPU, GEN, ['exact check', (s) => (s.metrics.exactCheck === true ? 'pass' : s.metrics.exactCheck === false ? 'FAIL' : '—')], ['deliveries checked', (s) => int(s.metrics.expectedDeliveries)]],
  },
  gc: {
    title: 'GC run',
    what: 'QoS 0, 1 publisher → 1 subscriber, fixed message count (figures in the GC section).',
    columns: [RATE, CPU, ['messages', (s) => int(s.metrics.messages)]],
  },
};

/** Scenarios whose table also gives each broker's rate as a share of its rate in another scenario of the run. */
const VERSUS: Partial<Record<ScenarioName, ScenarioName>> = { 'fan-out-acl': 'fan-out' };

function scenarioSection(r: RunResults, scenario: ScenarioName): string {
  const sec = SECTIONS[scenario];
  const versus = VERSUS[scenario];
  const titles = [...sec.columns.map(([t]) => t), ...(versus ? [`vs \`${versus}\` of this run`] : [])];
  const rows: string[][] = [];
  for (const b of r.brokers) {
    const s = r.results[scenario]?.[b.name];
    if (!s) {
      rows.push([b.label, ...titles.map(() => '—'), r.skipped?.[scenario]?.[b.name] ?? (b.status === 'ran' ? 'not run' : b.status)]);
      continue;
    }
    const base = versus ? r.results[versus]?.[b.name] : undefined;
    const share = versus ? [base && base.succeeded > 0 && s.succeeded > 0 ? `${Math.round((s.rate / base.rate) * 100)}%` : '—'] : [];
    const failure = s.ok ? [] : [s.succeeded > 0 ? `**FAILED** in run ${s.succeeded + 1} (figures from ${s.succeeded} run(s) before it): ${s.error}` : `**FAILED**: ${s.error}`];
    const notes = [...failure, ...s.notes, ...brokerDrops(s)];
    rows.push([b.label, ...sec.columns.map(([, v]) => (s.succeeded > 0 ? v(s) : '—')), ...share, notes.join('; ')]);
  }
  const idleNote = scenario === 'idle' && r.mode === 'quick' ? ' (quick run: 2,000 connections)' : '';
  return `## ${sec.title}\n\n${sec.what}${idleNote}\n\n${table(['broker', ...titles, 'notes'], rows)}\n`;
}

/** The target for the durable scenarios: a share of the in-memory p2p-qos1 rate and a floor. */
export const DURABLE_TARGET = { shareOfMemory: 0.5, minRate: 100_000 };

const DURABILITY_LABEL: Record<'sync' | 'os', string> = {
  sync: '`sync` (default): fsync per group commit',
  os: '`os`: no fsync (OS page cache)',
};

/** Both p2p-qos1-durable scenarios in one table, against the in-memory p2p-qos1 figure of the same run. */
function durableSection(r: RunResults): string {
  const memory = r.results['p2p-qos1']?.arbormq;
  const base = memory && memory.succeeded > 0 ? memory : undefined;
  const pct = (x: number): string => `${Math.round(x * 100)}%`;
  const rows: string[][] = [];
  let filesystem = '';
  for (const sc of r.scenarios.filter((x) => DURABLE_SCENARIOS[x])) {
    const durability = DURABLE_SCENARIOS[sc]!;
    const s = r.results[sc]?.arbormq;
    const label = `${DURABILITY_LABEL[durability]} (\`${sc}\`)`;
    if (!s) {
      rows.push([label, ...Array(8).fill('—'), r.skipped?.[sc]?.arbormq ?? (r.brokers.some((b) => b.name === 'arbormq') ? 'not run' : 'ArborMQ not in this run')]);
      continue;
    }
    const store = s.brokerInfo?.store as { filesystem?: string } | undefined;
    if (store?.filesystem) filesystem ||= store.filesystem;
    const has = s.succeeded > 0;
    const share = has && base ? s.rate / base.rate : NaN;
    let target = '—';
    if (has && Number.isFinite(share)) {
      const misses = [
        ...(share < DURABLE_TARGET.shareOfMemory ? [`${pct(share)} of in-memory < ${pct(DURABLE_TARGET.shareOfMemory)}`] : []),
        ...(s.rate < DURABLE_TARGET.minRate ? [`${int(s.rate)} < ${int(DURABLE_TARGET.minRate)} msgs/s`] : []),
      ];
      target = misses.length ? `**missed** (${misses.join('; ')})` : 'met';
    }
    const failure = s.ok ? [] : [s.succeeded > 0 ? `**FAILED** in run ${s.succeeded + 1} (figures from ${s.succeeded} run(s) before it): ${s.error}` : `**FAILED**: ${s.error}`];
    rows.push([
      label,
      has ? int(s.rate) : '—',
      has ? SPREAD[1](s) : '—',
      has ? dec(s.cpuPerMillion) : '—',
      has ? GEN[1](s) : '—',
      has ? int(s.metrics.storageBytesPerMsg) : '—',
      has ? int(s.metrics.lost) : '—',
      has && base ? `${pct(share)} of msgs/s; ${ratio(s.cpuPerMillion, base.cpuPerMillion)} the CPU per message` : '—',
      target,
      [...failure, ...s.notes, ...brokerDrops(s)].join('; '),
    ]);
  }
  const baseline = base
    ? `In-memory \`p2p-qos1\` of this run, for the comparison: ${int(base.rate)} msgs/s, ${dec(base.cpuPerMillion)} broker CPU-s / 1M msgs.`
    : 'The in-memory `p2p-qos1` figure is not in this run (select `p2p-qos1` too), so there is no comparison.';
  const others = r.brokers.filter((b) => b.name !== 'arbormq');
  const skipped = others.length
    ? `\n${others.map((b) => b.label).join(' and ')} ${others.length > 1 ? 'are' : 'is'} skipped here (persistence not comparable): ${others
        .map((b) => (b.status === 'ran' ? PERSISTENCE_NOT_COMPARABLE[b.name] : `${b.label} ${b.status}`))
        .join('; ')}.\n`
    : '';
  return `## Point to point, QoS 1, durable (ArborMQ with LevelDB)

The point-to-point load above (50 pairs, 10 PUBLISHes in flight per publisher, 64-byte payloads) against ArborMQ started with a LevelDB data directory (\`dataDir\`: a fresh temp directory per attempt${filesystem ? `, on ${filesystem}` : ''}, removed afterwards). The subscribers connect with CleanSession = 0 (persistent sessions, client ids unique to the run), so every message's body and delivery are written to LevelDB and deleted again on the subscriber's PUBACK, and a publisher's PUBACK waits until the group commit holding its changes is durable. "storage bytes / msg" is the broker's \`write_bytes\` from \`/proc/<pid>/io\` over the windows, per message. Target: ≥ ${pct(DURABLE_TARGET.shareOfMemory)} of the in-memory figure and ≥ ${int(DURABLE_TARGET.minRate)} msgs/s. ${baseline}

${table(['durability', 'msgs/s', 'window range', 'broker CPU-s / 1M msgs', 'generator CPU', 'storage bytes / msg', 'lost', 'vs in-memory', 'target', 'notes'], rows)}
${skipped}`;
}

/** The report's "## Notes" section (to the end: it is the last) from an earlier report, or ''. */
export function notesSection(markdown: string): string {
  const start = markdown.search(/^## Notes[ \t]*$/m);
  return start < 0 ? '' : markdown.slice(start).trimEnd() + '\n';
}

/** ArborMQ reports its own drop counters: show any that are nonzero. */
function brokerDrops(s: Summary): string[] {
  const m = s.brokerStats?.metrics as Record<string, number> | undefined;
  if (!m) return [];
  return ['qos0Dropped', 'queueDropped', 'arenaFullDropped'].filter((k) => m[k]! > 0).map((k) => `broker ${k} = ${m[k]}`);
}

function ratioSection(r: RunResults): string {
  const get = (sc: ScenarioName, b: BrokerName): Summary | undefined => {
    const s = r.results[sc]?.[b];
    return s?.ok ? s : undefined;
  };
  const others = (['aedes', 'mosquitto'] as BrokerName[]).filter((b) => r.brokers.some((x) => x.name === b));
  if (!r.brokers.some((x) => x.name === 'arbormq') || others.length === 0) return '';
  const rows: string[][] = [];
  const add = (label: string, sc: ScenarioName, f: (s: Summary) => number): void => {
    const a = get(sc, 'arbormq');
    if (!a && !others.some((o) => get(sc, o))) return;
    rows.push([label, ...others.map((o) => ratio(a ? f(a) : NaN, get(sc, o) ? f(get(sc, o)!) : NaN))]);
  };
  const num = (v: Metric | undefined): number => (typeof v === 'number' ? v : NaN);
  for (const sc of ['fan-in', 'fan-out', 'p2p-qos1', 'wildcard', 'gc'] as ScenarioName[]) {
    add(`${SECTIONS[sc].title}: throughput`, sc, (s) => s.rate);
    add(`${SECTIONS[sc].title}: broker CPU per message`, sc, (s) => s.cpuPerMillion);
  }
  for (const sc of ['latency-qos0', 'latency-qos1'] as ScenarioName[]) {
    add(`${SECTIONS[sc].title}: p50`, sc, (s) => num(s.metrics.p50us));
    add(`${SECTIONS[sc].title}: p99`, sc, (s) => num(s.metrics.p99us));
  }
  add('Idle: connect rate', 'idle', (s) => s.rate);
  add('Idle: RSS per connection', 'idle', (s) => num(s.metrics.rssPerConnBytes));
  const labels = others.map((o) => `ArborMQ / ${r.brokers.find((b) => b.name === o)!.label}`);
  return `## Ratios\n\nArborMQ's figure divided by the other broker's: above 1 is better for throughput and connect rate, below 1 is better for CPU, latency and memory.\n\n${table(['figure', ...labels], rows)}\n`;
}

function coreSection(core: CoreOutcome | null): string {
  if (!core) return '';
  if (!core.ok) return `## Core micro-benchmarks\n\n**FAILED**: ${core.error}\n`;
  const trie = table(
    ['filters', 'clients matched / lookup', 'wasm ns / lookup', 'JS Map trie ns / lookup', 'JS ÷ wasm', 'wasm subscribe ns', 'JS subscribe ns', 'wasm memory growth', 'JS heap', 'disagreements'],
    core.trie!.map((t) => [
      int(t.filters),
      dec(t.avgMatches),
      int(t.wasmNsPerLookup),
      int(t.jsNsPerLookup),
      dec(t.jsNsPerLookup / t.wasmNsPerLookup),
      int(t.wasmSubscribeNs),
      int(t.jsSubscribeNs),
      mib(t.wasmMemoryBytes),
      mib(t.jsHeapBytes),
      `${t.disagreements} / 2,000`,
    ]),
  );
  const alloc = table(
    ['operation', 'ns / op', 'GC events'],
    core.alloc!.map((a) => [a.name, dec(a.nsPerOp, 1), int(a.gcEvents)]),
  );
  const big = core.trie!.find((t) => t.filters === 1_000_000);
  const memory = big
    ? `Memory of 1,000,000 subscriptions: wasm linear memory grew by ${mib(big.wasmMemoryBytes)} (${int(big.wasmMemoryBytes / 1e6)} bytes per subscription, in whole 64 KiB pages as memory.grow allocates them); the JS trie took ${mib(big.jsHeapBytes)} of heap (${int(big.jsHeapBytes / 1e6)} bytes per subscription, after a full GC).`
    : 'Memory of 1,000,000 subscriptions: measured in the full run only.';
  return `## Core micro-benchmarks

\`bench/core.ts\`: the wasm trie (\`Core.match\` on topic bytes already in an arena block, as the broker calls it) against \`bench/js-trie.ts\` (a Map per level, same semantics, topics given as strings and split) on the same random filters (org/building/floor/device/metric, 58% of draws exact, the rest with \`+\` and \`#\`) and the same ${int(core.topics)} topics (half derived from filters, half random), ${int(core.lookups)} lookups each. "Disagreements" compares the number of clients each trie returns for the first 2,000 topics. The wasm memory of a 10k-filter trie can fit in the initial memory (growth 0).

${trie}

Allocation, ${int(core.allocs)} operations each (arena through the \`Core\` wrapper, as the broker calls it):

${alloc}

${memory}
`;
}

function gcSection(r: RunResults): string {
  const rows: string[][] = [];
  for (const b of r.brokers) {
    const s = r.results.gc?.[b.name];
    if (!s) continue;
    if (!s.ok) {
      rows.push([b.label, ...Array(8).fill('—'), `**FAILED**: ${s.error}`]);
      continue;
    }
    const m = s.metrics;
    const node = typeof m.gcMinor === 'number';
    rows.push([
      b.label,
      int(m.messages),
      int(s.rate),
      node ? int(m.gcMinor) : 'n/a',
      node ? int(m.gcMajor) : 'n/a',
      node ? int(m.gcIncremental) : 'n/a',
      node ? dec(m.gcPauseMs, 1) : 'n/a',
      node ? mib(m.heapGrowthBytes) : 'n/a',
      node ? mib(m.heapRetainedBytes) : 'n/a',
      s.notes.join('; '),
    ]);
  }
  if (rows.length === 0) return '';
  return `## GC

QoS 0, 1 publisher → 1 subscriber, a fixed number of messages. The Node runners count GC events with a PerformanceObserver ('gc'); heap figures come from the runner before (after a forced full GC) and right after the run ("heap growth", garbage included) and again after a forced full GC ("retained").

${table(['broker', 'messages', 'msgs/s', 'minor GCs', 'major GCs', 'incremental', 'GC pause ms', 'heap growth', 'retained', 'notes'], rows)}
`;
}

function brokerSection(r: RunResults): string {
  const rows = r.brokers.map((b) => {
    const info = b.info ?? {};
    if (b.name === 'arbormq') {
      const opts = info.options as Record<string, number> | undefined;
      const show = (k: string, v: number): string => (k.endsWith('Bytes') ? `${k} ${mib(v)}` : `${k} ${v.toLocaleString('en-US')}`);
      return [b.label, `${(info.build as string) ?? '—'}`, opts ? `${Object.entries(opts).map(([k, v]) => show(k, v)).join(', ')}; other options default (maxInflight 100)` : '—'];
    }
    if (b.name === 'aedes') return [`${b.label} ${(info.version as string) ?? ''}`, b.status === 'ran' ? '`net.createServer({ noDelay: true }, aedes.handle)`' : b.status, (info.options as string) ?? '—'];
    return [`${b.label} ${(info.version as string) ?? ''}`, b.status === 'ran' ? '`mosquitto -c <generated conf>`' : b.status, ((info.config as string[]) ?? []).filter((l) => !l.startsWith('log_') && !l.startsWith('connection_')).map((l) => `\`${l}\``).join(', ') || '—'];
  });
  return `## Brokers\n\n${table(['broker', 'how it ran', 'settings'], rows)}\n`;
}

function sections(r: RunResults): string[] {
  const out: string[] = [];
  let durable = false;
  for (const sc of r.scenarios) {
    if (DURABLE_SCENARIOS[sc]) {
      if (!durable) out.push(durableSection(r));
      durable = true;
    } else out.push(scenarioSection(r, sc));
  }
  return out;
}

/** The whole report; `notes` is an existing "## Notes" section to keep (else the placeholder). */
export function renderReport(r: RunResults, notes = ''): string {
  const m = r.machine;
  const failures = r.scenarios.flatMap((sc) =>
    r.brokers.flatMap((b) => {
      const s = r.results[sc]?.[b.name];
      return s && !s.ok ? [`- ${b.label}, ${sc}: ${s.error}`] : [];
    }),
  );
  return `# ArborMQ benchmark results

${table(['', ''], [
    ['machine', `${m.cpu}, ${m.cores} cores (shared, noisy)`],
    ['Node', m.node],
    ['ArborMQ revision', r.revision],
    ['date', m.date],
    ['run', `${r.mode}: warm-up ${r.timing.warmupMs / 1000} s, then ${r.timing.reps} measured window(s) of ${r.timing.windowMs / 1000} s per scenario, median reported; the whole run took ${Math.round(r.seconds)} s`],
    ['command', `\`${r.command}\``],
  ])}

Reproduce: \`npm ci && npm run bench\` (the full run, rewrites this file; a few minutes) or \`npm run bench -- --quick\` (~20 s per broker). Options: \`--brokers arbormq,aedes,mosquitto\`, \`--scenarios fan-in,fan-out,fan-out-acl,p2p-qos1,p2p-qos1-durable,p2p-qos1-durable-os,latency,idle,wildcard,gc,core,browser\` (\`durable\` selects both durable ones), \`--quick\`, \`--out FILE\`, \`--json FILE\`, \`--reps N\`.

${brokerSection(r)}
## Method

- Each scenario starts a fresh broker process on an ephemeral loopback port and a separate load-generator process (\`bench/load/\`): MQTT 3.1.1, packets encoded once with mqtt-packet and reused, many packets per socket write, PUBLISH counted by walking fixed headers (packet ids read for QoS 1).
- Rates count what subscribers **received** during the window (deliveries for fan-out and wildcard). The generator keeps at most a fixed number of messages in flight end to end and stops writing above 1 MiB of socket backlog, so a rate is what the broker sustains, not what it buffers. "lost" counts messages sent but never received.
- Broker CPU is utime + stime of the broker process from \`/proc/<pid>/stat\` (Mosquitto's own pid) over the same window. "generator CPU" is the load generator's CPU in % of one core: ⚠ marks ≥ ${GEN_BOUND_PCT}%, where the generator rather than the broker may set the rate (broker and generator share the 2 cores).
- The machine is shared: other work on it moves throughput between windows ("window range") and dominates the latency tails (p99.9, max). Compare medians, and repeat a run before trusting a tail.

${sections(r).join('\n')}
${ratioSection(r)}
${coreSection(r.core)}
${gcSection(r)}
${failures.length ? `## Failures\n\n${failures.join('\n')}\n` : ''}
${notes || '## Notes\n\n(analysis by the lead)\n'}`;
}
