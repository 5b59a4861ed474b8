import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { LogLevel } from '../core/model/options.js';
import { parseBridges } from './bridge-options.js';
import { ConfigError } from './config-error.js';
import { clusterFromEnv, clusterFromFile, clusterFromFlags, finishCluster, type ClusterFlags, type ClusterSettings } from './cluster/config.js';
import type { HttpListenerOptions, ListenerOptions } from './listener-options.js';
import type { ServerOptions } from './server.js';

/** What `arbormq` runs with: the server's options and the log level. */
export interface RunConfig {
  server: ServerOptions;
  logLevel: LogLevel;
}

/** Settings given on the command line (they win over the environment, which wins over the file). */
export interface CommandLineSettings {
  config?: string;
  port?: string;
  wsPort?: string;
  host?: string;
  verbose?: boolean;
  dataDir?: string;
  memory?: boolean;
  durability?: string;
  strict?: boolean;
  /** --node-id, --cluster-etcd, --cluster-port, --cluster-advertise, --cluster-secret-file. */
  cluster?: ClusterFlags;
}

type Scalar = 'integer' | 'boolean' | 'string' | 'path' | 'logLevel' | 'choice';

interface ScalarField {
  type: Scalar;
  min?: number;
  max?: number;
  /** A duration's unit, named in range errors. */
  unit?: 'ms' | 's';
  /** The allowed values of a 'choice'. */
  choices?: readonly string[];
}

/** The longest delay a timer can hold (setTimeout fires at once beyond it): durations are capped here. */
export const TIMER_MAX_MS = 2 ** 31 - 1;
const TIMER_MAX_SECONDS = Math.floor(TIMER_MAX_MS / 1000);

/**
 * Every top-level setting that is a single value, with its type and range. Each is also read from
 * the environment as ARBORMQ_ + its name in upper snake case (maxPacketSize → ARBORMQ_MAX_PACKET_SIZE).
 * docs/CONFIGURATION.md describes them.
 */
export const SCALAR_FIELDS = {
  logLevel: { type: 'logLevel' },
  dataDir: { type: 'path' },
  memory: { type: 'boolean' },
  durability: { type: 'choice', choices: ['sync', 'os'] },
  strict: { type: 'boolean' },
  allowAnonymous: { type: 'boolean' },
  passwordFile: { type: 'path' },
  aclFile: { type: 'path' },
  authFailureLimit: { type: 'integer', min: 0 },
  authFailureWindowSeconds: { type: 'integer', min: 1, max: TIMER_MAX_SECONDS, unit: 's' },
  maxConnections: { type: 'integer', min: 0 },
  maxMemory: { type: 'integer', min: 0 },
  maxPacketSize: { type: 'integer', min: 16, max: 268_435_460 },
  maxInflight: { type: 'integer', min: 1, max: 65_535 },
  receiveMaximum: { type: 'integer', min: 1, max: 65_535 },
  maxQueuedMessages: { type: 'integer', min: 0 },
  maxQueuedBytes: { type: 'integer', min: 0 },
  maxWriteBufferBytes: { type: 'integer', min: 0 },
  copyLimitBytes: { type: 'integer', min: 0 },
  maxKeepAlive: { type: 'integer', min: 0, max: 65_535, unit: 's' },
  connectTimeoutMs: { type: 'integer', min: 1, max: TIMER_MAX_MS, unit: 'ms' },
  maxUnauthenticatedBytes: { type: 'integer', min: 1024 },
  maxUnauthenticatedTotalBytes: { type: 'integer', min: 1024 },
  maxMessagesPerSecond: { type: 'integer', min: 0 },
  maxSessionExpiry: { type: 'integer', min: 0, max: 0xffff_ffff, unit: 's' },
  topicAliasMaximum: { type: 'integer', min: 0, max: 65_535 },
  maxQoS: { type: 'integer', min: 0, max: 2 },
  retainAvailable: { type: 'boolean' },
  wildcardSubscriptions: { type: 'boolean' },
  subscriptionIdentifiers: { type: 'boolean' },
  sharedSubscriptions: { type: 'boolean' },
  responseInformation: { type: 'string' },
  arenaCapBytes: { type: 'integer', min: 1024 * 1024 },
  sysInterval: { type: 'integer', min: 0, max: TIMER_MAX_SECONDS, unit: 's' },
  shutdownTimeoutMs: { type: 'integer', min: 0, max: TIMER_MAX_MS, unit: 'ms' },
} satisfies Record<string, ScalarField>;

type ScalarKey = keyof typeof SCALAR_FIELDS;

/** The environment variable of a setting: maxPacketSize → ARBORMQ_MAX_PACKET_SIZE. */
export const envName = (key: string): string => `ARBORMQ_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

/** `$SYS` update interval of the `arbormq` command unless configured (Mosquitto's default too). */
export const COMMAND_SYS_INTERVAL = 10;

const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error']);
const PROTOCOLS = new Set(['mqtt', 'mqtts', 'ws', 'wss']);
const LISTENER_KEYS: Record<string, Set<string>> = {
  mqtt: new Set(['protocol', 'port', 'host']),
  mqtts: new Set(['protocol', 'port', 'host', 'certFile', 'keyFile', 'caFile', 'requireCertificate', 'useIdentityAsUsername']),
  ws: new Set(['protocol', 'port', 'host', 'path']),
  wss: new Set(['protocol', 'port', 'host', 'path', 'certFile', 'keyFile', 'caFile', 'requireCertificate', 'useIdentityAsUsername']),
};

type Json = Record<string, unknown>;

/**
 * The configuration: defaults, then the JSON config file (`-c`, or ARBORMQ_CONFIG), then ARBORMQ_*
 * environment variables, then command-line options. Relative paths in the file are relative to
 * the file; elsewhere to the working directory. Throws ConfigError on the first unusable setting.
 */
export async function loadConfig(cli: CommandLineSettings, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<RunConfig> {
  const server: ServerOptions = {};
  let logLevel: LogLevel = 'info';
  let cluster: ClusterSettings | undefined;
  const configPath = cli.config ?? nonEmpty(env.ARBORMQ_CONFIG);
  if (configPath !== undefined) {
    const path = resolve(cwd, configPath);
    const file = await readConfigFile(path, cli.config !== undefined ? '--config' : 'ARBORMQ_CONFIG');
    if (file.cluster !== undefined) cluster = clusterFromFile(file.cluster, `${path}: cluster`, dirname(path));
    logLevel = applyFile(server, file, path) ?? logLevel;
  }
  cluster = clusterFromFlags(clusterFromEnv(cluster, env, cwd), cli.cluster ?? {}, cwd);
  if (cluster) server.cluster = finishCluster(cluster);

  const scalarsFromEnv: Json = {};
  for (const key of Object.keys(SCALAR_FIELDS) as ScalarKey[]) {
    const raw = nonEmpty(env[envName(key)]);
    if (raw !== undefined) scalarsFromEnv[key] = fromText(raw, SCALAR_FIELDS[key], envName(key));
  }
  logLevel = applyScalars(server, scalarsFromEnv, (key) => envName(key), cwd) ?? logLevel;
  const envPort = nonEmpty(env.ARBORMQ_PORT);
  if (envPort !== undefined) setPort(server, parsePort(envPort, 'ARBORMQ_PORT'));
  // Both before the host settings, so that a WebSocket listener added here binds where they say.
  const envWsPort = nonEmpty(env.ARBORMQ_WS_PORT);
  if (envWsPort !== undefined) setWsPort(server, parsePort(envWsPort, 'ARBORMQ_WS_PORT'));
  if (cli.wsPort !== undefined) setWsPort(server, parsePort(cli.wsPort, '--ws-port'));
  const envHost = nonEmpty(env.ARBORMQ_HOST);
  // An admin token from the environment (applied below) keeps a file's HTTP endpoint on loopback too.
  if (envHost !== undefined) setHost(server, envHost, nonEmpty(env.ARBORMQ_HTTP_ADMIN_TOKEN_FILE) !== undefined);
  const httpPort = nonEmpty(env.ARBORMQ_HTTP_PORT);
  if (httpPort !== undefined) server.http = { ...server.http, port: parsePort(httpPort, 'ARBORMQ_HTTP_PORT') };
  const adminTokenFile = nonEmpty(env.ARBORMQ_HTTP_ADMIN_TOKEN_FILE);
  if (adminTokenFile !== undefined) {
    if (!server.http) throw new ConfigError('ARBORMQ_HTTP_ADMIN_TOKEN_FILE', 'needs an HTTP port too (ARBORMQ_HTTP_PORT or "http" in the config file)');
    server.http = { ...server.http, adminTokenFile: resolve(cwd, adminTokenFile) };
  }
  const httpHost = nonEmpty(env.ARBORMQ_HTTP_HOST);
  if (httpHost !== undefined) {
    if (!server.http) throw new ConfigError('ARBORMQ_HTTP_HOST', 'needs an HTTP port too (ARBORMQ_HTTP_PORT or "http" in the config file)');
    server.http = { ...server.http, host: httpHost };
  }

  if (cli.port !== undefined) setPort(server, parsePort(cli.port, '--port'));
  if (cli.host !== undefined) setHost(server, cli.host);
  if (cli.dataDir !== undefined) server.dataDir = resolve(cwd, cli.dataDir);
  if (cli.memory) server.memory = true;
  if (cli.strict) server.strict = true;
  if (cli.durability !== undefined) server.durability = check(cli.durability, SCALAR_FIELDS.durability, '--durability') as 'sync' | 'os';
  // The command keeps its state under ./data unless told otherwise (embedders choose for themselves).
  if (!server.memory) server.dataDir ??= resolve(cwd, 'data');
  if (cli.verbose) logLevel = 'debug';
  server.sysInterval ??= COMMAND_SYS_INTERVAL;
  return { server, logLevel };
}

async function readConfigFile(path: string, field: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(field, `cannot read ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, `not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(value)) throw new ConfigError(path, 'must be a JSON object');
  return value;
}

/** Applies a parsed config file; returns its log level if it sets one. */
function applyFile(server: ServerOptions, file: Json, path: string): LogLevel | undefined {
  const base = dirname(path);
  const field = (name: string): string => `${path}: ${name}`;
  const scalars: Json = {};
  for (const [key, value] of Object.entries(file)) {
    if (key === 'listeners') server.listeners = parseListeners(value, field, base);
    else if (key === 'http') server.http = value === null ? null : parseHttp(value, field('http'), base);
    else if (key === 'bridges') server.bridges = parseBridges(value, field('bridges'), base);
    else if (key in SCALAR_FIELDS) scalars[key] = value;
    else if (key !== '$schema' && key !== 'cluster') throw new ConfigError(field(key), 'unknown setting (see docs/CONFIGURATION.md)');
  }
  return applyScalars(server, scalars, field, base);
}

/** Checks and sets top-level single values; returns the log level if one was given. */
function applyScalars(server: ServerOptions, values: Json, field: (key: string) => string, base: string): LogLevel | undefined {
  let logLevel: LogLevel | undefined;
  const target = server as Record<string, unknown>;
  for (const [key, value] of Object.entries(values)) {
    const spec = SCALAR_FIELDS[key as ScalarKey] as ScalarField;
    const checked = check(value, spec, field(key));
    if (key === 'logLevel') logLevel = checked as LogLevel;
    else target[key] = spec.type === 'path' ? resolve(base, checked as string) : checked;
  }
  return logLevel;
}

function check(value: unknown, spec: ScalarField, field: string): unknown {
  switch (spec.type) {
    case 'boolean':
      if (typeof value !== 'boolean') throw new ConfigError(field, `must be true or false, got ${JSON.stringify(value)}`);
      return value;
    case 'string':
    case 'path':
      if (typeof value !== 'string') throw new ConfigError(field, `must be a string, got ${JSON.stringify(value)}`);
      if (spec.type === 'path' && value.length === 0) throw new ConfigError(field, 'must not be empty');
      return value;
    case 'logLevel':
      if (typeof value !== 'string' || !LOG_LEVELS.has(value)) throw new ConfigError(field, `must be one of debug, info, warn, error; got ${JSON.stringify(value)}`);
      return value;
    case 'choice':
      if (typeof value !== 'string' || !spec.choices!.includes(value)) {
        throw new ConfigError(field, `must be one of ${spec.choices!.join(', ')}; got ${JSON.stringify(value)}`);
      }
      return value;
    case 'integer':
      return integer(value, field, spec.min ?? 0, spec.max ?? Number.MAX_SAFE_INTEGER, spec.unit);
  }
}

function integer(value: unknown, field: string, min: number, max: number, unit?: 'ms' | 's'): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ConfigError(field, `must be an integer, got ${JSON.stringify(value)}`);
  if (value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(field, `must be ${range}${unit ? ` ${unit}` : ''}, got ${value}`);
  }
  return value;
}

/** An environment variable's text as the JSON value its field expects. */
function fromText(raw: string, spec: ScalarField, field: string): unknown {
  if (spec.type === 'boolean') {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    throw new ConfigError(field, `must be true or false, got ${JSON.stringify(raw)}`);
  }
  if (spec.type === 'integer') {
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(field, `must be an integer, got ${JSON.stringify(raw)}`);
    return Number(raw.trim());
  }
  return raw;
}

function parsePort(raw: string, field: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(field, `must be an integer from 0 to 65535, got ${JSON.stringify(raw)}`);
  return integer(Number(raw.trim()), field, 0, 65_535);
}

/** `--port` / ARBORMQ_PORT: the port of the first plain MQTT listener (one is added if there is none). */
function setPort(server: ServerOptions, port: number): void {
  const listeners = server.listeners ?? [];
  const index = listeners.findIndex((l) => (l.protocol ?? 'mqtt') === 'mqtt');
  if (index >= 0) listeners[index] = { ...listeners[index]!, port } as ListenerOptions;
  else listeners.unshift({ protocol: 'mqtt', port });
  server.listeners = listeners;
}

/**
 * `--ws-port` / ARBORMQ_WS_PORT: the port of the first `ws` listener; without one, a WebSocket
 * listener (on /mqtt) is added next to the others — next to the default MQTT listener when no file
 * set any.
 */
function setWsPort(server: ServerOptions, port: number): void {
  const listeners = server.listeners ?? [{ protocol: 'mqtt', port: 1883 }];
  const index = listeners.findIndex((l) => l.protocol === 'ws');
  if (index >= 0) listeners[index] = { ...listeners[index]!, port } as ListenerOptions;
  else listeners.push({ protocol: 'ws', port });
  server.listeners = listeners;
}

/**
 * `--host` / ARBORMQ_HOST: the bind address of every listener (and the HTTP endpoint) that does not
 * name its own — except an HTTP endpoint serving the admin API, which stays on loopback unless its
 * own `host` says otherwise.
 */
function setHost(server: ServerOptions, host: string, adminApi = server.http?.adminTokenFile !== undefined): void {
  server.listeners = (server.listeners ?? [{ protocol: 'mqtt', port: 1883 }]).map((l) => (l.host === undefined ? { ...l, host } : l));
  if (server.http && server.http.host === undefined && !adminApi) server.http = { ...server.http, host };
}

function parseListeners(value: unknown, field: (name: string) => string, base: string): ListenerOptions[] {
  if (!Array.isArray(value)) throw new ConfigError(field('listeners'), 'must be an array of listeners');
  return value.map((item, i) => {
    const where = field(`listeners[${i}]`);
    if (!isObject(item)) throw new ConfigError(where, 'must be an object');
    const protocol = item.protocol ?? 'mqtt';
    if (typeof protocol !== 'string' || !PROTOCOLS.has(protocol)) {
      throw new ConfigError(`${where}.protocol`, `must be one of mqtt, mqtts, ws, wss; got ${JSON.stringify(protocol)}`);
    }
    for (const key of Object.keys(item)) {
      if (!LISTENER_KEYS[protocol]!.has(key)) throw new ConfigError(`${where}.${key}`, `not a setting of an ${protocol} listener`);
    }
    if (item.port === undefined) throw new ConfigError(`${where}.port`, 'is required');
    const listener: Json = { protocol, port: integer(item.port, `${where}.port`, 0, 65_535) };
    if (item.host !== undefined) listener.host = check(item.host, { type: 'string' }, `${where}.host`);
    if (item.path !== undefined) {
      const path = check(item.path, { type: 'string' }, `${where}.path`) as string;
      if (!path.startsWith('/')) throw new ConfigError(`${where}.path`, `must start with "/", got ${JSON.stringify(path)}`);
      listener.path = path;
    }
    if (protocol === 'mqtts' || protocol === 'wss') {
      for (const key of ['certFile', 'keyFile'] as const) {
        if (item[key] === undefined) throw new ConfigError(`${where}.${key}`, `is required for ${protocol}`);
      }
      for (const key of ['certFile', 'keyFile', 'caFile'] as const) {
        if (item[key] !== undefined) listener[key] = resolve(base, check(item[key], { type: 'path' }, `${where}.${key}`) as string);
      }
      for (const key of ['requireCertificate', 'useIdentityAsUsername'] as const) {
        if (item[key] !== undefined) listener[key] = check(item[key], { type: 'boolean' }, `${where}.${key}`);
      }
      if (listener.requireCertificate && listener.caFile === undefined) {
        throw new ConfigError(`${where}.caFile`, 'is required with requireCertificate (the CA that client certificates must chain to)');
      }
      if (listener.useIdentityAsUsername && !listener.requireCertificate) {
        throw new ConfigError(`${where}.useIdentityAsUsername`, 'needs requireCertificate: true (an unverified certificate proves no identity)');
      }
    }
    return listener as unknown as ListenerOptions;
  });
}

function parseHttp(value: unknown, where: string, base: string): HttpListenerOptions {
  if (!isObject(value)) throw new ConfigError(where, 'must be an object like {"port": 9100} or null');
  for (const key of Object.keys(value)) {
    if (key !== 'port' && key !== 'host' && key !== 'adminTokenFile') throw new ConfigError(`${where}.${key}`, 'not a setting of the HTTP endpoint (port, host, adminTokenFile)');
  }
  if (value.port === undefined) throw new ConfigError(`${where}.port`, 'is required');
  const http: HttpListenerOptions = { port: integer(value.port, `${where}.port`, 0, 65_535) };
  if (value.host !== undefined) http.host = check(value.host, { type: 'string' }, `${where}.host`) as string;
  if (value.adminTokenFile !== undefined) http.adminTokenFile = resolve(base, check(value.adminTokenFile, { type: 'path' }, `${where}.adminTokenFile`) as string);
  return http;
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value.length === 0 ? undefined : value);
