/**
 * The byte stream under a client: a WebSocket, an in-page pipe to a broker in the same tab, or a
 * MessagePort to a broker in a SharedWorker. The client never knows which.
 */
export interface ClientLink {
  /** Sends bytes in order; the link takes ownership of the array. */
  send(bytes: Uint8Array): void;
  /** Sends what was queued, then closes. */
  close(): void;
  /** Bytes accepted but not yet handed on (for back-pressure). */
  readonly bufferedAmount: number;
  /** Wires the link's events to one client; called once. */
  attach(events: ClientLinkEvents): void;
}

export interface ClientLinkEvents {
  data(chunk: Uint8Array): void;
  /** The stream is gone (peer closed, error, or our own close). Called exactly once. */
  close(error?: Error): void;
}
