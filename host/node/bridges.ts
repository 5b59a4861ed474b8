// The Node server's bridges: the shared Bridge (host/bridge/) with the server's broker as its local
// side — reached over in-process pipes, its queue a persistent session in the LevelDB store — and a
// remote reached over TCP, TLS or WebSocket.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { MqttClient } from '../client/client.js';
import type { ClientProtocolVersion } from '../client/types.js';
import { Bridge } from '../bridge/bridge.js';
import { localBridgeId, resolveBridgeConfig, type BridgeState, type BridgeTopic, type ResolvedBridgeConfig } from '../bridge/bridge-config.js';
import { inProcessPipe } from '../bridge/in-process-pipe.js';
import { brokerLocalSide } from '../bridge/local-side.js';
import { newBrokerId } from '../bridge/loop-marker.js';
import type { Broker } from '../core/broker.js';
import type { Logger } from '../core/model/options.js';
import type { AccessControl } from './access-control.js';
import { openRemoteLink, SERVER_BRIDGE_SCHEMES, type RemoteTls } from './bridge-remote.js';
import { ConfigError } from './config-error.js';

/** One bridge of the server (docs/CONFIGURATION.md maps Mosquitto's bridge lines to these keys). */
export interface ServerBridgeOptions {
  /** Names the bridge in logs, `$SYS/broker/bridges/{name}/…`, metrics and its local session `bridge:{name}`. */
  name: string;
  /** mqtt://host:1883, mqtts://host:8883, ws://host/mqtt or wss://host/mqtt. */
  url: string;
  /** Its client identifier on the remote broker. Default `{hostname}.{name}`, as Mosquitto's. */
  clientId?: string;
  username?: string;
  /** The password itself (embedders); the config file names a file instead. */
  password?: string;
  /** A file holding the password (a trailing newline is not part of it). */
  passwordFile?: string;
  /** PEM CA certificates the remote broker's certificate must chain to (default: the system's). */
  caFile?: string;
  /** PEM client certificate and key, for a remote broker that asks for one. */
  certFile?: string;
  keyFile?: string;
  /** 4 (MQTT 3.1.1) or 5 (default). */
  protocolVersion?: ClientProtocolVersion;
  /** Seconds. Default 30. */
  keepAlive?: number;
  /** 5.0: how long the remote broker keeps the bridge's session while the link is down. Default never expires. */
  sessionExpiryInterval?: number;
  /** Reconnect delays: the first, the longest, doubling in between with jitter. Default 500 ms … 30 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  topics: BridgeTopic[];
}

/** A bridge's state as `$SYS`, `/metrics` and the admin API report it. */
export interface BridgeReport {
  name: string;
  url: string;
  clientId: string;
  state: BridgeState;
  /** Failed attempts since the link was last up. */
  attempts: number;
  /** The last connection error, until the link is up again. */
  error?: string;
  /** Messages waiting in its local session for the remote broker. */
  queued: number;
  /** Messages carried to the remote broker and from it since start. */
  sent: number;
  received: number;
}

/** Connecting to the remote broker gives up after this long (then the backoff applies). */
const OPEN_TIMEOUT_MS = 10_000;

/** A bridge name appears in topics and metric labels: no topic level separators or wildcards. */
const NAME = /^[^/+#\s]+$/;

export class ServerBridges {
  private constructor(
    private readonly bridges: Bridge[],
    private readonly broker: Broker,
  ) {}

  /**
   * Reads each bridge's files, then starts them against `broker`. Their local connections are
   * trusted by `access` (no password, no ACL), and nobody else may use their client identifiers.
   * `changed` hears of every state change.
   */
  static async start(options: ServerBridgeOptions[], broker: Broker, access: AccessControl, log: Logger, changed: () => void): Promise<ServerBridges> {
    const resolved = await Promise.all(options.map((o, i) => resolveServerBridge(o, `bridges[${i}]`)));
    const names = new Set<string>();
    for (const [i, { config }] of resolved.entries()) {
      if (names.has(config.name)) throw new ConfigError(`bridges[${i}].name`, `"${config.name}" names another bridge too`);
      names.add(config.name);
    }
    const brokerId = newBrokerId();
    const bridges = resolved.map(({ config, tls }) => {
      const label = `bridge:${config.name}`;
      access.trustInternal(label, localBridgeId(config.name));
      const side = brokerLocalSide(broker, brokerId, (connect) => {
        const { transport, link } = inProcessPipe(label);
        broker.accept(transport);
        return MqttClient.connect(link, connect);
      });
      const bridge = new Bridge(config, side, { log, openRemote: (url) => openRemoteLink(url, tls, OPEN_TIMEOUT_MS) });
      bridge.onStatus(changed);
      return bridge;
    });
    return new ServerBridges(bridges, broker);
  }

  reports(): BridgeReport[] {
    return this.bridges.map((b) => {
      const s = b.status;
      const session = this.broker.sessions.get(localBridgeId(b.name));
      return {
        name: b.name,
        url: b.config.url,
        clientId: b.clientId,
        state: s.state,
        attempts: s.attempts,
        ...(s.error === undefined ? {} : { error: s.error }),
        queued: session ? session.queueLength + session.inflightCount : 0,
        sent: b.carried.out,
        received: b.carried.in,
      };
    });
  }

  /** Stops every bridge; their queues stay in the store for the next start. */
  async close(): Promise<void> {
    await Promise.all(this.bridges.map((b) => b.close()));
  }
}

/** A bridge's options checked, its defaults applied, its password and certificate files read. */
async function resolveServerBridge(o: ServerBridgeOptions, where: string): Promise<{ config: ResolvedBridgeConfig; tls: RemoteTls }> {
  if (typeof o.name !== 'string' || !NAME.test(o.name)) throw new ConfigError(`${where}.name`, 'is required, without "/", "+", "#" or spaces (it appears in $SYS topics)');
  const read = async (field: string, path: string | undefined): Promise<Buffer | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path);
    } catch (error) {
      throw new ConfigError(`${where}.${field}`, `cannot read ${path}: ${(error as Error).message}`);
    }
  };
  if (o.password !== undefined && o.passwordFile !== undefined) throw new ConfigError(`${where}.passwordFile`, 'give the password or a file holding it, not both');
  if ((o.certFile === undefined) !== (o.keyFile === undefined)) throw new ConfigError(`${where}.${o.certFile === undefined ? 'certFile' : 'keyFile'}`, 'certFile and keyFile go together');
  const [passwordBytes, ca, cert, key] = await Promise.all([read('passwordFile', o.passwordFile), read('caFile', o.caFile), read('certFile', o.certFile), read('keyFile', o.keyFile)]);
  let config: ResolvedBridgeConfig;
  try {
    config = resolveBridgeConfig(
      {
        url: o.url,
        clientId: o.clientId ?? `${hostname()}.${o.name}`,
        name: o.name,
        topics: o.topics,
        protocolVersion: o.protocolVersion,
        username: o.username,
        password: passwordBytes === undefined ? o.password : passwordBytes.toString('utf8').replace(/\r?\n$/, ''),
        keepAlive: o.keepAlive,
        sessionExpiryInterval: o.sessionExpiryInterval,
        backoff: o.backoff,
      },
      SERVER_BRIDGE_SCHEMES,
    );
  } catch (error) {
    throw new ConfigError(where, (error as Error).message.replace(/^bridge: /, ''));
  }
  if ((ca || cert) && !/^(mqtts|wss):/.test(config.url)) throw new ConfigError(`${where}.${ca ? 'caFile' : 'certFile'}`, 'TLS files need an mqtts:// or wss:// url');
  return { config, tls: { ca, cert, key } };
}
