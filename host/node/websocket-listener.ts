import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import type { LogAggregator } from '../core/model/log-aggregator.js';
import type { ConnectionGate } from './connection-gate.js';
import { bind, boundAddress, closeServer, requestPath } from './listen.js';
import { DEFAULT_WEBSOCKET_PATH, type RunningListener, type SecureWebSocketListenerOptions, type WebSocketListenerOptions } from './listener-options.js';
import { certificateCommonName, describeTlsFailure, loadTlsOptions, refuseUnverified } from './tls-files.js';
import { WebSocketTransport } from './websocket-transport.js';

/** Bytes a single WebSocket frame may carry beyond maxPacketSize (a frame may batch several packets). */
const FRAME_SLACK = 1024 * 1024;

/**
 * MQTT over WebSocket (`ws`) or secure WebSocket (`wss`) on `path` (default /mqtt), subprotocol
 * `mqtt` (`mqttv3.1` for 3.1 clients) as §6 asks, so MQTT.js in a browser connects unchanged. Plain
 * HTTP requests get 426 Upgrade Required, upgrades to another path 404.
 */
export async function listenWebSocket(
  options: WebSocketListenerOptions | SecureWebSocketListenerOptions,
  gate: ConnectionGate,
  /** Lines a connection can cause, aggregated per address. */
  logs: LogAggregator,
  where: string,
  maxPacketSize: number,
  /** connectTimeoutMs: the time to finish the TLS handshake and send the upgrade request. */
  handshakeTimeoutMs: number,
): Promise<RunningListener> {
  const host = options.host ?? '0.0.0.0';
  const path = options.path ?? DEFAULT_WEBSOCKET_PATH;
  const secure = options.protocol === 'wss';
  const identity = secure && options.useIdentityAsUsername === true;
  let name = `${options.protocol}:${options.port}`;
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: maxPacketSize + FRAME_SLACK,
    handleProtocols: (offered) => (offered.has('mqtt') ? 'mqtt' : offered.has('mqttv3.1') ? 'mqttv3.1' : false),
  });

  const tlsServer = secure ? createHttpsServer({ ...(await loadTlsOptions(options, where)), handshakeTimeout: handshakeTimeoutMs }) : null;
  const server: Server = tlsServer ?? createServer();
  // A client that opens a socket and never finishes its upgrade request is dropped like one that never sends CONNECT.
  server.headersTimeout = server.requestTimeout = Math.max(1000, handshakeTimeoutMs);
  server.on('request', (_req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'close' });
    res.end(`MQTT over WebSocket: connect to ${path} with the "mqtt" subprotocol\n`);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (requestPath(req) !== path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const cn = identity ? certificateCommonName(socket as TLSSocket) : undefined;
    if (identity && cn === undefined) {
      logs.note('info', 'connection refused: the client certificate has no common name', req.socket.remoteAddress ?? '', { listener: name, address: req.socket.remoteAddress });
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const tcp = req.socket as Socket;
      gate.serve(new WebSocketTransport(ws, gate, { address: tcp.remoteAddress, port: tcp.remotePort, listener: name, certificateIdentity: cn }));
    });
  });
  if (secure && options.requireCertificate === true) {
    // Before the upgrade request is read: a client that does not verify gets nothing from HTTP either.
    server.on('secureConnection', (socket: TLSSocket) => refuseUnverified(socket, logs, name));
  }
  if (secure) {
    server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
      logs.note('info', 'TLS handshake failed', socket.remoteAddress ?? '', { listener: name, address: socket.remoteAddress, reason: describeTlsFailure(error), error: error.message });
    });
  }
  await bind(server, options.port, host, where);
  name = `${options.protocol}:${boundAddress(server).port}`;
  return {
    protocol: options.protocol,
    address: () => boundAddress(server),
    close: () => {
      const closed = closeServer(server);
      // Idle keep-alive HTTP connections would hold close() open; upgraded ones are the broker's.
      server.closeIdleConnections();
      return closed;
    },
    ...(tlsServer
      ? {
          prepareCertificateReload: async () => {
            const tls = await loadTlsOptions(options as SecureWebSocketListenerOptions, where);
            return () => tlsServer.setSecureContext(tls);
          },
        }
      : {}),
  };
}
