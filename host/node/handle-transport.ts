import type { Transport, TransportEvents } from '../core/transport.js';
import { type ConnectionGate, Peer } from './connection-gate.js';
import { sharedReadBuffer } from './shared-reads.js';
import { type HandleServer, NODELAY_INHERITED, type ShutdownRequest, type TcpHandle, type TcpHandles, type WriteRequest } from './tcp-handles.js';

const OWNER = Symbol('arbormq.transport');
type OwnedHandle = TcpHandle & { [OWNER]: HandleTransport };

// Shared by every handle and request (`this` is the handle or the request): no closures per connection or write.
function readCallback(this: OwnedHandle): void {
  this[OWNER].read();
}

function shutdownCompleted(this: ShutdownRequest, status: number): void {
  if (status < 0) (this.handle as OwnedHandle)[OWNER].destroy();
}

/** A closing handle's read callback (the binding takes functions only). */
function ignoreRead(): void {}

function writeCompleted(this: WriteRequest): void {
  const done = this.done!;
  this.done = null;
  this.chunks = null;
  done();
}

/** A write the kernel took at once completes on the next tick, as a net.Socket's does: never inside write(). */
function completeLater(req: WriteRequest): void {
  writeCompleted.call(req);
}

/** A peer that stops reading after we end must not keep the handle (and its arena references) forever. */
const END_GRACE_MS = 5000;

/**
 * A plain TCP connection on its libuv handle (tcp-handles.ts) as a broker Transport and the gate's
 * Peer: reads into the shared buffer, writes the connection's chunks with one writev, and closes once.
 */
export class HandleTransport extends Peer implements Transport {
  /** The attached connection's; null before attach and after close. */
  events: TransportEvents | null = null;
  private closed = false;
  /** Attached: the connection wants what arrives, unless paused. */
  private reading = false;
  private paused = false;
  /** libuv is reading the handle. */
  private active = false;
  private ending = false;

  constructor(
    private readonly handle: TcpHandle,
    private readonly tcp: TcpHandles,
    private readonly server: HandleServer,
    gate: ConnectionGate,
    listener: string,
  ) {
    const peer: { address?: string; port?: number } = {};
    handle.getpeername(peer);
    super(gate, { address: peer.address, port: peer.port, listener });
    if (!NODELAY_INHERITED) handle.setNoDelay(true);
    (handle as OwnedHandle)[OWNER] = this;
    (handle as OwnedHandle).onread = readCallback as (this: TcpHandle) => void;
  }

  get writableLength(): number {
    return this.closed ? 0 : this.handle.writeQueueSize;
  }

  attach(events: TransportEvents): void {
    this.events = events;
    this.handle.useUserBuffer(sharedReadBuffer());
    this.reading = true;
    if (!this.paused) this.startReading();
  }

  /** The handle's read callback: bytes in the shared buffer, or the end of the stream. */
  read(): void {
    const n = this.tcp.lastRead();
    if (n > 0) this.events?.received(sharedReadBuffer().subarray(0, n));
    // The peer ended the stream (UV_EOF) or it broke (ECONNRESET…): MQTT has no half-open connections.
    else if (n < 0) this.destroy();
  }

  write(chunks: Uint8Array[], done: () => void): void {
    if (this.closed) {
      done();
      return;
    }
    const req = this.tcp.writeRequest();
    req.handle = this.handle;
    req.oncomplete = writeCompleted;
    req.done = done;
    req.chunks = chunks;
    const error = chunks.length === 1 ? this.handle.writeBuffer(req, chunks[0]!) : this.handle.writev(req, chunks, true);
    if (error !== 0) {
      req.done = null;
      req.chunks = null;
      process.nextTick(done);
      this.destroy();
    } else if (!this.tcp.lastWriteAsync()) {
      process.nextTick(completeLater, req);
    }
  }

  /** Sends what was written and a FIN; the handle closes when the peer ends its side too (or at the grace's end). */
  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    const req = this.tcp.shutdownRequest();
    req.handle = this.handle;
    req.oncomplete = shutdownCompleted;
    if (this.handle.shutdown(req) !== 0) {
      this.destroy();
      return;
    }
    // The peer's FIN arrives as a read (UV_EOF): read even if the connection had paused.
    this.paused = false;
    this.reading = true;
    this.startReading();
    setTimeout(() => this.destroy(), END_GRACE_MS).unref();
  }

  /** Closes the handle once: pending writes complete (cancelled) first, then the connection and the gate hear it. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.onread = ignoreRead;
    this.handle.close(() => {
      const events = this.events;
      this.events = null;
      events?.closed();
      this.left();
      this.server.connectionClosed();
    });
  }

  pause(): void {
    this.paused = true;
    if (!this.active || this.closed) return;
    this.active = false;
    this.handle.readStop();
  }

  resume(): void {
    this.paused = false;
    if (this.reading) this.startReading();
  }

  private startReading(): void {
    if (this.active || this.closed) return;
    this.active = true;
    if (this.handle.readStart() !== 0) this.destroy();
  }
}
