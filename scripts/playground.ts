// `npm run playground`: builds the playground page (playground/) with esbuild and serves it
// (gzip-compressed for browsers that take it) on http://localhost:8080, next to a Node ArborMQ
// (WebSocket + TCP listeners) that the page's bridge demo links to. The page learns where that
// broker is from /config.json.
//
//   npm run playground -- --port 8090 --host 0.0.0.0 --ws-port 8081 --mqtt-port 1884
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { ArborServer } from '../host/node/server.js';
import type { PlaygroundConfig } from '../playground/src/config.js';
import { noNodeBuiltins, ROOT, WASM } from './build-browser.js';

export const PLAYGROUND_DIR = join(ROOT, 'playground');

export interface PlaygroundOptions {
  /** HTTP port of the page (default 8080; 0 = any free port). */
  port?: number;
  /** Where both the page and the Node broker listen (default "localhost"). */
  host?: string;
  /** The Node broker's WebSocket port (default 0: any free port, told to the page). */
  wsPort?: number;
  /** The Node broker's TCP port (default 0). */
  mqttPort?: number;
}

export interface Playground {
  /** The page, e.g. http://localhost:8080/ */
  url: string;
  /** The Node broker's WebSocket endpoint and TCP address. */
  wsUrl: string;
  mqttUrl: string;
  /** The Node broker the bridge demo talks to. */
  server: ArborServer;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

/** The page's files by URL path: index.html, styles.css, the bundled TypeScript (and its map), arbor.wasm. */
export async function buildPlayground(): Promise<Map<string, Uint8Array>> {
  if (!existsSync(WASM)) buildWasm();
  const result = await build({
    entryPoints: [join(PLAYGROUND_DIR, 'src/main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome100', 'firefox110', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    outfile: join(PLAYGROUND_DIR, 'dist/playground.js'),
    write: false,
    logLevel: 'silent',
    plugins: [noNodeBuiltins],
  });
  const files = new Map<string, Uint8Array>();
  for (const f of result.outputFiles) files.set(`/${f.path.slice(f.path.lastIndexOf('/') + 1)}`, f.contents);
  files.set('/', await readFile(join(PLAYGROUND_DIR, 'index.html')));
  files.set('/styles.css', await readFile(join(PLAYGROUND_DIR, 'styles.css')));
  files.set('/arbor.wasm', await readFile(WASM));
  return files;
}

/** A fresh clone that skipped `npm ci`'s build still gets a playground: build the wasm core first. */
function buildWasm(): void {
  process.stderr.write('playground: build/arbor.wasm is missing, running `npm run build:wasm`\n');
  const result = spawnSync('npm', ['run', 'build:wasm'], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) throw new Error('`npm run build:wasm` failed');
}

/** Builds the page, starts the Node broker and serves both; close() stops everything. */
export async function startPlayground(options: PlaygroundOptions = {}): Promise<Playground> {
  const host = options.host ?? 'localhost';
  const files = await buildPlayground();
  const server = await ArborServer.start({
    listeners: [
      { protocol: 'ws', port: options.wsPort ?? 0, host },
      { port: options.mqttPort ?? 0, host },
    ],
    shutdownTimeoutMs: 2000,
  });
  const [ws, tcp] = server.addresses();
  const config: PlaygroundConfig = { wsPort: ws!.port, wsPath: '/mqtt', mqttPort: tcp!.port };
  files.set('/config.json', new TextEncoder().encode(JSON.stringify(config)));

  // Compressed once, here: the page's files are fixed while it is served.
  const gzipped = new Map([...files].map(([path, body]) => [path, gzipSync(body, { level: 9 })]));
  const http: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const key = path === '/index.html' ? '/' : path;
    const plain = req.method === 'GET' || req.method === 'HEAD' ? files.get(key) : undefined;
    if (!plain) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? gzipped.get(key)! : plain;
    const ext = path.includes('.') ? path.slice(path.lastIndexOf('.')) : '.html';
    res.writeHead(200, {
      'Content-Type': TYPES[ext] ?? 'application/octet-stream',
      'Content-Length': body.length,
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
      Vary: 'Accept-Encoding',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.port ?? 8080, host, resolve);
    });
  } catch (error) {
    await server.close();
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new Error(`port ${options.port ?? 8080} is in use: pick another with --port`);
    throw error;
  }
  const port = (http.address() as AddressInfo).port;
  const display = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${display}:${port}/`,
    wsUrl: `ws://${display}:${config.wsPort}${config.wsPath}`,
    mqttUrl: `mqtt://${display}:${config.mqttPort}`,
    server,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
        await server.close();
      })();
      return closing;
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: 'localhost' },
      'ws-port': { type: 'string', default: '0' },
      'mqtt-port': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('npm run playground -- [--port 8080] [--host localhost] [--ws-port 0] [--mqtt-port 0]\n');
    return;
  }
  const port = (name: string, text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be a port number (0-65535), not "${text}"`);
    return n;
  };
  const playground = await startPlayground({
    port: port('port', values.port),
    host: values.host,
    wsPort: port('ws-port', values['ws-port']),
    mqttPort: port('mqtt-port', values['mqtt-port']),
  });
  process.stdout.write(
    `ArborMQ playground: ${playground.url}\n` +
      `  the bridge demo's Node broker: ${playground.wsUrl} (WebSocket), ${playground.mqttUrl} (e.g. mosquitto_sub -p ${new URL(playground.mqttUrl).port} -t 'outbox/#' -v)\n` +
      '  Ctrl-C stops both.\n',
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    playground.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`playground: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
