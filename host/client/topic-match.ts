/**
 * Whether `topic` matches `filter` (§4.7): `+` one level, `#` the rest (including the parent), and
 * topics starting with `$` are not matched by a filter starting with a wildcard [MQTT-4.7.2-1].
 * A `$share/{group}/` prefix is ignored (the broker already picked this client for the group).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter.startsWith('$share/')) {
    const slash = filter.indexOf('/', 7);
    if (slash < 0) return false;
    filter = filter.slice(slash + 1);
  }
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
