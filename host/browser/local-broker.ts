import type { MqttClient } from '../client/client.js';
import type { ClientLink } from '../client/link.js';
import { Broker } from '../core/broker.js';
import type { BrokerOptions, Logger, LogLevel } from '../core/model/options.js';
import { VolatileStore } from '../core/model/store.js';
import { brokerStats } from '../core/sys.js';
import type { Transport } from '../core/transport.js';
import type { BridgeHandle, BrokerMode, BrowserBroker, BrowserBrokerStats, InPageConnectOptions, MqttJsEndpoint } from './api.js';
import { Bridge, type LocalSide } from '../bridge/bridge.js';
import { resolveBridgeConfig, type BridgeConfig, type ResolvedBridgeConfig } from '../bridge/bridge-config.js';
import { brokerLocalSide } from '../bridge/local-side.js';
import { newBrokerId } from '../bridge/loop-marker.js';
import type { WasmSource } from './compile-core.js';
import { IdbStore, IdbStoreOpenError } from './idb-store.js';
import { connectInPage, mqttJsOptions } from './in-page-client.js';
import { inProcessPipe } from '../bridge/in-process-pipe.js';
import { InPageWebSocket } from './in-page-websocket.js';
import { inspectBroker, type BrokerSnapshot, type InspectOptions } from '../inspect/inspect.js';
import { loadBrowserCore } from './load-core.js';
import { consoleLogger } from './log.js';
import { probeWebSocket } from './quiet-probe.js';
import { acquireStoreLock } from './store-lock.js';

/** A browser tab has less memory to spare than a server: the arena's default cap is smaller. */
export const BROWSER_ARENA_CAP = 64 * 1024 * 1024;

export interface LocalBrokerOptions {
  mode: BrokerMode;
  store: 'indexeddb' | 'memory';
  name: string;
  durability: 'strict' | 'relaxed';
  /** The core: its URL, or its bytes (the inline entry; they cross to the worker by structured clone). */
  wasm: WasmSource;
  arenaCapBytes: number | undefined;
  broker: Partial<BrokerOptions>;
  logLevel: LogLevel | undefined;
  storeLockWaitMs: number;
}

/**
 * The broker itself, running in this JavaScript realm (a tab, or the SharedWorker): host/core and
 * the wasm core unchanged, an IndexedDB (or memory) store, in-page connections and bridges.
 */
export class LocalBroker implements BrowserBroker {
  private readonly bridges = new Map<string, Bridge>();
  private readonly localSide: LocalSide;
  private connectionCount = 0;
  private closing: Promise<void> | null = null;

  private constructor(
    readonly broker: Broker,
    readonly mode: BrokerMode,
    readonly storage: 'indexeddb' | 'memory',
    readonly storageNote: string | undefined,
    /** Another tab owns the database: bridges must not run here. */
    private readonly standby: boolean,
    private readonly releaseStore: () => void,
    private readonly log: Logger,
  ) {
    this.localSide = brokerLocalSide(broker, newBrokerId(), (options) => this.connect(options));
  }

  static async start(o: LocalBrokerOptions): Promise<LocalBroker> {
    const log = o.broker.logger ?? consoleLogger(o.logLevel);
    const core = await loadBrowserCore(o.wasm, { arenaCapBytes: o.arenaCapBytes ?? BROWSER_ARENA_CAP });
    const options = { ...o.broker, logger: log };
    let note: string | undefined;
    let standby = false;
    let release: () => void = () => undefined;
    if (o.store === 'indexeddb') {
      const held = await acquireStoreLock(o.name, o.storeLockWaitMs);
      if (held) {
        release = held;
        const broker = new Broker(core, options, new IdbStore(o.name, { durability: o.durability }));
        try {
          await broker.start();
          return new LocalBroker(broker, o.mode, 'indexeddb', undefined, false, release, log);
        } catch (error) {
          release();
          release = () => undefined;
          // Opening failed before anything was restored (the core is untouched): carry on in memory.
          if (!(error instanceof IdbStoreOpenError)) throw error;
          note = error.message;
        }
      } else {
        standby = true;
        note = `another tab holds the IndexedDB database "${o.name}": this broker keeps its state in memory and its bridges stand by`;
      }
      log('warn', `ArborMQ: ${note}`);
    }
    const broker = new Broker(core, options, new VolatileStore());
    await broker.start();
    return new LocalBroker(broker, o.mode, 'memory', note, standby, release, log);
  }

  /** Serves one client over `transport` (an in-page pipe, or a tab's MessagePort in the worker). */
  accept(transport: Transport): void {
    this.broker.accept(transport);
  }

  /** A new in-page connection's client end. */
  openLink(): ClientLink {
    const { transport, link } = inProcessPipe(`in-page#${++this.connectionCount}`);
    this.accept(transport);
    return link;
  }

  connect(options: InPageConnectOptions = {}): Promise<MqttClient> {
    return connectInPage(this.openLink(), options);
  }

  readonly createWebsocket = (url: string, protocols?: string | string[]): InPageWebSocket => new InPageWebSocket(url, protocols, this.openLink());

  mqttOptions<const T extends object = object>(extra?: T): T & MqttJsEndpoint {
    return mqttJsOptions(extra, this.createWebsocket);
  }

  async stats(): Promise<BrowserBrokerStats> {
    const bridges = await Promise.all([...this.bridges.values()].map(async (b) => ({ ...b.status, clientId: b.clientId, queued: await b.queued() })));
    return { ...brokerStats(this.broker), mode: this.mode, storage: this.storage, bridges };
  }

  async inspect(options?: InspectOptions): Promise<BrokerSnapshot> {
    return inspectBroker(this.broker, options);
  }

  async bridge(config: BridgeConfig): Promise<BridgeHandle> {
    const resolved = resolveBridgeConfig(config);
    const running = this.bridges.get(resolved.clientId);
    if (running && sameLink(running.config, resolved)) {
      // One bridge per remote identity: a second start (another tab, a reload the worker outlived) joins it.
      if (config.online !== undefined) await running.setOnline(config.online);
      return running;
    }
    // A changed configuration replaces the running bridge; its local session (and queue) carries over.
    await running?.close();
    const bridge = new Bridge(resolved, this.localSide, { log: this.log, standby: this.standby, probe: probeWebSocket });
    this.bridges.set(resolved.clientId, bridge);
    bridge.onStatus((s) => {
      if (s.state === 'stopped' && this.bridges.get(resolved.clientId) === bridge) this.bridges.delete(resolved.clientId);
    });
    return bridge;
  }

  /** The running bridge with remote identifier `clientId`. */
  async bridgeById(clientId: string): Promise<BridgeHandle> {
    const bridge = this.bridges.get(clientId);
    if (!bridge) throw new Error(`no bridge "${clientId}" is running`);
    return bridge;
  }

  /** Stops the bridges and the broker; the store keeps the state. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.bridges.values()].map((b) => b.close()));
      this.bridges.clear();
      try {
        await this.broker.close();
      } finally {
        this.releaseStore();
      }
    })();
    return this.closing;
  }
}

/** Whether two configs describe the same link (whether it starts online does not matter to a running one). */
function sameLink(a: ResolvedBridgeConfig, b: ResolvedBridgeConfig): boolean {
  return JSON.stringify({ ...a, online: true }) === JSON.stringify({ ...b, online: true });
}
