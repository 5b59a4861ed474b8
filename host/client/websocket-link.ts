import type { ClientLink, ClientLinkEvents } from './link.js';

/** The part of the WHATWG WebSocket the link uses (browsers' WebSocket; in Node, the `ws` package's). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  readonly protocol: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (event: { data?: unknown }) => void): void;
}

export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

const OPEN = 1;

/**
 * MQTT over WebSocket (§6): subprotocol `mqtt`, binary frames, each chunk the client writes as one
 * frame (a frame may carry several packets; the broker's framer reassembles).
 */
export class WebSocketLink implements ClientLink {
  private events: ClientLinkEvents | null = null;
  private closed = false;

  private constructor(private readonly ws: WebSocketLike) {}

  /**
   * Opens `url` and resolves once the WebSocket is open; rejects when it fails first (or after
   * `timeoutMs`). `WebSocketImpl` defaults to the global WebSocket.
   */
  static open(url: string, options: { timeoutMs?: number; WebSocketImpl?: WebSocketConstructor } = {}): Promise<WebSocketLink> {
    const Impl = options.WebSocketImpl ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Impl) return Promise.reject(new Error('no WebSocket implementation: pass WebSocketImpl'));
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new Impl(url, ['mqtt']);
      } catch (error) {
        reject(error as Error);
        return;
      }
      ws.binaryType = 'arraybuffer';
      const link = new WebSocketLink(ws);
      let settled = false;
      const timer = setTimeout(() => fail(new Error(`WebSocket to ${url} did not open within ${options.timeoutMs ?? 10_000} ms`)), options.timeoutMs ?? 10_000);
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        link.closed = true;
        try {
          ws.close();
        } catch {
          // already closing
        }
        reject(error);
      };
      ws.addEventListener('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(link);
      });
      ws.addEventListener('error', () => fail(new Error(`WebSocket to ${url} failed`)));
      ws.addEventListener('close', () => {
        fail(new Error(`WebSocket to ${url} closed before it opened`));
        link.onClose();
      });
      ws.addEventListener('message', (event) => link.onMessage(event.data));
    });
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  attach(events: ClientLinkEvents): void {
    this.events = events;
  }

  send(bytes: Uint8Array): void {
    if (this.closed || this.ws.readyState !== OPEN) return;
    this.ws.send(bytes);
  }

  close(): void {
    if (this.closed) return;
    // The browser sends what is buffered before the closing handshake.
    this.ws.close(1000);
  }

  private onMessage(data: unknown): void {
    if (this.closed) return;
    if (data instanceof ArrayBuffer) {
      this.events?.data(new Uint8Array(data));
    } else if (ArrayBuffer.isView(data)) {
      this.events?.data(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } else {
      // MQTT travels in binary frames only [MQTT-6.0.0-1].
      this.ws.close(1003, 'MQTT needs binary frames');
    }
  }

  private onClose(): void {
    if (this.closed && !this.events) return;
    const events = this.events;
    this.closed = true;
    this.events = null;
    events?.close();
  }
}
