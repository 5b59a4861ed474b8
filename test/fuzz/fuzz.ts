import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { loadNodeCore } from '../../host/node/load-core.js';
import { codecInput, fuzzCase, type FuzzCase } from './arbitraries.js';
import { BrokerTarget } from './broker-target.js';
import { checkCodec } from './codec-target.js';
import { arenaProperty, CoreSupply, topicProperty, trieProperty } from './core-target.js';
import { SocketTarget } from './socket-target.js';

/**
 * The fuzzing run behind `npm test` (test/fuzz/fuzz.test.ts) and `npm run fuzz`: cases for the
 * codec alone, for the broker in-process, through TCP and WebSocket sockets, and for the wasm core's
 * exports, all derived from one seed. A run reports every failure with the seed and fast-check path
 * that repeat it, the growth of the JavaScript heap, and the bystander's exchanges.
 */

export interface FuzzOptions {
  seed: number;
  /** Byte streams for the framer and parsers alone. */
  codecCases: number;
  /** Client connections to an in-process broker. */
  brokerCases: number;
  /** Client connections over real sockets, half TCP, half WebSocket. */
  socketCases: number;
  /** Command sequences for the wasm core (topic checks, trie, arena), split between the three. */
  coreCases: number;
  progress?: (line: string) => void;
}

export interface FuzzFailure {
  target: string;
  /** fast-check's seed and path (or the case index for sockets) that repeat it. */
  seed: number;
  path: string | null;
  error: string;
  input: string;
}

export interface FuzzResult {
  cases: Record<'codec' | 'broker' | 'socket' | 'core', number>;
  failures: FuzzFailure[];
  /** Heap after the run minus after the first batch, both after a full GC. */
  heapGrowthBytes: number;
  /** Messages the bystanders exchanged while the cases ran. */
  exchanged: number;
}

/** Cases an in-process broker serves before it is closed and its arena checked (every reference released). */
const BATCH = 2000;
/** Socket cases in flight at once. */
const SOCKET_CONCURRENCY = 8;

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const show = (c: unknown): string =>
  JSON.stringify(c, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)).slice(0, 2000);

function failureOf<T>(target: string, details: fc.RunDetails<T>): FuzzFailure {
  return {
    target,
    seed: details.seed,
    path: details.counterexamplePath,
    error: String((details.errorInstance as Error)?.message ?? details.errorInstance).slice(0, 2000),
    input: show(details.counterexample),
  };
}

/** Exceptions nothing caught while a run went on: each is a crash. */
function watchUncaught(): { crashes: string[]; stop(): void } {
  const crashes: string[] = [];
  const onError = (error: unknown): void => {
    crashes.push(String((error as Error)?.stack ?? error));
  };
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  return {
    crashes,
    stop() {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    },
  };
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const { seed, progress = () => undefined } = options;
  const failures: FuzzFailure[] = [];
  const cases = { codec: 0, broker: 0, socket: 0, core: 0 };
  const uncaught = watchUncaught();
  let exchanged = 0;
  let heapStart = 0;
  try {
    // The codec alone: cheap, so most cases.
    for (let done = 0, batch = 0; done < options.codecCases; batch++) {
      const numRuns = Math.min(20 * BATCH, options.codecCases - done);
      const details = fc.check(
        fc.property(codecInput, ({ version, chunks }) => {
          const verdict = checkCodec(version, chunks);
          if (verdict) throw new Error(verdict);
        }),
        { seed: seed + batch, numRuns },
      );
      done += details.numRuns;
      if (details.failed) failures.push(failureOf('codec', details));
      progress(`codec: ${done} cases`);
    }
    cases.codec = options.codecCases;

    // The broker in-process, a fresh one per batch so that a leaked reference shows.
    for (let done = 0, batch = 0; done < options.brokerCases; batch++) {
      const numRuns = Math.min(BATCH, options.brokerCases - done);
      const target = await BrokerTarget.start({ bystanderEvery: 50 });
      const details = await fc.check(
        fc.asyncProperty(fuzzCase, async (c: FuzzCase) => {
          const verdict = await target.run(c.chunks);
          if (verdict) throw new Error(verdict);
        }),
        { seed: seed + 1000 + batch, numRuns },
      );
      exchanged += target.exchanged;
      if (details.failed) failures.push(failureOf('broker', details));
      try {
        await target.close();
      } catch (error) {
        failures.push({ target: 'broker (arena after the batch)', seed: seed + 1000 + batch, path: null, error: (error as Error).message, input: `${numRuns} cases` });
      }
      done += numRuns;
      if (batch === 0) heapStart = heapAfterGc();
      progress(`broker: ${done} cases`);
    }
    cases.broker = options.brokerCases;

    // Real sockets, several at a time, beside a bystander.
    if (options.socketCases > 0) {
      const target = await SocketTarget.start();
      const socketSeed = seed + 2000;
      const all = fc.sample(fuzzCase, { seed: socketSeed, numRuns: options.socketCases });
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < all.length; i = next++) {
          const verdict = await target.run(all[i]!.chunks, i % 2 === 1);
          if (verdict) failures.push({ target: i % 2 === 1 ? 'websocket' : 'tcp', seed: socketSeed, path: `case ${i}`, error: verdict, input: show(all[i]) });
          if (i % 1000 === 999) progress(`sockets: ${i + 1} cases`);
        }
      };
      await Promise.all(Array.from({ length: SOCKET_CONCURRENCY }, worker));
      exchanged += target.exchanged;
      try {
        await target.close();
      } catch (error) {
        failures.push({ target: 'sockets (bystander, arena)', seed: socketSeed, path: null, error: (error as Error).message, input: '' });
      }
      cases.socket = options.socketCases;
      progress(`sockets: ${options.socketCases} cases`);
    }

    // The wasm core's exports: topic checks on one core, trie and arena sequences on a fresh core each.
    const topicRuns = Math.ceil(options.coreCases * 0.6);
    const sequenceRuns = Math.floor((options.coreCases - topicRuns) / 2);
    const core = await loadNodeCore();
    const check = async <T>(name: string, details: fc.RunDetails<T> | Promise<fc.RunDetails<T>>): Promise<void> => {
      const done = await details;
      if (done.failed) failures.push(failureOf(name, done));
      progress(`${name}: ${done.numRuns} cases`);
    };
    await check('core: topic validation', fc.check(topicProperty(core), { seed: seed + 3000, numRuns: topicRuns }));
    await check('core: trie against brute force', fc.check(trieProperty(new CoreSupply(loadNodeCore)), { seed: seed + 3001, numRuns: sequenceRuns }));
    await check('core: arena sequences', fc.check(arenaProperty(new CoreSupply(loadNodeCore)), { seed: seed + 3002, numRuns: options.coreCases - topicRuns - sequenceRuns }));
    cases.core = options.coreCases;
  } finally {
    uncaught.stop();
  }
  for (const crash of uncaught.crashes) failures.push({ target: 'process', seed, path: null, error: `uncaught: ${crash}`, input: '' });
  const heapGrowthBytes = heapStart === 0 ? 0 : heapAfterGc() - heapStart;
  return { cases, failures, heapGrowthBytes, exchanged };
}

export const totalCases = (r: FuzzResult): number => r.cases.codec + r.cases.broker + r.cases.socket + r.cases.core;
