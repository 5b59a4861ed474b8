import { Reason } from '../codec/constants.js';
import * as generate from '../codec/generate.js';
import type { QoS, SubscribePacket } from '../codec/packets.js';
import { deliver } from '../model/delivery.js';
import { ProtocolError, protocolError } from '../codec/errors.js';
import type { Message } from '../model/message.js';
import { parseFilter } from '../model/topics.js';
import type { ClientContext } from './context.js';

const REFUSALS: Record<number, string> = {
  [Reason.TopicFilterInvalid]: 'not a valid topic filter',
  [Reason.SharedSubscriptionsNotSupported]: 'shared subscriptions are not supported here',
  [Reason.WildcardSubscriptionsNotSupported]: 'wildcard subscriptions are not supported here',
  [Reason.NotAuthorized]: 'not authorized',
};

/**
 * SUBSCRIBE (§3.8): each filter is validated, granted at most the broker's maximum QoS, added to the
 * trie (replacing an identical one [MQTT-3.8.4-3]), answered in one SUBACK, and then the matching
 * retained messages are sent as the subscription's Retain Handling says [MQTT-3.3.1-9..11].
 */
export function handleSubscribe(conn: ClientContext, packet: SubscribePacket): void {
  const options = conn.broker.options;
  if (packet.props.subscriptionIdentifiers && !options.subscriptionIdentifiers) {
    throw new ProtocolError(Reason.SubscriptionIdentifiersNotSupported, 'subscription identifiers are not supported here (0xA1)');
  }
  for (const sub of packet.subscriptions) {
    if (sub.noLocal && sub.filter.startsWith('$share/')) throw protocolError('No Local on a shared subscription [MQTT-3.8.3-4]');
  }
  const authorize = options.authorizeSubscribe;
  if (!authorize) {
    subscribe(conn, packet, null);
    return;
  }
  const info = conn.info();
  const decisions = packet.subscriptions.map((sub) => authorize(info, sub.filter, sub.qos));
  if (decisions.some((d) => d instanceof Promise)) {
    conn.holdFor(Promise.all(decisions), (allowed) => subscribe(conn, packet, allowed));
  } else {
    subscribe(conn, packet, decisions as boolean[]);
  }
}

function subscribe(conn: ClientContext, packet: SubscribePacket, allowed: boolean[] | null): void {
  const broker = conn.broker;
  const session = conn.session!;
  const v5 = conn.version === 5;
  const subscriptionId = packet.props.subscriptionIdentifiers?.[0] ?? 0;
  const options = broker.options;
  const codes: number[] = [];
  const problems: string[] = [];
  const retained: [Message[], QoS][] = [];
  const now = performance.now();
  packet.subscriptions.forEach((sub, i) => {
    const parsed = parseFilter(broker.core, sub.filter);
    const refusal = !parsed
      ? Reason.TopicFilterInvalid
      : parsed.group !== undefined && !options.sharedSubscriptions
        ? Reason.SharedSubscriptionsNotSupported
        : !options.wildcardSubscriptions && /[+#]/.test(parsed.topicFilter)
          ? Reason.WildcardSubscriptionsNotSupported
          : allowed !== null && !allowed[i]
            ? Reason.NotAuthorized
            : 0;
    if (!parsed || refusal !== 0) {
      codes.push(v5 ? refusal : 0x80);
      problems.push(`${JSON.stringify(sub.filter)}: ${REFUSALS[refusal]}`);
      return;
    }
    const granted = Math.min(sub.qos, options.maxQoS) as QoS;
    const existed = session.subscriptions.has(sub.filter);
    broker.router.subscribe(session, parsed, { ...sub, qos: granted }, subscriptionId);
    codes.push(granted);
    // Retained messages are not sent for shared subscriptions (§4.8.2).
    if (parsed.group === undefined && (sub.retainHandling === 0 || (sub.retainHandling === 1 && !existed))) {
      retained.push([broker.retained.match(parsed.bytes, now), granted]);
    }
  });
  broker.persistence.saveSession(session);
  // Reason strings only for a client that did not turn problem information off [MQTT-3.1.2-29].
  const props = problems.length > 0 && conn.limits.problemInformation ? { reasonString: problems.join('; ') } : undefined;
  const ids = v5 && subscriptionId !== 0 ? [subscriptionId] : null;
  for (const [messages] of retained) for (const message of messages) message.ref();
  // A persistent session's SUBACK waits until its subscriptions are durable: after a crash the client
  // would find its session present without the subscription it was told it has, and receive nothing.
  broker.persistence.afterCommit(session, () => {
    if (conn.open) {
      conn.sendWithProperties((p) => generate.suback(conn.version as 3 | 4 | 5, packet.packetId, codes, p), props);
      for (const [messages, granted] of retained) {
        for (const message of messages) {
          // Only what the subscriber may read: a grant of `#` is not a grant of every topic under it.
          if (!broker.router.mayRead(session, message)) continue;
          // A retained message is sent with RETAIN set [MQTT-3.3.1-8], at no more than the granted QoS.
          deliver(broker, session, message, Math.min(message.qos, granted) as QoS, true, ids);
        }
      }
    }
    for (const [messages] of retained) for (const message of messages) message.unref();
  });
}
