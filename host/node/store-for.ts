import type { Logger } from '../core/model/options.js';
import { type Store, VolatileStore } from '../core/model/store.js';
import { LevelStore } from './level-store.js';

export interface StoreChoice {
  /** A Store the embedder made; wins over the rest. */
  store?: Store;
  /** Directory of the LevelDB database that keeps sessions, retained messages and queued messages. */
  dataDir?: string;
  /** Keep state in memory only, even if `dataDir` is set. */
  memory?: boolean;
  /** How hard each group commit is made durable (see LevelStoreOptions). */
  durability?: 'sync' | 'os';
  /** Refuse to start on a damaged LevelDB write-ahead log instead of reporting the loss (see LevelStoreOptions). */
  strict?: boolean;
}

/** The Store a server keeps its state in: the embedder's, else LevelDB in `dataDir`, else memory. */
export function storeFor(choice: StoreChoice, log: Logger): Store {
  if (choice.store) return choice.store;
  if (choice.dataDir !== undefined && !choice.memory) {
    log('info', 'state is kept in LevelDB', { dataDir: choice.dataDir, durability: choice.durability ?? 'sync' });
    return new LevelStore(choice.dataDir, { durability: choice.durability, strict: choice.strict, logger: log });
  }
  log('info', 'state is kept in memory only: it is lost when the broker stops (set dataDir to persist it)');
  return new VolatileStore();
}
