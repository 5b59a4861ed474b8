import { describe, it } from 'node:test';
import type { Store } from '../../host/core/model/store.js';
import { storeCases } from './store-cases.js';

/**
 * Runs the shared Store cases (store-cases.ts) under node:test. `factory` is called once per case
 * and gives fresh data: `make` returns a store over that data each time (so reopening can be
 * checked), `cleanup` removes it afterwards.
 */
export function storeSuite(name: string, factory: () => Promise<{ make: () => Store; cleanup: () => Promise<void> }>): void {
  describe(`Store contract: ${name}`, () => {
    for (const [title, run] of Object.entries(storeCases)) {
      it(title, async () => {
        const { make, cleanup } = await factory();
        try {
          await run(make);
        } finally {
          await cleanup();
        }
      });
    }
  });
}
