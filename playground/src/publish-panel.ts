// A card's "Publish" part: topic, payload, QoS, retain, the 5.0 properties (content type, message
// expiry, response topic, correlation data, user properties), and the request responder switch.
import type { PublishProperties, QoS } from '../../host/browser/index.js';
import { enableSubmit, type CardPart, type ShowNote } from './card-part.js';
import type { PlaygroundClient } from './client-model.js';
import { checkField, h, inputField, QOS_OPTIONS, selectField, textareaField } from './dom.js';
import { topicNameProblem } from './format.js';

export function publishPanel(client: PlaygroundClient, showNote: ShowNote): CardPart {
  const topic = inputField('Topic', { value: 'demo/hello', name: 'topic' });
  const payload = inputField('Payload', { value: 'Hello from the browser', name: 'payload' });
  const qos = selectField('QoS', QOS_OPTIONS, '1', { name: 'pubQos' });
  const retain = checkField('Retain', false, { name: 'retain' });
  const contentType = inputField('Content type', { placeholder: 'text/plain', name: 'contentType' });
  const expiry = inputField('Message expiry (s)', { type: 'number', min: 0, placeholder: 'never', name: 'messageExpiry' });
  const responseTopic = inputField('Response topic', { placeholder: 'replies/me', name: 'responseTopic' });
  const correlation = inputField('Correlation data', { placeholder: 'request-1', name: 'correlationData' });
  const userProperties = textareaField('User properties (key=value per line)', { placeholder: 'unit=celsius', name: 'userProperties' });

  const readProperties = (): PublishProperties => {
    const p: PublishProperties = {};
    if (contentType.input.value.trim()) p.contentType = contentType.input.value.trim();
    const seconds = Number(expiry.input.value);
    if (expiry.input.value !== '' && Number.isInteger(seconds) && seconds >= 0) p.messageExpiryInterval = seconds;
    if (responseTopic.input.value.trim()) p.responseTopic = responseTopic.input.value.trim();
    if (correlation.input.value) p.correlationData = new TextEncoder().encode(correlation.input.value);
    const pairs = parseUserProperties(userProperties.input.value);
    if (pairs.length > 0) p.userProperties = pairs;
    return p;
  };

  const form = h(
    'form',
    {
      class: 'publish-form',
      'aria-label': `Publish as ${client.id}`,
      on: {
        submit: (event) => {
          event.preventDefault();
          const t = topic.input.value.trim();
          const problem = topicNameProblem(t);
          if (problem) {
            showNote(`Not sent: ${problem}.`, true);
            topic.input.focus();
            return;
          }
          const q = Number(qos.input.value) as QoS;
          const retained = retain.input.checked;
          const properties = client.v5 ? readProperties() : undefined;
          void client.publish(t, payload.input.value, { qos: q, retain: retained, properties }).then((ok) => {
            if (ok) showNote(`published to ${t} (QoS ${q}${retained ? ', retained' : ''})`, false);
          });
        },
      },
    },
    h('div', { class: 'form-row' }, topic.field, qos.field),
    h('div', { class: 'form-row' }, payload.field, retain.field, h('button', { type: 'submit', class: 'button-primary' }, 'Publish')),
    // Properties exist in MQTT 5.0 only: a 3.1.1 client's card does not offer them.
    client.v5 &&
      h(
        'details',
        { class: 'properties' },
        h('summary', {}, 'MQTT 5.0 properties'),
        h('div', { class: 'form-row' }, contentType.field, expiry.field),
        h('div', { class: 'form-row' }, responseTopic.field, correlation.field),
        userProperties.field,
      ),
  );

  const responder = checkField('Answer requests (reply to messages that carry a response topic)', client.responder, { name: 'responder' });
  responder.input.addEventListener('change', () => client.setResponder(responder.input.checked));

  return {
    element: h('section', { class: 'card-section' }, h('h4', {}, 'Publish'), form, client.v5 && responder.field),
    onEvent: (event) => {
      if (event.kind === 'responder') responder.input.checked = client.responder;
    },
    setOnline: (online) => enableSubmit(form, online),
  };
}

/** "key=value" per line; a line without "=" is a key with an empty value. */
function parseUserProperties(text: string): [string, string][] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const eq = line.indexOf('=');
      return eq < 0 ? [line, ''] : [line.slice(0, eq).trim(), line.slice(eq + 1).trim()];
    });
}
