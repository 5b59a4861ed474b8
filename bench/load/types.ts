// Shapes shared by the generator and the orchestrator.

export const SCENARIOS = ['fan-in', 'fan-out', 'p2p-qos1', 'latency-qos0', 'latency-qos1', 'idle', 'wildcard', 'gc'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

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
