// What tabs and the SharedWorker say to each other. Two kinds of MessagePort carry it: the worker's
// own port per tab (control: start-up, calls, bridge status) and one MessageChannel per client
// connection (MQTT bytes, flow-control credits, close).
import type { BrokerMode, BrowserBrokerStats } from './api.js';
import type { BridgeConfig, BridgeStatus } from '../bridge/bridge-config.js';
import type { BrokerSnapshot, InspectOptions } from '../inspect/inspect.js';
import type { LocalBrokerOptions } from './local-broker.js';

/** The broker settings a tab sends to the worker (data only: functions cannot cross). */
export type WorkerStartOptions = Omit<LocalBrokerOptions, 'mode'>;

/** Calls a tab makes on the worker's broker, with their arguments and results. */
export interface WorkerCalls {
  stats: { args: []; result: BrowserBrokerStats };
  inspect: { args: [options?: InspectOptions]; result: BrokerSnapshot };
  bridge: { args: [config: BridgeConfig]; result: BridgeStatus };
  'bridge.setOnline': { args: [clientId: string, online: boolean]; result: void };
  'bridge.queued': { args: [clientId: string]; result: number };
  'bridge.close': { args: [clientId: string]; result: void };
}
export type WorkerMethod = keyof WorkerCalls;

export type TabToWorker =
  /** First message of a tab; `tab` also names the Web Lock the tab holds while it lives. */
  | { op: 'hello'; tab: string; options: WorkerStartOptions }
  /** A new client connection; `port` is transferred. */
  | { op: 'connect'; port: MessagePort }
  | { op: 'call'; id: number; method: WorkerMethod; args: unknown[] }
  /** The tab closed its broker handle: its connections go. */
  | { op: 'bye' };

export type WorkerToTab =
  | { op: 'ready'; mode: BrokerMode; storage: 'indexeddb' | 'memory'; storageNote: string | undefined }
  | { op: 'failed'; error: string }
  | { op: 'result'; id: number; value?: unknown; error?: { name: string; message: string } }
  | { op: 'bridge-status'; clientId: string; status: BridgeStatus };

/** On a connection port, besides MQTT bytes (Uint8Array, transferred). */
export type PortControl =
  /** The receiver consumed this many bytes: the sender's writableLength falls by as much. */
  | { credit: number }
  /** The sender is closing the connection. */
  | { close: true };

/** The Web Lock a tab holds for as long as it lives; the worker waits on it to notice the tab is gone. */
export const tabLockName = (tab: string): string => `arbormq:tab:${tab}`;
