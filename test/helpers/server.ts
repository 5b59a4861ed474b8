import { createServer } from 'node:net';
import type { IClientOptions, MqttClient } from 'mqtt';
import { ArborServer, type ServerOptions } from '../../host/node/server.js';
import { assertArenaEmpty, connectClient } from './broker.js';

/** A server with several listeners on ephemeral loopback ports, and clients that are closed with it. */
export interface TestServer {
  server: ArborServer;
  /** URL of the first listener of `protocol` (ws and wss with the /mqtt path unless `path`). */
  url(protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss', path?: string): string;
  port(protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss'): number;
  /** An MQTT.js client that is connected (or the connection error), ended by close(). */
  client(url: string, options?: IClientOptions): Promise<MqttClient>;
  /** Ends every client, closes the server, and asserts the arena holds nothing. */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<TestServer> {
  const server = await ArborServer.start(options);
  const clients: MqttClient[] = [];
  const port = (protocol: string): number => {
    const found = server.endpoints().find((e) => e.protocol === protocol);
    if (!found) throw new Error(`no ${protocol} listener`);
    return found.address.port;
  };
  return {
    server,
    port,
    url(protocol, path = '/mqtt') {
      const base = `${protocol}://127.0.0.1:${port(protocol)}`;
      return protocol === 'ws' || protocol === 'wss' ? `${base}${path}` : base;
    },
    async client(url, opts = {}) {
      const c = await connectClient(url, opts);
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await server.close();
      await assertArenaEmpty(server.broker.core);
    },
  };
}

/** Listener options on an ephemeral loopback port. */
export const local = { port: 0, host: '127.0.0.1' } as const;

/** The SUBACK codes for `filters` (MQTT.js rejects a 5.0 SUBACK with a failure code: read them from the error). */
export async function grantedCodes(client: MqttClient, filters: string[], qos: 0 | 1 | 2 = 0): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos })).map((g) => g.qos);
  } catch (error) {
    const packet = (error as { packet?: { granted?: number[] } }).packet;
    if (!packet?.granted) throw error;
    return packet.granted;
  }
}

/**
 * A loopback port that was free a moment ago: for a process that must come back on the same port, or
 * cannot report the one it got. It is drawn below Linux's ephemeral range (32768 and up): a port the
 * kernel hands out for `listen(0)` could go to any other process between this check and its use (a
 * cluster node of this very test once took its peer's that way).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 22_000);
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!free) continue;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }
}
