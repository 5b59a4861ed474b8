// One client's card: its name, state and connection buttons, then its parts — subscribe, publish,
// the messages it received and its packets — each following the client's events.
import type { CardPart } from './card-part.js';
import type { PlaygroundClient } from './client-model.js';
import { messageLog, packetLog } from './client-logs.js';
import type { ClientRegistry } from './clients.js';
import { h } from './dom.js';
import { publishPanel } from './publish-panel.js';
import { subscribePanel } from './subscribe-panel.js';

let cards = 0;

/** Renders `client` and keeps the card in step with it; `detach` stops following the client. */
export function clientCard(client: PlaygroundClient, registry: ClientRegistry, restored: boolean): { element: HTMLElement; detach(): void } {
  const titleId = `card-${++cards}-title`;
  const spec = client.spec;

  const state = h('span', { class: 'state' });
  const note = h('p', { class: 'card-note', role: 'status' });
  const showNote = (text: string, error: boolean): void => {
    note.textContent = text;
    note.classList.toggle('error', error);
  };

  const disconnect = h('button', { type: 'button', title: 'Sends DISCONNECT: the broker discards the will', on: { click: () => void client.disconnect() } }, 'Disconnect');
  const drop = h('button', { type: 'button', title: 'Closes the connection without DISCONNECT, like a lost network: the will goes out', on: { click: () => client.drop() } }, 'Drop connection');
  const reconnect = h('button', { type: 'button', class: 'button-primary', on: { click: () => void client.connect() } }, 'Reconnect');
  const remove = h(
    'button',
    {
      type: 'button',
      class: 'button-danger',
      on: {
        click: () => {
          void registry.remove(client.id);
          // The card is gone: keyboard focus goes back to the client list rather than to the page's start.
          document.getElementById('clients')?.focus();
        },
      },
    },
    'Remove',
  );

  const subscribe = subscribePanel(client, showNote);
  const publish = publishPanel(client, showNote);
  const messages = messageLog(client);
  const packets = packetLog(client);
  const parts: CardPart[] = [subscribe, publish, messages, packets];

  const element = h(
    'article',
    { class: 'client-card', 'aria-labelledby': titleId, 'data-client': client.id },
    h('header', { class: 'card-header' }, h('h3', { id: titleId }, client.id), state, h('div', { class: 'card-actions' }, disconnect, drop, reconnect, remove)),
    h(
      'p',
      { class: 'badges' },
      h('span', { class: 'badge' }, client.v5 ? 'MQTT 5.0' : 'MQTT 3.1.1'),
      h('span', { class: 'badge' }, spec.clean ? 'clean session' : client.v5 ? `persistent · expiry ${spec.sessionExpiryInterval} s` : 'persistent session'),
      spec.will && h('span', { class: 'badge', title: `${spec.will.topic}: ${spec.will.payload}` }, `will → ${spec.will.topic}`),
    ),
    note,
    h('div', { class: 'card-forms' }, subscribe.element, publish.element),
    h('div', { class: 'card-logs' }, messages.element, packets.element),
  );

  const renderState = (): void => {
    const s = client.state;
    state.textContent = s === 'offline' && client.closeReason ? `offline · ${client.closeReason}` : s;
    state.className = `state state-${s}`;
    disconnect.hidden = drop.hidden = s !== 'online';
    reconnect.hidden = s !== 'offline';
    for (const part of parts) part.setOnline?.(s === 'online');
  };

  const detach = client.on((event) => {
    if (event.kind === 'state') renderState();
    else if (event.kind === 'note') showNote(event.text, event.error);
    for (const part of parts) part.onEvent?.(event);
  });
  renderState();
  if (restored) showNote('Remembered from your last visit: Reconnect resumes the session the broker kept.', false);
  return { element, detach };
}
