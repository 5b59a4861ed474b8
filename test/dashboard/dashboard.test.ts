// The dashboard in real Chromium, served by a running server (its files built from the sources for
// this run): it loads without a console error, a client that connects shows within a second, the
// Disconnect button disconnects it (0x98), and the bridges and the playground's inspector views show.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { buildDashboard } from '../../scripts/build-dashboard.js';
import { connectClient } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';
import { local, startServer, type TestServer } from '../helpers/server.js';
import { launchChromium, skipWithoutChromium, type Chromium } from '../browser/harness.js';

const DASHBOARD_TOKEN = 'dashboard-test-token-0123456789';

/** A page of `browser` whose console errors and uncaught exceptions collect in `errors`. */
async function openPage(browser: Chromium, errors: string[]): Promise<Page> {
  const page = await browser.context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return page;
}

describe('the dashboard in Chromium', { skip: skipWithoutChromium }, () => {
  let dir: string;
  let remote: TestServer;
  let s: TestServer;
  let browser: Chromium;
  let base: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-dashboard-'));
    await buildDashboard({ write: true, outDir: join(dir, 'dashboard') });
    await writeFile(join(dir, 'admin.token'), DASHBOARD_TOKEN);
    remote = await startServer({ listeners: [local] });
    s = await startServer({
      listeners: [local],
      http: { port: 0, adminTokenFile: join(dir, 'admin.token'), dashboardDir: join(dir, 'dashboard') },
      bridges: [{ name: 'cloud', url: remote.url('mqtt'), clientId: 'dashboard-site', backoff: { initialMs: 50, maxMs: 200 }, topics: [{ filter: 'up/#', direction: 'out' }] }],
      memory: true,
    });
    base = `http://127.0.0.1:${s.server.httpAddress()!.port}`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await s?.close();
    await remote?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads without console errors, shows a client within a second of its CONNECT, and disconnects it with 0x98 from the page', async () => {
    const errors: string[] = [];
    const page = await openPage(browser, errors);
    await page.goto(`${base}/dashboard/#token=${DASHBOARD_TOKEN}`);
    await page.waitForSelector('html[data-state=ready]', { timeout: 10_000 });
    assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');

    const visitor = await connectClient(s.url('mqtt'), { clientId: 'visitor', protocolVersion: 5 });
    const connectedAt = Date.now();
    try {
      await visitor.subscribeAsync('up/#', { qos: 1 });
      const row = page.locator('#connection-list tr[data-client="visitor"]');
      await row.waitFor({ timeout: 1000 });
      assert.ok(Date.now() - connectedAt <= 1000, `shown after ${Date.now() - connectedAt} ms`);

      const reason = new Promise<number | undefined>((resolve) => {
        visitor.once('disconnect', (packet) => resolve(packet.reasonCode));
        visitor.once('close', () => resolve(undefined));
      });
      await page.getByRole('button', { name: 'Disconnect visitor' }).click();
      assert.equal(await reason, 0x98);
      await row.waitFor({ state: 'detached', timeout: 5000 });
      assert.equal(s.server.broker.sessions.get('visitor')?.outlet ?? null, null);
      assert.deepEqual(errors, []);
    } finally {
      await visitor.endAsync(true);
      await page.close();
    }
  });

  it("shows the bridges and the playground's inspector views: throughput, topic tree, sessions, arena", async () => {
    const errors: string[] = [];
    const page = await openPage(browser, errors);
    const app = await connectClient(s.url('mqtt'), { clientId: 'sensor', protocolVersion: 5 });
    try {
      await app.publishAsync('up/kitchen/temperature', '21.5', { qos: 1, retain: true });
      await page.goto(`${base}/dashboard/#token=${DASHBOARD_TOKEN}`);
      await page.waitForSelector('html[data-state=ready]', { timeout: 10_000 });
      await page.locator('#bridge-list tr[data-bridge="cloud"] [data-state="online"]').waitFor({ timeout: 5000 });
      await page.locator('#inspector .topic-tree').getByText('temperature', { exact: true }).waitFor({ timeout: 5000 });
      await page.locator('#inspector table.sessions tr[data-session="bridge:cloud"]').waitFor({ timeout: 5000 });
      for (const title of ['Throughput', 'Topic tree', 'Sessions and their queues', 'Arena']) {
        assert.equal(await page.getByRole('heading', { name: title, exact: true }).count(), 1, title);
      }
      await until(() => s.server.bridgeReports()[0]!.sent === 1);
      await page.locator('#bridge-list tr[data-bridge="cloud"] td.num').nth(1).filter({ hasText: /^1$/ }).waitFor({ timeout: 5000 });
      assert.deepEqual(errors, []);
    } finally {
      await app.endAsync();
      await page.close();
    }
  });

  it('asks for the token when the address carries none, and opens with the one typed in', async () => {
    const errors: string[] = [];
    const page = await openPage(browser, errors);
    try {
      await page.goto(`${base}/dashboard/`);
      await page.waitForSelector('html[data-state=login]', { timeout: 10_000 });
      const form = page.getByRole('form', { name: 'Admin token' });
      await form.getByLabel('Token').fill(DASHBOARD_TOKEN);
      await form.getByRole('button', { name: 'Open the dashboard' }).click();
      await page.waitForSelector('html[data-state=ready]', { timeout: 10_000 });
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });
});
