import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Transport, TransportEvents } from '../core/transport.js';
import { type ConnectionGate, Peer, type PeerInfo } from './connection-gate.js';
import { sharedReadBuffer } from './shared-reads.js';

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
  this[TRANSPORT].events?.received(chunk);
}

function receivedInPlace(this: OwnedSocket, nread: number, buffer: Buffer): void {
  this[TRANSPORT].events?.received(buffer.subarray(0, nread));
}

/** Where net.Socket keeps its `onread` option: the buffer and the callback. */
interface OnreadSlots {
  buffer: symbol;
  callback: symbol;
}
let onreadSlots: OnreadSlots | null | undefined;

type NodeSocket = Socket & { _handle: { useUserBuffer?(buffer: Uint8Array): void } | null } & Record<symbol, unknown>;

/**
 * Has a plain TCP socket (a listener on a host name, or a Node without the handle bindings) read into
 * the shared buffer (shared-reads.ts) through net.Socket's `onread`, instead of into a fresh 64 KiB
 * buffer per read: no allocation per read, and no page faults refilling heap that glibc gave back
 * (bench/RESULTS.md, "Payload sweep"). net.Server does not pass `onread` to the sockets it accepts,
 * so it is set where net.Socket's constructor would have put it (found once, by symbol name) and
 * handed to the handle as that constructor does; false, and Node's own reads, when the handle has no
 * such slots (a TLS socket: its handle decrypts into buffers of its own).
 */
function readInPlace(socket: NodeSocket): boolean {
  const handle = socket._handle;
  if (socket instanceof TLSSocket || typeof handle?.useUserBuffer !== 'function') return false;
  onreadSlots ??= findOnreadSlots(socket);
  if (onreadSlots === null) return false;
  const buffer = sharedReadBuffer();
  socket[onreadSlots.buffer] = buffer;
  socket[onreadSlots.callback] = receivedInPlace;
  handle.useUserBuffer(buffer);
  return true;
}

function findOnreadSlots(socket: Socket): OnreadSlots | null {
  const symbols = Object.getOwnPropertySymbols(socket);
  const buffer = symbols.find((s) => s.description === 'kBuffer');
  const callback = symbols.find((s) => s.description === 'kBufferCb');
  return buffer && callback ? { buffer, callback } : null;
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
    if (!readInPlace(this.socket as NodeSocket)) this.socket.on('data', received);
  }

  /** The socket closed (its one 'close' listener calls this): the attached connection hears it once, then the gate. */
  socketClosed(): void {
    const events = this.events;
    this.events = null;
    events?.closed();
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
