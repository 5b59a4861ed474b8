import type { ClientProtocolVersion } from '../client/types.js';

/** Which way a topic mapping carries messages. */
export type BridgeDirection = 'out' | 'in' | 'both';

export interface BridgeTopic {
  /** Topic filter, without the prefixes; empty when both prefixes are whole topics (Mosquitto's `topic "" out 1 a/b c/d`). */
  filter: string;
  /** 'out': local → remote; 'in': remote → local; 'both'. */
  direction: BridgeDirection;
  /** Highest QoS carried (0 or 1; QoS 2 messages cross as QoS 1, at least once). Default 1. */
  qos?: 0 | 1;
  /** Prepended to `filter` on the local broker: `localPrefix + filter`. */
  localPrefix?: string;
  /** Prepended to `filter` on the remote broker: a local `localPrefix + x` is remote `remotePrefix + x`. */
  remotePrefix?: string;
}

export interface BridgeConfig {
  /**
   * The remote broker: an MQTT-over-WebSocket endpoint (`wss://broker.example/mqtt`); a Node server
   * also connects to `mqtt://host:1883` and `mqtts://host:8883`.
   */
  url: string;
  /** The bridge's client identifier on the remote broker (its persistent session there). */
  clientId: string;
  /**
   * Names the bridge in logs and status, and its session on the local broker, `bridge:{name}`, which
   * is the durable outbound queue. Default: the clientId.
   */
  name?: string;
  topics: BridgeTopic[];
  /** Towards the remote broker. Default 5; 'both' mappings need 5 (No Local stops echo loops). */
  protocolVersion?: ClientProtocolVersion;
  username?: string;
  password?: string;
  /** Seconds. Default 30. */
  keepAlive?: number;
  /** 5.0: how long the remote broker keeps the session while the link is down. Default 0xFFFFFFFF (never expires). */
  sessionExpiryInterval?: number;
  /** Reconnect delays: the first, the longest, doubling in between with jitter. Default 500 ms … 30 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Start with the link up (default) or forced down. */
  online?: boolean;
}

/** A running bridge, as its owner sees it. */
export interface BridgeHandle {
  readonly clientId: string;
  /** The latest status (in shared-worker mode, as last reported by the worker). */
  readonly status: BridgeStatus;
  /** Called on every status change; returns a function that stops it. */
  onStatus(listener: (status: BridgeStatus) => void): () => void;
  /** Forces the link down (false) or lets it come up again (true): the "network off" switch. */
  setOnline(online: boolean): Promise<void>;
  /** Messages waiting in the bridge's local session for the remote broker. */
  queued(): Promise<number>;
  /** Stops the bridge; its local session and queued messages stay for the next start. */
  close(): Promise<void>;
}

/**
 * Where the link is. 'connecting' → 'online' → (lost) → 'waiting' (backoff) → 'connecting' …;
 * 'offline' while forced down; 'standby' when this broker does not own the database (another tab
 * does) so the bridge must not run; 'stopped' after close().
 */
export type BridgeState = 'connecting' | 'online' | 'waiting' | 'offline' | 'standby' | 'stopped';

export interface BridgeStatus {
  state: BridgeState;
  /** The last connection error, until the link is up again. */
  error?: string;
  /** Failed attempts since the link was last up. */
  attempts: number;
  /** While 'waiting': when (Date.now()) the next attempt starts. */
  retryAt?: number;
}

/** A bridge config with its defaults applied, validated. */
export interface ResolvedBridgeConfig extends Required<Omit<BridgeConfig, 'username' | 'password' | 'backoff' | 'online'>> {
  username: string | undefined;
  password: string | undefined;
  backoff: { initialMs: number; maxMs: number };
  online: boolean;
  topics: Required<BridgeTopic>[];
}

/** The URL schemes a browser can open: WebSocket only. */
export const WEB_SCHEMES: readonly string[] = ['ws', 'wss'];

/** Checks `config` and applies the defaults; `schemes` are the URL schemes this host can open. */
export function resolveBridgeConfig(config: BridgeConfig, schemes: readonly string[] = WEB_SCHEMES): ResolvedBridgeConfig {
  const scheme = typeof config?.url === 'string' ? /^([a-z]+):\/\//.exec(config.url)?.[1] : undefined;
  if (scheme === undefined || !schemes.includes(scheme)) throw new TypeError(`bridge: url must be ${orList(schemes.map((s) => `${s}://`))} URL`);
  if (typeof config.clientId !== 'string' || config.clientId.length === 0) throw new TypeError('bridge: clientId is required (it names the persistent sessions)');
  const name = config.name ?? config.clientId;
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('bridge: name must not be empty');
  if (!Array.isArray(config.topics) || config.topics.length === 0) throw new TypeError('bridge: topics must list at least one mapping');
  const protocolVersion = config.protocolVersion ?? 5;
  if (protocolVersion !== 4 && protocolVersion !== 5) throw new TypeError(`bridge: protocolVersion must be 4 (MQTT 3.1.1) or 5, got ${protocolVersion}`);
  const topics = config.topics.map((t, i): Required<BridgeTopic> => {
    if (typeof t.filter !== 'string') throw new TypeError(`bridge: topics[${i}].filter is required`);
    if (t.direction !== 'in' && t.direction !== 'out' && t.direction !== 'both') throw new TypeError(`bridge: topics[${i}].direction must be 'in', 'out' or 'both'`);
    if (t.direction === 'both' && protocolVersion !== 5) {
      throw new TypeError(`bridge: topics[${i}] is 'both', which needs protocolVersion 5 (No Local keeps messages from coming back)`);
    }
    const qos = t.qos ?? 1;
    if (qos !== 0 && qos !== 1) throw new TypeError(`bridge: topics[${i}].qos must be 0 or 1`);
    const localPrefix = t.localPrefix ?? '';
    const remotePrefix = t.remotePrefix ?? '';
    if (t.filter.length === 0 && (localPrefix.length === 0 || remotePrefix.length === 0)) {
      throw new TypeError(`bridge: topics[${i}].filter is required (it may be empty only when localPrefix and remotePrefix are both whole topics)`);
    }
    return { filter: t.filter, direction: t.direction, qos, localPrefix, remotePrefix };
  });
  const initialMs = inRange('backoff.initialMs', config.backoff?.initialMs ?? 500, 1, TIMER_MAX_MS);
  return {
    url: config.url,
    clientId: config.clientId,
    name,
    topics,
    protocolVersion,
    username: config.username,
    password: config.password,
    keepAlive: inRange('keepAlive', config.keepAlive ?? 30, 0, 65_535),
    sessionExpiryInterval: inRange('sessionExpiryInterval', config.sessionExpiryInterval ?? 0xffffffff, 0, 0xffffffff),
    backoff: { initialMs, maxMs: inRange('backoff.maxMs', config.backoff?.maxMs ?? 30_000, initialMs, TIMER_MAX_MS) },
    online: config.online ?? true,
  };
}

/** "a ws:// or wss://", "an mqtt://, mqtts://, ws:// or wss://". */
function orList(items: string[]): string {
  const list = items.length === 1 ? items[0]! : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
  return `${/^[aeiou]|^mqtt/.test(list) ? 'an' : 'a'} ${list}`;
}

/** The longest delay a timer can hold (a longer one fires at once): reconnect delays end there. */
const TIMER_MAX_MS = 2 ** 31 - 1;

function inRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new TypeError(`bridge: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

/** The local broker's client identifier of the bridge named `name` (its durable outbound queue). */
export const localBridgeId = (name: string): string => `bridge:${name}`;
