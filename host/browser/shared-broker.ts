import type { MqttClient } from '../client/client.js';
import type { ClientLink } from '../client/link.js';
import type { BridgeHandle, BrokerMode, BrowserBroker, BrowserBrokerStats, InPageConnectOptions, MqttJsEndpoint } from './api.js';
import { resolveBridgeConfig, type BridgeConfig, type BridgeStatus } from '../bridge/bridge-config.js';
import { InPageWebSocket } from './in-page-websocket.js';
import type { BrokerSnapshot, InspectOptions } from '../inspect/inspect.js';
import { connectInPage, mqttJsOptions } from './in-page-client.js';
import { tabLockName, type TabToWorker, type WorkerCalls, type WorkerMethod, type WorkerStartOptions, type WorkerToTab } from './port-protocol.js';
import { PortLink } from './port-transport.js';

/** How long a tab waits for the worker to start its broker (fetch + compile the wasm, open IndexedDB). */
const START_TIMEOUT_MS = 30_000;

/**
 * A tab's handle on the broker in the SharedWorker: every client connection is a MessageChannel
 * to the worker, calls (stats, bridges) are messages on the worker's port.
 */
export class SharedBroker implements BrowserBroker {
  readonly mode: BrokerMode = 'shared-worker';
  private nextCall = 1;
  private readonly calls = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly bridges = new Map<string, RemoteBridge>();
  private closed = false;

  private constructor(
    private readonly control: MessagePort,
    readonly storage: 'indexeddb' | 'memory',
    readonly storageNote: string | undefined,
  ) {
    control.onmessage = (event: MessageEvent<WorkerToTab>) => this.onMessage(event.data);
  }

  static async start(workerUrl: string, options: WorkerStartOptions): Promise<SharedBroker> {
    const tab = crypto.randomUUID();
    await holdTabLock(tab);
    // Classic worker script: module SharedWorkers are not everywhere SharedWorker is.
    const worker = new SharedWorker(workerUrl, { name: `arbormq:${options.name}` });
    const control = worker.port;
    const ready = await new Promise<Extract<WorkerToTab, { op: 'ready' }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the ArborMQ worker did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      worker.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`the ArborMQ worker script ${workerUrl} failed to load`));
      };
      control.onmessage = (event: MessageEvent<WorkerToTab>) => {
        const m = event.data;
        if (m.op !== 'ready' && m.op !== 'failed') return;
        clearTimeout(timer);
        if (m.op === 'ready') resolve(m);
        else reject(new Error(`the ArborMQ worker could not start its broker: ${m.error}`));
      };
      control.start();
      control.postMessage({ op: 'hello', tab, options } satisfies TabToWorker);
    });
    worker.onerror = null;
    return new SharedBroker(control, ready.storage, ready.storageNote);
  }

  private openLink(): ClientLink {
    if (this.closed) throw new Error('this broker handle is closed');
    const channel = new MessageChannel();
    this.control.postMessage({ op: 'connect', port: channel.port2 } satisfies TabToWorker, [channel.port2]);
    return new PortLink(channel.port1);
  }

  connect(options: InPageConnectOptions = {}): Promise<MqttClient> {
    return connectInPage(this.openLink(), options);
  }

  readonly createWebsocket = (url: string, protocols?: string | string[]): InPageWebSocket => new InPageWebSocket(url, protocols, this.openLink());

  mqttOptions<const T extends object = object>(extra?: T): T & MqttJsEndpoint {
    return mqttJsOptions(extra, this.createWebsocket);
  }

  stats(): Promise<BrowserBrokerStats> {
    return this.call('stats');
  }

  inspect(options?: InspectOptions): Promise<BrokerSnapshot> {
    return this.call('inspect', options);
  }

  async bridge(config: BridgeConfig): Promise<BridgeHandle> {
    // Checked here too, so a bad config fails with its own stack rather than the worker's message.
    const { clientId } = resolveBridgeConfig(config);
    const status = await this.call('bridge', config);
    let handle = this.bridges.get(clientId);
    if (handle) {
      handle.update(status);
    } else {
      handle = new RemoteBridge(this, clientId, status);
      this.bridges.set(clientId, handle);
    }
    return handle;
  }

  /** Closes this tab's connections; the worker's broker keeps serving other tabs. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The worker closes this tab's connections (their clients hear it; wills go out) and forgets its watchers.
    this.control.postMessage({ op: 'bye' } satisfies TabToWorker);
    for (const pending of this.calls.values()) pending.reject(new Error('this broker handle is closed'));
    this.calls.clear();
    this.control.close();
  }

  /** @internal A call on the worker's broker. */
  call<M extends WorkerMethod>(method: M, ...args: WorkerCalls[M]['args']): Promise<WorkerCalls[M]['result']> {
    if (this.closed) return Promise.reject(new Error('this broker handle is closed'));
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.control.postMessage({ op: 'call', id, method, args } satisfies TabToWorker);
    });
  }

  private onMessage(m: WorkerToTab): void {
    if (m.op === 'result') {
      const pending = this.calls.get(m.id);
      if (!pending) return;
      this.calls.delete(m.id);
      if (m.error) {
        const error = m.error.name === 'TypeError' ? new TypeError(m.error.message) : new Error(m.error.message);
        pending.reject(error);
      } else {
        pending.resolve(m.value);
      }
    } else if (m.op === 'bridge-status') {
      this.bridges.get(m.clientId)?.update(m.status);
    }
  }
}

/** A tab's handle on a bridge that runs in the worker. */
class RemoteBridge implements BridgeHandle {
  private readonly listeners = new Set<(status: BridgeStatus) => void>();

  constructor(
    private readonly owner: SharedBroker,
    readonly clientId: string,
    private current: BridgeStatus,
  ) {}

  get status(): BridgeStatus {
    return { ...this.current };
  }

  onStatus(listener: (status: BridgeStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @internal */
  update(status: BridgeStatus): void {
    this.current = status;
    for (const listener of this.listeners) listener({ ...status });
  }

  async setOnline(online: boolean): Promise<void> {
    await this.owner.call('bridge.setOnline', this.clientId, online);
  }

  queued(): Promise<number> {
    return this.owner.call('bridge.queued', this.clientId);
  }

  async close(): Promise<void> {
    await this.owner.call('bridge.close', this.clientId);
  }
}

/**
 * Takes a Web Lock named after this tab and keeps it for the tab's lifetime: the worker learns the
 * tab is gone when it can take the lock. Resolves once held (or at once without Web Locks).
 */
function holdTabLock(tab: string): Promise<void> {
  const locks = navigator.locks;
  if (!locks) return Promise.resolve();
  return new Promise((resolve) => {
    void locks.request(tabLockName(tab), () => {
      resolve();
      return new Promise<void>(() => undefined);
    });
  });
}
