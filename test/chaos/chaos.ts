import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rng } from '../../bench/stats.js';
import { kill, startCli, type RunningCli } from '../helpers/cli.js';
import { ChaosPublisher, ChaosSubscriber, type QoS, type Version } from './peers.js';
import { pace, until } from '../helpers/wait.js';

export interface ChaosOptions {
  version: Version;
  qos: QoS;
  /** SIGKILLs of the broker, each at a random moment of the stream. */
  kills: number;
  seed: number;
  /** Time the broker runs between a restart and the next kill: uniform in [min, max] ms. */
  gapMs?: [number, number];
  /** Unacknowledged PUBLISHes the publisher keeps. */
  window?: number;
  /** Deadline for everything to be acknowledged and delivered once the kills are over. */
  settleMs?: number;
}

export interface ChaosResult {
  options: ChaosOptions;
  kills: number;
  published: number;
  acknowledged: number;
  /** Acknowledged and never delivered. */
  missing: number[];
  /** Delivered more than once (a defect for QoS 2 only). */
  duplicates: number[];
  sessionsLost: number;
  refused: number;
  settled: boolean;
  /** Lines the broker logged at level warn or error, over all its runs (to explain a defect). */
  brokerWarnings: string[];
}

/**
 * A real `arbormq` process with a LevelDB data directory, a QoS 1/2 publisher and a subscriber, both
 * with persistent sessions, and the broker SIGKILLed `kills` times at random moments while messages
 * flow. Afterwards every acknowledged message must have been delivered (QoS 1: at least once,
 * QoS 2: exactly once).
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const { version, qos, kills, seed } = options;
  const [minGap, maxGap] = options.gapMs ?? [80, 400];
  const rand = rng(seed);
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-chaos-'));
  let cli: RunningCli | undefined;
  let port = 0;
  const brokerWarnings: string[] = [];
  const keepWarnings = (): void => {
    if (cli) brokerWarnings.push(...cli.logs.filter((line) => /"level":"(warn|error|fatal)"/.test(line)));
  };
  const start = async (): Promise<void> => {
    cli = await startCli(['--port', '0', '--host', '127.0.0.1', '--data-dir', dir]);
    port = cli.ports.get('mqtt')!;
  };
  const name = `chaos-${version}-${qos}-${seed}`;
  const subscriber = new ChaosSubscriber(`${name}-sub`, version, () => port, qos, 'chaos/#');
  const publisher = new ChaosPublisher(`${name}-pub`, version, () => port, qos, 'chaos/t', options.window ?? 20);
  let done = 0;
  let settled = false;
  try {
    await start();
    subscriber.start();
    await until(() => subscriber.ready, 'the subscriber to subscribe', 10_000);
    publisher.start();
    for (; done < kills; done++) {
      await pace(minGap + rand() * (maxGap - minGap));
      await cli!.stop('SIGKILL');
      keepWarnings();
      await start();
    }
    publisher.generating = false;
    publisher.pump();
    const delivered = (): boolean => [...publisher.acknowledged].every((m) => subscriber.counts.has(m));
    settled = await until(() => publisher.done && delivered(), 'every acknowledged message delivered', options.settleMs ?? 30_000).then(
      () => true,
      () => false,
    );
    // Late duplicates would show up now: what the broker sent before answering a PINGREQ has arrived.
    if (settled) await subscriber.roundTrip();
  } finally {
    publisher.stop();
    subscriber.stop();
    keepWarnings();
    await kill(cli);
    await rm(dir, { recursive: true, force: true });
  }
  const missing = [...publisher.acknowledged].filter((m) => !subscriber.counts.has(m)).sort((a, b) => a - b);
  const duplicates = [...subscriber.counts].filter(([, n]) => n > 1).map(([m]) => m).sort((a, b) => a - b);
  return {
    options,
    kills: done,
    published: publisher.next,
    acknowledged: publisher.acknowledged.size,
    missing,
    duplicates,
    sessionsLost: publisher.sessionsLost + subscriber.sessionsLost,
    refused: publisher.refused,
    settled,
    brokerWarnings,
  };
}

/** The defects a run found, in words (empty when it found none). */
export function defects(result: ChaosResult): string[] {
  const out: string[] = [];
  if (result.missing.length > 0) out.push(`${result.missing.length} acknowledged messages never delivered (first: ${result.missing.slice(0, 10).join(', ')})`);
  if (result.options.qos === 2 && result.duplicates.length > 0) {
    out.push(`${result.duplicates.length} QoS 2 messages delivered more than once (first: ${result.duplicates.slice(0, 10).join(', ')})`);
  }
  if (result.sessionsLost > 0) out.push(`${result.sessionsLost} reconnects found no session`);
  if (!result.settled) out.push('not everything was acknowledged and delivered before the deadline');
  return out;
}
