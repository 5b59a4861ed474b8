/**
 * The one seam between the broker and a byte stream: TCP, TLS, WebSocket and in-page pipes all
 * present themselves like this, so the connection code never knows which it is talking to.
 */
export interface Transport {
  /** Peer address for logs and per-address limits. */
  readonly remoteAddress: string;
  /** Bytes accepted by write() but not yet handed to the operating system / peer. */
  readonly writableLength: number;
  /**
   * Writes the chunks in order as one batch. The chunks may be views of wasm memory: they must
   * not be read after `done` runs, and the caller keeps them alive until then.
   */
  write(chunks: Uint8Array[], done: () => void): void;
  /** Sends what was written, then closes. */
  end(): void;
  /** Closes at once, dropping anything unsent. */
  destroy(): void;
  /** Stops / restarts delivery of incoming data (back-pressure on a publisher). */
  pause(): void;
  resume(): void;
  /**
   * The most bytes the transport may buffer for one unit it delivers (a WebSocket frame) — small
   * until the client's CONNECT is accepted; null = the transport's own limit. Byte streams that
   * deliver chunks as they come need not implement it.
   */
  limitReceive?(maxBytes: number | null): void;
  /** Wires the transport's events to one connection; called once. */
  attach(events: TransportEvents): void;
}

/** What a transport tells the one connection attached to it (a broker Connection implements these itself). */
export interface TransportEvents {
  /**
   * Bytes arrived. The chunk is valid only during the call: a transport may read the next bytes
   * into the same memory, so whatever is kept of it must be copied.
   */
  received(chunk: Uint8Array): void;
  /** The stream is gone (peer closed, error, or our own end/destroy). Called exactly once. */
  closed(error?: Error): void;
}
