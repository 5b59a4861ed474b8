// The browser bundles: built from host/browser with esbuild, free of Node built-ins (the build
// refuses them), each mode's download within its budget, and in Chromium a page loads only what
// its mode needs — in SharedWorker mode neither the broker's code nor the wasm.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { buildBrowser, modeDownloads, noNodeBuiltins, overBudget, WASM } from '../../scripts/build-browser.js';
import { chromiumOnSite, skipWithoutChromium, type PageGlobals } from './harness.js';

describe('the browser bundle', () => {
  it('fails to build when a Node built-in is imported, naming the importer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbormq-bundle-'));
    try {
      for (const specifier of ['node:fs', 'fs', 'node:crypto', 'buffer']) {
        const entry = join(dir, 'entry.ts');
        await writeFile(entry, `import * as m from '${specifier}';\nexport const x = m;\n`);
        await assert.rejects(
          build({ entryPoints: [entry], bundle: true, platform: 'browser', write: false, logLevel: 'silent', plugins: [noNodeBuiltins] }),
          (e: { errors?: { text: string }[] }) => e.errors?.some((x) => x.text.includes(`Node built-in "${specifier}"`) && x.text.includes('entry.ts')) === true,
          specifier,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('builds the module entries and the worker without Node built-ins, and each mode stays within its budget', async () => {
    const built = await buildBrowser({ write: false });
    const text = (file: string): string => new TextDecoder().decode(built.files.get(file));
    // The default asset locations are computed at run time from the module's own URL.
    assert.match(text('arbormq.js'), /import\.meta\.url/);
    assert.doesNotMatch(text('arbormq-worker.js'), /import\.meta/, 'the worker is a classic script');
    assert.doesNotMatch(text('arbormq-inline.js'), /arbor\.wasm/, 'the inline entry fetches no wasm');
    const downloads = modeDownloads(built, await readFile(WASM));
    assert.deepEqual(downloads.map((d) => d.mode), ['tab', 'shared-worker', 'inline']);
    for (const d of downloads) assert.equal(overBudget(d), null);
    const [tab, shared] = downloads;
    const files = (sizes: { file: string }[]): string[] => sizes.map((s) => s.file);
    assert.ok(files(tab!.page).some((f) => f.startsWith('arbormq-local-broker-')), 'in the tab, the page loads the broker');
    assert.ok(!files(shared!.page).some((f) => f.startsWith('arbormq-local-broker-') || f === 'arbor.wasm'), 'a SharedWorker page does not');
  });
});

describe('what a page downloads, in Chromium', { skip: skipWithoutChromium }, () => {
  const browser = chromiumOnSite();

  /** Starts a broker in a fresh tab, checks it works, and lists the /dist/ files the page itself fetched. */
  const pageDownloads = async (mode: 'tab' | 'shared-worker'): Promise<string[]> => {
    const page: Page = await browser.open();
    const result = await page.evaluate(async (mode) => {
      const { arbormq } = window as unknown as PageGlobals;
      const broker = await arbormq.createBroker({ mode, store: 'memory', name: `downloads-${mode}` });
      const c = await broker.connect({ clientId: 'c' });
      let got = '';
      await c.subscribe('d/#', { qos: 1 }, (m) => void (got = new TextDecoder().decode(m.payload)));
      await c.publish('d/1', 'delivered', { qos: 1 });
      for (let i = 0; i < 100 && !got; i++) await new Promise((r) => setTimeout(r, 10));
      await c.end();
      await broker.close();
      return { mode: broker.mode, got, resources: performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname) };
    }, mode);
    await page.close();
    assert.equal(result.mode, mode);
    assert.equal(result.got, 'delivered');
    return result.resources.filter((p) => p.startsWith('/dist/')).map((p) => p.slice('/dist/'.length).replace(/-[A-Z0-9]{8}\.js$/, '-*.js'));
  };

  it('in SharedWorker mode the page fetches the client side only: not the broker chunk, not the wasm', async () => {
    assert.deepEqual((await pageDownloads('shared-worker')).sort(), ['arbormq-chunk-*.js', 'arbormq.js']);
  });

  it('in tab mode the page fetches the broker chunk and the wasm as well', async () => {
    assert.deepEqual((await pageDownloads('tab')).sort(), ['arbor.wasm', 'arbormq-chunk-*.js', 'arbormq-local-broker-*.js', 'arbormq.js']);
  });
});
