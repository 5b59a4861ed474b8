import { CoreError } from '../wasm/abi.js';
import type { Core } from '../wasm/core.js';

// Topic names and filters as the broker reads them (§4.7, §4.8.2). The byte-level rules (UTF-8,
// wildcards, levels) are checked in wasm (assembly/topic.ts); what is about whole names lives here.

const utf8 = new TextEncoder();

// ---- `$SYS` ---------------------------------------------------------------------------------
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

// ---- filters and `$share` -------------------------------------------------------------------

const SHARE_PREFIX = '$share/';

/** A topic filter as the trie sees it: `$share/{group}/{filter}` split into its parts (§4.8.2). */
export interface ParsedFilter {
  /** The filter without any `$share/{group}/` prefix. */
  topicFilter: string;
  /** The share name of a `$share/{group}/…` filter, else undefined. */
  group: string | undefined;
  /** `topicFilter` in UTF-8. */
  bytes: Uint8Array;
}

/** Splits and validates a filter; null if it is not a valid topic filter (§4.7, §4.8.2). */
export function parseFilter(core: Core, filter: string): ParsedFilter | null {
  let topicFilter = filter;
  let group: string | undefined;
  if (filter.startsWith(SHARE_PREFIX)) {
    const slash = filter.indexOf('/', SHARE_PREFIX.length);
    if (slash < 0) return null;
    group = filter.slice(SHARE_PREFIX.length, slash);
    topicFilter = filter.slice(slash + 1);
    // The share name is at least one character and holds no wildcard [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    if (group.length === 0 || group.includes('+') || group.includes('#') || topicFilter.length === 0) return null;
  }
  const bytes = utf8.encode(topicFilter);
  if (core.topicCheckBytes(bytes, true) !== CoreError.Ok) return null;
  return { topicFilter, group, bytes };
}

/** Whether `topic` is a valid topic name (a will's topic, checked at CONNECT). */
export function isTopicName(core: Core, topic: string): boolean {
  return core.topicCheckBytes(utf8.encode(topic), false) === CoreError.Ok;
}
