// A card's "Subscribe" part: topic filter and QoS, the 5.0 subscription options (No Local, Retain
// as Published, Retain Handling, Subscription Identifier), and the subscriptions the broker granted.
import type { QoS, SubscribeOptions } from '../../host/browser/index.js';
import { enableSubmit, type CardPart, type ShowNote } from './card-part.js';
import type { PlaygroundClient, SubscriptionEntry } from './client-model.js';
import { checkField, fill, h, inputField, QOS_OPTIONS, selectField } from './dom.js';

export function subscribePanel(client: PlaygroundClient, showNote: ShowNote): CardPart {
  const filter = inputField('Topic filter', { value: '#', name: 'filter' });
  const qos = selectField('QoS', QOS_OPTIONS, '1', { name: 'subQos' });
  const noLocal = checkField('No Local', false, { name: 'noLocal' });
  const retainAsPublished = checkField('Retain as published', false, { name: 'retainAsPublished' });
  const retainHandling = selectField('Retained messages', [
    ['0', 'send on subscribe'],
    ['1', 'send if new subscription'],
    ['2', 'never send'],
  ] as const, '0', { name: 'retainHandling' });
  const subscriptionId = inputField('Subscription ID', { type: 'number', min: 1, max: 268435455, placeholder: 'none', name: 'subscriptionId' });

  const form = h(
    'form',
    {
      class: 'subscribe-form',
      'aria-label': `Subscribe ${client.id}`,
      on: {
        submit: (event) => {
          event.preventDefault();
          const f = filter.input.value.trim();
          if (!f) {
            showNote('A topic filter is needed.', true);
            filter.input.focus();
            return;
          }
          const options: SubscribeOptions = { qos: Number(qos.input.value) as QoS };
          if (client.v5) {
            options.noLocal = noLocal.input.checked;
            options.retainAsPublished = retainAsPublished.input.checked;
            options.retainHandling = Number(retainHandling.input.value) as 0 | 1 | 2;
            const id = Number(subscriptionId.input.value);
            if (Number.isInteger(id) && id > 0) options.subscriptionIdentifier = id;
          }
          void client.subscribe(f, options).then((ok) => ok && showNote(`subscribed to ${f}`, false));
        },
      },
    },
    h('div', { class: 'form-row' }, filter.field, qos.field, h('button', { type: 'submit' }, 'Subscribe')),
    // MQTT 3.1.1 has no subscription options: a 3.1.1 client's card does not offer them.
    client.v5 &&
      h(
        'details',
        { class: 'properties' },
        h('summary', {}, 'Subscription options (5.0)'),
        h('div', { class: 'form-row options' }, noLocal.field, retainAsPublished.field),
        h('div', { class: 'form-row' }, retainHandling.field, subscriptionId.field),
      ),
  );

  const list = h('ul', { class: 'subscriptions', 'aria-label': `Subscriptions of ${client.id}` });
  const render = (): void => {
    const entries = client.subscriptions;
    fill(list, entries.length === 0 ? h('li', { class: 'empty' }, 'No subscriptions.') : entries.map((s) => subscriptionItem(client, s)));
  };
  render();

  return {
    element: h('section', { class: 'card-section' }, h('h4', {}, 'Subscribe'), form, list),
    onEvent: (event) => {
      if (event.kind === 'subscriptions') render();
    },
    setOnline: (online) => enableSubmit(form, online),
  };
}

function subscriptionItem(client: PlaygroundClient, s: SubscriptionEntry): HTMLElement {
  const o = s.options;
  return h(
    'li',
    {},
    h('code', {}, s.filter),
    h('span', { class: 'badge' }, `QoS ${s.granted}`),
    o.noLocal && h('span', { class: 'badge' }, 'no local'),
    o.retainAsPublished && h('span', { class: 'badge' }, 'retain as published'),
    (o.retainHandling ?? 0) > 0 && h('span', { class: 'badge' }, o.retainHandling === 1 ? 'retained if new' : 'no retained'),
    o.subscriptionIdentifier !== undefined && h('span', { class: 'badge' }, `id ${o.subscriptionIdentifier}`),
    h('button', { type: 'button', class: 'button-small', 'aria-label': `Unsubscribe ${s.filter}`, on: { click: () => void client.unsubscribe(s.filter) } }, 'Unsubscribe'),
  );
}
