import { ARENA_TIERS, type BrokerStats } from '../core/sys.js';
import type { BridgeReport } from './bridges.js';

/** Counters the Node server keeps beside the broker's. */
export interface ServerCounters {
  version: string;
  refusedOverLimit: number;
  authFailures: number;
  authRateLimited: number;
  subscriptionsDenied: number;
  bridges: BridgeReport[];
}

type Kind = 'counter' | 'gauge';
export type Sample = [labels: Record<string, string> | null, value: number];
/** Writes one metric: `# HELP`, `# TYPE` and its samples. */
export type MetricWriter = (name: string, kind: Kind, help: string, samples: Sample[] | number) => void;

/** A MetricWriter appending to `out`, names prefixed `arbormq_`. */
export function metricWriter(out: string[]): MetricWriter {
  return (name, kind, help, samples) => {
    const full = `arbormq_${name}`;
    out.push(`# HELP ${full} ${help}`, `# TYPE ${full} ${kind}`);
    for (const [labels, value] of typeof samples === 'number' ? [[null, samples] as Sample] : samples) {
      out.push(`${full}${labels ? `{${Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : ''} ${value}`);
    }
  };
}

/**
 * The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` for every metric,
 * names prefixed `arbormq_`, counters ending in `_total`. `more` adds metrics of other parts (the cluster).
 */
export function renderMetrics(s: BrokerStats, c: ServerCounters, more?: (metric: MetricWriter) => void): string {
  const out: string[] = [];
  const metric = metricWriter(out);
  metric('info', 'gauge', 'Broker version (always 1).', [[{ version: c.version }, 1]]);
  metric('uptime_seconds', 'gauge', 'Seconds since the broker started.', s.uptimeSeconds);
  metric('clients_connected', 'gauge', 'Clients connected (CONNECT accepted).', s.clientsConnected);
  metric('clients_disconnected', 'gauge', 'Persistent sessions whose client is not connected.', s.clientsDisconnected);
  metric('sessions', 'gauge', 'Sessions, connected or not.', s.sessions);
  metric('connections', 'gauge', 'Open network connections, including those still before CONNECT.', s.connections);
  metric('connections_accepted_total', 'counter', 'Network connections handed to the broker.', s.connectionsAccepted);
  metric('connections_refused_total', 'counter', 'Network connections refused: maxConnections were open, or CONNACK refused the CONNECT.', [
    [{ reason: 'max_connections' }, c.refusedOverLimit],
    [{ reason: 'connack' }, s.connectsRefused],
  ]);
  metric('connections_closed_total', 'counter', 'Connections the broker closed, by reason.', [
    [{ reason: 'protocol_error' }, s.closed.protocolError],
    [{ reason: 'connect_timeout' }, s.closed.connectTimeout],
    [{ reason: 'keep_alive' }, s.closed.keepAlive],
    [{ reason: 'taken_over' }, s.closed.takenOver],
    [{ reason: 'unauthenticated_overflow' }, s.closed.unauthenticatedOverflow],
  ]);
  metric('unauthenticated_bytes', 'gauge', 'Bytes held by connections whose CONNECT is not accepted yet.', s.unauthenticatedBytes);
  metric('auth_failures_total', 'counter', 'Failed authentications.', c.authFailures);
  metric('auth_rate_limited_total', 'counter', 'CONNECTs refused because their address failed authentication too often.', c.authRateLimited);
  metric('subscriptions_denied_total', 'counter', 'Subscriptions the ACL refused.', c.subscriptionsDenied);
  metric('bytes_received_total', 'counter', 'Bytes received from clients.', s.bytesReceived);
  metric('bytes_sent_total', 'counter', 'Bytes sent to clients.', s.bytesSent);
  metric('packets_received_total', 'counter', 'MQTT control packets received.', s.packetsReceived);
  metric('packets_sent_total', 'counter', 'MQTT control packets sent.', s.packetsSent);
  metric('messages_received_total', 'counter', 'PUBLISH packets received from clients.', s.publishReceived);
  metric('messages_sent_total', 'counter', 'PUBLISH packets sent to clients.', s.publishSent);
  const d = s.dropped;
  metric('messages_dropped_total', 'counter', 'Messages not delivered, by reason.', [
    [{ reason: 'qos0_backlog' }, d.qos0Backlog],
    [{ reason: 'queue_full' }, d.queueFull],
    [{ reason: 'expired' }, d.expired],
    [{ reason: 'oversize' }, d.oversize],
    [{ reason: 'arena_full' }, d.arenaFull],
  ]);
  metric('publishes_refused_total', 'counter', 'PUBLISHes turned away, by reason.', [
    [{ reason: 'not_authorized' }, s.publishRefused.notAuthorized],
    [{ reason: 'error' }, s.publishRefused.error],
  ]);
  metric('packets_dropped_total', 'counter', "Control packets not sent because they exceed the client's Maximum Packet Size.", s.packetsDropped);
  metric('log_lines_suppressed_total', 'counter', 'Log lines folded into a repeat count instead of written one by one.', s.logLinesSuppressed);
  metric('messages_inflight', 'gauge', 'Outgoing QoS 1/2 messages awaiting acknowledgement.', s.inflight);
  metric('messages_queued', 'gauge', 'Messages waiting in session queues.', s.queued);
  metric('messages_queued_bytes', 'gauge', 'Bytes of the messages waiting in session queues.', s.queuedBytes);
  metric('subscriptions', 'gauge', 'Subscriptions in the topic trie.', s.subscriptions);
  metric('retained_messages', 'gauge', 'Retained messages.', s.retained);
  const a = s.arena;
  metric('arena_bytes_in_use', 'gauge', 'Bytes of wasm arena blocks in use.', a.bytesInUse);
  metric('arena_bytes_reserved', 'gauge', 'Bytes of wasm memory the arena has reserved.', a.bytesReserved);
  metric('arena_cap_bytes', 'gauge', 'Most bytes the arena may reserve (arenaCapBytes).', a.cap);
  metric('arena_live_handles', 'gauge', 'Arena blocks in use.', a.liveHandles);
  metric('arena_errors_total', 'counter', 'Invalid arena handle uses detected (should stay 0).', a.errors);
  metric('arena_tier_bytes_in_use', 'gauge', 'Bytes in use per arena size tier.', a.tiers.map((t, i): Sample => [{ tier: ARENA_TIERS[i]! }, t.bytesInUse]));
  metric('arena_tier_hits_total', 'counter', 'Allocations served from a tier free list.', a.tiers.map((t, i): Sample => [{ tier: ARENA_TIERS[i]! }, t.hits]));
  metric('arena_tier_misses_total', 'counter', 'Allocations that needed fresh arena memory.', a.tiers.map((t, i): Sample => [{ tier: ARENA_TIERS[i]! }, t.misses]));
  if (c.bridges.length > 0) {
    const each = (value: (b: BridgeReport) => number): Sample[] => c.bridges.map((b) => [{ bridge: b.name }, value(b)]);
    metric('bridge_up', 'gauge', 'Whether the bridge is connected to its remote broker (1) or not (0).', each((b) => (b.state === 'online' ? 1 : 0)));
    metric('bridge_queued_messages', 'gauge', "Messages waiting in the bridge's local session for the remote broker.", each((b) => b.queued));
    metric('bridge_failed_attempts', 'gauge', 'Failed connection attempts since the bridge was last connected.', each((b) => b.attempts));
    metric('bridge_messages_total', 'counter', 'Messages the bridge carried, by direction (out: to the remote broker).', [
      ...c.bridges.map((b): Sample => [{ bridge: b.name, direction: 'out' }, b.sent]),
      ...c.bridges.map((b): Sample => [{ bridge: b.name, direction: 'in' }, b.received]),
    ]);
  }
  const memory = process.memoryUsage();
  metric('process_resident_memory_bytes', 'gauge', 'Resident set size of the process.', memory.rss);
  metric('process_heap_used_bytes', 'gauge', 'JavaScript heap in use.', memory.heapUsed);
  more?.(metric);
  return `${out.join('\n')}\n`;
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
