import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.png': 'image/png',
};

/**
 * The dashboard's static files (built by `npm run build` into dist/dashboard/), read once at start
 * and served from memory, gzip-compressed for browsers that take it. They hold no data: the page
 * asks the admin API for everything, with the token.
 */
export class DashboardFiles {
  private constructor(
    private readonly files: Map<string, { type: string; plain: Buffer; gzip: Buffer }>,
    private readonly missing: string | null,
  ) {}

  /** The files of `dir`; a missing directory leaves /dashboard answering why. */
  static async load(dir: string): Promise<DashboardFiles> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      return new DashboardFiles(new Map(), `the dashboard is not built (${(error as Error).message}): run \`npm run build\``);
    }
    const files = new Map<string, { type: string; plain: Buffer; gzip: Buffer }>();
    for (const name of names) {
      const ext = name.slice(name.lastIndexOf('.'));
      if (!(ext in TYPES)) continue;
      const plain = await readFile(join(dir, name));
      files.set(name === 'index.html' ? '' : name, { type: TYPES[ext]!, plain, gzip: gzipSync(plain, { level: 9 }) });
    }
    return new DashboardFiles(files, null);
  }

  /** Answers `GET /dashboard` (the page) and `/dashboard/{file}`. */
  serve(path: string, req: IncomingMessage, res: ServerResponse): void {
    // Relative URLs in the page resolve under /dashboard/.
    if (path === '/dashboard') {
      res.writeHead(308, { Location: '/dashboard/' }).end();
      return;
    }
    const file = this.files.get(path.slice('/dashboard/'.length));
    if (!file) {
      res.writeHead(this.missing ? 503 : 404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${this.missing ?? 'not found'}\n`);
      return;
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? file.gzip : file.plain;
    res.writeHead(200, {
      'Content-Type': file.type,
      'Content-Length': body.length,
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
      Vary: 'Accept-Encoding',
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
      'X-Frame-Options': 'DENY',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
