// `npm run playground:screenshot [-- --scene readme|examples] [-- out.png]`: starts the playground on
// free ports, plays a scene in Chromium and saves a picture of it.
//
//   readme (default): two clients, a retained QoS 2 message, QoS 1 messages with 5.0 properties —
//                     the README's picture, docs/playground.png.
//   examples:         the four guided examples run one after another — the whole page afterwards,
//                     test-artifacts/playground-examples.png.
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launchChromium, skipWithoutChromium } from '../test/browser/harness.js';
import { PlaygroundPage } from '../test/playground/driver.js';
import { ROOT } from './build-browser.js';
import { startPlayground } from './playground.js';

type Scene = (page: PlaygroundPage, out: string) => Promise<void>;

const SCENES = {
  async readme(page, out) {
    await page.page.setViewportSize({ width: 1440, height: 1720 });
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
  },
  async examples(page, out) {
    await page.page.setViewportSize({ width: 1440, height: 1000 });
    for (const id of ['retained', 'will', 'shared', 'request-response'] as const) await page.runExample(id);
    await page.waitForMessages('requester', 1);
    // One inspector poll later, the broker's insides show the last example's state.
    await page.page.waitForTimeout(600);
    await page.page.screenshot({ path: out, fullPage: true });
  },
} satisfies Record<string, Scene>;

export type SceneName = keyof typeof SCENES;

export const DEFAULT_OUT: Record<SceneName, string> = {
  readme: join(ROOT, 'docs/playground.png'),
  examples: join(ROOT, 'test-artifacts/playground-examples.png'),
};

export async function takeScreenshot(scene: SceneName, out: string): Promise<void> {
  if (skipWithoutChromium) throw new Error(skipWithoutChromium);
  const playground = await startPlayground({ port: 0, host: '127.0.0.1' });
  try {
    const browser = await launchChromium();
    try {
      const page = await PlaygroundPage.open(browser.context, playground.url);
      await SCENES[scene](page, out);
      if (page.errors.length > 0) throw new Error(`the page reported errors: ${page.errors.join('; ')}`);
    } finally {
      await browser.close();
    }
  } finally {
    await playground.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({ options: { scene: { type: 'string', default: 'readme' } }, allowPositionals: true });
  const scene = values.scene as SceneName;
  if (!(scene in SCENES)) {
    process.stderr.write(`playground:screenshot: --scene must be one of ${Object.keys(SCENES).join(', ')}\n`);
    process.exit(2);
  }
  const out = resolve(positionals[0] ?? DEFAULT_OUT[scene]);
  takeScreenshot(scene, out).then(
    () => process.stdout.write(`playground screenshot: ${out}\n`),
    (error: unknown) => {
      process.stderr.write(`playground:screenshot: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
