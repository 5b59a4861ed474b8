import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreChoice } from '../store-for.js';
import { FileReplicaLog } from './replica-log.js';
import { memoryReplicaLog, type ReplicaStores } from './replica-store.js';

const LOG = '.log';

/**
 * Where this node keeps the sessions other nodes replicate to it: a log per owner node,
 * `<dataDir>/replicas/<owner>.log` (with the durability of the node's own store), or memory when the
 * node keeps its own state in memory — or in a Store of the embedder's, which has no place for more.
 */
export function replicaStoresFor(choice: StoreChoice): ReplicaStores {
  const dataDir = choice.dataDir;
  if (choice.store || choice.memory || dataDir === undefined) return { owners: async () => [], open: memoryReplicaLog };
  const dir = join(dataDir, 'replicas');
  const sync = (choice.durability ?? 'sync') === 'sync';
  return {
    owners: async () => (await readdir(dir).catch(() => [])).filter((name) => name.endsWith(LOG)).map((name) => name.slice(0, -LOG.length)),
    open: (owner) => new FileReplicaLog(join(dir, `${owner}${LOG}`), sync),
  };
}
