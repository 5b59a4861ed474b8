// The load generator: one scenario against one broker, in its own process. The configuration
// arrives as JSON in argv; the result leaves over IPC (or stdout when run by hand).

import { fanIn } from './fan-in.js';
import { fanOut } from './fan-out.js';
import { gcRun } from './gc.js';
import { idle } from './idle.js';
import { progress, sendResult } from './ipc.js';
import { latency } from './latency.js';
import { p2pQos1 } from './p2p-qos1.js';
import type { LoadConfig, ScenarioName, ScenarioResult } from './types.js';
import { wildcard } from './wildcard.js';

const RUNNERS: Record<ScenarioName, (cfg: LoadConfig) => Promise<ScenarioResult>> = {
  'fan-in': fanIn,
  'fan-out': fanOut,
  'fan-out-acl': fanOut,
  'p2p-qos1': (cfg) => p2pQos1(cfg),
  'p2p-qos1-durable': (cfg) => p2pQos1(cfg, { persistent: true }),
  'p2p-qos1-durable-os': (cfg) => p2pQos1(cfg, { persistent: true }),
  'latency-qos0': (cfg) => latency(cfg, 0),
  'latency-qos1': (cfg) => latency(cfg, 1),
  idle,
  wildcard,
  gc: gcRun,
};

const cfg = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
try {
  const run = RUNNERS[cfg.scenario];
  if (!run) throw new Error(`unknown scenario ${cfg.scenario}`);
  const result = await run(cfg);
  await sendResult(result);
  process.exit(0);
} catch (error) {
  progress('error', { message: (error as Error).message });
  process.send?.({ type: 'error', message: (error as Error).message, stack: (error as Error).stack });
  process.stderr.write(`${(error as Error).stack}\n`);
  // Give the IPC message time to leave before exiting.
  setTimeout(() => process.exit(1), 100);
}
