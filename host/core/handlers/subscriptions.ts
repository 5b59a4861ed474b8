import type { Broker } from '../broker.js';
import { CoreError } from '../wasm/abi.js';

const SHARE_PREFIX = '$share/';

/** A topic filter as the trie sees it: `$share/{group}/{filter}` split into its parts (§4.8.2). */
export interface ParsedFilter {
  topicFilter: string;
  group: string | undefined;
  bytes: Uint8Array;
}

/** Splits and validates a filter; null if it is not a valid topic filter (§4.7, §4.8.2). */
export function parseFilter(broker: Broker, filter: string): ParsedFilter | null {
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
  const bytes = broker.encodeTopic(topicFilter);
  if (broker.core.topicCheckBytes(bytes, true) !== CoreError.Ok) return null;
  return { topicFilter, group, bytes };
}
