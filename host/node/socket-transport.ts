import type { Socket } from 'node:net';
import type { Transport, TransportEvents } from '../core/transport.js';

/** A TCP or TLS socket as a broker Transport. */
export class SocketTransport implements Transport {
  readonly remoteAddress: string;

  constructor(
    private readonly socket: Socket,
    /** How the connection is named in logs and found by access control (default address:port). */
    remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`,
    /** Called once when the socket has closed, whoever is attached. */
    closed?: () => void,
  ) {
    this.remoteAddress = remoteAddress;
    socket.setNoDelay(true);
    if (closed) socket.once('close', closed);
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  attach(events: TransportEvents): void {
    const socket = this.socket;
    let closed = false;
    socket.on('data', events.data);
    socket.on('drain', events.drain);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (closed) return;
      closed = true;
      events.close();
    });
  }

  write(chunks: Uint8Array[], done: () => void): void {
    const socket = this.socket;
    if (socket.destroyed) {
      done();
      return;
    }
    const last = chunks.length - 1;
    if (last === 0) {
      socket.write(chunks[0]!, () => done());
      return;
    }
    socket.cork();
    for (let i = 0; i < last; i++) socket.write(chunks[i]!);
    socket.write(chunks[last]!, () => done());
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
