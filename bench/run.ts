// `npm run bench`: every selected scenario against every selected broker, one after another,
// each in fresh processes; then the core micro-benchmarks; then bench/RESULTS.md.
//
//   --brokers arbormq,aedes,mosquitto
//   --scenarios fan-in,fan-out,fan-out-acl,p2p-qos1,p2p-qos1-durable,p2p-qos1-durable-os,latency,idle,wildcard,gc,core,browser
//     (`durable` = both p2p-qos1-durable scenarios: ArborMQ with LevelDB, the other brokers skip them)
//   --quick (short windows, fewer connections; ~20 s for ArborMQ alone)   --out FILE   --json FILE

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BROKER_LABEL, type BrokerName } from './broker-process.js';
import { markdownSection, renderBrowserSection, runBrowserBench, spliceSection, type BrowserOutcome } from './browser.js';
import { mosquittoPath } from './brokers/mosquitto-path.js';
import { ROOT } from './children.js';
import { runCore, type CoreOutcome } from './core-process.js';
import { SCENARIOS, skipReason, type ScenarioName } from './load/types.js';
import { cpuModel } from './proc.js';
import { notesSection, renderReport } from './report.js';
import { runAttempt } from './scenario-process.js';
import { summarize, type Summary } from './summary.js';

const BROKERS: BrokerName[] = ['arbormq', 'aedes', 'mosquitto'];
const ALIASES: Record<string, ScenarioName[]> = {
  latency: ['latency-qos0', 'latency-qos1'],
  durable: ['p2p-qos1-durable', 'p2p-qos1-durable-os'],
};

export interface RunResults {
  mode: 'full' | 'quick';
  command: string;
  machine: { cpu: string; cores: number; node: string; date: string };
  /** The ArborMQ revision measured: HEAD, and whether broker sources differed from it. */
  revision: string;
  timing: { warmupMs: number; windowMs: number; reps: number };
  brokers: { name: BrokerName; label: string; status: string; info?: Record<string, unknown> }[];
  scenarios: ScenarioName[];
  /** results[scenario][broker] */
  results: Partial<Record<ScenarioName, Partial<Record<BrokerName, Summary>>>>;
  /** skipped[scenario][broker]: why that broker did not run that scenario (e.g. the durable ones). */
  skipped?: Partial<Record<ScenarioName, Partial<Record<BrokerName, string>>>>;
  core: CoreOutcome | null;
  /** The browser bundle's size and in-tab throughput (its own section, see bench/browser.ts). */
  browser: BrowserOutcome | null;
  seconds: number;
}

function list<T extends string>(value: string | undefined, all: readonly T[], aliases: Record<string, T[]> = {}): T[] {
  if (!value) return [...all];
  const out: T[] = [];
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const items = aliases[raw] ?? [raw as T];
    for (const item of items) {
      if (!all.includes(item)) throw new Error(`unknown name "${raw}" (known: ${[...all, ...Object.keys(aliases)].join(', ')})`);
      if (!out.includes(item)) out.push(item);
    }
  }
  return out;
}

function revision(): string {
  // The ArborMQ runner measures ARBORMQ_ROOT when it is set (see bench/brokers/arbormq.ts).
  const root = process.env.ARBORMQ_ROOT ?? ROOT;
  const git = (...args: string[]): string => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD');
  if (!head) return `unknown (${root} is not a git checkout)`;
  const dirty = git('status', '--porcelain', '--', 'host', 'assembly').split('\n').filter(Boolean).length;
  return dirty ? `${head} + uncommitted changes in ${dirty} file(s) under host/ or assembly/` : head;
}

function fmt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      brokers: { type: 'string' },
      scenarios: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      json: { type: 'string' },
      reps: { type: 'string' },
    },
    strict: true,
  });
  const started = performance.now();
  const quick = values.quick!;
  const brokers = list(values.brokers, BROKERS);
  const selected = list(values.scenarios, [...SCENARIOS, 'core', 'browser'] as const, ALIASES as Record<string, (ScenarioName | 'core' | 'browser')[]>);
  const scenarios = selected.filter((s): s is ScenarioName => s !== 'core' && s !== 'browser');
  const reps = values.reps ? Number(values.reps) : quick ? 1 : 3;
  const timing = quick ? { warmupMs: 300, windowMs: 500, reps } : { warmupMs: 1000, windowMs: 5000, reps };
  const out = values.out ?? join(ROOT, 'bench/RESULTS.md');

  const results: RunResults = {
    mode: quick ? 'quick' : 'full',
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: { cpu: cpuModel(), cores: cpus().length, node: process.version, date: new Date().toISOString() },
    revision: revision(),
    timing,
    brokers: [],
    scenarios,
    results: {},
    skipped: {},
    core: null,
    browser: null,
    seconds: 0,
  };
  const log = (line: string): void => void process.stderr.write(`${line}\n`);

  // The first latency attempt of a run has the longer tail whichever broker it is (RESULTS.md,
  // "Latency at low load"): one short attempt is run first and thrown away.
  const latency = scenarios.find((s) => s === 'latency-qos0' || s === 'latency-qos1');
  const first = brokers.find((b) => b !== 'mosquitto' || mosquittoPath());
  if (latency && first && !skipReason(latency, first)) {
    log(`[${first}] ${latency}: one short attempt, thrown away (the first of a run carries a tail)`);
    await runAttempt({ broker: first, scenario: latency, quick: true, warmupMs: 300, windowMs: 500, windows: 1, timeoutMs: 30_000 });
  }
  for (const name of brokers) {
    const entry: RunResults['brokers'][number] = { name, label: BROKER_LABEL[name], status: 'ran' };
    results.brokers.push(entry);
    if (name === 'mosquitto' && !mosquittoPath()) {
      entry.status = 'skipped: not installed';
      log(`[mosquitto] skipped: not installed`);
      continue;
    }
    for (const scenario of scenarios) {
      const skip = skipReason(scenario, name);
      if (skip) {
        (results.skipped![scenario] ??= {})[name] = skip;
        log(`[${name}] ${scenario}: ${skip}`);
        continue;
      }
      // Idle connections need a fresh broker per repetition (RSS baseline); the GC run is one long
      // run; the others repeat their measured window inside one process.
      const fresh = scenario === 'idle' ? reps : 1;
      const windows = scenario === 'idle' || scenario === 'gc' ? 1 : reps;
      const base = timing.warmupMs + windows * timing.windowMs;
      const timeoutMs = base + (scenario === 'gc' ? (quick ? 30_000 : 150_000) : scenario === 'wildcard' ? 90_000 : quick ? 20_000 : 60_000);
      const attempts = [];
      for (let r = 0; r < fresh; r++) {
        attempts.push(await runAttempt({ broker: name, scenario, quick, warmupMs: timing.warmupMs, windowMs: timing.windowMs, windows, timeoutMs }));
        if (!attempts[attempts.length - 1]!.ok) break;
      }
      const summary = summarize(attempts);
      entry.info ??= attempts.find((a) => a.brokerInfo)?.brokerInfo;
      (results.results[scenario] ??= {})[name] = summary;
      log(
        summary.ok
          ? `[${name}] ${scenario}: ${fmt(summary.rate)} ${summary.unit}${Number.isFinite(summary.cpuPerMillion) ? `, broker ${summary.cpuPerMillion.toFixed(2)} CPU-s/M` : ''}${summary.notes.length ? ` (${summary.notes.join('; ')})` : ''}`
          : `[${name}] ${scenario}: FAILED ${summary.error}`,
      );
    }
  }
  if (selected.includes('core')) {
    log('[core] micro-benchmarks…');
    results.core = await runCore(quick);
    log(results.core.ok ? '[core] done' : `[core] FAILED ${results.core.error}`);
  }
  if (selected.includes('browser')) {
    log('[browser] bundle size and in-tab throughput in Chromium…');
    results.browser = await runBrowserBench(quick, log);
    if (!results.browser.ok) log(`[browser] ${results.browser.error}`);
  }
  results.seconds = (performance.now() - started) / 1000;
  let previous = '';
  try {
    previous = readFileSync(out, 'utf8');
  } catch {
    // a new file
  }
  if (selected.length === 1 && results.browser && previous) {
    // Only the browser was measured: the rest of the file stays as it is.
    writeFileSync(out, spliceSection(previous, renderBrowserSection(results.browser)));
  } else {
    // A new report; the Browser section is this run's, or carried over from the file.
    const browser = results.browser ? renderBrowserSection(results.browser) : markdownSection(previous);
    // The Notes section is the lead's: an existing one is kept as it is.
    const report = renderReport(results, notesSection(previous));
    const withBrowser = browser ? spliceSection(report, browser) : report;
    // The Cluster section comes from `npm run bench:cluster` and is carried over.
    const cluster = markdownSection(previous, 'Cluster');
    writeFileSync(out, cluster ? spliceSection(withBrowser, cluster, 'Cluster') : withBrowser);
  }
  if (values.json) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${out} in ${results.seconds.toFixed(1)} s`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
