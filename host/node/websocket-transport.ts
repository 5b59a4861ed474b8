import type { WebSocket } from 'ws';
import type { Transport, TransportEvents } from '../core/transport.js';
import { type ConnectionGate, Peer, type PeerInfo } from './connection-gate.js';

/** Close code for a text frame: MQTT is carried in binary frames only [MQTT-6.0.0-1]. */
const UNSUPPORTED_DATA = 1003;
/** How long end() waits for the peer's closing handshake before dropping the connection. */
const CLOSE_TIMEOUT_MS = 5000;

/**
 * A WebSocket carrying MQTT (§6): binary frames, a frame may hold any number of packets or part
 * of one (the connection's framer reassembles), and each batch the broker writes goes out as one
 * frame. Serves `ws` and `wss` alike.
 */
export class WebSocketTransport extends Peer implements Transport {
  /** The frame size limit the listener gave `ws` (see limitReceive). */
  private listenerLimit: number | undefined;

  constructor(
    private readonly ws: WebSocket,
    gate: ConnectionGate,
    info: PeerInfo,
  ) {
    super(gate, info);
    ws.once('close', () => this.left());
  }

  get writableLength(): number {
    return this.ws.bufferedAmount;
  }

  attach(events: TransportEvents): void {
    const ws = this.ws;
    let closed = false;
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        ws.close(UNSUPPORTED_DATA, 'MQTT needs binary frames');
        return;
      }
      // binaryType is "nodebuffer": a frame (fragments joined) arrives as one Buffer.
      events.received(data as Buffer);
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      if (closed) return;
      closed = true;
      events.closed();
    });
  }

  write(chunks: Uint8Array[], done: () => void): void {
    const ws = this.ws;
    if (ws.readyState !== ws.OPEN) {
      done();
      return;
    }
    // One frame per batch. The chunks may be views of wasm memory that must not outlive done(),
    // so the frame is a copy (which ws then sends without copying again).
    let frame: Buffer;
    if (chunks.length === 1) {
      frame = Buffer.from(chunks[0]!);
    } else {
      let length = 0;
      for (const c of chunks) length += c.length;
      frame = Buffer.allocUnsafe(length);
      let at = 0;
      for (const c of chunks) {
        frame.set(c, at);
        at += c.length;
      }
    }
    done();
    ws.send(frame, { binary: true });
  }

  end(): void {
    const ws = this.ws;
    if (ws.readyState === ws.CLOSED) return;
    ws.close(1000);
    setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS).unref();
  }

  destroy(): void {
    this.ws.terminate();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /**
   * `ws` buffers a whole frame before delivering it, up to its maxPayload, which it checks against
   * each frame's declared length. ws has no public way to change that per connection, so the limit
   * is set on its frame parser; null restores the listener's own.
   */
  limitReceive(maxBytes: number | null): void {
    const receiver = (this.ws as unknown as { _receiver: { _maxPayload: number } })._receiver;
    this.listenerLimit ??= receiver._maxPayload;
    receiver._maxPayload = maxBytes ?? this.listenerLimit;
  }
}
