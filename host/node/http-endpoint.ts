import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AdminApi } from './admin-api.js';
import { sendJson } from './admin-api.js';
import type { AdminToken } from './admin-token.js';
import type { DashboardFiles } from './dashboard-files.js';
import { bind, boundAddress, closeServer } from './listen.js';
import type { HttpListenerOptions, RunningListener } from './listener-options.js';

export interface HttpEndpointSources {
  /** The Prometheus text for `/metrics`. */
  metrics(): string;
  /** false once shutdown has begun: `/health` then answers 503 so load balancers stop sending clients. */
  healthy(): boolean;
  /** With an admin token: the API under /api/v1/ and the dashboard; `/metrics` then needs the token too. */
  admin: { api: AdminApi; token: AdminToken; dashboard: DashboardFiles } | null;
  /** Why the node is not ready yet besides shutdown (a cluster node without its lease or links): `/health` answers 503 with it. */
  notReady?(): string | null;
  /** `/cluster`: this node's view of its cluster (JSON), when it is in one. */
  cluster?(): unknown;
}

/**
 * `GET /metrics` (Prometheus text format), `GET /health` (JSON) and, on a cluster node, `GET /cluster`
 * on their own port; with an admin token also the admin API (`/api/v1/…`) and the dashboard
 * (`/dashboard`). Only `/health` and the dashboard's static files (the page and its script, no data)
 * are served without the token.
 */
export async function listenHttp(options: HttpListenerOptions, sources: HttpEndpointSources, where: string): Promise<RunningListener> {
  const admin = sources.admin;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (path === '/health') {
      if (!readOnly(req, res)) return;
      const status = !sources.healthy() ? 'shutting down' : (sources.notReady?.() ?? 'ok');
      res.writeHead(status === 'ok' ? 200 : 503, { 'Content-Type': 'application/json' }).end(`${JSON.stringify({ status })}\n`);
    } else if (admin && (path === '/dashboard' || path.startsWith('/dashboard/'))) {
      if (readOnly(req, res)) admin.dashboard.serve(path, req, res);
    } else if (path === '/metrics') {
      if (!readOnly(req, res) || (admin && !authorized(req, res, admin.token))) return;
      let body: string;
      try {
        body = sources.metrics();
      } catch (error) {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${(error as Error).message}\n`);
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    } else if (path === '/cluster' && sources.cluster) {
      if (!readOnly(req, res) || (admin && !authorized(req, res, admin.token))) return;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(sources.cluster())}\n`);
    } else if (admin && path.startsWith('/api/')) {
      if (authorized(req, res, admin.token)) void admin.api.handle(req, res, url);
    } else if (admin) {
      sendJson(res, 404, { error: { status: 404, message: `not found: ${path} (try /api/v1/, /dashboard, /metrics or /health)` } });
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics or /health\n');
    }
  });
  // A scraper's keep-alive connection must not hold shutdown open.
  server.keepAliveTimeout = 5000;
  // The admin API listens on loopback unless told otherwise.
  await bind(server, options.port, options.host ?? (admin ? '127.0.0.1' : '0.0.0.0'), where);
  return {
    protocol: 'http',
    address: () => boundAddress(server),
    close: () => {
      admin?.api.close();
      const closed = closeServer(server);
      server.closeAllConnections();
      return closed;
    },
  };
}

/** GET and HEAD only; otherwise answers 405. */
function readOnly(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  res.writeHead(405, { Allow: 'GET, HEAD' }).end();
  return false;
}

/** Checks the bearer token; otherwise answers 401 (JSON, with the challenge RFC 6750 asks for). */
function authorized(req: IncomingMessage, res: ServerResponse, token: AdminToken): boolean {
  if (token.accepts(req.headers.authorization)) return true;
  res.setHeader('WWW-Authenticate', 'Bearer realm="arbormq"');
  sendJson(res, 401, { error: { status: 401, message: 'a valid admin token is needed: Authorization: Bearer <token from http.adminTokenFile>' } });
  return false;
}
