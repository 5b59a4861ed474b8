// Shapes shared by the generator and the orchestrator.

export const SCENARIOS = [
  'fan-in',
  'fan-out',
  'fan-out-acl',
  'p2p-qos1',
  'p2p-qos1-durable',
  'p2p-qos1-durable-os',
  'latency-qos0',
  'latency-qos1',
  'idle',
  'wildcard',
  'gc',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * Scenarios run against ArborMQ with a LevelDB data directory (a fresh temp dir per attempt), and
 * how hard each group commit is made durable: 'sync' fsyncs each batch, 'os' leaves it to the OS.
 */
export const DURABLE_SCENARIOS: Partial<Record<ScenarioName, 'sync' | 'os'>> = {
  'p2p-qos1-durable': 'sync',
  'p2p-qos1-durable-os': 'os',
};

/** Why the other brokers' persistence is not comparable (they skip the durable scenarios). */
export const PERSISTENCE_NOT_COMPARABLE: Record<string, string> = {
  aedes: 'Aedes keeps its state in memory by default',
  mosquitto: 'Mosquitto writes its database only periodically (autosave) and at shutdown, never before acknowledging',
};

/** Scenarios whose broker reads the 1,000-rule ACL file of bench/acl-file.ts (a fresh file per attempt). */
export const ACL_SCENARIOS: ReadonlySet<ScenarioName> = new Set(['fan-out-acl']);

/** Why a broker does not run a scenario (null: it runs it). */
export function skipReason(scenario: ScenarioName, broker: string): string | null {
  if (DURABLE_SCENARIOS[scenario] && broker !== 'arbormq') {
    return `skipped: persistence not comparable (${PERSISTENCE_NOT_COMPARABLE[broker] ?? 'ArborMQ only'})`;
  }
  if (ACL_SCENARIOS.has(scenario) && broker === 'aedes') return 'skipped: Aedes reads no ACL file';
  return null;
}

export interface LoadConfig {
  scenario: ScenarioName;
  port: number;
  /** The broker process whose CPU and RSS are read from /proc. */
  brokerPid: number;
  quick: boolean;
  warmupMs: number;
  windowMs: number;
  /** Measured windows in this run (the median is reported). */
  windows: number;
  /** Payload size of fan-out and p2p-qos1 (the payload sweep, bench/payload.ts); default PAYLOAD_BYTES. */
  payloadBytes?: number;
  /** The idle scenario at scale (bench/idle.ts): connections to open, and how long to hold them with keep alive serviced. */
  idle?: IdlePlan;
}

export interface IdlePlan {
  connections: number;
  /** Seconds to hold every connection open after the last CONNACK, each PINGing at its keep alive. */
  holdSeconds: number;
  /** Keep alive in the CONNECT, seconds. */
  keepAlive: number;
  /** Connections opened and closed before the measured ones: what a broker does once (compiling its code) is not a connection's cost. */
  warm: number;
}

export interface WindowResult {
  seconds: number;
  /** Messages received by subscribers in the window (deliveries for fan-out / wildcard). */
  messages: number;
  rate: number;
  brokerCpuS: number;
  /** Broker CPU-seconds per million messages received. */
  cpuPerMillion: number;
  /** The generator's own CPU use, % of one core: near 100 means the generator may be the limit. */
  genCpuPct: number;
}

export type Metric = number | string | boolean | null;

export interface ScenarioResult {
  unit: string;
  windows: WindowResult[];
  /** Scenario-specific figures (latency percentiles, RSS per connection, exact-check outcome…). */
  metrics: Record<string, Metric>;
  notes: string[];
}
