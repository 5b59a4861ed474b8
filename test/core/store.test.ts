import { MemoryStore } from '../../host/core/model/store.js';
import { storeSuite } from './store-suite.js';

storeSuite('MemoryStore', async () => {
  // One MemoryStore stands for the data: "reopening" it returns the same instance.
  const store = new MemoryStore();
  return { make: () => store, cleanup: async () => undefined };
});
