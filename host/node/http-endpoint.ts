import { createServer } from 'node:http';
import { bind, boundAddress, closeServer } from './listen.js';
import type { HttpListenerOptions, RunningListener } from './listener-options.js';

export interface HttpEndpointSources {
  /** The Prometheus text for `/metrics`. */
  metrics(): string;
  /** false once shutdown has begun: `/health` then answers 503 so load balancers stop sending clients. */
  healthy(): boolean;
  /** Why the node is not ready yet besides shutdown (a cluster node without its lease or links): `/health` answers 503 with it. */
  notReady?(): string | null;
  /** `/cluster`: this node's view of its cluster (JSON), when it is in one. */
  cluster?(): unknown;
}

/** `GET /metrics` (Prometheus text format) and `GET /health` (JSON) on their own port. */
export async function listenHttp(options: HttpListenerOptions, sources: HttpEndpointSources, where: string): Promise<RunningListener> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      let body: string;
      try {
        body = sources.metrics();
      } catch (error) {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${(error as Error).message}\n`);
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    } else if (path === '/health') {
      const status = !sources.healthy() ? 'shutting down' : (sources.notReady?.() ?? 'ok');
      res.writeHead(status === 'ok' ? 200 : 503, { 'Content-Type': 'application/json' }).end(`${JSON.stringify({ status })}\n`);
    } else if (path === '/cluster' && sources.cluster) {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(sources.cluster())}\n`);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics or /health\n');
    }
  });
  // A scraper's keep-alive connection must not hold shutdown open.
  server.keepAliveTimeout = 5000;
  await bind(server, options.port, options.host ?? '0.0.0.0', where);
  return {
    protocol: 'http',
    address: () => boundAddress(server),
    close: () => {
      const closed = closeServer(server);
      server.closeAllConnections();
      return closed;
    },
  };
}
