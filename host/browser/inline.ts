// `arbormq/browser/inline`: arbormq/browser with the wasm core inside the module, for bundlers
// (esbuild, …) that would otherwise leave arbor.wasm behind: nothing to copy next to the bundle.
// Without a worker script to start, 'auto' runs the broker in this tab; pass `workerUrl` (a served
// dist/browser/arbormq-worker.js) to share one broker between tabs — the core then travels to the
// worker from here.
import wasm from '../../build/arbor.wasm';
import type { BrowserBroker, CreateBrokerOptions } from './api.js';
import { absolute, startBroker } from './create-broker.js';

export * from './library.js';

export function createBroker(options: CreateBrokerOptions = {}): Promise<BrowserBroker> {
  return startBroker(options, {
    wasm: options.wasmUrl === undefined ? wasm : absolute(options.wasmUrl),
    workerUrl: options.workerUrl === undefined ? undefined : absolute(options.workerUrl),
  });
}
