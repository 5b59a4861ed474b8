// The "bridges" setting of the config file: each entry's keys and their types, paths resolved from
// the file's directory. What the values mean together (URL schemes, directions, ranges) is checked
// when the bridges start (bridges.ts), with the same field names.
import { resolve } from 'node:path';
import { ConfigError } from './config-error.js';
import type { ServerBridgeOptions } from './bridges.js';

type Json = Record<string, unknown>;

const STRING_KEYS = ['name', 'url', 'clientId', 'username'] as const;
const PATH_KEYS = ['passwordFile', 'caFile', 'certFile', 'keyFile'] as const;
const INTEGER_KEYS = ['protocolVersion', 'keepAlive', 'sessionExpiryInterval'] as const;
const BRIDGE_KEYS = new Set<string>([...STRING_KEYS, ...PATH_KEYS, ...INTEGER_KEYS, 'backoff', 'topics']);
const TOPIC_KEYS = new Set(['filter', 'direction', 'qos', 'localPrefix', 'remotePrefix']);

export function parseBridges(value: unknown, where: string, base: string): ServerBridgeOptions[] {
  if (!Array.isArray(value)) throw new ConfigError(where, 'must be an array of bridges');
  return value.map((item, i) => parseBridge(item, `${where}[${i}]`, base));
}

function parseBridge(item: unknown, where: string, base: string): ServerBridgeOptions {
  const bridge = object(item, where);
  for (const key of Object.keys(bridge)) if (!BRIDGE_KEYS.has(key)) throw new ConfigError(`${where}.${key}`, 'not a setting of a bridge (see docs/CONFIGURATION.md)');
  for (const key of ['name', 'url', 'topics']) if (bridge[key] === undefined) throw new ConfigError(`${where}.${key}`, 'is required');
  const out: Json = {};
  for (const key of STRING_KEYS) if (bridge[key] !== undefined) out[key] = string(bridge[key], `${where}.${key}`);
  for (const key of PATH_KEYS) if (bridge[key] !== undefined) out[key] = resolve(base, string(bridge[key], `${where}.${key}`));
  for (const key of INTEGER_KEYS) if (bridge[key] !== undefined) out[key] = integer(bridge[key], `${where}.${key}`);
  if (bridge.backoff !== undefined) {
    const backoff = object(bridge.backoff, `${where}.backoff`);
    for (const key of Object.keys(backoff)) if (key !== 'initialMs' && key !== 'maxMs') throw new ConfigError(`${where}.backoff.${key}`, 'not a setting of the backoff (initialMs, maxMs)');
    out.backoff = Object.fromEntries(Object.entries(backoff).map(([k, v]) => [k, integer(v, `${where}.backoff.${k}`)]));
  }
  if (!Array.isArray(bridge.topics)) throw new ConfigError(`${where}.topics`, 'must be an array of topic mappings');
  out.topics = bridge.topics.map((t, i) => {
    const at = `${where}.topics[${i}]`;
    const topic = object(t, at);
    for (const key of Object.keys(topic)) if (!TOPIC_KEYS.has(key)) throw new ConfigError(`${at}.${key}`, 'not a setting of a topic mapping (filter, direction, qos, localPrefix, remotePrefix)');
    for (const key of ['filter', 'direction', 'localPrefix', 'remotePrefix']) if (topic[key] !== undefined) string(topic[key], `${at}.${key}`);
    if (topic.qos !== undefined) integer(topic.qos, `${at}.qos`);
    return topic;
  });
  return out as unknown as ServerBridgeOptions;
}

function object(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(where, 'must be an object');
  return value as Json;
}

function string(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new ConfigError(where, `must be a string, got ${JSON.stringify(value)}`);
  return value;
}

function integer(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ConfigError(where, `must be an integer, got ${JSON.stringify(value)}`);
  return value;
}
