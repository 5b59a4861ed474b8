import type { ClientLink, ClientLinkEvents } from '../client/link.js';
import type { Transport, TransportEvents } from '../core/transport.js';

/**
 * A broker Transport and a client's ClientLink joined back to back inside one JavaScript realm: the
 * in-process equivalent of a socket — a bridge's link to its own broker (browser or Node), and the
 * browser's in-page clients. Bytes cross on a microtask, never inside the caller's stack, so
 * broker and client code never re-enter each other; everything written in one tick crosses as one
 * chunk, as a socket would coalesce it.
 */
export function inProcessPipe(remoteAddress = 'in-process'): { transport: Transport; link: ClientLink } {
  const pipe = new Pipe(remoteAddress);
  return { transport: pipe.brokerEnd, link: pipe.clientEnd };
}

/** Bytes waiting to cross in one direction. */
class Lane {
  chunks: Uint8Array[] = [];
  bytes = 0;

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** Everything queued, as one chunk. */
  take(): Uint8Array {
    const chunks = this.chunks;
    const out = chunks.length === 1 ? chunks[0]! : concat(chunks, this.bytes);
    this.chunks = [];
    this.bytes = 0;
    return out;
  }

  clear(): void {
    this.chunks = [];
    this.bytes = 0;
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

class Pipe {
  readonly toBroker = new Lane();
  readonly toClient = new Lane();
  brokerEvents: TransportEvents | null = null;
  clientEvents: ClientLinkEvents | null = null;
  /** The broker paused reading (back-pressure on a publisher). */
  paused = false;
  /** A side asked to close: what it queued still crosses, then both sides hear `close`. */
  closing = false;
  closed = false;
  private scheduled = false;
  readonly brokerEnd: Transport;
  readonly clientEnd: ClientLink;

  constructor(remoteAddress: string) {
    this.brokerEnd = new BrokerEnd(this, remoteAddress);
    this.clientEnd = new ClientEnd(this);
  }

  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(this.pump);
  }

  private readonly pump = (): void => {
    this.scheduled = false;
    if (this.closed) return;
    if (this.toClient.bytes > 0 && this.clientEvents) this.clientEvents.data(this.toClient.take());
    if (this.toBroker.bytes > 0 && this.brokerEvents && !this.paused && !this.closed) this.brokerEvents.received(this.toBroker.take());
    if (this.closing && !this.closed && this.toClient.bytes === 0 && this.toBroker.bytes === 0) this.finish();
  };

  /** Closes both ends now, dropping whatever has not crossed yet. */
  finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.toBroker.clear();
    this.toClient.clear();
    const broker = this.brokerEvents;
    const client = this.clientEvents;
    this.brokerEvents = null;
    this.clientEvents = null;
    broker?.closed();
    client?.close();
  }

  /** Closes on a later microtask (close events never run inside the caller's stack). */
  finishSoon(): void {
    this.closing = true;
    this.toBroker.clear();
    this.toClient.clear();
    this.schedule();
  }
}

class BrokerEnd implements Transport {
  constructor(
    private readonly pipe: Pipe,
    readonly remoteAddress: string,
  ) {}

  get writableLength(): number {
    return this.pipe.toClient.bytes;
  }

  attach(events: TransportEvents): void {
    this.pipe.brokerEvents = events;
    if (this.pipe.toBroker.bytes > 0 || this.pipe.closing) this.pipe.schedule();
  }

  write(chunks: Uint8Array[], done: () => void): void {
    const pipe = this.pipe;
    if (pipe.closed || pipe.closing) {
      done();
      return;
    }
    // The chunks may be views of wasm memory, valid only until done(): the client gets a copy.
    let length = 0;
    for (const c of chunks) length += c.length;
    pipe.toClient.push(chunks.length === 1 ? chunks[0]!.slice() : concat(chunks, length));
    done();
    pipe.schedule();
  }

  end(): void {
    // The broker reads nothing more; what it wrote still reaches the client (a DISCONNECT, say).
    this.pipe.toBroker.clear();
    this.pipe.closing = true;
    this.pipe.schedule();
  }

  destroy(): void {
    this.pipe.finishSoon();
  }

  pause(): void {
    this.pipe.paused = true;
  }

  resume(): void {
    this.pipe.paused = false;
    this.pipe.schedule();
  }
}

class ClientEnd implements ClientLink {
  constructor(private readonly pipe: Pipe) {}

  get bufferedAmount(): number {
    return this.pipe.toBroker.bytes;
  }

  attach(events: ClientLinkEvents): void {
    this.pipe.clientEvents = events;
    if (this.pipe.toClient.bytes > 0 || this.pipe.closing) this.pipe.schedule();
  }

  send(bytes: Uint8Array): void {
    const pipe = this.pipe;
    if (pipe.closed || pipe.closing) return;
    pipe.toBroker.push(bytes);
    pipe.schedule();
  }

  close(): void {
    const pipe = this.pipe;
    if (pipe.closed) return;
    // The client is going: what the broker still had for it is of no use, what it sent (a DISCONNECT,
    // say) still reaches the broker — after a pause, once the broker reads again.
    pipe.toClient.clear();
    pipe.closing = true;
    pipe.schedule();
  }
}
