// The admin API under /api/v1/ on the HTTP port (docs/OPERATIONS.md): look at clients, sessions,
// retained messages and bridges, disconnect a client, end a session, clear a retained topic, reload
// the server's files — and the live state the dashboard draws. JSON in and out; every error is
// `{ "error": { "status", "message" } }` with its HTTP status. The bearer token is checked by the
// HTTP endpoint before a request gets here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker } from '../core/broker.js';
import { Reason } from '../core/codec/constants.js';
import { Connection } from '../core/connection.js';
import { Message } from '../core/model/message.js';
import type { Session } from '../core/model/session.js';
import { brokerStats, type BrokerStats } from '../core/sys.js';
import { inspectBroker, retainedSnapshot, sessionSnapshot, type BrokerSnapshot, type RetainedSnapshot, type SessionSnapshot } from '../inspect/inspect.js';
import type { BridgeReport } from './bridges.js';
import { isValidFilter } from './topic-filters.js';

/** What the admin API acts on: the running server. */
export interface AdminTarget {
  readonly broker: Broker;
  /** The listener ("mqtts:8883") a network connection came in on, by its transport label. */
  listenerOf(remoteAddress: string): string | undefined;
  bridgeReports(): BridgeReport[];
  /** Reads the password, ACL, certificate and token files again; rejects (changing nothing) when one cannot be used. */
  reload(): Promise<string[]>;
  readonly version: string;
}

/** A session as the admin API lists it: its snapshot plus the user it belongs to. */
export interface SessionView extends SessionSnapshot {
  /** The user name the session belongs to (null = anonymous). */
  username: string | null;
}

/** A connected client: its session, and its connection. */
export interface ClientView extends SessionView {
  /** Where it connects from: "address:port" (an in-process client: "bridge:{name}"). */
  address: string;
  /** The listener it came in on, e.g. "mqtts:8883" (absent for in-process clients). */
  listener?: string;
  /** Seconds, as the connection runs it (after any Server Keep Alive); 0 = none. */
  keepAlive: number;
}

/** Server counters, as /metrics has them, plus the server's version and bridges. */
export interface ServerStats extends BrokerStats {
  version: string;
  bridges: BridgeReport[];
}

/** Everything the dashboard draws, pushed by `GET /api/v1/events`. */
export interface DashboardState {
  stats: ServerStats;
  snapshot: BrokerSnapshot;
  clients: ClientView[];
}

/** A request the API refuses: answered with `status` and the message as JSON. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const PAGE_DEFAULT = 100;
const PAGE_MAX = 1000;
/** Live arena buffers a dashboard snapshot describes. */
const DASHBOARD_HANDLES = 16;
/** How often the event stream sends the state (ms), unless the client asks otherwise. */
const EVENT_INTERVAL_MS = 500;

export class AdminApi {
  private readonly streams = new Set<ServerResponse>();

  constructor(private readonly target: AdminTarget) {}

  /** Serves one request under /api/; `path` is the URL path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      const route = url.pathname.slice('/api/v1/'.length);
      if (!url.pathname.startsWith('/api/v1/')) throw new ApiError(404, `no such route: ${url.pathname} (the admin API is under /api/v1/)`);
      const [collection, ...rest] = route.split('/');
      const id = rest.length > 0 ? decode(rest.join('/')) : undefined;
      const method = req.method ?? 'GET';
      const routes = this.routes(collection ?? '', id, url);
      const allowed = Object.keys(routes);
      if (allowed.length === 0) throw new ApiError(404, `no such route: ${url.pathname}`);
      const action = routes[method === 'HEAD' ? 'GET' : method];
      if (!action) {
        res.setHeader('Allow', allowed.join(', '));
        throw new ApiError(405, `${method} is not allowed on ${url.pathname} (allowed: ${allowed.join(', ')})`);
      }
      if (action === STREAM) {
        this.stream(res, url);
        return;
      }
      sendJson(res, 200, await action());
    } catch (error) {
      if (error instanceof ApiError) sendJson(res, error.status, { error: { status: error.status, message: error.message } });
      else sendJson(res, 500, { error: { status: 500, message: (error as Error)?.message ?? String(error) } });
    }
  }

  /** Ends every event stream (the server is closing). */
  close(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  private routes(collection: string, id: string | undefined, url: URL): Record<string, (() => unknown) | typeof STREAM> {
    switch (collection) {
      case 'clients':
        return id === undefined
          ? { GET: () => page('clients', this.clients(), url, (c) => c.clientId) }
          : { GET: () => this.client(id), DELETE: () => this.disconnect(id) };
      case 'sessions':
        return id === undefined
          ? { GET: () => page('sessions', this.sessions(), url, (s) => s.clientId) }
          : { GET: () => this.sessionView(this.session(id)), DELETE: () => this.endSession(id) };
      case 'retained':
        return id === undefined ? { GET: () => page('retained', this.retained(url), url, (r) => r.topic) } : { DELETE: () => this.clearRetained(id) };
      case 'bridges':
        return id === undefined ? { GET: () => ({ bridges: this.target.bridgeReports() }) } : {};
      case 'stats':
        return id === undefined ? { GET: () => this.stats() } : {};
      case 'inspect':
        return id === undefined ? { GET: () => inspectBroker(this.target.broker, { handles: count(url, 'handles', 64, 4096) }) } : {};
      case 'events':
        return id === undefined ? { GET: STREAM } : {};
      case 'reload':
        return id === undefined ? { POST: () => this.reload() } : {};
      default:
        return {};
    }
  }

  /** Connected clients (CONNECT accepted), by client identifier. */
  private clients(): ClientView[] {
    const out: ClientView[] = [];
    for (const session of this.target.broker.sessions.values()) if (session.outlet) out.push(this.clientView(session));
    return out.sort(byKey((c) => c.clientId));
  }

  private client(id: string): ClientView {
    const session = this.target.broker.sessions.get(id);
    if (!session?.outlet) throw new ApiError(404, `no client "${id}" is connected`);
    return this.clientView(session);
  }

  private clientView(session: Session): ClientView {
    const outlet = session.outlet!;
    const listener = this.target.listenerOf(outlet.remoteAddress);
    const keepAlive = outlet instanceof Connection ? outlet.keepAlive : 0;
    return { ...this.sessionView(session), address: outlet.remoteAddress, ...(listener === undefined ? {} : { listener }), keepAlive };
  }

  private sessions(): SessionView[] {
    return [...this.target.broker.sessions.values()].map((s) => this.sessionView(s)).sort(byKey((s) => s.clientId));
  }

  private session(id: string): Session {
    const session = this.target.broker.sessions.get(id);
    if (!session) throw new ApiError(404, `no session "${id}"`);
    return session;
  }

  private sessionView(session: Session): SessionView {
    return { ...sessionSnapshot(session), username: session.owner ?? null };
  }

  /** Disconnects a client: 5.0 clients hear DISCONNECT 0x98 Administrative action; its will is published. */
  private disconnect(id: string): { disconnected: string } {
    const conn = this.target.broker.sessions.get(id)?.outlet;
    if (!conn) throw new ApiError(404, `no client "${id}" is connected`);
    conn.disconnect(Reason.AdministrativeAction);
    this.target.broker.log('info', 'client disconnected by the admin API', { client: id });
    return { disconnected: id };
  }

  /** Ends a session, online or not: its subscriptions and queue go, its client (if connected) hears 0x98, no will is published. */
  private endSession(id: string): { deleted: string } {
    const session = this.session(id);
    const broker = this.target.broker;
    // Closed first, so nothing more is read from it; ended then, so its closing finds no session to keep or will to publish.
    session.outlet?.disconnect(Reason.AdministrativeAction);
    broker.endSession(session);
    broker.log('info', 'session deleted by the admin API', { client: id });
    return { deleted: id };
  }

  /** Retained messages whose topics match `?filter=` (default `#`), by topic. */
  private retained(url: URL): RetainedSnapshot[] {
    const filter = url.searchParams.get('filter') ?? '#';
    if (!isValidFilter(filter) || filter.startsWith('$share/')) throw new ApiError(400, `filter ${JSON.stringify(filter)} is not a valid topic filter`);
    const broker = this.target.broker;
    const now = performance.now();
    const preview = count(url, 'previewBytes', 64, 65_536);
    return broker.retained
      .match(utf8.encode(filter), now)
      .map((m) => retainedSnapshot(broker, m, now, preview))
      .sort(byKey((r) => r.topic));
  }

  /** Clears a topic's retained message, as a retained PUBLISH with an empty payload would. */
  private clearRetained(topic: string): { deleted: string } {
    if (!isValidFilter(topic) || /[+#]/.test(topic)) throw new ApiError(400, `${JSON.stringify(topic)} is not a topic name`);
    const broker = this.target.broker;
    if (broker.retained.match(utf8.encode(topic), performance.now()).length === 0) throw new ApiError(404, `no retained message on ${JSON.stringify(topic)}`);
    const empty = Message.create(broker.core, topic, new Uint8Array(0), 0, true);
    if (!empty) throw new ApiError(503, 'the arena is full');
    broker.retained.apply(empty);
    empty.unref();
    broker.log('info', 'retained message cleared by the admin API', { topic });
    return { deleted: topic };
  }

  private async reload(): Promise<{ reloaded: string[] }> {
    try {
      return { reloaded: await this.target.reload() };
    } catch (error) {
      throw new ApiError(500, `reload failed, the previous settings stay in force: ${(error as Error).message}`);
    }
  }

  private stats(): ServerStats {
    return { ...brokerStats(this.target.broker), version: this.target.version, bridges: this.target.bridgeReports() };
  }

  /** Server-sent events: `event: state` with a DashboardState now and every `?interval=` ms (default 500). */
  private stream(res: ServerResponse, url: URL): void {
    const interval = Math.max(100, count(url, 'interval', EVENT_INTERVAL_MS, 60_000));
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    this.streams.add(res);
    const send = (): void => {
      const state: DashboardState = {
        stats: this.stats(),
        snapshot: inspectBroker(this.target.broker, { handles: DASHBOARD_HANDLES }),
        clients: this.clients(),
      };
      res.write(`event: state\ndata: ${JSON.stringify(state)}\n\n`);
    };
    send();
    const timer = setInterval(send, interval);
    res.on('close', () => {
      clearInterval(timer);
      this.streams.delete(res);
    });
  }
}

function decode(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    throw new ApiError(400, `${JSON.stringify(component)} is not a valid URL-encoded name`);
  }
}

/** Marks the route answered with a stream rather than one JSON body. */
const STREAM = Symbol('stream');

/**
 * One page of `items` (sorted by `key`): `?limit=` (default 100, at most 1000) items after the key
 * `?after=`, and the key to ask for the next page with (null on the last).
 */
function page<T>(name: string, items: T[], url: URL, key: (item: T) => string): Record<string, unknown> {
  const limit = count(url, 'limit', PAGE_DEFAULT, PAGE_MAX);
  const after = url.searchParams.get('after');
  const start = after === null ? 0 : items.findIndex((item) => key(item) > after);
  const slice = start < 0 ? [] : items.slice(start, start + limit);
  const more = start >= 0 && start + limit < items.length;
  return { [name]: slice, total: items.length, next: more ? key(slice[slice.length - 1]!) : null };
}

/** A positive integer query parameter, `fallback` when absent; 400 when it is not one or above `max`. */
function count(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > max) throw new ApiError(400, `${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

const byKey =
  <T>(key: (item: T) => string) =>
  (a: T, b: T): number => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }).end(text);
}

const utf8 = new TextEncoder();
