// Sessions as the broker holds them: online or away, protocol, expiry, subscriptions, queue, in flight, will.
import type { SessionSnapshot } from '../../host/browser/index.js';
import { breakable, h } from './dom.js';
import { formatBytes } from './format.js';

export function renderSessions(sessions: SessionSnapshot[]): HTMLElement {
  if (sessions.length === 0) return h('p', { class: 'empty' }, 'No sessions.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'sessions' },
      h('caption', { class: 'sr-only' }, 'Sessions'),
      h('thead', {}, h('tr', {}, ['Client', 'State', 'Expiry', 'Subscriptions', 'Queued', 'In flight', 'Will'].map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        sessions.map((s) =>
          h(
            'tr',
            { 'data-session': s.clientId },
            h('th', { scope: 'row' }, h('code', {}, breakable(s.clientId)), ' ', h('small', { class: 'hint' }, s.protocolVersion === 5 ? '5.0' : s.protocolVersion === 4 ? '3.1.1' : '3.1')),
            h('td', {}, h('span', { class: `state state-${s.online ? 'online' : 'offline'}` }, s.online ? 'online' : 'away')),
            h('td', {}, s.expiryInterval === null ? 'never' : s.expiryInterval === 0 ? 'none' : `${s.expiryInterval} s`),
            h('td', { class: 'filters' }, s.subscriptions.length === 0 ? '–' : s.subscriptions.map((x) => h('code', {}, breakable(x.filter))).flatMap((c, i) => (i === 0 ? [c] : [' ', c]))),
            h('td', { class: 'num' }, s.queued === 0 ? '0' : `${s.queued} (${formatBytes(s.queuedBytes)})`),
            h('td', { class: 'num' }, String(s.inflight)),
            h('td', {}, s.will ? h('code', {}, breakable(s.will.topic)) : '–'),
          ),
        ),
      ),
    ),
  );
}
