// What the broker's operations come to, as const enums every layer above the codec shares. A leaf:
// it imports nothing, so any file may use these without depending on the code that produces them.

/** What routing a message achieved, for the publisher's acknowledgement. */
export const enum PublishOutcome {
  NoSubscribers,
  Delivered,
  /** At least one subscriber's queue was full (5.0 publishers hear 0x97 Quota exceeded). */
  QuotaExceeded,
}

/** What became of a message handed to a session. */
export const enum Handoff {
  Sent,
  Queued,
  /** Not delivered by policy: QoS 0 to an offline or far-behind client. */
  Dropped,
  /** Dropped because the session queue is full (the publisher may be told 0x97 Quota exceeded). */
  QueueFull,
}

/** Why a connection ended, which decides whether its will is published (§3.1.2.5). */
export const enum CloseKind {
  /** DISCONNECT 0x00 received: the will is discarded [MQTT-3.14.4-3]. */
  Graceful,
  /** Anything else: network loss, keep alive, protocol error, takeover, DISCONNECT 0x04. */
  Abnormal,
}
