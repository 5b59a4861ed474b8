// `arbormq/browser`: the ArborMQ broker in a browser tab or a SharedWorker, with IndexedDB
// persistence, in-page clients (MQTT.js or the native client) and bridges to remote brokers.
import type { BrowserBroker, CreateBrokerOptions } from './api.js';
import { LocalBroker, type LocalBrokerOptions } from './local-broker.js';
import { consoleLogger } from './log.js';
import { SharedBroker } from './shared-broker.js';

export type { BridgeHandle, BrokerMode, BrokerSettings, BrowserBroker, BrowserBrokerStats, CreateBrokerOptions, InPageConnectOptions, MqttJsEndpoint } from './api.js';
export type { ArenaSnapshot, BrokerSnapshot, HandleSnapshot, InspectOptions, RetainedSnapshot, SessionSnapshot, SubscriptionSnapshot } from './inspect.js';
export { tapLink, type PacketDirection, type PacketEvent, type PacketName, type PacketObserver } from './packet-tap.js';
export type { BridgeConfig, BridgeDirection, BridgeState, BridgeStatus, BridgeTopic } from './bridge-config.js';
export { IdbStore, IdbStoreOpenError, type IdbStoreOptions } from './idb-store.js';
export { InPageWebSocket } from './in-page-websocket.js';
export { MqttClient } from '../client/client.js';
export { ConnectionClosedError, ConnectRefusedError, ReasonCodeError } from '../client/errors.js';
export { WebSocketLink } from '../client/websocket-link.js';
export { connectWebSocket } from '../client/index.js';
export type * from '../client/types.js';

/** An asset shipped next to this bundle (dist/browser/): esbuild leaves import.meta.url alone, so this is computed at run time. */
const besideBundle = (file: string): string => new URL(file, import.meta.url).href;

/** Resolves a URL against the page, so it means the same inside the worker. */
const absolute = (url: string | URL): string => new URL(String(url), globalThis.location?.href).href;

const HOOKS = ['authenticate', 'authorizePublish', 'authorizeSubscribe', 'readAccess', 'authMethods', 'logger'] as const;

/**
 * Starts (or, in shared-worker mode, joins) the broker. 'auto' mode uses a SharedWorker when the
 * browser has one — every tab of the origin then shares one broker — and otherwise runs it here.
 */
export async function createBroker(options: CreateBrokerOptions = {}): Promise<BrowserBroker> {
  const mode = options.mode ?? 'auto';
  const settings: LocalBrokerOptions = {
    mode: 'tab',
    store: options.store ?? 'indexeddb',
    name: options.name ?? 'arbormq',
    durability: options.durability ?? 'strict',
    wasmUrl: absolute(options.wasmUrl ?? besideBundle('arbor.wasm')),
    arenaCapBytes: options.arenaCapBytes,
    broker: { ...options.broker },
    logLevel: options.logLevel,
    storeLockWaitMs: options.storeLockWaitMs ?? 2000,
  };
  const hasSharedWorker = typeof SharedWorker === 'function';
  if (mode === 'shared-worker' && !hasSharedWorker) throw new Error('this browser has no SharedWorker: use mode "tab" or "auto"');
  if (mode !== 'tab' && hasSharedWorker) {
    const hooks = HOOKS.filter((k) => (settings.broker as Record<string, unknown>)[k] !== undefined);
    if (hooks.length > 0) {
      if (mode === 'shared-worker') throw new TypeError(`broker.${hooks.join(', broker.')} cannot cross to a SharedWorker: use mode "tab"`);
    } else {
      const { mode: _tab, ...workerOptions } = settings;
      const workerUrl = absolute(options.workerUrl ?? besideBundle('arbormq-worker.js'));
      try {
        return await SharedBroker.start(workerUrl, workerOptions);
      } catch (error) {
        if (mode === 'shared-worker') throw error;
        consoleLogger(options.logLevel)('warn', `ArborMQ: no shared broker (${(error as Error).message}); running one in this tab`);
      }
    }
  }
  return LocalBroker.start(settings);
}
