import { keepFreedHeapForReuse } from './malloc-thresholds.js';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Broker } from '../core/broker.js';
import { LogAggregator } from '../core/model/log-aggregator.js';
import type { BrokerOptions, Logger } from '../core/model/options.js';
import type { Store } from '../core/model/store.js';
import { brokerStats } from '../core/sys.js';
import { AccessControl } from './access-control.js';
import { AdminApi } from './admin-api.js';
import { AdminToken } from './admin-token.js';
import { ServerBridges, type BridgeReport, type ServerBridgeOptions } from './bridges.js';
import type { Cluster } from './cluster/cluster.js';
import type { ClusterOptions } from './cluster/options.js';
import { ConnectionGate } from './connection-gate.js';
import { DashboardFiles } from './dashboard-files.js';
import { listenHttp } from './http-endpoint.js';
import type { HttpListenerOptions, ListenerOptions, RunningListener } from './listener-options.js';
import { loadNodeCore, packageRoot } from './load-core.js';
import { MemoryLimit } from './memory-limit.js';
import { renderMetrics, type MetricWriter } from './prometheus.js';
import { ServerSysTopics } from './server-sys.js';
import { clusterMetrics, clusterSysValues } from './cluster/metrics.js';
import { storeFor } from './store-for.js';
import { listenTcp } from './tcp-listener.js';
import { listenWebSocket } from './websocket-listener.js';

export type { BridgeReport, ServerBridgeOptions } from './bridges.js';
export type {
  HttpListenerOptions,
  ListenerOptions,
  SecureWebSocketListenerOptions,
  TcpListenerOptions,
  TlsListenerOptions,
  WebSocketListenerOptions,
} from './listener-options.js';

/** Everything `ArborServer.start` takes: the broker's options plus what only a server has. */
export interface ServerOptions extends Partial<BrokerOptions> {
  /** MQTT listeners, any number and mix (default: one TCP listener on 1883). All share one broker. */
  listeners?: ListenerOptions[];
  /** `/metrics` and `/health` over HTTP; off unless given. */
  http?: HttpListenerOptions | null;
  arenaCapBytes?: number;
  /** Where state persists; an embedder's Store wins over dataDir / memory. */
  store?: Store;
  /** Directory for persistent state (see store-for.ts). */
  dataDir?: string;
  /** Keep state in memory only. */
  memory?: boolean;
  /** 'sync' (default): fsync each group commit; 'os': leave it to the OS (see docs/PERSISTENCE.md). */
  durability?: 'sync' | 'os';
  /** Do not start when LevelDB's write-ahead log is damaged (default: start, and log what is lost). */
  strict?: boolean;
  /** Network connections served at once, over all listeners; more are refused (0 = no limit). */
  maxConnections?: number;
  /**
   * Bytes of resident memory (RSS) the process may use; over it new connections and PUBLISHes are
   * refused with 0x97 until it is back under (0 = no limit). See MemoryLimit.
   */
  maxMemory?: number;
  /** Clients without a user name (or certificate identity) may connect. Default: true unless passwordFile is set. */
  allowAnonymous?: boolean;
  /** Users and password hashes, as `arbormq passwd` (or mosquitto_passwd) writes them. */
  passwordFile?: string;
  /** Topic access rules in Mosquitto's ACL syntax. */
  aclFile?: string;
  /** Failed authentications from one address within the window before its CONNECTs are refused with 0x9F (0 = no limit). */
  authFailureLimit?: number;
  authFailureWindowSeconds?: number;
  /**
   * Seconds between `$SYS/broker/…` updates; 0 turns `$SYS` off. Off unless set: an embedded broker
   * stays quiet; the `arbormq` command sets 10 (Mosquitto's sys_interval default).
   */
  sysInterval?: number;
  /** close() waits this long for clients to go and the store to flush, then drops what is left. */
  shutdownTimeoutMs?: number;
  /** Links to remote brokers: topics carried out and in, queued in the store while a remote is away. */
  bridges?: ServerBridgeOptions[];
  /** Join a cluster of nodes that act as one broker (docs/CLUSTERING.md); without it nothing cluster-related loads. */
  cluster?: ClusterOptions;
}

export const SERVER_DEFAULTS = {
  maxConnections: 0,
  maxMemory: 0,
  authFailureLimit: 5,
  authFailureWindowSeconds: 60,
  sysInterval: 0,
  shutdownTimeoutMs: 10_000,
} as const;

/** After the deadline, how long destroyed connections get to report that they are closed. */
const DESTROY_GRACE_MS = 1000;

/** How close() went. */
export interface ShutdownResult {
  /** Every client was gone and the store flushed and closed before the deadline. */
  clean: boolean;
}

let version: Promise<string> | undefined;

/** The arbormq package version (for $SYS/broker/version and arbormq_info). */
export function packageVersion(): Promise<string> {
  version ??= packageRoot()
    .then(async (root) => (JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }).version)
    .catch(() => 'unknown');
  return version;
}

/** A broker with its network listeners, access control, $SYS topics and HTTP endpoint, as `arbormq` runs it. */
export class ArborServer {
  private closing: Promise<ShutdownResult> | null = null;
  private readonly listeners: RunningListener[] = [];
  private httpListener: RunningListener | null = null;
  private memoryLimit: MemoryLimit | null = null;
  private bridges: ServerBridges | null = null;
  private sys: ServerSysTopics | null = null;
  /** This node's part in a cluster, when `cluster` is configured. */
  cluster: Cluster | null = null;

  private constructor(
    readonly broker: Broker,
    private readonly gate: ConnectionGate,
    readonly access: AccessControl,
    /** The arbormq package version. */
    readonly version: string,
    private readonly shutdownTimeoutMs: number,
    private readonly adminToken: AdminToken | null,
  ) {}

  static async start(options: ServerOptions = {}): Promise<ArborServer> {
    keepFreedHeapForReuse();
    const log: Logger = options.logger ?? (() => undefined);
    const tokenFile = options.http?.adminTokenFile;
    const adminToken = tokenFile === undefined ? null : await AdminToken.load(tokenFile);
    const core = await loadNodeCore({ arenaCapBytes: options.arenaCapBytes });
    let broker: Broker | undefined;
    const logs = new LogAggregator(log);
    const gate = new ConnectionGate((transport) => broker!.accept(transport), options.maxConnections ?? SERVER_DEFAULTS.maxConnections, logs);
    const access = await AccessControl.create(
      {
        allowAnonymous: options.allowAnonymous ?? options.passwordFile === undefined,
        passwordFile: options.passwordFile,
        aclFile: options.aclFile,
        authFailures: {
          maxFailures: options.authFailureLimit ?? SERVER_DEFAULTS.authFailureLimit,
          windowMs: (options.authFailureWindowSeconds ?? SERVER_DEFAULTS.authFailureWindowSeconds) * 1000,
        },
        authenticate: options.authenticate,
        authorizePublish: options.authorizePublish,
        authorizeSubscribe: options.authorizeSubscribe,
        readAccess: options.readAccess,
      },
      gate,
      logs,
    );
    broker = new Broker(core, { ...options, ...access.hooks() }, storeFor(options, log), logs);
    // Loaded only for a cluster: a single node never imports the cluster code, nor etcd's client.
    const clustering = options.cluster
      ? (await import('./cluster/cluster.js')).Cluster.attach(broker, options.cluster, log, (await import('./cluster/replica-stores.js')).replicaStoresFor(options))
      : null;
    await broker.start();
    const version = await packageVersion();
    const sysInterval = options.sysInterval ?? SERVER_DEFAULTS.sysInterval;
    const clusterStatus = clustering ? () => clustering.cluster.status() : null;
    const server = new ArborServer(broker, gate, access, version, options.shutdownTimeoutMs ?? SERVER_DEFAULTS.shutdownTimeoutMs, adminToken);
    server.cluster = clustering?.cluster ?? null;
    if (sysInterval > 0) {
      const extra = clusterStatus ? { extra: () => clusterSysValues(clusterStatus()) } : {};
      server.sys = new ServerSysTopics(broker, { intervalSeconds: sysInterval, version, ...extra }, () => server.bridgeReports());
      server.sys.start();
    }
    const maxMemory = options.maxMemory ?? SERVER_DEFAULTS.maxMemory;
    if (maxMemory > 0) server.memoryLimit = new MemoryLimit(broker, maxMemory);
    try {
      if (options.bridges && options.bridges.length > 0) {
        // A bridge's state shows in $SYS as soon as it changes, not at the next interval.
        server.bridges = await ServerBridges.start(options.bridges, broker, access, log, () => server.sys?.publish());
      }
      for (const [i, spec] of (options.listeners ?? [{ port: 1883 }]).entries()) {
        const where = `listeners[${i}]`;
        server.listeners.push(
          spec.protocol === 'ws' || spec.protocol === 'wss'
            ? await listenWebSocket(spec, gate, logs, where, broker.options.maxPacketSize, broker.options.connectTimeoutMs)
            : await listenTcp(spec, gate, logs, where, broker.options.connectTimeoutMs),
        );
      }
      if (options.http) {
        const admin = adminToken && {
          api: new AdminApi(server),
          token: adminToken,
          dashboard: await DashboardFiles.load(options.http.dashboardDir ?? join(await packageRoot(), 'dist', 'dashboard')),
        };
        const cluster = server.cluster;
        server.httpListener = await listenHttp(
          options.http,
          {
            metrics: () => server.metricsText(),
            healthy: () => server.closing === null,
            admin,
            ...(cluster ? { notReady: () => cluster.healthReason(), cluster: () => cluster.status() } : {}),
          },
          'http',
        );
      }
      await clustering?.start(server.httpListener ? server.httpListener.address().port : null);
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /** The Prometheus text `/metrics` serves. */
  metricsText(): string {
    const cluster = this.cluster;
    const more = cluster ? (metric: MetricWriter) => clusterMetrics(cluster.status(), metric) : undefined;
    return renderMetrics(brokerStats(this.broker), {
      version: this.version,
      refusedOverLimit: this.gate.refusedOverLimit,
      authFailures: this.access.failures.failures,
      authRateLimited: this.access.failures.refused,
      subscriptionsDenied: this.access.subscriptionsDenied,
      bridges: this.bridgeReports(),
    }, more);
  }

  /** Each bridge's state, in configuration order. */
  bridgeReports(): BridgeReport[] {
    return this.bridges?.reports() ?? [];
  }

  /** Bound addresses of the MQTT listeners, in listener order (port 0 resolves to the port the OS chose). */
  addresses(): AddressInfo[] {
    return this.listeners.map((l) => l.address());
  }

  /** Each MQTT listener's protocol and bound address, in listener order. */
  endpoints(): { protocol: RunningListener['protocol']; address: AddressInfo }[] {
    return this.listeners.map((l) => ({ protocol: l.protocol, address: l.address() }));
  }

  /** The first MQTT listener's port. */
  get port(): number {
    return this.addresses()[0]!.port;
  }

  /** The HTTP endpoint's address, if there is one. */
  httpAddress(): AddressInfo | null {
    return this.httpListener?.address() ?? null;
  }

  /** Network connections being served now. */
  get connectionCount(): number {
    return this.gate.open;
  }

  /** The listener ("mqtts:8883") a network connection came in on, by its transport label. */
  listenerOf(remoteAddress: string): string | undefined {
    return this.gate.peers.get(remoteAddress)?.listener;
  }

  /**
   * SIGHUP and `POST /api/v1/reload`: reads the password and ACL files, the TLS listeners'
   * certificates and keys, and the admin token file again, and puts them in force together —
   * or, when one cannot be used, throws and changes nothing. Open connections stay; new TLS
   * handshakes use the new certificates. Resolves with what was reloaded.
   */
  async reload(): Promise<string[]> {
    const tls = this.listeners.filter((l) => l.prepareCertificateReload);
    const [access, certificates, token] = await Promise.all([
      this.access.prepareReload(),
      Promise.all(tls.map((l) => l.prepareCertificateReload!())),
      this.adminToken?.prepareReload(),
    ]);
    access();
    this.broker.readAccessChanged();
    for (const apply of certificates) apply();
    token?.();
    const reloaded: string[] = [];
    if (this.access.hasPasswordFile) reloaded.push('passwordFile');
    if (this.access.hasAclFile) reloaded.push('aclFile');
    for (const l of tls) reloaded.push(`certificates of ${l.protocol}:${l.address().port}`);
    if (token) reloaded.push('adminTokenFile');
    return reloaded;
  }

  /**
   * Reads the password and ACL files again; on an error the old rules stay and the error is thrown.
   * The new read rules apply to every delivery from then on, queued messages included.
   */
  async reloadAccess(): Promise<void> {
    await this.access.reload();
    this.broker.readAccessChanged();
  }

  /**
   * Shuts down: stops accepting, tells every 5.0 client DISCONNECT 0x8B, flushes and closes the
   * store, waits for the clients to close — and at `timeoutMs` drops whatever is left, so shutdown
   * always ends. `/health` answers 503 from the first moment.
   */
  close(timeoutMs = this.shutdownTimeoutMs): Promise<ShutdownResult> {
    this.closing ??= this.shutdown(timeoutMs);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<ShutdownResult> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const listenersClosed = Promise.all(this.listeners.map((l) => l.close()));
    this.sys?.stop();
    this.memoryLimit?.stop();
    // Leave the cluster first: peers drop this node's routes instead of forwarding to it while it stops.
    await this.cluster?.close().catch((error: Error) => this.broker.log('warn', 'shutdown: leaving the cluster failed', { error: error.message }));
    let clean = true;
    // Bridges first: their local sessions end like any client's, and their queues stay in the store.
    if (this.bridges && (await Promise.race([this.bridges.close(), deadline])) === 'timeout') clean = false;
    const brokerClosed = this.broker.close().then(
      () => 'closed' as const,
      (error: Error) => {
        this.broker.log('error', 'shutdown: the broker did not close cleanly', { error: error.message });
        clean = false;
        return 'closed' as const;
      },
    );
    if ((await Promise.race([brokerClosed, deadline])) === 'timeout') clean = false;
    if ((await Promise.race([this.gate.drained().then(() => 'drained' as const), deadline])) === 'timeout') {
      this.broker.log('warn', 'shutdown deadline passed: dropping the remaining connections', { connections: this.gate.peers.size, timeoutMs });
      clean = false;
      this.gate.destroyAll();
      // Destroyed sockets report 'close' on a later tick; wait for that, but not unboundedly.
      await Promise.race([this.gate.drained(), new Promise((resolve) => setTimeout(resolve, DESTROY_GRACE_MS).unref())]);
    }
    await listenersClosed;
    clearTimeout(timer);
    this.broker.logs.flush();
    await this.httpListener?.close();
    return { clean };
  }
}
