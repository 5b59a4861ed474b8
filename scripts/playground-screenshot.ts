// `npm run playground:screenshot [-- out.png]`: starts the playground on free ports, plays a short
// scene in Chromium (two clients, a retained QoS 2 message, a QoS 1 message with 5.0 properties)
// and saves the README's picture, docs/playground.png by default.
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, skipWithoutChromium } from '../test/browser/harness.js';
import { PlaygroundPage } from '../test/playground/driver.js';
import { ROOT } from './build-browser.js';
import { startPlayground } from './playground.js';

const VIEWPORT = { width: 1440, height: 1720 };

export async function takeScreenshot(out: string): Promise<void> {
  if (skipWithoutChromium) throw new Error(skipWithoutChromium);
  const playground = await startPlayground({ port: 0, host: '127.0.0.1' });
  try {
    const browser = await launchChromium();
    try {
      const page = await PlaygroundPage.open(browser.context, playground.url);
      await page.page.setViewportSize(VIEWPORT);
      await page.createClient('dashboard');
      await page.createClient('sensor', { will: { topic: 'home/kitchen/status', payload: 'offline', retain: true } });
      await page.page.getByLabel('Leave a will message').uncheck();
      await page.subscribe('dashboard', 'home/#', { qos: 2 });
      await page.publish('sensor', 'home/kitchen/temperature', '21.5', { qos: 2, retain: true });
      for (let i = 1; i <= 4; i++) await page.publish('sensor', 'home/hall/motion', `detected ${i}`, { qos: 1, contentType: 'text/plain', userProperties: 'zone=hall' });
      await page.waitForMessages('dashboard', 5);
      // One inspector poll later, the throughput counters show the burst as a rate.
      await page.page.waitForTimeout(450);
      await page.page.evaluate(() => window.scrollTo(0, 0));
      // The dashboard's packet log shows the QoS 2 handshake whole (logs otherwise follow the newest entry).
      await page
        .card('dashboard')
        .locator('li.flow', { hasText: 'received QoS 2' })
        .evaluate((li) => (li.parentElement!.scrollTop = (li as HTMLElement).offsetTop - li.parentElement!.offsetTop - 6));
      await page.page.screenshot({ path: out });
      if (page.errors.length > 0) throw new Error(`the page reported errors: ${page.errors.join('; ')}`);
    } finally {
      await browser.close();
    }
  } finally {
    await playground.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = resolve(process.argv[2] ?? join(ROOT, 'docs/playground.png'));
  takeScreenshot(out).then(
    () => process.stdout.write(`playground screenshot: ${out}\n`),
    (error: unknown) => {
      process.stderr.write(`playground:screenshot: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
