// Drives the playground page the way a user does — by labels, roles and button names, so the tests
// also prove that every control is labelled — and reads back what the page shows. Used by the
// playground tests and by scripts/playground-screenshot.ts.
import type { BrowserContext, Locator, Page } from 'playwright-core';

export interface ClientOptions {
  version?: '5' | '4';
  persistent?: boolean;
  will?: { topic: string; payload: string; qos?: 0 | 1 | 2; retain?: boolean };
}

export interface SubscribeOptions {
  qos?: 0 | 1 | 2;
  noLocal?: boolean;
  /** 0 send, 1 if new, 2 never. */
  retainHandling?: 0 | 1 | 2;
}

export interface PublishOptions {
  qos?: 0 | 1 | 2;
  retain?: boolean;
  contentType?: string;
  responseTopic?: string;
  correlationData?: string;
  /** "key=value" lines. */
  userProperties?: string;
}

// Generous: how long the page may take, not how long it should. With two suites sharing two cores
// (two Chromiums, two brokers), taking the bridge offline once took over 10 s.
const TIMEOUT = 30_000;

export class PlaygroundPage {
  /** Console errors and uncaught exceptions of the page since it opened. */
  readonly errors: string[] = [];

  private constructor(readonly page: Page) {
    page.on('console', (m) => {
      if (m.type() === 'error') this.errors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => this.errors.push(`uncaught: ${e.message}`));
  }

  /** Opens the playground in a new tab of `context` and waits until its broker runs. */
  static async open(context: BrowserContext, url: string): Promise<PlaygroundPage> {
    const driver = new PlaygroundPage(await context.newPage());
    driver.page.setDefaultTimeout(TIMEOUT);
    await driver.page.goto(url);
    await driver.ready();
    return driver;
  }

  async reload(): Promise<void> {
    await this.page.reload();
    await this.ready();
  }

  private async ready(): Promise<void> {
    await this.page.waitForSelector('html[data-state=ready], html[data-state=failed]', { timeout: TIMEOUT });
    const state = await this.page.getAttribute('html', 'data-state');
    if (state !== 'ready') throw new Error(`the playground failed to start: ${await this.page.locator('#notice').textContent()}`);
  }

  // ---- clients ----

  async createClient(clientId: string, o: ClientOptions = {}): Promise<Locator> {
    const form = this.page.getByRole('form', { name: 'New client' });
    await form.getByLabel('Client ID').fill(clientId);
    await form.getByLabel('Protocol').selectOption(o.version ?? '5');
    await form.getByLabel('Session', { exact: true }).selectOption(o.persistent ? 'persistent' : 'clean');
    const will = form.getByLabel('Leave a will message');
    await will.setChecked(o.will !== undefined);
    if (o.will) {
      await form.getByLabel('Will topic').fill(o.will.topic);
      await form.getByLabel('Will payload').fill(o.will.payload);
      await form.getByLabel('Will QoS').selectOption(String(o.will.qos ?? 1));
      await form.getByLabel('Retain the will').setChecked(o.will.retain ?? false);
    }
    await form.getByRole('button', { name: 'Create client' }).click();
    const card = this.card(clientId);
    await card.locator('.state-online').waitFor({ timeout: TIMEOUT });
    return card;
  }

  card(clientId: string): Locator {
    return this.page.locator(`article.client-card[data-client="${clientId}"]`);
  }

  /** The client IDs of the cards on the page, in order. */
  cardIds(): Promise<string[]> {
    return this.page.locator('article.client-card').evaluateAll((cards) => cards.map((c) => c.getAttribute('data-client') ?? ''));
  }

  /** Waits until the top of `locator` is inside the window (a page that scrolls smoothly gets there in its time). */
  async waitInView(locator: Locator): Promise<void> {
    await this.page.waitForFunction((el) => {
      const top = el!.getBoundingClientRect().top;
      return top >= 0 && top < window.innerHeight;
    }, await locator.elementHandle());
  }

  async subscribe(clientId: string, filter: string, o: SubscribeOptions = {}): Promise<void> {
    const form = this.card(clientId).getByRole('form', { name: `Subscribe ${clientId}` });
    await form.getByLabel('Topic filter').fill(filter);
    await form.getByLabel('QoS').selectOption(String(o.qos ?? 1));
    if (o.noLocal !== undefined || o.retainHandling !== undefined) {
      await expand(form, 'Subscription options (5.0)');
      if (o.noLocal !== undefined) await form.getByLabel('No Local').setChecked(o.noLocal);
      if (o.retainHandling !== undefined) await form.getByLabel('Retained messages').selectOption(String(o.retainHandling));
    }
    await form.getByRole('button', { name: 'Subscribe', exact: true }).click();
    await this.card(clientId)
      .getByRole('list', { name: `Subscriptions of ${clientId}` })
      .getByText(filter, { exact: true })
      .waitFor({ timeout: TIMEOUT });
  }

  async publish(clientId: string, topic: string, payload: string, o: PublishOptions = {}): Promise<void> {
    const form = this.card(clientId).getByRole('form', { name: `Publish as ${clientId}` });
    await form.getByLabel('Topic', { exact: true }).fill(topic);
    await form.getByLabel('Payload').fill(payload);
    await form.getByLabel('QoS').selectOption(String(o.qos ?? 1));
    await form.getByLabel('Retain').setChecked(o.retain ?? false);
    const props: [string, string | undefined][] = [
      ['Content type', o.contentType],
      ['Response topic', o.responseTopic],
      ['Correlation data', o.correlationData],
      ['User properties (key=value per line)', o.userProperties],
    ];
    if (props.some(([, v]) => v !== undefined)) {
      await expand(form, 'MQTT 5.0 properties');
      for (const [label, value] of props) if (value !== undefined) await form.getByLabel(label).fill(value);
    }
    await form.getByRole('button', { name: 'Publish', exact: true }).click();
    await this.card(clientId).locator('.card-note').filter({ hasText: `published to ${topic}` }).waitFor({ timeout: TIMEOUT });
  }

  /** The messages log of a client, one line per message ("topic payload badges properties"). */
  messages(clientId: string): Promise<string[]> {
    return this.card(clientId).getByRole('log', { name: `Messages received by ${clientId}` }).locator('li').allInnerTexts();
  }

  /** Waits until the client's message log has at least `n` entries; returns them. */
  async waitForMessages(clientId: string, n: number): Promise<string[]> {
    await this.card(clientId)
      .getByRole('log', { name: `Messages received by ${clientId}` })
      .locator('li')
      .nth(n - 1)
      .waitFor({ timeout: TIMEOUT });
    return this.messages(clientId);
  }

  /** The client's packet exchanges: each as its title and its steps' packet types, in order. */
  flows(clientId: string): Promise<{ title: string; steps: string[]; complete: boolean }[]> {
    return this.card(clientId)
      .getByRole('log', { name: `Packets of ${clientId}` })
      .locator('li.flow')
      .evaluateAll((items) =>
        items.map((li) => ({
          title: li.querySelector('.flow-title')?.textContent ?? '',
          steps: Array.from(li.querySelectorAll('.step')).map((s) => `${s.classList.contains('step-out') ? '→' : '←'} ${s.getAttribute('data-type')}`),
          complete: li.classList.contains('complete'),
        })),
      );
  }

  // ---- examples ----

  async runExample(id: 'retained' | 'will' | 'shared' | 'request-response'): Promise<string> {
    await this.page.locator(`button[data-example="${id}"]`).click();
    const status = this.page.locator('.example-status');
    await this.page.waitForFunction(() => !document.querySelector('.example-grid[aria-busy]') && !/^Running/.test(document.querySelector('.example-status')?.textContent ?? ''), undefined, { timeout: TIMEOUT });
    return (await status.textContent()) ?? '';
  }

  // ---- bridge ----

  /** The bridge's state as its status says (online, offline, connecting, waiting, standby). */
  bridgeState(): Promise<string | null> {
    return this.page.locator('#bridge [data-state]').getAttribute('data-state');
  }

  async waitForBridge(state: string): Promise<void> {
    await this.page.locator(`#bridge [data-state="${state}"]`).waitFor({ timeout: TIMEOUT });
  }

  async setBridgeNetwork(on: boolean): Promise<void> {
    const toggle = this.page.getByRole('switch', { name: /Bridge network/ });
    if ((await toggle.getAttribute('aria-checked')) !== String(on)) await toggle.click();
    await this.waitForBridge(on ? 'online' : 'offline');
  }

  async publishThroughBridge(subtopic: string, payload: string): Promise<void> {
    const form = this.page.getByRole('form', { name: 'Publish in the tab' });
    await form.getByLabel('Topic (under outbox/)').fill(subtopic);
    await form.getByLabel('Payload').fill(payload);
    await form.getByRole('button', { name: 'Publish in the tab (QoS 1)' }).click();
    await this.page.locator('#bridge .card-note').filter({ hasText: `Published outbox/${subtopic}: ${payload}` }).waitFor({ timeout: TIMEOUT });
  }

  async bridgeQueued(): Promise<number> {
    return Number(await this.page.locator('#bridge [data-queued]').textContent());
  }

  async waitForBridgeQueued(n: number): Promise<void> {
    await this.page.locator('#bridge [data-queued]').filter({ hasText: new RegExp(`^${n}$`) }).waitFor({ timeout: TIMEOUT });
  }

  /** What the remote client (connected straight to the Node broker) received: "topic payload" per message. */
  async remoteMessages(n: number): Promise<string[]> {
    const log = this.page.getByRole('log', { name: 'Received by the remote client' });
    if (n > 0) await log.locator('li').nth(n - 1).waitFor({ timeout: TIMEOUT });
    return log.locator('li').evaluateAll((items) => items.map((li) => `${li.querySelector('.topic')?.textContent} ${li.querySelector('.payload')?.textContent}`));
  }

  async waitForRemoteClient(): Promise<void> {
    await this.page.locator('#bridge-remote-title ~ .bridge-status .state-online').waitFor({ timeout: TIMEOUT });
  }
}

/** Opens the `<details>` whose summary reads `summary`, unless it is open already (a click would close it). */
async function expand(within: Locator, summary: string): Promise<void> {
  const details = within.locator('details', { has: within.page().getByText(summary, { exact: true }) });
  if (!(await details.evaluate((d) => (d as HTMLDetailsElement).open))) await details.getByText(summary, { exact: true }).click();
}
