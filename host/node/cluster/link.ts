import type WebSocket from 'ws';
import { FrameReader, LinkProtocolError } from './frame.js';
import type { PeerHello } from './handshake.js';

/** How often a link is pinged, and how long without any sign of life before it is declared dead. */
export interface LinkTiming {
  pingIntervalMs: number;
  deadAfterMs: number;
}

export const LINK_TIMING: LinkTiming = { pingIntervalMs: 1000, deadAfterMs: 3000 };

/** What a link reports to its owner. */
export interface LinkHandler {
  frame(reader: FrameReader, link: Link): void;
  /** The link is gone (closed by either side, or declared dead); `reason` is for the log. */
  closed(link: Link, reason: string): void;
}

/**
 * One authenticated WebSocket to a peer node. Liveness is WebSocket ping/pong: a link that shows no
 * sign of life (a pong or any frame) for `deadAfterMs` is terminated, so a silent peer — a
 * partition, a frozen process — is noticed within seconds even when TCP would wait for minutes.
 */
export class Link {
  framesSent = 0;
  bytesSent = 0;
  framesReceived = 0;
  bytesReceived = 0;
  private lastHeard = performance.now();
  private readonly pinger: ReturnType<typeof setInterval>;
  private handler: LinkHandler | null = null;
  private ended = false;

  constructor(
    readonly socket: WebSocket,
    readonly peer: PeerHello,
    /** Who dialed: this node (true) or the peer. */
    readonly dialed: boolean,
    timing: LinkTiming = LINK_TIMING,
  ) {
    this.pinger = setInterval(() => {
      if (performance.now() - this.lastHeard > timing.deadAfterMs) this.end(`no answer for ${timing.deadAfterMs} ms`, true);
      else if (socket.readyState === socket.OPEN) socket.ping();
    }, timing.pingIntervalMs);
    this.pinger.unref();
    socket.on('pong', () => (this.lastHeard = performance.now()));
    socket.on('message', (data: Buffer) => this.receive(data));
    socket.on('close', (code: number, reason: Buffer) => this.end(`closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`, false));
    socket.on('error', (error: Error) => this.end(error.message, true));
  }

  /** Starts delivering frames, those that came with the handshake first. */
  start(handler: LinkHandler): void {
    this.handler = handler;
    for (const frame of this.peer.early.splice(0)) this.receive(frame);
  }

  get open(): boolean {
    return !this.ended;
  }

  /** Bytes handed to the socket and not yet written to the network. */
  get buffered(): number {
    return this.socket.bufferedAmount;
  }

  send(frame: Buffer): void {
    if (this.ended) return;
    this.framesSent++;
    this.bytesSent += frame.length;
    this.socket.send(frame);
  }

  /** Closes the link (the peer sees a normal close); `reason` is logged by the owner. */
  close(reason: string): void {
    if (this.ended) return;
    this.socket.close(1000, reason.slice(0, 120));
    this.end(reason, false);
    // A peer that does not answer the close is not waited for.
    setTimeout(() => this.socket.terminate(), 1000).unref();
  }

  private receive(data: Buffer): void {
    if (this.ended) return;
    this.lastHeard = performance.now();
    this.framesReceived++;
    this.bytesReceived += data.length;
    if (!this.handler) {
      this.peer.early.push(data);
      return;
    }
    try {
      this.handler.frame(new FrameReader(data), this);
    } catch (error) {
      const reason = error instanceof LinkProtocolError ? `protocol error: ${error.message}` : `internal error: ${(error as Error).stack ?? error}`;
      this.close(reason);
    }
  }

  private end(reason: string, terminate: boolean): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.pinger);
    if (terminate) this.socket.terminate();
    this.handler?.closed(this, reason);
  }
}
