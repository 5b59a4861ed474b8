import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Destroys every connection through the proxy (both ends see a reset); new ones are accepted. */
  cut(): void;
  /** Cuts every connection and refuses new ones until heal(): a network partition. */
  partition(): void;
  heal(): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy to `targetPort` whose connections a test can cut. */
export async function startProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let partitioned = false;
  const server = createServer((inbound) => {
    if (partitioned) {
      inbound.resetAndDestroy();
      return;
    }
    const outbound = createConnection(targetPort, '127.0.0.1');
    for (const [a, b] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      sockets.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy: TcpProxy = {
    port: (server.address() as { port: number }).port,
    cut() {
      for (const socket of sockets) socket.resetAndDestroy();
    },
    partition() {
      partitioned = true;
      proxy.cut();
    },
    heal() {
      partitioned = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return proxy;
}
