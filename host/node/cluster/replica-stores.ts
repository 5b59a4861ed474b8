import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../core/model/options.js';
import { MemoryStore } from '../../core/model/store.js';
import { LevelStore } from '../level-store.js';
import type { StoreChoice } from '../store-for.js';
import type { ReplicaStores } from './replica-store.js';

/**
 * Where this node keeps the sessions other nodes replicate to it: a LevelDB database per owner node
 * under `<dataDir>/replicas/` (with the durability of the node's own store), or memory when the node
 * keeps its own state in memory — or in a Store of the embedder's, which has no place for more.
 */
export function replicaStoresFor(choice: StoreChoice, log: Logger): ReplicaStores {
  const dataDir = choice.dataDir;
  if (choice.store || choice.memory || dataDir === undefined) return { owners: async () => [], open: () => new MemoryStore() };
  const dir = join(dataDir, 'replicas');
  return {
    owners: async () => readdir(dir).catch(() => []),
    open: (owner) => new LevelStore(join(dir, owner), { durability: choice.durability, logger: log }),
  };
}
