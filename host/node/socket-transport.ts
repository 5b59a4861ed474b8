import type { Socket } from 'node:net';
import type { Transport, TransportEvents } from '../core/transport.js';
import { type ConnectionGate, Peer, type PeerInfo } from './connection-gate.js';

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

/** A TCP or TLS socket of one of the server's listeners as a broker Transport (and the gate's Peer). */
export class SocketTransport extends Peer implements Transport {
  /** The attached connection's; null before attach and after close. */
  events: TransportEvents | null = null;

  constructor(
    private readonly socket: Socket,
    gate: ConnectionGate,
    info: PeerInfo,
  ) {
    super(gate, info);
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

  /** The socket closed (its one 'close' listener calls this): the attached connection hears it once, then the gate. */
  socketClosed(): void {
    const events = this.events;
    this.events = null;
    events?.close();
    this.left();
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
