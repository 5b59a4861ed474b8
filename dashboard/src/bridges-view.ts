// The server's bridges: where each links to, its state, what waits in its queue and what it carried.
import type { BridgeReport } from '../../host/node/bridges.js';
import { breakable, h } from '../../playground/src/dom.js';

const STATE_CLASS: Record<string, string> = { online: 'state-online', connecting: 'state-connecting', waiting: 'state-waiting', stopped: 'state-offline' };

export function renderBridges(bridges: BridgeReport[]): HTMLElement {
  if (bridges.length === 0) return h('p', { class: 'empty' }, 'No bridges configured ("bridges" in the config file).');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'sessions bridges' },
      h('caption', { class: 'sr-only' }, 'Bridges'),
      h('thead', {}, h('tr', {}, ['Bridge', 'State', 'Queued', 'Sent', 'Received'].map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        bridges.map((b) =>
          h(
            'tr',
            { 'data-bridge': b.name },
            h('th', { scope: 'row' }, h('code', {}, b.name), h('br'), h('small', { class: 'hint' }, breakable(b.url))),
            h(
              'td',
              {},
              h('span', { class: `state ${STATE_CLASS[b.state] ?? 'state-offline'}`, 'data-state': b.state }, b.state),
              b.attempts > 0 && h('small', { class: 'hint' }, ` ${b.attempts} failed`),
              b.error !== undefined && [h('br'), h('span', { class: 'bridge-error' }, b.error)],
            ),
            h('td', { class: 'num', 'data-queued': '' }, String(b.queued)),
            h('td', { class: 'num' }, String(b.sent)),
            h('td', { class: 'num' }, String(b.received)),
          ),
        ),
      ),
    ),
  );
}
