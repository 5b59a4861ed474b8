import { createServer, type AddressInfo, type Server } from 'node:net';
import { Broker } from '../core/broker.js';
import type { BrokerOptions } from '../core/options.js';
import type { Store } from '../core/store.js';
import { loadNodeCore } from './load-core.js';
import { SocketTransport } from './socket-transport.js';

export interface TcpListenerOptions {
  port: number;
  host?: string;
}

export interface ServerOptions extends Partial<BrokerOptions> {
  listeners?: TcpListenerOptions[];
  arenaCapBytes?: number;
  /** Where state persists (default: in memory). */
  store?: Store;
}

/** A broker with its network listeners, as `arbormq` runs it. */
export class ArborServer {
  private constructor(
    readonly broker: Broker,
    private readonly servers: Server[],
  ) {}

  static async start(options: ServerOptions = {}): Promise<ArborServer> {
    const core = await loadNodeCore({ arenaCapBytes: options.arenaCapBytes });
    const broker = new Broker(core, options, options.store);
    await broker.start();
    const servers: Server[] = [];
    try {
      for (const listener of options.listeners ?? [{ port: 1883 }]) {
        servers.push(await listenTcp(broker, listener));
      }
    } catch (error) {
      for (const s of servers) s.close();
      await broker.close();
      throw error;
    }
    return new ArborServer(broker, servers);
  }

  /** Bound addresses, in listener order (port 0 resolves to the port the OS chose). */
  addresses(): AddressInfo[] {
    return this.servers.map((s) => s.address() as AddressInfo);
  }

  get port(): number {
    return this.addresses()[0]!.port;
  }

  /** Stops listening, disconnects every client (0x8B for 5.0), releases all state. */
  async close(): Promise<void> {
    const closed = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    await this.broker.close();
    await Promise.all(closed);
  }
}

function listenTcp(broker: Broker, options: TcpListenerOptions): Promise<Server> {
  const server = createServer((socket) => broker.accept(new SocketTransport(socket)));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
