import { resolve } from 'node:path';
import { ConfigError } from '../config-error.js';
import { NAME_PATTERN, type ClusterOptions } from './options.js';

/** The cluster settings the command line may give (they win over the environment, which wins over the file). */
export interface ClusterFlags {
  nodeId?: string;
  etcd?: string;
  port?: string;
  advertise?: string;
  secretFile?: string;
}

type Kind = 'name' | 'urls' | 'port' | 'string' | 'path' | 'url' | 'integer';

/** Every key of the `cluster` object; each also comes from ARBORMQ_CLUSTER_ + its name in upper snake case. */
const FIELDS: Record<keyof ClusterOptions, { kind: Kind; min?: number; max?: number }> = {
  nodeId: { kind: 'name' },
  etcd: { kind: 'urls' },
  name: { kind: 'name' },
  port: { kind: 'port' },
  host: { kind: 'string' },
  advertise: { kind: 'url' },
  secretFile: { kind: 'path' },
  certFile: { kind: 'path' },
  keyFile: { kind: 'path' },
  caFile: { kind: 'path' },
  leaseTtlSeconds: { kind: 'integer', min: 2, max: 300 },
  maxLinkBufferBytes: { kind: 'integer', min: 64 * 1024 },
  departedGraceSeconds: { kind: 'integer', min: 0, max: 3600 },
  replicationFactor: { kind: 'integer', min: 1, max: 2 },
  maxReplicationBacklogBytes: { kind: 'integer', min: 64 * 1024 },
};

const FLAG_NAMES: Record<keyof ClusterFlags, string> = {
  nodeId: '--node-id',
  etcd: '--cluster-etcd',
  port: '--cluster-port',
  advertise: '--cluster-advertise',
  secretFile: '--cluster-secret-file',
};

const clusterEnvName = (key: string): string => `ARBORMQ_CLUSTER_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

/** Cluster settings gathered so far, checked one by one; finishCluster checks them together. */
export type ClusterSettings = { [K in keyof ClusterOptions]?: ClusterOptions[K] };

/** The `cluster` object of a config file (paths relative to the file). */
export function clusterFromFile(value: unknown, where: string, base: string): ClusterSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(where, 'must be an object like {"nodeId": "n1", "etcd": ["http://127.0.0.1:2379"], "secretFile": "cluster.secret"}');
  }
  const out: ClusterSettings = {};
  for (const [key, raw] of Object.entries(value)) {
    const spec = FIELDS[key as keyof ClusterOptions];
    if (!spec) throw new ConfigError(`${where}.${key}`, `not a cluster setting (${Object.keys(FIELDS).join(', ')})`);
    set(out, key as keyof ClusterOptions, checked(raw, spec.kind, `${where}.${key}`, base, spec));
  }
  return out;
}

/** ARBORMQ_CLUSTER_* over what the file gave. */
export function clusterFromEnv(current: ClusterSettings | undefined, env: NodeJS.ProcessEnv, cwd: string): ClusterSettings | undefined {
  let out = current;
  for (const [key, spec] of Object.entries(FIELDS) as [keyof ClusterOptions, (typeof FIELDS)[keyof ClusterOptions]][]) {
    const name = clusterEnvName(key);
    const raw = env[name];
    if (raw === undefined || raw.length === 0) continue;
    out = { ...out };
    set(out, key, checked(fromText(raw, spec.kind, name), spec.kind, name, cwd, spec));
  }
  return out;
}

/** Command-line flags over the rest. */
export function clusterFromFlags(current: ClusterSettings | undefined, flags: ClusterFlags, cwd: string): ClusterSettings | undefined {
  let out = current;
  for (const [key, flag] of Object.entries(FLAG_NAMES) as [keyof ClusterFlags, string][]) {
    const raw = flags[key];
    if (raw === undefined) continue;
    const spec = FIELDS[key];
    out = { ...out };
    set(out, key, checked(fromText(raw, spec.kind, flag), spec.kind, flag, cwd, spec));
  }
  return out;
}

/** A complete cluster setting: node id and etcd are required, and links must be authenticated somehow. */
export function finishCluster(value: ClusterSettings, where = 'cluster'): ClusterOptions {
  if (value.nodeId === undefined) throw new ConfigError(`${where}.nodeId`, 'is required to join a cluster (--node-id, ARBORMQ_CLUSTER_NODE_ID)');
  if (value.etcd === undefined) throw new ConfigError(`${where}.etcd`, 'is required to join a cluster (--cluster-etcd URL[,URL])');
  const tls = value.certFile !== undefined || value.keyFile !== undefined || value.caFile !== undefined;
  if (tls && (value.certFile === undefined || value.keyFile === undefined || value.caFile === undefined)) {
    throw new ConfigError(`${where}.certFile`, 'links over TLS need certFile, keyFile and caFile (mutual TLS)');
  }
  if (!tls && value.secretFile === undefined) {
    throw new ConfigError(`${where}.secretFile`, 'is required: links prove a shared secret (or set certFile, keyFile and caFile for mutual TLS)');
  }
  if (value.advertise !== undefined) {
    const scheme = new URL(value.advertise).protocol;
    if (scheme !== (tls ? 'wss:' : 'ws:')) throw new ConfigError(`${where}.advertise`, `must be a ${tls ? 'wss' : 'ws'}:// URL ${tls ? 'with' : 'without'} TLS files`);
  }
  return value as ClusterOptions;
}

function set<K extends keyof ClusterOptions>(out: ClusterSettings, key: K, value: unknown): void {
  out[key] = value as ClusterOptions[K];
}

function fromText(raw: string, kind: Kind, field: string): unknown {
  if (kind === 'urls') return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (kind === 'port' || kind === 'integer') {
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(field, `must be an integer, got ${JSON.stringify(raw)}`);
    return Number(raw.trim());
  }
  return raw;
}

function checked(value: unknown, kind: Kind, field: string, base: string, spec: { min?: number; max?: number }): unknown {
  switch (kind) {
    case 'name':
      if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
        throw new ConfigError(field, `must be 1 to 64 letters, digits, ".", "_" or "-"; got ${JSON.stringify(value)}`);
      }
      return value;
    case 'urls': {
      const list = typeof value === 'string' ? [value] : value;
      if (!Array.isArray(list) || list.length === 0) throw new ConfigError(field, 'must be a list of etcd URLs like ["http://127.0.0.1:2379"]');
      return list.map((u, i) => {
        const url = typeof u === 'string' ? parseUrl(u, `${field}[${i}]`) : null;
        if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
          throw new ConfigError(`${field}[${i}]`, `must be an http:// or https:// URL, got ${JSON.stringify(u)}`);
        }
        return u;
      });
    }
    case 'port':
      return integer(value, field, 0, 65_535);
    case 'integer':
      return integer(value, field, spec.min ?? 0, spec.max ?? Number.MAX_SAFE_INTEGER);
    case 'string':
      if (typeof value !== 'string' || value.length === 0) throw new ConfigError(field, `must be a non-empty string, got ${JSON.stringify(value)}`);
      return value;
    case 'path':
      if (typeof value !== 'string' || value.length === 0) throw new ConfigError(field, `must be a file path, got ${JSON.stringify(value)}`);
      return resolve(base, value);
    case 'url': {
      const url = typeof value === 'string' ? parseUrl(value, field) : null;
      if (!url || (url.protocol !== 'ws:' && url.protocol !== 'wss:') || url.port === '') {
        throw new ConfigError(field, `must be a ws:// or wss:// URL with a port, got ${JSON.stringify(value)}`);
      }
      return value;
    }
  }
}

function parseUrl(text: string, field: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new ConfigError(field, `is not a URL: ${JSON.stringify(text)}`);
  }
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ConfigError(field, `must be an integer, got ${JSON.stringify(value)}`);
  if (value < min || value > max) throw new ConfigError(field, `must be from ${min} to ${max}, got ${value}`);
  return value;
}

