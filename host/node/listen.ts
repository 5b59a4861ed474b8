import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { AddressInfo, Server } from 'node:net';

/** A listener that could not bind or listen, named with where it was configured. */
export const listenFailed = (name: string, host: string, port: number, error: Error): Error => new Error(`${name} cannot listen on ${host}:${port}: ${error.message}`);

/** Binds `server`; an error (EADDRINUSE, EACCES…) rejects with the listener named. */
export function bind(server: Server | HttpServer, port: number, host: string, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error): void => reject(listenFailed(name, host, port, error));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

/** Stops accepting and resolves once every connection the server had is closed. */
export function closeServer(server: Server | HttpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export const boundAddress = (server: Server | HttpServer): AddressInfo => server.address() as AddressInfo;

/** The path an HTTP request (a WebSocket upgrade) asks for; '' for one that does not parse. */
export function requestPath(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return '';
  }
}
