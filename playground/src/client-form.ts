// The "new client" form: identifier, protocol version, clean or persistent session, a will.
import type { QoS } from '../../host/browser/index.js';
import type { ClientSpec } from './client-model.js';
import type { ClientRegistry } from './clients.js';
import { checkField, h, inputField, QOS_OPTIONS, selectField } from './dom.js';

/** Default session expiry of a persistent 5.0 client: an hour. */
const DEFAULT_EXPIRY_SECONDS = 3600;

export function clientForm(registry: ClientRegistry): HTMLElement {
  const id = inputField('Client ID', { value: registry.suggestId(), required: true, maxlength: 64, name: 'clientId' });
  const version = selectField('Protocol', [
    ['5', 'MQTT 5.0'],
    ['4', 'MQTT 3.1.1'],
  ] as const, '5', { name: 'protocolVersion' });
  const session = selectField('Session', [
    ['clean', 'Clean: ends with the connection'],
    ['persistent', 'Persistent: kept while away'],
  ] as const, 'clean', { name: 'session' });
  const expiry = inputField('Session expiry (s)', { type: 'number', min: 0, max: 4294967295, value: String(DEFAULT_EXPIRY_SECONDS), name: 'sessionExpiry' });
  const willOn = checkField('Leave a will message', false, { name: 'will' });
  const willTopic = inputField('Will topic', { value: 'status/offline', name: 'willTopic' });
  const willPayload = inputField('Will payload', { value: 'gone without goodbye', name: 'willPayload' });
  const willQos = selectField('Will QoS', QOS_OPTIONS, '1', { name: 'willQos' });
  const willRetain = checkField('Retain the will', false, { name: 'willRetain' });
  const willDelay = inputField('Will delay (s)', { type: 'number', min: 0, value: '0', name: 'willDelay' });
  const willFields = h('fieldset', { class: 'will-fields', hidden: true }, h('legend', {}, 'Will'), willTopic.field, willPayload.field, willQos.field, willDelay.field, willRetain.field);
  const status = h('p', { class: 'form-status', role: 'status' });

  /** Fields that mean something only for some choices are disabled, not hidden, so the form does not jump. */
  const sync = (): void => {
    const v5 = version.input.value === '5';
    expiry.input.disabled = !v5 || session.input.value !== 'persistent';
    willDelay.input.disabled = !v5;
    willFields.hidden = !willOn.input.checked;
  };
  for (const control of [version.input, session.input, willOn.input]) control.addEventListener('change', sync);
  sync();

  const form = h(
    'form',
    {
      class: 'client-form',
      'aria-label': 'New client',
      on: {
        submit: (event) => {
          event.preventDefault();
          const clientId = id.input.value.trim();
          if (!clientId) {
            status.textContent = 'A client ID is needed.';
            id.input.focus();
            return;
          }
          const spec: ClientSpec = {
            clientId,
            protocolVersion: version.input.value === '4' ? 4 : 5,
            clean: session.input.value === 'clean',
            sessionExpiryInterval: Math.max(0, Number(expiry.input.value) || 0),
            will: willOn.input.checked
              ? {
                  topic: willTopic.input.value.trim(),
                  payload: willPayload.input.value,
                  qos: Number(willQos.input.value) as QoS,
                  retain: willRetain.input.checked,
                  delaySeconds: Math.max(0, Number(willDelay.input.value) || 0),
                }
              : null,
          };
          if (spec.will && (!spec.will.topic || /[+#]/.test(spec.will.topic))) {
            status.textContent = 'The will needs a topic name without wildcards.';
            willTopic.input.focus();
            return;
          }
          status.textContent = '';
          registry.add(spec).then(
            () => {
              id.input.value = registry.suggestId();
            },
            (error: Error) => {
              status.textContent = error.message;
              id.input.focus();
            },
          );
        },
      },
    },
    h('div', { class: 'form-row' }, id.field, version.field, session.field, expiry.field),
    h('div', { class: 'form-row' }, willOn.field, h('button', { type: 'submit', class: 'button-primary' }, 'Create client')),
    willFields,
    status,
  );
  return form;
}
