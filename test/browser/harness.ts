// Real Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against pages served from
// 127.0.0.1: the `arbormq/browser` bundles built from the sources in memory (so tests never run a
// stale dist/), build/arbor.wasm, MQTT.js's browser build, and per-test page scripts.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildBrowser, noNodeBuiltins, ROOT, WASM } from '../../scripts/build-browser.js';

export const CHROMIUM = '/usr/bin/chromium';

/** The reason browser tests skip, or false when Chromium is there. */
export const skipWithoutChromium: string | false = existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM} (apt-get install chromium)`;

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.html': 'text/html; charset=utf-8',
  '.map': 'application/json',
};

/** The test page: loads the bundle (and MQTT.js) as an app would, then sets `ready`. */
const INDEX_HTML = `<!doctype html>
<meta charset="utf-8">
<title>ArborMQ browser test</title>
<script type="module">
  window.arbormq = await import('/dist/arbormq.js');
  window.mqtt = (await import('/mqtt.esm.js')).default;
  window.ready = true;
</script>`;

/** What the test page puts on `window` (see INDEX_HTML): read it as `window as unknown as PageGlobals`. */
export interface PageGlobals {
  arbormq: typeof import('../../host/browser/index.js');
  mqtt: typeof import('mqtt').default;
}

export interface Site {
  /** http://127.0.0.1:port */
  origin: string;
  /** The paths requested so far, in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves the test site on an ephemeral loopback port. `pages` adds page scripts bundled from test
 * sources (`/name.js` → entry file), each with a page `/name.html` that runs it.
 */
export async function startSite(pages: Record<string, string> = {}): Promise<Site> {
  const files = new Map<string, Uint8Array>();
  for (const [name, bytes] of (await buildBrowser({ write: false })).files) files.set(`/dist/${name}`, bytes);
  files.set('/dist/arbor.wasm', await readFile(WASM));
  files.set('/mqtt.esm.js', await readFile(join(ROOT, 'node_modules/mqtt/dist/mqtt.esm.js')));
  files.set('/', new TextEncoder().encode(INDEX_HTML));
  for (const [path, entry] of Object.entries(pages)) {
    const result = await build({ entryPoints: [join(ROOT, entry)], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, plugins: [noNodeBuiltins], logLevel: 'silent' });
    files.set(path, result.outputFiles[0]!.contents);
    files.set(path.replace(/\.js$/, '.html'), new TextEncoder().encode(`<!doctype html><meta charset="utf-8"><script type="module" src="${path}"></script>`));
  }
  return serveFiles(files);
}

/** Serves `files` (URL path → bytes; "/" is the index page) on an ephemeral loopback port, uncached. */
export async function serveFiles(files: Map<string, Uint8Array>): Promise<Site> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(path);
    const body = files.get(path);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const ext = path.slice(path.lastIndexOf('.'));
    res.writeHead(200, { 'Content-Type': TYPES[ext] ?? 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface Chromium {
  context: BrowserContext;
  /** Uncaught errors of the pages so far. */
  errors: string[];
  /** A new tab on `url` (default the test page), waiting until the page set `window.ready`. */
  open(url: string): Promise<Page>;
  close(): Promise<void>;
}

/** A temporary browser profile directory; remove it with removeProfile. */
export const makeProfile = (): Promise<string> => mkdtemp(join(tmpdir(), 'arbormq-chromium-'));
export const removeProfile = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true });

/**
 * Chromium with a fresh profile in a temporary directory, removed on close — or, given `profile`,
 * on that directory, left in place (to restart the browser on the same IndexedDB).
 */
export async function launchChromium(options: { profile?: string } = {}): Promise<Chromium> {
  const profile = options.profile ?? (await makeProfile());
  const owned = options.profile === undefined;
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  } catch (error) {
    if (owned) await removeProfile(profile);
    throw error;
  }
  // Functions given to page.evaluate are compiled by tsx, which may wrap them in esbuild's __name helper.
  await context.addInitScript('globalThis.__name = (f) => f;');
  const errors: string[] = [];
  context.on('weberror', (e) => errors.push(e.error().message));
  return {
    context,
    errors,
    async open(url: string) {
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);
      await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, { timeout: 10_000 });
      return page;
    },
    async close() {
      try {
        await context.close();
      } finally {
        if (owned) await removeProfile(profile);
      }
    },
  };
}

/** The test site and one Chromium on it, started before the enclosing describe()'s tests and closed after them. */
export interface ChromiumOnSite {
  /** A new tab on the site's test page. */
  open(): Promise<Page>;
  /** Uncaught errors of the pages so far. */
  readonly errors: string[];
}

export function chromiumOnSite(): ChromiumOnSite {
  let site: Site | undefined;
  let browser: Chromium | undefined;
  before(async () => {
    site = await startSite();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
  });
  return {
    open: () => browser!.open(`${site!.origin}/`),
    get errors() {
      return browser!.errors;
    },
  };
}

/** Reloads a test page and waits until it is ready again. */
export async function reload(page: Page): Promise<void> {
  await page.reload();
  await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, { timeout: 10_000 });
}
