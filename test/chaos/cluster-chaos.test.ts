import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { etcdMissing } from '../helpers/etcd.js';
import { clusterDefects, runClusterChaos, type ClusterChaosResult, type FaultKind } from './cluster-chaos.js';

/**
 * The short version of `npm run chaos -- --cluster`: three arbormq processes and etcd, faults under
 * QoS 1 / QoS 2 streams in MQTT 3.1.1 and 5.0. The seed and the faults are printed on failure.
 */
function explain(result: ClusterChaosResult): string {
  const faults = result.faults.map((f) => `${f.at} ms ${f.kind}: ${f.detail}`).join('; ');
  return `seed ${result.options.seed}; faults: ${faults}; sessions lost: ${result.sessionLosses.join('; ') || 'none'}\n${result.warnings.join('\n')}`;
}

async function faultsHold(kinds: FaultKind[]): Promise<void> {
  const seed = Math.floor(Math.random() * 2 ** 31);
  // A run that holds settles within seconds; a shorter deadline keeps a failing one from costing a minute.
  const result = await runClusterChaos({ faults: kinds.length, kinds, seed, leaseTtlSeconds: 3, settleMs: 20_000 });
  assert.deepEqual(clusterDefects(result), [], explain(result));
  assert.deepEqual(result.faults.map((f) => f.kind), kinds);
  for (const s of result.streams) assert.ok(s.acknowledged > 0, `${s.name}: messages flowed`);
}

const promise = 'every acknowledged QoS 1 message delivered at least once, every QoS 2 message exactly once [MQTT-4.3.3-9] [MQTT-4.3.3-12]';

// The kill faults — each a node restart of seconds — and replicated sessions under faults (not clean yet: docs/RELIABILITY.md,
// "Faults in a cluster") run in `npm run chaos -- --cluster [--replication 2]`, not here.
describe('faults in a three-node cluster (chaos, a few fault points)', { skip: etcdMissing }, () => {
  it(`a peer link reset mid-forward, etcd restarted, a node SIGSTOPped past its lease: ${promise}`, { timeout: 180_000 }, () => faultsHold(['link', 'etcd', 'pause']));

});
