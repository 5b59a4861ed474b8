// "Inside the broker": polls broker.stats() and broker.inspect() a few times a second and redraws
// the counters, the topic tree, the sessions and the arena — each only when its data changed, so
// the page stays calm and selectable while nothing happens.
import type { BrokerSnapshot, BrowserBroker, BrowserBrokerStats } from '../../host/browser/index.js';
import { renderArena } from './arena-view.js';
import { fill, h } from './dom.js';
import { formatBytes, formatRate } from './format.js';
import { renderSessions } from './sessions-view.js';
import { Throughput, type Rates } from './throughput.js';
import { buildTopicTree, renderTopicTree } from './topic-tree.js';

const POLL_MS = 500;
/** Live buffers described per snapshot: enough to see refcounts at work without a long table. */
const HANDLE_SAMPLE = 16;

export class Inspector {
  readonly element: HTMLElement;
  private readonly counters = h('div', { class: 'counters' });
  private readonly tree = h('div', { class: 'topic-tree' });
  private readonly sessions = h('div', {});
  private readonly arena = h('div', {});
  private readonly throughput = new Throughput();
  private readonly drawn = new Map<HTMLElement, string>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(private readonly broker: BrowserBroker) {
    this.element = h(
      'div',
      { class: 'inspector' },
      h('section', { class: 'inspector-section', 'aria-labelledby': 'counters-title' }, h('h3', { id: 'counters-title' }, 'Throughput'), this.counters),
      h('section', { class: 'inspector-section', 'aria-labelledby': 'tree-title' }, h('h3', { id: 'tree-title' }, 'Topic tree'), h('p', { class: 'hint' }, 'Subscriptions (with granted QoS) and retained messages (payload size, references to its buffer), level by level.'), this.tree),
      h('section', { class: 'inspector-section', 'aria-labelledby': 'sessions-title' }, h('h3', { id: 'sessions-title' }, 'Sessions and their queues'), this.sessions),
      h(
        'section',
        { class: 'inspector-section', 'aria-labelledby': 'arena-title' },
        h('h3', { id: 'arena-title' }, 'Arena'),
        h('p', { class: 'hint' }, 'Each message is stored once in wasm memory; every queue, retained slot and write holds a reference to it.'),
        this.arena,
      ),
    );
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) this.poll();
    });
  }

  start(): void {
    this.poll();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
  }

  /** One round: fetch, redraw what changed, schedule the next (not while the tab is hidden). */
  private poll = (): void => {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    Promise.all([this.broker.stats(), this.broker.inspect({ handles: HANDLE_SAMPLE })]).then(
      ([stats, snapshot]) => {
        if (this.stopped) return;
        this.render(stats, snapshot);
        if (!document.hidden) this.timer = setTimeout(this.poll, POLL_MS);
      },
      () => {
        // The broker is closing (reset or page unload): nothing left to show.
        this.stop();
      },
    );
  };

  private render(stats: BrowserBrokerStats, snapshot: BrokerSnapshot): void {
    const rates = this.throughput.sample(stats);
    this.draw(this.counters, { stats, rates }, () => counters(stats, rates));
    this.draw(this.tree, [snapshot.sessions.map((s) => [s.clientId, s.subscriptions]), snapshot.retained], () => renderTopicTree(buildTopicTree(snapshot)));
    this.draw(this.sessions, snapshot.sessions, () => renderSessions(snapshot.sessions));
    this.draw(this.arena, snapshot.arena, () => renderArena(snapshot.arena));
  }

  /** Replaces `target`'s content with `render()` when `data` differs from what it shows. */
  private draw(target: HTMLElement, data: unknown, render: () => HTMLElement): void {
    const key = JSON.stringify(data);
    if (this.drawn.get(target) === key) return;
    this.drawn.set(target, key);
    fill(target, render());
  }
}

function counters(stats: BrowserBrokerStats, rates: Rates): HTMLElement {
  const dropped = stats.dropped.qos0Backlog + stats.dropped.queueFull + stats.dropped.expired + stats.dropped.oversize + stats.dropped.arenaFull;
  const item = (label: string, value: string, name: string): HTMLElement => h('div', { class: 'counter', 'data-counter': name }, h('dt', {}, label), h('dd', {}, value));
  return h(
    'dl',
    { class: 'counter-grid' },
    item('messages in /s', formatRate(rates.publishIn), 'publishInRate'),
    item('messages out /s', formatRate(rates.publishOut), 'publishOutRate'),
    item('bytes in /s', formatBytes(Math.round(rates.bytesIn)), 'bytesInRate'),
    item('bytes out /s', formatBytes(Math.round(rates.bytesOut)), 'bytesOutRate'),
    item('published', stats.publishReceived.toLocaleString('en'), 'publishReceived'),
    item('delivered', stats.publishSent.toLocaleString('en'), 'publishSent'),
    item('clients online', String(stats.clientsConnected), 'clientsConnected'),
    item('sessions', String(stats.sessions), 'sessions'),
    item('subscriptions', String(stats.subscriptions), 'subscriptions'),
    item('retained', String(stats.retained), 'retained'),
    item('in flight', String(stats.inflight), 'inflight'),
    item('queued', String(stats.queued), 'queued'),
    item('dropped', String(dropped), 'dropped'),
  );
}
