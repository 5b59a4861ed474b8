// `$SYS` is the broker's own topic tree (§4.7.2): clients may read it, never publish there — not
// even through a will. Other topics starting with `$` are ordinary topics for clients, under the
// same access rules as any other (only wildcard-first filters never match them [MQTT-4.7.2-1]).

const PREFIX = [0x24, 0x53, 0x59, 0x53]; // "$SYS"
const SLASH = 0x2f;

/** Is the topic `$SYS` or under `$SYS/`? */
export function isBrokerTopic(topic: string): boolean {
  return topic.startsWith('$SYS') && (topic.length === 4 || topic.charCodeAt(4) === SLASH);
}

/** isBrokerTopic over the topic's UTF-8 bytes at `start`, `length` long. */
export function isBrokerTopicBytes(bytes: Uint8Array, start: number, length: number): boolean {
  if (length < 4 || (length > 4 && bytes[start + 4] !== SLASH)) return false;
  for (let i = 0; i < 4; i++) if (bytes[start + i] !== PREFIX[i]) return false;
  return true;
}
