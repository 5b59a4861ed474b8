// The Node server's way to a bridge's remote broker: a ClientLink over TCP, TLS, WebSocket or
// secure WebSocket, by the URL's scheme.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { WebSocket } from 'ws';
import type { ClientLink, ClientLinkEvents } from '../client/link.js';
import { WebSocketLink, type WebSocketConstructor, type WebSocketLike } from '../client/websocket-link.js';

/** The URL schemes a server's bridge connects with. */
export const SERVER_BRIDGE_SCHEMES: readonly string[] = ['mqtt', 'mqtts', 'ws', 'wss'];

/** TLS towards the remote broker (mqtts, wss): whom to trust and, for mutual TLS, who we are. */
export interface RemoteTls {
  /** PEM CA certificates the remote broker's certificate must chain to (default: the system's). */
  ca?: Buffer;
  /** PEM client certificate and key, when the remote broker asks for one. */
  cert?: Buffer;
  key?: Buffer;
}

const DEFAULT_PORTS: Record<string, number> = { 'mqtt:': 1883, 'mqtts:': 8883 };

/** Opens a link to `url`; rejects when it cannot be opened within `timeoutMs`. */
export function openRemoteLink(url: string, tls: RemoteTls, timeoutMs: number): Promise<ClientLink> {
  const parsed = new URL(url);
  if (parsed.protocol === 'ws:' || parsed.protocol === 'wss:') {
    return WebSocketLink.open(url, { timeoutMs, WebSocketImpl: webSocketWith(tls) });
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = parsed.port === '' ? DEFAULT_PORTS[parsed.protocol]! : Number(parsed.port);
  return new Promise((resolve, reject) => {
    const secure = parsed.protocol === 'mqtts:';
    const options: ConnectionOptions = { host, port, ca: tls.ca, cert: tls.cert, key: tls.key, servername: /^[\d.]+$|:/.test(host) ? undefined : host };
    const socket: Socket = secure ? connectTls(options) : connectTcp({ host, port });
    const timer = setTimeout(() => fail(new Error(`${url} did not answer within ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`cannot connect to ${url}: ${error.message}`));
    };
    socket.once('error', fail);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(new SocketLink(socket));
    });
  });
}

/** The `ws` package's WebSocket, with the TLS settings for a wss:// remote. */
function webSocketWith(tls: RemoteTls): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string, protocols: string[]) {
      super(url, protocols, { ca: tls.ca, cert: tls.cert, key: tls.key, perMessageDeflate: false });
    }
  } as unknown as new (url: string, protocols: string[]) => WebSocketLike;
}

/** A TCP or TLS socket under a client. */
class SocketLink implements ClientLink {
  private events: ClientLinkEvents | null = null;
  private closed = false;
  private error: Error | undefined;

  constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('error', (error) => this.finish(error));
    socket.on('close', () => this.finish());
    socket.on('data', (chunk: Buffer) => this.events?.data(chunk));
  }

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  attach(events: ClientLinkEvents): void {
    // Gone before anyone listened: the client hears it on a later tick, as it would from a socket.
    if (this.closed) queueMicrotask(() => events.close(this.error));
    else this.events = events;
  }

  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  close(): void {
    this.socket.end();
    // A peer that stops reading must not keep the socket open.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  private finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.error = error;
    const events = this.events;
    this.events = null;
    events?.close(error);
    this.socket.destroy();
  }
}
