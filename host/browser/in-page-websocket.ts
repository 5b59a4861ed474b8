import type { ClientLink } from '../client/link.js';

type BinaryType = 'arraybuffer' | 'blob';

/**
 * A WebSocket look-alike whose far end is the in-tab (or SharedWorker) broker rather than a server:
 * what `createWebsocket` hands to MQTT.js, so MQTT.js connects unchanged. It implements the part of
 * the WHATWG WebSocket that MQTT.js's browser transport uses: readyState, binaryType, bufferedAmount,
 * send, close, and open / message / close / error events (as listeners or on* properties).
 */
export class InPageWebSocket extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;

  readyState = InPageWebSocket.CONNECTING;
  binaryType: BinaryType = 'blob';
  readonly extensions = '';
  readonly protocol: string;
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: Event) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  private closeCode = 1000;

  constructor(
    readonly url: string,
    protocols: string | string[] | undefined,
    private readonly link: ClientLink,
  ) {
    super();
    const offered = typeof protocols === 'string' ? [protocols] : (protocols ?? []);
    // The broker speaks MQTT whatever was offered; echo the subprotocol a server would pick.
    this.protocol = offered.includes('mqtt') ? 'mqtt' : (offered[0] ?? '');
    link.attach({
      data: (chunk) => this.onData(chunk),
      close: () => this.onClose(),
    });
    // Like a real WebSocket, it opens after the constructor returned and listeners were added.
    queueMicrotask(() => {
      if (this.readyState !== InPageWebSocket.CONNECTING) return;
      this.readyState = InPageWebSocket.OPEN;
      this.fire(new Event('open'), this.onopen);
    });
  }

  get bufferedAmount(): number {
    return this.link.bufferedAmount;
  }

  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
    if (this.readyState === InPageWebSocket.CONNECTING) throw new DOMException('WebSocket is still connecting', 'InvalidStateError');
    if (this.readyState !== InPageWebSocket.OPEN) return;
    if (typeof data === 'string') {
      // MQTT is carried in binary frames only [MQTT-6.0.0-1]: a text frame ends the connection.
      this.closeCode = 1003;
      this.link.close();
      return;
    }
    if (data instanceof Blob) {
      void data.arrayBuffer().then((buffer) => this.send(buffer));
      return;
    }
    // Copied: MQTT.js hands over Buffers from a pool it reuses once send() returns.
    const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() : new Uint8Array(data.slice(0));
    this.link.send(bytes);
  }

  close(code = 1000, _reason?: string): void {
    if (this.readyState === InPageWebSocket.CLOSING || this.readyState === InPageWebSocket.CLOSED) return;
    this.readyState = InPageWebSocket.CLOSING;
    this.closeCode = code;
    this.link.close();
  }

  private onData(chunk: Uint8Array): void {
    if (this.readyState !== InPageWebSocket.OPEN) return;
    const buffer = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk.buffer : chunk.slice().buffer;
    const data = this.binaryType === 'blob' ? new Blob([buffer as ArrayBuffer]) : buffer;
    this.fire(new MessageEvent('message', { data }), this.onmessage);
  }

  private onClose(): void {
    if (this.readyState === InPageWebSocket.CLOSED) return;
    // Nothing in a page fails like a network does: every close is a closing handshake.
    this.readyState = InPageWebSocket.CLOSED;
    const event = new Event('close');
    Object.defineProperties(event, {
      code: { value: this.closeCode },
      reason: { value: '' },
      wasClean: { value: true },
    });
    this.fire(event, this.onclose);
  }

  private fire<E extends Event>(event: E, handler: ((event: E) => void) | null): void {
    handler?.call(this, event);
    this.dispatchEvent(event);
  }
}
