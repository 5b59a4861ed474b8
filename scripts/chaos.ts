// npm run chaos [-- --kills 120 --seed N]: the broker SIGKILLed at random moments under QoS 1 and
// QoS 2 streams with persistent sessions on both sides, MQTT 3.1.1 and 5.0; exits 1 if an
// acknowledged message went missing or a QoS 2 message arrived twice. The seed makes a run repeatable.
// npm run chaos -- --cluster [--faults 60 --seed N]: the same over three nodes and etcd, with link
// resets, SIGKILLs mid-takeover, etcd restarts and nodes paused past their lease (cluster-chaos.ts);
// --replication 2 replicates the sessions and adds nodes kept down past their lease (failovers).
import { parseArgs } from 'node:util';
import { defects, runChaos, type ChaosResult } from '../test/chaos/chaos.js';
import { clusterDefects, FAULT_KINDS, runClusterChaos, type FaultKind } from '../test/chaos/cluster-chaos.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '120' },
    cluster: { type: 'boolean', default: false },
    faults: { type: 'string', default: '60' },
    kinds: { type: 'string' },
    logs: { type: 'string' },
    ttl: { type: 'string', default: '5' },
    replication: { type: 'string', default: '1' },
    seed: { type: 'string' },
  },
});
const kills = Number(values.kills);
const faults = Number(values.faults);
const factor = Number(values.replication);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(kills) || kills < 1 || !Number.isInteger(faults) || faults < 1 || !Number.isInteger(seed) || !Number.isInteger(factor) || factor < 1) {
  console.error('usage: npm run chaos -- [--kills N] [--seed S]\n       npm run chaos -- --cluster [--faults N] [--kinds link,takeover-kill,kill,etcd,pause,down] [--seed S] [--ttl LEASE_SECONDS] [--replication FACTOR] [--logs DIR]');
  process.exit(2);
}
if (values.cluster) {
  console.log(`chaos --cluster: ${faults} fault points on three nodes and etcd, replication factor ${factor}, seed ${seed} (the same faults again with --seed ${seed})`);
  const started = Date.now();
  const kinds = values.kinds?.split(',') as FaultKind[] | undefined;
  if (kinds?.some((k) => !FAULT_KINDS.includes(k))) {
    console.error(`--kinds takes a comma-separated list of ${FAULT_KINDS.join(', ')}`);
    process.exit(2);
  }
  const result = await runClusterChaos({ faults, seed, ...(kinds ? { kinds } : {}), ...(values.logs ? { logDir: values.logs } : {}), leaseTtlSeconds: Number(values.ttl), replicationFactor: factor, progress: (f) => console.log(`  ${(f.at / 1000).toFixed(1)} s ${f.kind}: ${f.detail}`) });
  const found = clusterDefects(result);
  for (const s of result.streams) {
    console.log(
      `MQTT ${s.version === 4 ? '3.1.1' : '5.0'} QoS ${s.qos}: ${s.published} published, ${s.acknowledged} acknowledged, ` +
        `${s.missing.length} missing, ${s.duplicates.length} duplicated, ${s.refused} refused and resent, ${s.sessionsLost} sessions lost`,
    );
  }
  const count = new Map<string, number>();
  for (const f of result.faults) count.set(f.kind, (count.get(f.kind) ?? 0) + 1);
  const sum = (f: (s: (typeof result.streams)[number]) => number): number => result.streams.reduce((n, s) => n + f(s), 0);
  console.log(
    `chaos --cluster: ${result.faults.length} fault points (${[...count].map(([k, n]) => `${n} ${k}`).join(', ')}), ${sum((s) => s.acknowledged)} acknowledged messages, ` +
      `${sum((s) => s.missing.length)} missing, ${sum((s) => (s.qos === 2 ? s.duplicates.length : 0))} QoS 2 duplicates, ${((Date.now() - started) / 1000).toFixed(0)} s — ${found.length > 0 ? 'FAILED' : 'passed'}`,
  );
  if (found.length > 0) {
    console.log(`DEFECTS (seed ${seed}):\n  ${found.join('\n  ')}\nsessions lost:\n  ${result.sessionLosses.join('\n  ')}\nnode warnings:\n${result.warnings.join('\n')}`);
  }
  process.exit(found.length > 0 ? 1 : 0);
}
console.log(`chaos: ${kills} kill points, seed ${seed} (repeat with --seed ${seed})`);
const combos = [
  { version: 4, qos: 1 },
  { version: 4, qos: 2 },
  { version: 5, qos: 1 },
  { version: 5, qos: 2 },
] as const;
const results: ChaosResult[] = [];
let failed = false;
for (let i = 0; i < combos.length; i++) {
  const share = Math.floor(kills / combos.length) + (i < kills % combos.length ? 1 : 0);
  const { version, qos } = combos[i]!;
  const started = Date.now();
  const result = await runChaos({ version, qos, kills: share, seed: seed + i });
  results.push(result);
  const found = defects(result);
  failed ||= found.length > 0;
  console.log(
    `MQTT ${version === 4 ? '3.1.1' : '5.0'} QoS ${qos}: ${result.kills} kills, ${result.published} published, ` +
      `${result.acknowledged} acknowledged, ${result.missing.length} missing, ${result.duplicates.length} duplicated, ` +
      `${result.refused} refused and resent — ${((Date.now() - started) / 1000).toFixed(1)} s` +
      (found.length > 0 ? `\n  DEFECTS: ${found.join('; ')}` : '') +
      (found.length > 0 && result.brokerWarnings.length > 0 ? `\n  broker warnings (${result.brokerWarnings.length}, first 5):\n    ${result.brokerWarnings.slice(0, 5).join('\n    ')}` : ''),
  );
}
const total = (f: (r: ChaosResult) => number): number => results.reduce((n, r) => n + f(r), 0);
console.log(
  `chaos: ${total((r) => r.kills)} kill points, ${total((r) => r.acknowledged)} acknowledged messages, ` +
    `${total((r) => r.missing.length)} missing, ${total((r) => (r.options.qos === 2 ? r.duplicates.length : 0))} QoS 2 duplicates — ${failed ? 'FAILED' : 'passed'}`,
);
process.exit(failed ? 1 : 0);
