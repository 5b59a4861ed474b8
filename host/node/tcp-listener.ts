import { createServer, isIP, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { LogAggregator } from '../core/model/log-aggregator.js';
import type { ConnectionGate } from './connection-gate.js';
import { bind, boundAddress, closeServer, listenFailed } from './listen.js';
import type { RunningListener, TcpListenerOptions, TlsListenerOptions } from './listener-options.js';
import { HandleTransport } from './handle-transport.js';
import { SocketTransport } from './socket-transport.js';
import { listenHandles, tcpHandles } from './tcp-handles.js';
import { certificateCommonName, describeTlsFailure, loadTlsOptions, refuseUnverified } from './tls-files.js';

/** MQTT over TCP (`mqtt`) or TLS (`mqtts`): each connection becomes a transport served through the gate — a HandleTransport for plain TCP on an address, else a SocketTransport. */
export async function listenTcp(
  options: TcpListenerOptions | TlsListenerOptions,
  gate: ConnectionGate,
  /** Lines a connection can cause, aggregated per address. */
  logs: LogAggregator,
  where: string,
  handshakeTimeoutMs: number,
): Promise<RunningListener> {
  const host = options.host ?? '0.0.0.0';
  const protocol = options.protocol ?? 'mqtt';
  let name = `${protocol}:${options.port}`;
  const serve = (socket: Socket, certificateIdentity: string | undefined): void => {
    gate.serve(new SocketTransport(socket, gate, { address: socket.remoteAddress, port: socket.remotePort, listener: name, certificateIdentity }));
  };

  let server;
  let prepareCertificateReload: RunningListener['prepareCertificateReload'];
  if (options.protocol === 'mqtts') {
    const identity = options.useIdentityAsUsername === true;
    const requireCertificate = options.requireCertificate === true;
    server = createTlsServer({ ...(await loadTlsOptions(options, where)), handshakeTimeout: handshakeTimeoutMs }, (socket: TLSSocket) => {
      if (requireCertificate && refuseUnverified(socket, logs, name)) return;
      const cn = identity ? certificateCommonName(socket) : undefined;
      if (identity && cn === undefined) {
        logs.note('info', 'connection refused: the client certificate has no common name', socket.remoteAddress ?? '', { listener: name, address: socket.remoteAddress });
        socket.destroy();
        return;
      }
      serve(socket, cn);
    });
    server.on('tlsClientError', (error, socket) => {
      logs.note('info', 'TLS handshake failed', socket.remoteAddress ?? '', { listener: name, address: socket.remoteAddress, reason: describeTlsFailure(error), error: error.message });
    });
    const tlsServer = server;
    prepareCertificateReload = async () => {
      const tls = await loadTlsOptions(options, where);
      return () => tlsServer.setSecureContext(tls);
    };
  } else {
    const tcp = isIP(host) !== 0 ? tcpHandles() : null;
    if (tcp) {
      // Plain TCP on an address: libuv handles without a net.Socket each (tcp-handles.ts).
      let handles;
      try {
        handles = listenHandles(tcp, host, options.port, (client, at) => gate.serve(new HandleTransport(client, tcp, at, gate, name)));
      } catch (error) {
        throw listenFailed(where, host, options.port, error as Error);
      }
      name = `${protocol}:${handles.address().port}`;
      return { protocol, address: () => handles.address(), close: () => handles.close() };
    }
    server = createServer((socket) => serve(socket, undefined));
  }
  await bind(server, options.port, host, where);
  name = `${protocol}:${boundAddress(server).port}`;
  return {
    protocol,
    address: () => boundAddress(server),
    close: () => closeServer(server),
    ...(prepareCertificateReload ? { prepareCertificateReload } : {}),
  };
}
