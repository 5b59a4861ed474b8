/** Counters since start; exposed as $SYS topics and Prometheus metrics by the hosts. */
export class Metrics {
  bytesReceived = 0;
  bytesSent = 0;
  packetsReceived = 0;
  packetsSent = 0;
  /** Application messages received from clients (PUBLISH) and sent to clients. */
  messagesReceived = 0;
  messagesSent = 0;
  /** QoS 0 messages not sent to a subscriber whose write buffer was over its limit. */
  qos0Dropped = 0;
  /** Messages not queued because a session queue was full. */
  queueDropped = 0;
  /** Messages dropped because their Message Expiry Interval passed before delivery. */
  expiredDropped = 0;
  /** Messages not sent because they exceed the client's Maximum Packet Size. */
  oversizeDropped = 0;
  /** PUBLISHes refused or dropped because the arena was full. */
  arenaFullDropped = 0;
  /** CONNECTs and PUBLISHes refused because the process was over its memory limit (Broker.overloaded). */
  memoryRefused = 0;
  /** PUBLISHes refused because the client may not publish to the topic (the ACL, or a `$` topic). */
  publishDenied = 0;
  /** PUBLISHes refused for any other reason (answered with an error reason code, or the connection closed). */
  publishRefused = 0;
  /** Control packets not sent because they exceed the client's Maximum Packet Size. */
  packetsDropped = 0;
  connectionsAccepted = 0;
  /** CONNECTs answered with a refusal (any reason). */
  connectsRefused = 0;
  /** Connections closed by the broker for a protocol error, a missing CONNECT, an expired keep alive. */
  protocolErrors = 0;
  connectTimeouts = 0;
  keepAliveTimeouts = 0;
  /** Connections closed because a new one took over their session. */
  sessionTakeovers = 0;
  /** Connections closed because unauthenticated connections together held maxUnauthenticatedTotalBytes. */
  unauthenticatedOverflows = 0;
  /** A gauge: bytes held now by connections whose CONNECT is not accepted yet. */
  unauthenticatedBytes = 0;
  /** Connections closed because handling their input threw something other than a ProtocolError: a defect (should stay 0). */
  internalErrors = 0;
  readonly startedAt = Date.now();
}
