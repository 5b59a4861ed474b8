// "Inside the broker": the counters, the topic tree, the sessions and the arena of one broker, each
// redrawn only when its data changed, so the page stays calm and selectable while nothing happens.
// The playground feeds it by polling its in-tab broker (watchBroker); the Node server's dashboard
// (dashboard/) from the admin API's event stream.
import type { BrokerSnapshot, InspectOptions } from '../../host/browser/index.js';
import type { BrokerStats } from '../../host/core/sys.js';
import { renderArena } from './arena-view.js';
import { drawIfChanged, h } from './dom.js';
import { formatBytes, formatRate } from './format.js';
import { renderSessions } from './sessions-view.js';
import { Throughput, type Rates } from './throughput.js';
import { buildTopicTree, renderTopicTree } from './topic-tree.js';

const POLL_MS = 500;
/** Live buffers described per snapshot: enough to see refcounts at work without a long table. */
export const HANDLE_SAMPLE = 16;

export class Inspector {
  readonly element: HTMLElement;
  private readonly counters = h('div', { class: 'counters' });
  private readonly tree = h('div', { class: 'topic-tree' });
  private readonly sessions = h('div', {});
  private readonly arena = h('div', {});
  private readonly throughput = new Throughput();

  constructor() {
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
  }

  /** Shows the broker as `stats` and `snapshot` describe it (rates from the previous call's counters). */
  render(stats: BrokerStats, snapshot: BrokerSnapshot): void {
    const rates = this.throughput.sample(stats);
    drawIfChanged(this.counters, { stats, rates }, () => counters(stats, rates));
    drawIfChanged(this.tree, [snapshot.sessions.map((s) => [s.clientId, s.subscriptions]), snapshot.retained], () => renderTopicTree(buildTopicTree(snapshot)));
    drawIfChanged(this.sessions, snapshot.sessions, () => renderSessions(snapshot.sessions));
    drawIfChanged(this.arena, snapshot.arena, () => renderArena(snapshot.arena));
  }
}

/** What the inspector is shown of a broker in this page (`BrowserBroker` is one). */
export interface InspectedBroker {
  stats(): Promise<BrokerStats>;
  inspect(options?: InspectOptions): Promise<BrokerSnapshot>;
}

/**
 * Polls `broker` a few times a second into `inspector`, not while the tab is hidden (and once at
 * once when it shows again); returns the function that stops it. A broker that closes stops it too.
 */
export function watchBroker(broker: InspectedBroker, inspector: Inspector): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisible);
  };
  const poll = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (stopped) return;
    Promise.all([broker.stats(), broker.inspect({ handles: HANDLE_SAMPLE })]).then(([stats, snapshot]) => {
      if (stopped) return;
      inspector.render(stats, snapshot);
      if (!document.hidden) timer = setTimeout(poll, POLL_MS);
    }, stop);
  };
  const onVisible = (): void => {
    if (!document.hidden) poll();
  };
  document.addEventListener('visibilitychange', onVisible);
  poll();
  return stop;
}

function counters(stats: BrokerStats, rates: Rates): HTMLElement {
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
