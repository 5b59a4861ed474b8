// Connected clients as the admin API lists them, each with a button that disconnects it.
import type { ClientView } from '../../host/node/admin-api.js';
import { breakable, h } from '../../playground/src/dom.js';
import { formatBytes } from '../../playground/src/format.js';

const PROTOCOLS: Record<number, string> = { 3: '3.1', 4: '3.1.1', 5: '5.0' };

export function renderConnections(clients: ClientView[], disconnect: (clientId: string) => void): HTMLElement {
  if (clients.length === 0) return h('p', { class: 'empty' }, 'No clients connected.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'sessions connections' },
      h('caption', { class: 'sr-only' }, 'Connected clients'),
      h('thead', {}, h('tr', {}, ['Client', 'From', 'Keep alive', 'Subscriptions', 'Queued', 'In flight', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        clients.map((c) =>
          h(
            'tr',
            { 'data-client': c.clientId },
            h(
              'th',
              { scope: 'row' },
              h('code', {}, breakable(c.clientId)),
              ' ',
              h('small', { class: 'hint' }, PROTOCOLS[c.protocolVersion] ?? String(c.protocolVersion)),
              c.username !== null && [h('br'), h('small', { class: 'hint' }, `user ${c.username}`)],
            ),
            h('td', {}, h('code', {}, breakable(c.address)), c.listener !== undefined && [h('br'), h('small', { class: 'hint' }, c.listener)]),
            h('td', { class: 'num' }, c.keepAlive === 0 ? 'off' : `${c.keepAlive} s`),
            h('td', { class: 'filters' }, c.subscriptions.length === 0 ? '–' : c.subscriptions.map((x) => h('code', {}, breakable(x.filter))).flatMap((e, i) => (i === 0 ? [e] : [' ', e]))),
            h('td', { class: 'num' }, c.queued === 0 ? '0' : `${c.queued} (${formatBytes(c.queuedBytes)})`),
            h('td', { class: 'num' }, String(c.inflight)),
            h(
              'td',
              { class: 'actions' },
              h(
                'button',
                {
                  type: 'button',
                  class: 'button-danger button-small',
                  'aria-label': `Disconnect ${c.clientId}`,
                  on: {
                    click: (event) => {
                      (event.currentTarget as HTMLButtonElement).disabled = true;
                      disconnect(c.clientId);
                    },
                  },
                },
                'Disconnect',
              ),
            ),
          ),
        ),
      ),
    ),
  );
}
