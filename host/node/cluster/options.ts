/** How a node joins a cluster: the `cluster` setting (docs/CLUSTERING.md). */
export interface ClusterOptions {
  /** This node's name, unique in the cluster (letters, digits, `.`, `_`, `-`). */
  nodeId: string;
  /** etcd client URLs (`http://host:2379`); nodes naming the same etcd and cluster name form one cluster. */
  etcd: string[];
  /** The cluster's name: its keys in etcd live under `/arbormq/<name>/` (default "arbormq"). */
  name?: string;
  /** Port of the node-to-node link listener (0 = a free port; default 7883). */
  port?: number;
  /** Address the link listener binds (default 0.0.0.0). */
  host?: string;
  /** The link URL other nodes dial (`ws://10.0.0.5:7883`, or `wss://…` with TLS); default ws(s)://<host>:<port>. */
  advertise?: string;
  /** File holding the shared secret links prove with HMAC (never sent). Required unless links use mutual TLS. */
  secretFile?: string;
  /** TLS for `wss` links: this node's certificate and key, and the CA every node's certificate chains to (mutual TLS). */
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  /** Seconds of the node's etcd lease: a node unheard of this long is out, and its session keys go. */
  leaseTtlSeconds?: number;
  /** Bytes a peer link may have waiting to be sent before QoS 0 forwards to it are dropped. */
  maxLinkBufferBytes?: number;
  /** Seconds a member that left is waited for (a restart) before its routes and unconfirmed forwards go. */
  departedGraceSeconds?: number;
  /**
   * Copies of each persistent session: 1 = its owner's store only; 2 = also a buddy node's, kept in
   * step with every group commit, which takes the session over when the owner's lease expires.
   */
  replicationFactor?: number;
  /**
   * Bytes of replication frames an owner keeps for a buddy it cannot reach. Past them the buddy is
   * "behind": the frames go, its sessions are sent to it in full when its link is back.
   */
  maxReplicationBacklogBytes?: number;
}

export const CLUSTER_DEFAULTS = {
  name: 'arbormq',
  port: 7883,
  host: '0.0.0.0',
  leaseTtlSeconds: 5,
  maxLinkBufferBytes: 16 * 1024 * 1024,
  departedGraceSeconds: 30,
  replicationFactor: 1,
  maxReplicationBacklogBytes: 64 * 1024 * 1024,
} as const;

/** What a node id and a cluster name may be made of (they are parts of etcd keys and log fields). */
export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
