import type { Socket } from 'node:net';
import type { Transport, TransportEvents } from '../core/transport.js';

/** Told once when a transport's socket has closed, whoever is attached (the connection gate's Peer). */
export interface TransportOwner {
  transportClosed(): void;
}

const TRANSPORT = Symbol('arbormq.transport');
type OwnedSocket = Socket & { [TRANSPORT]: SocketTransport };

// Shared by every socket (`this` is the socket): a connection carries no listener closures of its own.
function destroyOnError(this: Socket): void {
  this.destroy();
}

function closed(this: OwnedSocket): void {
  this[TRANSPORT].socketClosed();
}

function received(this: OwnedSocket, chunk: Buffer): void {
  this[TRANSPORT].events?.data(chunk);
}

function drained(this: OwnedSocket): void {
  this[TRANSPORT].events?.drain();
}

/** A TCP or TLS socket as a broker Transport. */
export class SocketTransport implements Transport {
  readonly remoteAddress: string;
  /** The attached connection's; null before attach and after close. */
  events: TransportEvents | null = null;

  constructor(
    private readonly socket: Socket,
    /** How the connection is named in logs and found by access control (default address:port). */
    remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`,
    private readonly owner: TransportOwner | null = null,
  ) {
    this.remoteAddress = remoteAddress;
    socket.setNoDelay(true);
    (socket as OwnedSocket)[TRANSPORT] = this;
    socket.on('error', destroyOnError);
    socket.on('close', closed);
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  attach(events: TransportEvents): void {
    this.events = events;
    this.socket.on('data', received);
    this.socket.on('drain', drained);
  }

  /** The socket closed (its one 'close' listener calls this): the attached connection hears it once, then the owner. */
  socketClosed(): void {
    const events = this.events;
    this.events = null;
    events?.close();
    this.owner?.transportClosed();
  }

  write(chunks: Uint8Array[], done: () => void): void {
    const socket = this.socket;
    if (socket.destroyed) {
      done();
      return;
    }
    const last = chunks.length - 1;
    if (last === 0) {
      socket.write(chunks[0]!, done);
      return;
    }
    socket.cork();
    for (let i = 0; i < last; i++) socket.write(chunks[i]!);
    socket.write(chunks[last]!, done);
    socket.uncork();
  }

  end(): void {
    const socket = this.socket;
    socket.end();
    // A peer that stops reading must not keep the socket (and its arena references) forever.
    setTimeout(() => socket.destroy(), 5000).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }
}
