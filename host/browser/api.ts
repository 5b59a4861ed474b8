// The public shape of `arbormq/browser`: what createBroker returns, in a tab or through a SharedWorker.
import type { MqttClient } from '../client/client.js';
import type { ConnectOptions } from '../client/types.js';
import type { BrokerOptions, LogLevel } from '../core/model/options.js';
import type { BrokerStats } from '../core/sys.js';
import type { BridgeConfig, BridgeHandle, BridgeStatus } from '../bridge/bridge-config.js';
import type { InPageWebSocket } from './in-page-websocket.js';
import type { BrokerSnapshot, InspectOptions } from '../inspect/inspect.js';
import type { PacketObserver } from './packet-tap.js';

/** Where the broker runs: this tab, or a SharedWorker that every tab of the origin shares. */
export type BrokerMode = 'tab' | 'shared-worker';

/** Broker options that can cross to a worker: the hooks (functions) need `mode: 'tab'`. */
export type BrokerSettings = Omit<Partial<BrokerOptions>, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'readAccess' | 'authMethods' | 'logger'>;

export interface CreateBrokerOptions {
  /** 'indexeddb' (default): state survives reloads. 'memory': nothing is kept. */
  store?: 'indexeddb' | 'memory';
  /** IndexedDB database name; also names the SharedWorker, so each database has its own broker. Default "arbormq". */
  name?: string;
  /** IndexedDB durability of each group commit (see IdbStoreOptions). Default 'strict'. */
  durability?: 'strict' | 'relaxed';
  /**
   * 'auto' (default): a SharedWorker where the browser has one, else this tab. 'shared-worker'
   * fails without one; 'tab' always runs the broker in this tab.
   */
  mode?: 'auto' | BrokerMode;
  /**
   * Where arbor.wasm is. Default: next to the module (`new URL('arbor.wasm', import.meta.url)`);
   * arbormq/browser/inline carries the core inside instead.
   */
  wasmUrl?: string | URL;
  /**
   * Where the SharedWorker script (arbormq-worker.js) is. Default: next to the module.
   * arbormq/browser/inline has no default: without one, its 'auto' mode runs the broker in the tab.
   */
  workerUrl?: string | URL;
  /** Cap on the bytes the message arena may reserve (default 64 MiB in a browser). */
  arenaCapBytes?: number;
  /** Broker limits. In 'tab' mode anything of BrokerOptions, hooks included; through a worker only data. */
  broker?: BrokerSettings | Partial<BrokerOptions>;
  /** Logs at this level and above go to the console. Default: 'warn'. */
  logLevel?: LogLevel;
  /**
   * How long a tab-mode broker waits for another tab to let go of the IndexedDB database (a reload
   * overlaps the old page's teardown) before it settles for memory. Default 2000 ms.
   */
  storeLockWaitMs?: number;
}

/** Broker counters and state, plus where it runs and its bridges. */
export interface BrowserBrokerStats extends BrokerStats {
  mode: BrokerMode;
  storage: 'indexeddb' | 'memory';
  bridges: (BridgeStatus & { clientId: string; queued: number })[];
}

/** `broker.connect` options: the client's, plus a watch on the connection's packets. */
export interface InPageConnectOptions extends ConnectOptions {
  /**
   * Hears of every packet of this connection, both directions, as it crosses (see packet-tap.ts):
   * to show or log the protocol at work, e.g. a QoS 2 handshake step by step.
   */
  onPacket?: PacketObserver;
}

/** A link to a remote broker (see bridge-config.ts for what it does). */
export type { BridgeHandle } from '../bridge/bridge-config.js';

export interface BrowserBroker {
  readonly mode: BrokerMode;
  /** What actually holds the state: 'memory' when IndexedDB was asked for but could not be had (see storageNote). */
  readonly storage: 'indexeddb' | 'memory';
  readonly storageNote: string | undefined;
  /** A native client on this broker (MQTT 3.1.1 or 5.0 over the in-page transport; keep alive off unless given). */
  connect(options?: InPageConnectOptions): Promise<MqttClient>;
  /** MQTT.js's `createWebsocket` option: a WebSocket look-alike connected to this broker. */
  readonly createWebsocket: (url: string, protocols?: string | string[], options?: unknown) => InPageWebSocket;
  /** Options for `mqtt.connect(broker.mqttOptions({ … }))`: the in-page endpoint plus yours (keepalive 0 unless given). */
  mqttOptions<const T extends object = object>(extra?: T): T & MqttJsEndpoint;
  stats(): Promise<BrowserBrokerStats>;
  /**
   * The broker's state in detail — sessions (subscriptions, queues, inflight, wills), retained
   * messages, the arena's tiers and a sample of live buffers with their reference counts — for tools
   * and playgrounds. It walks every session and buffer: poll it at human speed, not per message.
   */
  inspect(options?: InspectOptions): Promise<BrokerSnapshot>;
  /**
   * Starts the bridge with this config's clientId, or returns the one running (a changed config
   * restarts it). Its queue is the broker's: it carries over restarts and reloads.
   */
  bridge(config: BridgeConfig): Promise<BridgeHandle>;
  /**
   * Tab mode: stops the broker (its state stays in IndexedDB). Shared-worker mode: disconnects this
   * tab's clients; the broker lives on while another tab uses it.
   */
  close(): Promise<void>;
}

/** The options MQTT.js needs to reach the in-page endpoint. */
export interface MqttJsEndpoint {
  protocol: 'ws';
  hostname: string;
  port: number;
  path: string;
  createWebsocket: (url: string, protocols?: string | string[], options?: unknown) => InPageWebSocket;
}
