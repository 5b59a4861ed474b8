import type { Message } from '../message.js';
import { Prop } from './constants.js';
import { varintSize, writeVarint } from './writer.js';

/**
 * The 5.0 properties of one outgoing PUBLISH that differ per delivery: the Message Expiry Interval
 * left [MQTT-3.3.2-6], each matching Subscription Identifier [MQTT-3.3.4-3], and the Topic Alias
 * (0 = none). Null when there are none. The forwarded properties follow them, straight from the
 * message's arena block.
 */
export function encodeDeliveryProperties(
  message: Message,
  subscriptionIds: number[] | null,
  topicAlias: number,
  now: number,
): Uint8Array | null {
  const expiry = message.remainingExpiry(now);
  let size = expiry === undefined ? 0 : 5;
  if (subscriptionIds) for (const id of subscriptionIds) size += 1 + varintSize(id);
  if (topicAlias !== 0) size += 3;
  if (size === 0) return null;
  const out = new Uint8Array(size);
  let pos = 0;
  if (expiry !== undefined) {
    out[pos++] = Prop.MessageExpiryInterval;
    out[pos++] = expiry >>> 24;
    out[pos++] = (expiry >>> 16) & 0xff;
    out[pos++] = (expiry >>> 8) & 0xff;
    out[pos++] = expiry & 0xff;
  }
  if (subscriptionIds) {
    for (const id of subscriptionIds) {
      out[pos++] = Prop.SubscriptionIdentifier;
      pos = writeVarint(out, pos, id);
    }
  }
  if (topicAlias !== 0) {
    out[pos++] = Prop.TopicAlias;
    out[pos++] = topicAlias >> 8;
    out[pos++] = topicAlias & 0xff;
  }
  return out;
}
