// The "Browser" section of bench/RESULTS.md: what each way of running the broker downloads (the
// page's files and the SharedWorker's, raw and gzip) and in-tab throughput between two in-page
// clients of the native client, measured in Chromium (/usr/bin/chromium).
//
//   npm run bench -- --scenarios browser [--quick]     (through bench/run.ts)
//   node --import tsx bench/browser.ts [--quick] [--out FILE]
//
// Either way only the "## Browser" section of the file is replaced (or added before "## Notes").

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { BUDGETS, buildBrowser, modeDownloads, ROOT, WASM, type FileSize, type ModeDownload } from '../scripts/build-browser.js';
import { launchChromium, skipWithoutChromium, startSite, type PageGlobals } from '../test/browser/harness.js';

export interface ThroughputCase {
  label: string;
  mode: 'tab' | 'shared-worker';
  store: 'memory' | 'indexeddb';
  durability?: 'strict' | 'relaxed';
  qos: 0 | 1;
  /** The subscriber has a persistent session, so each QoS 1 delivery is written to the store. */
  persistent: boolean;
}

export interface ThroughputRow extends ThroughputCase {
  /** Median of the windows. */
  rate: number;
  rates: number[];
}

export interface BrowserOutcome {
  ok: boolean;
  error?: string;
  quick: boolean;
  chromium?: string;
  date: string;
  downloads: ModeDownload[];
  throughput: ThroughputRow[];
  timing: { warmupMs: number; windowMs: number; windows: number; payloadBytes: number };
}

const PAYLOAD_BYTES = 64;

export const CASES: ThroughputCase[] = [
  { label: 'in the tab, memory store', mode: 'tab', store: 'memory', qos: 0, persistent: false },
  { label: 'in the tab, memory store', mode: 'tab', store: 'memory', qos: 1, persistent: false },
  { label: 'SharedWorker (clients in the tab), memory store', mode: 'shared-worker', store: 'memory', qos: 0, persistent: false },
  { label: 'SharedWorker (clients in the tab), memory store', mode: 'shared-worker', store: 'memory', qos: 1, persistent: false },
  { label: 'in the tab, IndexedDB (relaxed), persistent subscriber', mode: 'tab', store: 'indexeddb', durability: 'relaxed', qos: 1, persistent: true },
  { label: 'in the tab, IndexedDB (strict), persistent subscriber', mode: 'tab', store: 'indexeddb', durability: 'strict', qos: 1, persistent: true },
];

/** What each mode downloads, from a build of the sources (what `npm run build:browser` writes). */
async function measureDownloads(): Promise<ModeDownload[]> {
  return modeDownloads(await buildBrowser({ write: false }), readFileSync(WASM));
}

/**
 * One case in the page: a subscriber and a publisher on a fresh broker; the publisher keeps at most
 * a bounded number of messages ahead of what the subscriber received (so the rate is what flows,
 * not what queues), yielding a task between bursts. Returns the received rate of each window.
 */
function measure(page: Page, c: ThroughputCase & { name: string; warmupMs: number; windowMs: number; windows: number; payloadBytes: number }): Promise<number[]> {
  return page.evaluate(async (c) => {
    const { arbormq } = window as unknown as PageGlobals;
    const broker = await arbormq.createBroker({ mode: c.mode, store: c.store, durability: c.durability, name: c.name, broker: { maxQueuedMessages: 100_000 } });
    const sub = await broker.connect({ clientId: 'bench-sub', clean: !c.persistent, sessionExpiryInterval: c.persistent ? 3600 : 0 });
    let received = 0;
    await sub.subscribe('bench/t', { qos: c.qos }, () => void received++);
    const pub = await broker.connect({ clientId: 'bench-pub' });
    const payload = new Uint8Array(c.payloadBytes).fill(97);
    const ahead = c.qos === 0 ? 4000 : 1000;
    const burst = 250;
    // A task boundary without setTimeout's clamping: the in-page pipes cross on microtasks.
    const channel = new MessageChannel();
    const nextTask = () => new Promise<void>((resolve) => {
      channel.port1.onmessage = () => resolve();
      channel.port2.postMessage(0);
    });
    let sent = 0;
    let stop = false;
    const pump = (async () => {
      while (!stop) {
        const room = Math.min(burst, ahead - (sent - received));
        for (let i = 0; i < room; i++) {
          void pub.publish('bench/t', payload, { qos: c.qos }).catch(() => undefined);
          sent++;
        }
        await nextTask();
      }
    })();
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await sleep(c.warmupMs);
    const rates: number[] = [];
    for (let w = 0; w < c.windows; w++) {
      const r0 = received;
      const t0 = performance.now();
      await sleep(c.windowMs);
      rates.push(((received - r0) * 1000) / (performance.now() - t0));
    }
    stop = true;
    await pump;
    for (let i = 0; i < 500 && received < sent; i++) await sleep(10);
    await Promise.all([pub.end(), sub.end()]);
    await broker.close();
    if (c.store === 'indexeddb') await new Promise((r) => { const q = indexedDB.deleteDatabase(c.name); q.onsuccess = q.onerror = q.onblocked = r; });
    return rates;
  }, c);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function runBrowserBench(quick: boolean, log: (line: string) => void = () => undefined): Promise<BrowserOutcome> {
  const timing = quick ? { warmupMs: 300, windowMs: 500, windows: 1, payloadBytes: PAYLOAD_BYTES } : { warmupMs: 1000, windowMs: 2000, windows: 3, payloadBytes: PAYLOAD_BYTES };
  const outcome: BrowserOutcome = { ok: false, quick, date: new Date().toISOString(), downloads: [], throughput: [], timing };
  try {
    outcome.downloads = await measureDownloads();
  } catch (error) {
    return { ...outcome, error: `building the bundle: ${(error as Error).message}` };
  }
  if (skipWithoutChromium) return { ...outcome, error: `throughput skipped: ${skipWithoutChromium}` };
  const site = await startSite();
  const browser = await launchChromium();
  try {
    outcome.chromium = browser.context.browser()?.version() ?? (await (await browser.open(`${site.origin}/`)).evaluate(() => navigator.userAgent));
    const page = await browser.open(`${site.origin}/`);
    let n = 0;
    for (const c of CASES) {
      const rates = await measure(page, { ...c, ...timing, name: `bench-${++n}` });
      const row = { ...c, rates, rate: median(rates) };
      outcome.throughput.push(row);
      log(`[browser] ${c.label}, QoS ${c.qos}: ${Math.round(row.rate).toLocaleString('en-US')} msgs/s`);
    }
    outcome.ok = true;
  } catch (error) {
    outcome.error = (error as Error).message;
  } finally {
    await browser.close();
    await site.close();
  }
  return outcome;
}

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');

const MODE_TEXT: Record<ModeDownload['mode'], string> = {
  tab: 'in the tab (`mode: \'tab\'`, or no SharedWorker)',
  'shared-worker': 'SharedWorker (the default where there is one)',
  inline: '`arbormq/browser/inline`, in the tab',
};

export function renderBrowserSection(r: BrowserOutcome): string {
  const lines: string[] = ['## Browser', ''];
  if (r.downloads.length > 0) {
    const files = (sizes: FileSize[]): string => (sizes.length === 0 ? '—' : sizes.map((s) => `${s.file.replace(/-[A-Z0-9]{8}\.js$/, '-*.js')} ${kib(s.gzip)}`).join(' + '));
    const sum = (sizes: FileSize[], key: 'raw' | 'gzip'): number => sizes.reduce((n, s) => n + s[key], 0);
    lines.push(
      'What each way of running the broker downloads (`npm run build:browser`, esbuild, minified; each file gzip -9 on its own, as a server sends it). MQTT.js is not part of it: apps that use it bring it. In SharedWorker mode the page loads only the client side and the port transport; the worker script and the wasm are fetched by the SharedWorker, once per browser session for all tabs of the origin. The build fails when a mode exceeds its budget.',
      '',
      '| mode | the page downloads (gzip) | the SharedWorker downloads (gzip) | total raw | total gzip | budget |',
      '| --- | --- | --- | --- | --- | --- |',
      ...r.downloads.map((d) => {
        const all = [...d.page, ...d.worker];
        const pageBudget = BUDGETS[d.mode].page;
        return `| ${MODE_TEXT[d.mode]} | ${files(d.page)} = **${kib(sum(d.page, 'gzip'))}** | ${files(d.worker)}${d.worker.length > 0 ? ` = ${kib(sum(d.worker, 'gzip'))}` : ''} | ${kib(sum(all, 'raw'))} | **${kib(d.gzip)}** | ${kib(d.budget)}${pageBudget === undefined ? '' : ` (the page: ${kib(pageBudget)})`} |`;
      }),
      '',
    );
  }
  if (r.throughput.length > 0) {
    const t = r.timing;
    lines.push(
      `In-tab throughput: two clients of the native client (\`broker.connect()\`), one publisher and one subscriber of one topic, ${t.payloadBytes}-byte payloads; the publisher stays at most 4,000 (QoS 0) / 1,000 (QoS 1) messages ahead of the subscriber and yields a task between bursts of 250. Rate = messages the subscriber received per second; ${r.quick ? 'quick run: one window of' : `median of ${t.windows} windows of`} ${t.windowMs / 1000} s after ${t.warmupMs / 1000} s of warm-up. Chromium ${r.chromium ?? '?'} (headless, on the benchmark machine above), ${r.date}.`,
      '',
      '| where | QoS | msgs/s | window range |',
      '| --- | --- | --- | --- |',
      ...r.throughput.map((row) => `| ${row.label} | ${row.qos} | ${int(row.rate)} | ${row.rates.length > 1 ? `${int(Math.min(...row.rates))} – ${int(Math.max(...row.rates))}` : '—'} |`),
      '',
      'SharedWorker rows cross a MessagePort twice per message (publisher tab → worker → subscriber tab). The IndexedDB rows give the subscriber a persistent session, so every QoS 1 delivery is recorded in and removed from the store (group-committed, and the publisher PUBACK waits for it); `strict` waits for IndexedDB to flush to disk.',
      '',
    );
  }
  if (r.error) lines.push(`**${r.ok ? 'Note' : 'Not measured'}**: ${r.error}`, '');
  lines.push(`Reproduce: \`npm run bench -- --scenarios browser\` (or \`node --import tsx bench/browser.ts\`), which replaces only this section.`, '');
  return lines.join('\n');
}

/** The "## {heading}" section of `markdown` (up to the next "## " heading), or '' when it has none. */
export function markdownSection(markdown: string, heading = 'Browser'): string {
  const start = markdown.search(new RegExp(`^## ${heading}[ \\t]*$`, 'm'));
  if (start < 0) return '';
  const next = markdown.slice(start + 1).search(/^## /m);
  return markdown.slice(start, next < 0 ? markdown.length : start + 1 + next).trimEnd() + '\n';
}

/** `markdown` with its "## {heading}" section replaced by `section` (added before Notes when it has none). */
export function spliceSection(markdown: string, section: string, heading = 'Browser'): string {
  const block = section.endsWith('\n') ? section : `${section}\n`;
  const start = markdown.search(new RegExp(`^## ${heading}[ \\t]*$`, 'm'));
  if (start >= 0) {
    const rest = markdown.slice(start + 1);
    const next = rest.search(/^## /m);
    const end = next < 0 ? markdown.length : start + 1 + next;
    return markdown.slice(0, start) + block + (next < 0 ? '' : `\n${markdown.slice(end)}`);
  }
  const notes = markdown.search(/^## Notes[ \t]*$/m);
  if (notes >= 0) return `${markdown.slice(0, notes)}${block}\n${markdown.slice(notes)}`;
  return `${markdown.trimEnd()}\n\n${block}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } }, strict: true });
  const out = values.out ?? join(ROOT, 'bench/RESULTS.md');
  const result = await runBrowserBench(values.quick!, (line) => process.stderr.write(`${line}\n`));
  let existing = '';
  try {
    existing = readFileSync(out, 'utf8');
  } catch {
    existing = '# ArborMQ benchmark results\n';
  }
  writeFileSync(out, spliceSection(existing, renderBrowserSection(result)));
  process.stderr.write(`wrote the Browser section of ${out}${result.ok ? '' : ` (${result.error})`}\n`);
  if (!result.ok && !skipWithoutChromium) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench/browser: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
