import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import type { Logger } from '../../core/model/options.js';
import { bind, boundAddress, closeServer, requestPath } from '../listen.js';
import { accept, dial, HandshakeError, type LinkIdentity } from './handshake.js';
import { Link, LINK_TIMING, type LinkTiming } from './link.js';

/** The URL path links use on a node's link port. */
export const LINK_PATH = '/arbormq-cluster';
/** Largest frame a link accepts (a takeover's state or a retained snapshot part). */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** Certificates of `wss` links: every node presents its own and accepts only peers whose certificate chains to `ca`. */
export interface LinkTls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export interface LinkListener {
  address(): AddressInfo;
  close(): Promise<void>;
}

/** Accepts links from peers: each authenticated one is handed to `onLink`; failed handshakes are logged. */
export async function listenForLinks(
  port: number,
  host: string,
  tls: LinkTls | null,
  self: LinkIdentity,
  onLink: (link: Link) => void,
  log: Logger,
  timing: LinkTiming = LINK_TIMING,
): Promise<LinkListener> {
  const server: HttpServer = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' })
    : createHttpServer();
  server.on('request', (_req, res) => res.writeHead(426, { 'Content-Type': 'text/plain' }).end('ArborMQ cluster link endpoint: WebSocket only\n'));
  // Upgrades are handed over here rather than ws listening on the server itself: ws re-emits the
  // server's errors as its own, and a port in use then crashed the process instead of failing bind().
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
  server.on('upgrade', (request, socket, head) => {
    socket.on('error', () => socket.destroy());
    if (requestPath(request) !== LINK_PATH) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });
  wss.on('connection', (socket: WebSocket, request) => {
    const address = `${request.socket.remoteAddress}:${request.socket.remotePort}`;
    const verify = tls ? certificateCheck(request.socket as TLSSocket) : undefined;
    accept(socket, self, verify).then(
      (peer) => onLink(new Link(socket, peer, false, timing)),
      (error: Error) => {
        log(error instanceof HandshakeError ? 'warn' : 'error', 'cluster link refused', { address, reason: error.message });
        socket.terminate();
      },
    );
  });
  await bind(server, port, host, 'cluster link listener');
  return {
    address: () => boundAddress(server),
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await closeServer(server);
    },
  };
}

/** Opens a link to `url` (a member's advertised URL) and authenticates it as node `expected`. */
export async function dialLink(url: string, tls: LinkTls | null, self: LinkIdentity, expected: string, timing: LinkTiming = LINK_TIMING): Promise<Link> {
  const socket = new WebSocket(new URL(LINK_PATH, url), {
    maxPayload: MAX_FRAME_BYTES,
    perMessageDeflate: false,
    // Masking protects proxies from what a browser page sends; between authenticated nodes it only
    // costs a pass over every byte on both sides. An all-zero mask is one both sides skip.
    generateMask: (mask: Buffer) => void mask.fill(0),
    handshakeTimeout: 5000,
    ...(tls ? { cert: tls.cert, key: tls.key, ca: tls.ca, rejectUnauthorized: true } : {}),
  });
  // The handshake listens from the start: the peer's challenge may arrive with the upgrade response.
  try {
    const verify = tls ? (node: string) => certificateCheck((socket as unknown as { _socket: TLSSocket })._socket)(node) : undefined;
    return new Link(socket, await dial(socket, self, expected, verify), true, timing);
  } catch (error) {
    socket.terminate();
    throw error;
  }
}

/** With TLS, a peer's verified certificate must name its node id (common name or a DNS name). */
function certificateCheck(socket: TLSSocket): (node: string) => string | null {
  return (node) => (certificateNames(socket).includes(node) ? null : `the certificate does not name the node ${JSON.stringify(node)}`);
}

function certificateNames(socket: TLSSocket): string[] {
  const cert = socket.getPeerCertificate?.();
  if (!cert || !socket.authorized) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN as string | string[] | undefined;
  if (cn) names.push(...(Array.isArray(cn) ? cn : [cn]));
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m) names.push(m[1]!);
  }
  return names;
}
