// A card's two live logs: the messages the client received (topic, payload, flags, 5.0
// properties), and its packets grouped into exchanges, each step with its offset in time.
import type { ReceivedMessage } from '../../host/browser/index.js';
import type { CardPart } from './card-part.js';
import type { LoggedMessage, PlaygroundClient } from './client-model.js';
import { fill, followingLog, h } from './dom.js';
import type { Flow } from './flows.js';
import { clock, offset, payloadText, reasonText } from './format.js';

const LOG_LIMIT = 200;

export function messageLog(client: PlaygroundClient): CardPart {
  const log = h('ol', { class: 'log messages', role: 'log', 'aria-live': 'polite', 'aria-label': `Messages received by ${client.id}`, tabindex: 0 });
  const following = followingLog(log, LOG_LIMIT);
  const add = (entry: LoggedMessage): void => following.append(messageItem(entry));
  for (const entry of client.messages) add(entry);
  return {
    element: h('section', { class: 'card-section' }, h('h4', {}, 'Messages'), log),
    onEvent: (event) => {
      if (event.kind === 'message') add(event.entry);
    },
  };
}

export function packetLog(client: PlaygroundClient): CardPart {
  const log = h('ol', { class: 'log packets', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': `Packets of ${client.id}`, tabindex: 0 });
  const following = followingLog(log, LOG_LIMIT);
  const items = new Map<Flow, HTMLElement>();
  const show = (flow: Flow, started: boolean): void => {
    const existing = items.get(flow);
    if (!started && existing) {
      fill(existing, flowContent(flow));
      existing.classList.toggle('complete', flow.complete);
      return;
    }
    const item = h('li', { class: `flow${flow.complete ? ' complete' : ''}` }, flowContent(flow));
    items.set(flow, item);
    following.append(item);
    // Items the log dropped from its start no longer need updating.
    if (items.size > LOG_LIMIT) for (const [f, el] of items) if (!el.isConnected) items.delete(f);
  };
  for (const flow of client.flows.all()) show(flow, true);
  return {
    element: h('section', { class: 'card-section' }, h('h4', {}, 'Packets ', h('span', { class: 'hint' }, '→ to the broker · ← from it')), log),
    onEvent: (event) => {
      if (event.kind === 'flow') show(event.flow, event.started);
    },
  };
}

function messageItem({ at, message }: LoggedMessage): HTMLElement {
  return h(
    'li',
    { class: 'message' },
    h('time', {}, clock(at)),
    ' ',
    h('code', { class: 'topic' }, message.topic),
    ' ',
    h('span', { class: 'payload' }, payloadText(message.payload)),
    h('span', { class: 'badges' }, h('span', { class: 'badge' }, `QoS ${message.qos}`), message.retain && h('span', { class: 'badge badge-retained' }, 'retained'), message.dup && h('span', { class: 'badge' }, 'dup')),
    propertyList(message),
  );
}

function propertyList(message: ReceivedMessage): HTMLElement | null {
  const p = message.properties;
  const rows: [string, string][] = [];
  if (p.contentType) rows.push(['content type', p.contentType]);
  if (p.messageExpiryInterval !== undefined) rows.push(['expires in', `${p.messageExpiryInterval} s`]);
  if (p.responseTopic) rows.push(['response topic', p.responseTopic]);
  if (p.correlationData) rows.push(['correlation data', payloadText(p.correlationData)]);
  for (const [k, v] of p.userProperties ?? []) rows.push([`user: ${k}`, v]);
  if (p.subscriptionIdentifiers?.length) rows.push(['subscription ids', p.subscriptionIdentifiers.join(', ')]);
  if (rows.length === 0) return null;
  return h('dl', { class: 'properties-list' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function flowTitle(first: Flow['first']): string {
  if (first.type === 'PUBLISH') return `${first.direction === 'out' ? 'sent' : 'received'} QoS ${first.qos} · ${first.topic ?? ''}${first.retain ? ' · retain' : ''}`;
  if (first.type === 'CONNECT') return `connect (MQTT ${first.protocolVersion === 5 ? '5.0' : '3.1.1'})`;
  return first.type.toLowerCase();
}

function flowContent(flow: Flow): HTMLElement[] {
  const t0 = flow.first.at;
  return [
    h('div', { class: 'flow-title' }, h('time', {}, clock(flow.startedAt)), ' ', flowTitle(flow.first), !flow.complete && h('span', { class: 'pending' }, ' · waiting…')),
    h(
      'ol',
      { class: 'steps' },
      flow.steps.map((s) =>
        h(
          'li',
          { class: `step step-${s.direction}`, 'data-type': s.type },
          h('span', { class: 'arrow', 'aria-hidden': 'true' }, s.direction === 'out' ? '→' : '←'),
          h('span', { class: 'sr-only' }, s.direction === 'out' ? 'to the broker: ' : 'from the broker: '),
          h('strong', {}, s.type),
          s.packetId !== undefined && h('span', { class: 'packet-id' }, `#${s.packetId}`),
          s.dup && h('span', { class: 'badge' }, 'dup'),
          s.reasonCode !== undefined && s.reasonCode !== 0 && h('span', { class: s.reasonCode >= 0x80 ? 'reason reason-error' : 'reason' }, reasonText(s.reasonCode)),
          s.reasonCodes && h('span', { class: 'reason' }, s.reasonCodes.map((c) => reasonText(c)).join(', ')),
          h('time', {}, offset(s.at - t0)),
        ),
      ),
    ),
  ];
}
