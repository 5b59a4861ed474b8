// The IndexedDB store passes the same Store cases as MemoryStore and LevelStore, in real Chromium.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { storeCases } from '../core/store-cases.js';
import { launchChromium, skipWithoutChromium, startSite, type Chromium, type Site } from './harness.js';

describe('Store contract: IdbStore (Chromium)', { skip: skipWithoutChromium }, () => {
  let site: Site;
  let browser: Chromium;
  let page: Page;
  before(async () => {
    site = await startSite({ '/store-cases.js': 'test/browser/pages/store-cases.ts' });
    browser = await launchChromium();
    page = await browser.open(`${site.origin}/store-cases.html`);
  });
  after(async () => {
    await browser?.close();
    await site?.close();
  });

  for (const name of Object.keys(storeCases)) {
    it(name, async () => {
      const result = await page.evaluate((n) => (window as unknown as { runStoreCase(n: string): Promise<{ ok: boolean; error?: string }> }).runStoreCase(n), name);
      assert.ok(result.ok, result.error);
    });
  }
});
