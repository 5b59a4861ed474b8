// `arbormq/browser`: the ArborMQ broker in a browser tab or a SharedWorker, with IndexedDB
// persistence, in-page clients (MQTT.js or the native client) and bridges to remote brokers.
// The core (arbor.wasm) and the worker script are fetched from next to this module; bundlers that
// move the module away from them can import arbormq/browser/inline instead (inline.ts).
import type { BrowserBroker, CreateBrokerOptions } from './api.js';
import { absolute, startBroker } from './create-broker.js';

export * from './library.js';

/** An asset shipped next to this bundle (dist/browser/): esbuild leaves import.meta.url alone, so this is computed at run time. */
const besideBundle = (file: string): string => new URL(file, import.meta.url).href;

/**
 * Starts (or, in shared-worker mode, joins) the broker. 'auto' mode uses a SharedWorker when the
 * browser has one — every tab of the origin then shares one broker — and otherwise runs it here.
 */
export function createBroker(options: CreateBrokerOptions = {}): Promise<BrowserBroker> {
  return startBroker(options, {
    wasm: absolute(options.wasmUrl ?? besideBundle('arbor.wasm')),
    workerUrl: absolute(options.workerUrl ?? besideBundle('arbormq-worker.js')),
  });
}
