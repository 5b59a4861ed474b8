// Page script: the shared Store cases (test/core/store-cases.ts) against the IndexedDB store, each
// case on a database of its own, deleted afterwards. The node:test wrapper calls runStoreCase.
import { deleteDB } from 'idb';
import { IdbStore } from '../../../host/browser/idb-store.js';
import { storeCases } from '../../core/store-cases.js';

let databases = 0;

async function runStoreCase(name: string): Promise<{ ok: true } | { ok: false; error: string }> {
  const run = storeCases[name];
  if (!run) return { ok: false, error: `no store case "${name}"` };
  const db = `store-case-${++databases}`;
  try {
    await run(() => new IdbStore(db));
    return { ok: true };
  } catch (error) {
    return { ok: false, error: (error as Error)?.stack ?? String(error) };
  } finally {
    await deleteDB(db);
  }
}

Object.assign(window, { runStoreCase, storeCaseNames: Object.keys(storeCases), ready: true });
