/**
 * MQTT over WebSocket (§6 of MQTT 3.1.1 and 5.0) for both conformance suites: a broker with a TCP
 * and a WebSocket listener, and the shared raw peer over a bare WebSocket (the `ws` package) that
 * sends frames exactly as a test says and also records each data frame the broker sends.
 */
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import type { ServerOptions } from '../../host/node/server.js';
import { Peer } from '../helpers/peer.js';

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

/** The raw peer over a bare WebSocket: every send is one binary data frame. */
export class WsPeer extends Peer {
  /** Every data frame received, in order. */
  readonly frames: { binary: boolean; data: Buffer }[] = [];
  private ws: WebSocket | null = null;

  /** Opens a WebSocket offering `protocols`; resolves once the handshake is done. */
  static open(url: string, protocols: string[] = ['mqtt']): Promise<WsPeer> {
    const peer = new WsPeer();
    return new Promise((resolve, reject) => {
      const ws = (peer.ws = new WebSocket(url, protocols));
      peer.wire = { send: (bytes) => ws.send(bytes, { binary: true }), destroy: () => ws.terminate() };
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        peer.frames.push({ binary: isBinary, data });
        if (isBinary) peer.receive(data);
      });
      ws.on('error', () => undefined);
      ws.once('close', peer.markClosed);
      ws.once('open', () => resolve(peer));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  /** The subprotocol the server selected ('' when none). */
  get protocol(): string {
    return this.ws!.protocol;
  }

  /** One text data frame. */
  sendText(text: string): void {
    this.ws!.send(text, { binary: false });
  }

  /** Closes from the client side and waits until it is closed. */
  async close(): Promise<void> {
    if (!this.isClosed) this.ws!.close(1000);
    await this.closed;
  }
}
