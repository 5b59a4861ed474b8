// A separate process that writes a workload to a LevelStore and reports each write it has seen
// complete, until its parent kills it (test/node/level-store.test.ts: the journal after a SIGKILL).
import { LevelStore } from '../../host/node/level-store.js';
import { workload } from './store-workload.js';

const [dir, seed, count, foldBytes] = process.argv.slice(2);
const store = new LevelStore(dir!, { foldBytes: Number(foldBytes) });
await store.open();
await store.load();
for (const [i, batch] of workload(Number(seed), Number(count)).entries()) {
  await store.write(batch);
  process.send!(i);
}
process.send!('done');
// Stays alive, as a broker would, until killed.
setInterval(() => {}, 1000);
