import { isIP, type AddressInfo } from 'node:net';
import { getSystemErrorName } from 'node:util';

/**
 * libuv TCP handles as Node's `net` module drives them, without the net.Socket around each one: a
 * plain MQTT connection needs none of its stream machinery (the broker frames, buffers and times
 * connections itself), and that machinery is most of what accepting a connection and keeping it
 * open costs a Node server (bench/RESULTS.md, "Idle connections at scale"). These are Node's internal
 * bindings (`process.binding`, the same objects net.js uses); where a Node version lacks them the
 * listener uses net.Server instead (tcpHandles() is null).
 */
export interface TcpHandle {
  /** Functions only: the binding aborts the process on anything else. */
  onread: (this: TcpHandle) => void;
  onconnection: (error: number, client: TcpHandle | undefined) => void;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writev(req: WriteRequest, chunks: Uint8Array[], allBuffers: true): number;
  writeBuffer(req: WriteRequest, chunk: Uint8Array): number;
  shutdown(req: ShutdownRequest): number;
  close(callback?: () => void): void;
  setNoDelay(on: boolean): number;
  getpeername(out: { address?: string; port?: number }): number;
  getsockname(out: { address?: string; port?: number; family?: string }): number;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  listen(backlog: number): number;
}

export interface WriteRequest {
  handle: TcpHandle;
  oncomplete: (this: WriteRequest, status: number) => void;
  async: boolean;
  /** What the write must keep alive until it completes. */
  chunks: Uint8Array[] | null;
  done: (() => void) | null;
}

export interface ShutdownRequest {
  handle: TcpHandle;
  oncomplete: (this: ShutdownRequest, status: number) => void;
}

export interface TcpHandles {
  server(): TcpHandle;
  writeRequest(): WriteRequest;
  shutdownRequest(): ShutdownRequest;
  /** nread of the last read callback (negative: a libuv error, UV_EOF at the end of the stream). */
  lastRead(): number;
  /** Whether the last write was queued (its oncomplete follows) rather than done at once. */
  lastWriteAsync(): boolean;
}

interface Bindings {
  tcp: { TCP: new (type: number) => TcpHandle; constants: { SERVER: number } };
  stream: {
    WriteWrap: new () => WriteRequest;
    ShutdownWrap: new () => ShutdownRequest;
    streamBaseState: Int32Array;
    kReadBytesOrError: number;
    kLastWriteWasAsync: number;
  };
}

let handles: TcpHandles | null | undefined;

/** Node's TCP handle bindings, or null when this Node does not expose them as expected. */
export function tcpHandles(): TcpHandles | null {
  if (handles !== undefined) return handles;
  handles = null;
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding;
    const b: Bindings = { tcp: binding('tcp_wrap') as Bindings['tcp'], stream: binding('stream_wrap') as Bindings['stream'] };
    const { TCP, constants } = b.tcp;
    const { WriteWrap, ShutdownWrap, streamBaseState, kReadBytesOrError, kLastWriteWasAsync } = b.stream;
    if (typeof TCP !== 'function' || typeof WriteWrap !== 'function' || typeof ShutdownWrap !== 'function' || !(streamBaseState instanceof Int32Array)) return null;
    if (typeof TCP.prototype.useUserBuffer !== 'function' || typeof TCP.prototype.writev !== 'function') return null;
    handles = {
      server: () => new TCP(constants.SERVER),
      writeRequest: () => new WriteWrap(),
      shutdownRequest: () => new ShutdownWrap(),
      lastRead: () => streamBaseState[kReadBytesOrError]!,
      lastWriteAsync: () => streamBaseState[kLastWriteWasAsync] !== 0,
    };
  } catch {
    handles = null;
  }
  return handles;
}

/** Whether an accepted socket starts with its listener's TCP_NODELAY (Linux: the kernel clones the listener's options). */
export const NODELAY_INHERITED = process.platform === 'linux';

/** A libuv error number as Node names it (EADDRINUSE, ECONNRESET…). */
export const uvError = (status: number): string => getSystemErrorName(status);

/** A listening TCP handle: each accepted connection is handed to `accept`. */
export interface HandleServer {
  address(): AddressInfo;
  /** Stops accepting; resolves once every connection it accepted is closed (see connectionClosed). */
  close(): Promise<void>;
  /** An accepted connection's handle closed. */
  connectionClosed(): void;
}

/** Listens on `host` (an IP address) and `port`; throws with the libuv error's name. */
export function listenHandles(tcp: TcpHandles, host: string, port: number, accept: (client: TcpHandle, server: HandleServer) => void): HandleServer {
  const handle = tcp.server();
  const bound = isIP(host) === 6 ? handle.bind6(host, port, 0) : handle.bind(host, port);
  // Linux copies the listening socket's TCP_NODELAY to every socket it accepts: one setsockopt, not one per connection.
  if (bound === 0 && NODELAY_INHERITED) handle.setNoDelay(true);
  const listening = bound === 0 ? handle.listen(511) : bound;
  if (listening !== 0) {
    handle.close();
    throw new Error(`${bound === 0 ? 'listen' : 'bind'} ${uvError(listening)}`);
  }
  let open = 0;
  let closing: (() => void) | null = null;
  const server: HandleServer = {
    address() {
      const out: { address?: string; port?: number; family?: string } = {};
      handle.getsockname(out);
      return { address: out.address!, port: out.port!, family: out.family ?? 'IPv4' };
    },
    close() {
      return new Promise((resolve) => {
        closing = resolve;
        handle.close(() => {
          if (open === 0) resolve();
        });
      });
    },
    connectionClosed() {
      if (--open === 0) closing?.();
    },
  };
  handle.onconnection = (error, client) => {
    // An accept that failed (EMFILE…) leaves the connection in the backlog; libuv tries again.
    if (error !== 0 || !client) return;
    open++;
    accept(client, server);
  };
  return server;
}
