/**
 * MQTT over WebSocket (§6 of MQTT 3.1.1 and 5.0) for both conformance suites: a broker with a TCP
 * and a WebSocket listener, and a bare WebSocket client (the `ws` package) that sends frames exactly
 * as a test says and records each frame the broker sends (binary or text) and the MQTT packets in them.
 */
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import type { ServerOptions } from '../../host/node/server.js';
import { delay } from '../helpers/broker.js';
import { FrameSplitter, type Frame } from './frames.js';

/** Listeners of a broker reachable over TCP (first, so TestBroker.raw() and .client() use it) and WebSocket. */
export const TCP_AND_WS: ServerOptions['listeners'] = [
  { port: 0, host: '127.0.0.1' },
  { protocol: 'ws', port: 0, host: '127.0.0.1' },
];

/** The ws:// URL of a broker started with TCP_AND_WS. */
export function wsUrl(server: { endpoints(): { protocol: string; address: { port: number } }[] }): string {
  const ws = server.endpoints().find((e) => e.protocol === 'ws');
  assert.ok(ws, 'the broker has a WebSocket listener');
  return `ws://127.0.0.1:${ws.address.port}/mqtt`;
}

/** A bare WebSocket to the broker. */
export class WsPeer {
  /** Every data frame received, in order. */
  readonly frames: { binary: boolean; data: Buffer }[] = [];
  /** MQTT packets split out of the binary frames (which may hold several, or part of one). */
  readonly packets: Frame[] = [];
  /** Resolves with the close code once the network connection is closed. */
  readonly closed: Promise<number>;
  isClosed = false;
  private readonly splitter = new FrameSplitter();
  private readonly taken = new Set<Frame>();
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.frames.push({ binary: isBinary, data });
      if (isBinary) this.split(data);
      this.wake();
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      ws.once('close', (code: number) => {
        this.isClosed = true;
        this.wake();
        resolve(code);
      }),
    );
  }

  /** Opens a WebSocket offering `protocols`; resolves once the handshake is done. */
  static open(url: string, protocols: string[] = ['mqtt']): Promise<WsPeer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols);
      const peer = new WsPeer(ws);
      ws.once('open', () => resolve(peer));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  /** The subprotocol the server selected ('' when none). */
  get protocol(): string {
    return this.ws.protocol;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private split(data: Buffer): void {
    this.packets.push(...this.splitter.push(data));
  }


  /** One binary data frame with exactly these bytes. */
  send(...parts: Uint8Array[]): void {
    this.ws.send(Buffer.concat(parts), { binary: true });
  }

  /** One text data frame. */
  sendText(text: string): void {
    this.ws.send(text, { binary: false });
  }

  /** The first MQTT packet of `type` not taken yet (waits up to `ms`). */
  async next(type: number, ms = 2000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.packets.find((p) => p.type === type && !this.taken.has(p));
      if (found) {
        this.taken.add(found);
        return found;
      }
      if (this.isClosed) throw new Error(`connection closed before packet type ${type}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet of type ${type} within ${ms} ms; got ${this.packets.map((p) => p.type).join(',')}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), delay(left)]);
    }
  }

  /** Waits for the broker to close the network connection; returns the WebSocket close code. */
  async expectClosed(ms = 2000): Promise<number> {
    return Promise.race([
      this.closed,
      delay(ms).then(() => {
        throw new Error(`WebSocket still open after ${ms} ms`);
      }),
    ]);
  }

  /** Closes from the client side and waits until it is closed. */
  async close(): Promise<void> {
    if (!this.isClosed) this.ws.close(1000);
    await this.closed;
  }
}
