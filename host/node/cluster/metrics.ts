import type { MetricWriter, Sample } from '../prometheus.js';
import type { ClusterStatus } from './cluster.js';

/** The cluster's metrics on `/metrics`: the node's lease and etcd round trip, and each peer link's traffic. */
export function clusterMetrics(status: ClusterStatus, metric: MetricWriter): void {
  metric('cluster_lease', 'gauge', 'The node holds its etcd lease (1) or is fenced (0).', status.lease ? 1 : 0);
  metric('cluster_lease_losses_total', 'counter', 'etcd leases this node lost.', status.leaseLosses);
  metric('cluster_etcd_rtt_seconds', 'gauge', 'Round trip of the last etcd lease keepalive.', status.etcdRttMs / 1000);
  metric('cluster_routes', 'gauge', 'Distinct filters this node announces to its peers.', status.routes);
  metric('cluster_owned_sessions', 'gauge', 'Persistent sessions this node owns in etcd.', status.ownedSessions);
  metric('cluster_takeovers_total', 'counter', 'Sessions taken over from other nodes.', status.takeovers);
  metric('cluster_qos2_repeats_skipped_total', 'counter', 'QoS 2 messages sent again after their publisher\'s node was lost, skipped here because this node had delivered them.', status.qos2RepeatsSkipped);
  const r = status.replication;
  metric('cluster_replication_factor', 'gauge', 'Copies kept of each persistent session this node owns.', r.factor);
  metric('cluster_replicated_sessions', 'gauge', 'Persistent sessions this node owns that have a buddy.', r.replicatedSessions);
  metric('cluster_replica_sessions', 'gauge', 'Sessions of other nodes this node keeps as their buddy.', r.replicaSessions);
  metric('cluster_replication_unacknowledged', 'gauge', 'Replication frames sent to buddies and not yet durable there.', r.unacknowledged);
  metric('cluster_replication_unacknowledged_bytes', 'gauge', 'Bytes of those frames (kept for a buddy out of reach up to maxReplicationBacklogBytes).', r.unacknowledgedBytes);
  metric('cluster_replication_buddies_behind', 'gauge', 'Buddies out of reach past the backlog bound: their sessions go to them in full when their link is back.', r.buddiesBehind);
  metric('cluster_failovers_total', 'counter', 'Sessions this node took over from a replica after their owner was lost.', r.failovers);
  metric('cluster_fenced', 'gauge', 'The node cannot prove it holds its lease: its persistent sessions are closed and not acknowledged.', r.fenced ? 1 : 0);
  const per = (value: (p: ClusterStatus['peers'][number]) => number): Sample[] => status.peers.map((p) => [{ peer: p.node }, value(p)]);
  metric('cluster_peer_up', 'gauge', 'The link to the peer is up.', per((p) => (p.up ? 1 : 0)));
  metric('cluster_peer_remote_filters', 'gauge', 'Filters the peer announced (its routes in this node\'s trie).', per((p) => p.routes));
  metric('cluster_forwarded_messages_total', 'counter', 'Messages forwarded over the link, by direction.', [
    ...status.peers.map((p): Sample => [{ peer: p.node, direction: 'out' }, p.messagesOut]),
    ...status.peers.map((p): Sample => [{ peer: p.node, direction: 'in' }, p.messagesIn]),
  ]);
  metric('cluster_forwarded_bytes_total', 'counter', 'Bytes of forward frames over the link, by direction.', [
    ...status.peers.map((p): Sample => [{ peer: p.node, direction: 'out' }, p.bytesOut]),
    ...status.peers.map((p): Sample => [{ peer: p.node, direction: 'in' }, p.bytesIn]),
  ]);
  metric('cluster_peer_buffered_bytes', 'gauge', 'Bytes waiting to be sent to the peer.', per((p) => p.buffered));
  metric('cluster_peer_unconfirmed', 'gauge', 'Forwards the peer has not confirmed durable yet.', per((p) => p.unconfirmed));
  metric('cluster_forwards_dropped_total', 'counter', 'QoS 0 forwards dropped because the link was down or congested.', per((p) => p.dropped));
}

/** The same under `$SYS/broker/cluster/…`, for MQTT clients. */
export function clusterSysValues(status: ClusterStatus): [string, string | number][] {
  const out: [string, string | number][] = [
    ['cluster/node', status.node],
    ['cluster/lease', status.lease ? 1 : 0],
    ['cluster/lease/losses', status.leaseLosses],
    ['cluster/etcd/rtt_ms', status.etcdRttMs],
    ['cluster/routes', status.routes],
    ['cluster/takeovers', status.takeovers],
    ['cluster/qos2/repeats_skipped', status.qos2RepeatsSkipped],
    ['cluster/replication/factor', status.replication.factor],
    ['cluster/replication/sessions', status.replication.replicatedSessions],
    ['cluster/replication/replicas', status.replication.replicaSessions],
    ['cluster/replication/unacknowledged', status.replication.unacknowledged],
    ['cluster/replication/behind', status.replication.buddiesBehind],
    ['cluster/replication/failovers', status.replication.failovers],
    ['cluster/fenced', status.replication.fenced ? 1 : 0],
  ];
  for (const p of status.peers) {
    const at = `cluster/peers/${p.node}`;
    out.push(
      [`${at}/up`, p.up ? 1 : 0],
      [`${at}/remote_filters`, p.routes],
      [`${at}/messages/out`, p.messagesOut],
      [`${at}/messages/in`, p.messagesIn],
      [`${at}/bytes/out`, p.bytesOut],
      [`${at}/bytes/in`, p.bytesIn],
      [`${at}/buffered`, p.buffered],
      [`${at}/dropped`, p.dropped],
    );
  }
  return out;
}
