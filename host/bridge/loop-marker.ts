// How bridges keep a message from going round in circles when brokers bridge to each other.
//
// No Local already stops the echo on one link (a bridge never receives back what it published).
// What it cannot see is a second link: broker A bridging to B while B bridges to A, or a ring of
// three. So every message a bridge carries names the brokers it has been on, in a 5.0 user property
// `arbormq-via` (one per broker, oldest first), and a bridge refuses to carry a message back to a
// broker it has been on:
//
// - carrying in (remote → this broker): refused when this broker is on the list; otherwise this
//   broker is added and the message published here;
// - carrying out (this broker → remote): refused when this broker is on the list other than last
//   (it left here before and came back); otherwise this broker is added (unless it is already last:
//   the message came in through one of this broker's bridges and now goes on, a chain).
//
// A bridge does not know the remote broker's identity, so a message can reach a broker once more
// than once round a loop (at least once allows that), but no message crosses any link forever.
import type { PublishProperties } from '../client/types.js';

export const VIA_PROPERTY = 'arbormq-via';

/** An identity for one broker instance, unique enough to tell the brokers of a deployment apart. */
export function newBrokerId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The brokers a message has been on, oldest first. */
export function viaPath(properties: PublishProperties): string[] {
  return (properties.userProperties ?? []).filter(([name]) => name === VIA_PROPERTY).map(([, value]) => value);
}

/** The properties to publish an inbound message here with, or null when it has been here before. */
export function markInbound(properties: PublishProperties, self: string): PublishProperties | null {
  if (viaPath(properties).includes(self)) return null;
  return withVia(properties, self);
}

/** The properties to publish an outbound message to the remote broker with, or null when it would go round again. */
export function markOutbound(properties: PublishProperties, self: string): PublishProperties | null {
  const path = viaPath(properties);
  const at = path.indexOf(self);
  if (at >= 0 && at < path.length - 1) return null;
  return at === path.length - 1 && at >= 0 ? forwarded(properties) : withVia(properties, self);
}

/** The properties a subscriber received, without what the broker added for this delivery only. */
function forwarded(properties: PublishProperties): PublishProperties {
  const { subscriptionIdentifiers: _ids, ...rest } = properties;
  return rest;
}

function withVia(properties: PublishProperties, self: string): PublishProperties {
  const out = forwarded(properties);
  out.userProperties = [...(properties.userProperties ?? []), [VIA_PROPERTY, self]];
  return out;
}
