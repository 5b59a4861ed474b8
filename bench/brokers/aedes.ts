// Aedes (in-memory persistence, defaults) in its own process for the benchmark.

import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { observeGc, serve } from './probe.js';

// aedes does not export ./package.json: read it from node_modules.
const pkg = new URL('../../node_modules/aedes/package.json', import.meta.url);
const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;

observeGc();
const aedes = await Aedes.createBroker();
// Nagle off, as ArborMQ and Mosquitto (set_tcp_nodelay) run: otherwise latency compares Nagle, not brokers.
const server = createServer({ noDelay: true }, (socket) => aedes.handle(socket));
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => resolve());
});

serve(
  { port: (server.address() as AddressInfo).port, pid: process.pid, info: { version, options: 'defaults (concurrency 100, in-memory persistence)' } },
  () => ({ connections: aedes.connectedClients }),
);
