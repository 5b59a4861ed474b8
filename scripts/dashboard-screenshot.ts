// `npm run dashboard:screenshot [-- out.png]`: starts a server with the admin API, two bridges and a
// few clients at work, opens its dashboard in Chromium and saves the README's picture
// (docs/dashboard.png by default).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { ArborServer } from '../host/node/server.js';
import { launchChromium, skipWithoutChromium } from '../test/browser/harness.js';
import { ROOT } from './build-browser.js';
import { buildDashboard } from './build-dashboard.js';

const TOKEN = 'screenshot-token-0123456789abcdef';

export async function takeDashboardScreenshot(out: string): Promise<void> {
  if (skipWithoutChromium) throw new Error(skipWithoutChromium);
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-dashboard-shot-'));
  const cloud = await ArborServer.start({ listeners: [{ port: 0, host: '127.0.0.1' }], memory: true });
  let server: ArborServer | undefined;
  const clients: mqtt.MqttClient[] = [];
  try {
    await buildDashboard({ write: true, outDir: join(dir, 'dashboard') });
    await writeFile(join(dir, 'admin.token'), TOKEN);
    server = await ArborServer.start({
      listeners: [{ port: 0, host: '127.0.0.1' }],
      http: { port: 0, adminTokenFile: join(dir, 'admin.token'), dashboardDir: join(dir, 'dashboard') },
      memory: true,
      bridges: [
        { name: 'cloud', url: `mqtt://127.0.0.1:${cloud.port}`, clientId: 'plant-7', topics: [{ filter: 'plant/#', direction: 'out', remotePrefix: 'sites/7/' }] },
        { name: 'backup', url: 'mqtts://127.0.0.1:1', clientId: 'plant-7', backoff: { initialMs: 1000, maxMs: 5000 }, topics: [{ filter: 'plant/alarms/#', direction: 'out' }] },
      ],
    });
    const url = `mqtt://127.0.0.1:${server.port}`;
    const connect = async (clientId: string, options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> => {
      const c = await mqtt.connectAsync(url, { clientId, protocolVersion: 5, reconnectPeriod: 0, ...options });
      clients.push(c);
      return c;
    };
    const panel = await connect('control-panel', { keepalive: 30 });
    await panel.subscribeAsync(['plant/+/temperature', 'plant/alarms/#'], { qos: 1 });
    const historian = await connect('historian', { clean: false, properties: { sessionExpiryInterval: 3600 } });
    await historian.subscribeAsync('plant/#', { qos: 1 });
    const line = await connect('line-3', { protocolVersion: 4, keepalive: 15 });
    for (const [topic, value] of [
      ['plant/boiler/temperature', '81.4'],
      ['plant/press/temperature', '36.0'],
      ['plant/boiler/state', 'running'],
    ]) {
      await line.publishAsync(topic!, value!, { qos: 1, retain: true });
    }
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
      await page.setViewportSize({ width: 1440, height: 1180 });
      await page.goto(`http://127.0.0.1:${server.httpAddress()!.port}/dashboard/#token=${TOKEN}`);
      await page.waitForSelector('html[data-state=ready]');
      await page.locator('#bridge-list [data-state="online"]').waitFor();
      // Traffic for the throughput counters: a burst the next two states see as a rate.
      for (let i = 0; i < 40; i++) await line.publishAsync('plant/press/temperature', (36 + i / 10).toFixed(1), { qos: 1 });
      await page.waitForTimeout(600);
      if (errors.length > 0) throw new Error(`the page reported errors: ${errors.join('; ')}`);
      await page.screenshot({ path: out });
    } finally {
      await browser.close();
    }
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await server?.close();
    await cloud.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = resolve(process.argv[2] ?? join(ROOT, 'docs/dashboard.png'));
  takeDashboardScreenshot(out).then(
    () => process.stdout.write(`dashboard screenshot: ${out}\n`),
    (error: unknown) => {
      process.stderr.write(`dashboard:screenshot: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
