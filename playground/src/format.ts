// How numbers, payloads, times and reason codes read on the page.

const utf8 = new TextDecoder();

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatRate(perSecond: number): string {
  return perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond).toLocaleString('en');
}

/** Wall-clock time of day with milliseconds, e.g. 14:03:07.215. */
export function clock(epochMs: number): string {
  const d = new Date(epochMs);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A step's offset from the first step of its flow: "0 ms", "+0.42 ms", "+12 ms". */
export function offset(ms: number): string {
  if (ms === 0) return '0 ms';
  return `+${ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

/** A payload as text when it is UTF-8 that reads as text, else as hex. */
export function payloadText(payload: Uint8Array, max = 200): string {
  const slice = payload.subarray(0, max);
  const more = payload.length > max ? ` … (${formatBytes(payload.length)})` : '';
  const text = utf8.decode(slice);
  // Replacement characters or control codes: show bytes instead of garbage.
  if (/[\uFFFD\u0000-\u0008\u000E-\u001F]/.test(text)) return `0x${[...slice].map((b) => b.toString(16).padStart(2, '0')).join('')}${more}`;
  return text + more;
}

const REASONS: Record<number, string> = {
  0x00: 'success',
  0x01: 'granted QoS 1',
  0x02: 'granted QoS 2',
  0x04: 'disconnect with will',
  0x10: 'no matching subscribers',
  0x11: 'no subscription existed',
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x85: 'client identifier not valid',
  0x87: 'not authorized',
  0x89: 'server busy',
  0x8b: 'server shutting down',
  0x8e: 'session taken over',
  0x8f: 'topic filter invalid',
  0x90: 'topic name invalid',
  0x91: 'packet identifier in use',
  0x92: 'packet identifier not found',
  0x93: 'receive maximum exceeded',
  0x95: 'packet too large',
  0x97: 'quota exceeded',
  0x9e: 'shared subscriptions not supported',
};

export function reasonText(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')} ${REASONS[code] ?? ''}`.trim();
}

/** Topic names carry no wildcards and are not empty [MQTT-4.7.3-1, 3.3.2-2]: checked before a publish is sent, so a typo does not cost the connection. */
export function topicNameProblem(topic: string): string | null {
  if (topic.length === 0) return 'a topic name cannot be empty';
  if (/[+#]/.test(topic)) return 'a topic name cannot contain + or # (those are for filters)';
  if (topic.includes('\u0000')) return 'a topic name cannot contain U+0000';
  return null;
}
