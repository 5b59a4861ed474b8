// An app that imports `arbormq/browser/inline` and is bundled with esbuild — no loader settings, no
// files copied by hand — runs in Chromium from a plain static server: the wasm core travels inside
// the bundle. Serving the one worker script (and passing workerUrl) gives it the SharedWorker too,
// to which the tab hands the core: arbor.wasm is never requested.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { buildBrowser, ROOT } from '../../scripts/build-browser.js';
import { launchChromium, serveFiles, skipWithoutChromium, type Chromium, type Site } from './harness.js';

const APP = `
import { createBroker } from 'arbormq/browser/inline';

const shared = new URLSearchParams(location.search).has('shared');
const broker = await createBroker({ store: 'memory', name: 'bundled-app', ...(shared ? { mode: 'shared-worker', workerUrl: '/arbormq-worker.js' } : {}) });
const client = await broker.connect({ clientId: 'app' });
const got = [];
await client.subscribe('app/#', { qos: 1 }, (m) => got.push(m.topic + ' ' + new TextDecoder().decode(m.payload)));
await client.publish('app/hello', 'from a bundled app', { qos: 1 });
while (got.length === 0) await new Promise((r) => setTimeout(r, 10));
window.result = { mode: broker.mode, got };
window.ready = true;
`;

interface AppWindow {
  result: { mode: string; got: string[] };
}

describe('an app bundled with esbuild', { skip: skipWithoutChromium }, () => {
  let dir: string;
  let site: Site;
  let browser: Chromium;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-app-'));
    // The package as npm installs it: package.json (its "exports") and the built dist/browser/.
    const pkg = join(dir, 'node_modules/arbormq');
    await mkdir(pkg, { recursive: true });
    await copyFile(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    await buildBrowser({ write: true, outDir: join(pkg, 'dist/browser') });
    await writeFile(join(dir, 'app.js'), APP);
    // What a newcomer writes: bundle, ESM, nothing else.
    await build({ absWorkingDir: dir, entryPoints: ['app.js'], bundle: true, format: 'esm', outfile: 'public/app.js', logLevel: 'silent' });
    site = await serveFiles(
      new Map([
        ['/', new TextEncoder().encode('<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/app.js"></script>')],
        ['/app.js', await readFile(join(dir, 'public/app.js'))],
        ['/arbormq-worker.js', await readFile(join(pkg, 'dist/browser/arbormq-worker.js'))],
      ]),
    );
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs its broker in the tab with the core inside the bundle: nothing next to it is fetched', async () => {
    const page = await browser.open(`${site.origin}/`);
    const result = await page.evaluate(() => (window as unknown as AppWindow).result);
    assert.deepEqual(result, { mode: 'tab', got: ['app/hello from a bundled app'] });
    assert.deepEqual(site.requests, ['/', '/app.js']);
    assert.deepEqual(browser.errors, []);
    await page.close();
  });

  it('shares a broker through the served worker script, which gets the core from the tab', async () => {
    site.requests.length = 0;
    const page = await browser.open(`${site.origin}/?shared`);
    const result = await page.evaluate(() => (window as unknown as AppWindow).result);
    assert.deepEqual(result, { mode: 'shared-worker', got: ['app/hello from a bundled app'] });
    assert.deepEqual(site.requests, ['/', '/app.js', '/arbormq-worker.js']);
    assert.deepEqual(browser.errors, []);
    await page.close();
  });
});
