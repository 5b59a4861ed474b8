import type { ClientProtocolVersion } from '../client/types.js';

/** Which way a topic mapping carries messages. */
export type BridgeDirection = 'out' | 'in' | 'both';

export interface BridgeTopic {
  /** Topic filter, without the prefixes. */
  filter: string;
  /** 'out': local → remote; 'in': remote → local; 'both'. */
  direction: BridgeDirection;
  /** Highest QoS carried (0 or 1; QoS 2 messages cross as QoS 1, at least once). Default 1. */
  qos?: 0 | 1;
  /** Prepended to `filter` on the in-tab broker: `localPrefix + filter`. */
  localPrefix?: string;
  /** Prepended to `filter` on the remote broker: a local `localPrefix + x` is remote `remotePrefix + x`. */
  remotePrefix?: string;
}

export interface BridgeConfig {
  /** The remote broker's MQTT-over-WebSocket endpoint, e.g. `wss://broker.example/mqtt`. */
  url: string;
  /**
   * The bridge's client identifier on the remote broker (its persistent session there) and, as
   * `bridge:{clientId}`, on the in-tab broker (where its session is the durable outbound queue).
   */
  clientId: string;
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

export function resolveBridgeConfig(config: BridgeConfig): ResolvedBridgeConfig {
  if (!config || typeof config.url !== 'string' || !/^wss?:\/\//.test(config.url)) throw new TypeError('bridge: url must be a ws:// or wss:// URL');
  if (typeof config.clientId !== 'string' || config.clientId.length === 0) throw new TypeError('bridge: clientId is required (it names the persistent sessions)');
  if (!Array.isArray(config.topics) || config.topics.length === 0) throw new TypeError('bridge: topics must list at least one mapping');
  const protocolVersion = config.protocolVersion ?? 5;
  const topics = config.topics.map((t, i): Required<BridgeTopic> => {
    if (typeof t.filter !== 'string' || t.filter.length === 0) throw new TypeError(`bridge: topics[${i}].filter is required`);
    if (t.direction !== 'in' && t.direction !== 'out' && t.direction !== 'both') throw new TypeError(`bridge: topics[${i}].direction must be 'in', 'out' or 'both'`);
    if (t.direction === 'both' && protocolVersion !== 5) {
      throw new TypeError(`bridge: topics[${i}] is 'both', which needs protocolVersion 5 (No Local keeps messages from coming back)`);
    }
    const qos = t.qos ?? 1;
    if (qos !== 0 && qos !== 1) throw new TypeError(`bridge: topics[${i}].qos must be 0 or 1`);
    return { filter: t.filter, direction: t.direction, qos, localPrefix: t.localPrefix ?? '', remotePrefix: t.remotePrefix ?? '' };
  });
  const initialMs = inRange('backoff.initialMs', config.backoff?.initialMs ?? 500, 1, TIMER_MAX_MS);
  return {
    url: config.url,
    clientId: config.clientId,
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

/** The longest delay a timer can hold (a longer one fires at once): reconnect delays end there. */
const TIMER_MAX_MS = 2 ** 31 - 1;

function inRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new TypeError(`bridge: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

/** The in-tab broker's client identifier of the bridge with remote identifier `clientId`. */
export const localBridgeId = (clientId: string): string => `bridge:${clientId}`;
