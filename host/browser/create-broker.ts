// createBroker, for both entries of `arbormq/browser` (index.ts: assets next to the bundle;
// inline.ts: the core inside it). The broker itself (host/core, the store, bridges) is loaded only
// when it runs in this tab: a page whose broker is in the SharedWorker downloads the client side
// and the port transport, nothing more.
import type { BrowserBroker, CreateBrokerOptions } from './api.js';
import { compileCore, type WasmSource } from './compile-core.js';
import type { LocalBrokerOptions } from './local-broker.js';
import { consoleLogger } from './log.js';
import { SharedBroker } from './shared-broker.js';

/** Where an entry finds the core and the SharedWorker script. */
export interface BrokerAssets {
  wasm: WasmSource;
  /** The worker script; undefined when the entry has none to offer (then 'auto' runs in the tab). */
  workerUrl: string | undefined;
}

const HOOKS = ['authenticate', 'authorizePublish', 'authorizeSubscribe', 'readAccess', 'authMethods', 'logger'] as const;

/** Resolves a URL against the page, so it means the same inside the worker. */
export const absolute = (url: string | URL): string => new URL(String(url), globalThis.location?.href).href;

/**
 * Starts (or, in shared-worker mode, joins) the broker. 'auto' mode uses a SharedWorker when the
 * browser has one (and the entry a worker script) — every tab of the origin then shares one
 * broker — and otherwise runs it here.
 */
export async function startBroker(options: CreateBrokerOptions, assets: BrokerAssets): Promise<BrowserBroker> {
  const mode = options.mode ?? 'auto';
  const settings: LocalBrokerOptions = {
    mode: 'tab',
    store: options.store ?? 'indexeddb',
    name: options.name ?? 'arbormq',
    durability: options.durability ?? 'strict',
    wasm: assets.wasm,
    arenaCapBytes: options.arenaCapBytes,
    broker: { ...options.broker },
    logLevel: options.logLevel,
    storeLockWaitMs: options.storeLockWaitMs ?? 2000,
  };
  const hasSharedWorker = typeof SharedWorker === 'function';
  if (mode === 'shared-worker' && !hasSharedWorker) throw new Error('this browser has no SharedWorker: use mode "tab" or "auto"');
  if (mode === 'shared-worker' && assets.workerUrl === undefined) throw new Error('no worker script: serve dist/browser/arbormq-worker.js and pass workerUrl, or use mode "tab"');
  if (mode !== 'tab' && hasSharedWorker && assets.workerUrl !== undefined) {
    const hooks = HOOKS.filter((k) => (settings.broker as Record<string, unknown>)[k] !== undefined);
    if (hooks.length > 0) {
      if (mode === 'shared-worker') throw new TypeError(`broker.${hooks.join(', broker.')} cannot cross to a SharedWorker: use mode "tab"`);
    } else {
      const { mode: _tab, ...workerOptions } = settings;
      try {
        return await SharedBroker.start(assets.workerUrl, workerOptions);
      } catch (error) {
        if (mode === 'shared-worker') throw error;
        consoleLogger(options.logLevel)('warn', `ArborMQ: no shared broker (${(error as Error).message}); running one in this tab`);
      }
    }
  }
  // The core downloads while the broker's code does; LocalBroker finds it compiled (or compiling).
  compileCore(settings.wasm).catch(() => undefined);
  const { LocalBroker } = await import('./local-broker.js');
  return LocalBroker.start(settings);
}
