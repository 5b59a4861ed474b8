/**
 * Set relations between MQTT topic filters, for access control: which topics a filter can match
 * compared with those another can. Topic names are filters without wildcards, so `covers(filter, topic)`
 * is plain matching. The `$` rule applies throughout: a wildcard in the first level never matches a
 * topic whose first level starts with `$` [MQTT-4.7.2-1].
 */

/** Levels of a filter or topic ("a/b" → ["a", "b"]); keep the result to check many times. */
export const levels = (filter: string): string[] => filter.split('/');

const isWildcard = (level: string): boolean => level === '+' || level === '#';
const isDollar = (level: string): boolean => level.startsWith('$');

/** Is `filter` a well-formed topic filter: `#` only as the whole last level, `+` only as a whole level, non-empty. */
export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\0')) return false;
  const parts = levels(filter);
  return parts.every((level, i) => {
    if (level.includes('#')) return level === '#' && i === parts.length - 1;
    return !level.includes('+') || level === '+';
  });
}

/** Does every topic `inner` matches also match `outer`? (For a topic name: does `outer` match it.) */
export function covers(outer: readonly string[], inner: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    if (i === outer.length) return i === inner.length;
    const o = outer[i]!;
    if (o === '#') {
      // "a/#" also matches "a" [MQTT-4.7.1-2]; a first-level # leaves $ topics alone.
      return !(i === 0 && i < inner.length && !isWildcard(inner[0]!) && isDollar(inner[0]!));
    }
    if (i === inner.length) return false;
    const n = inner[i]!;
    if (n === '#') return false;
    if (o === '+') {
      if (i === 0 && n !== '+' && isDollar(n)) return false;
      continue;
    }
    if (n === '+' || n !== o) return false;
  }
}

/**
 * The filter matching exactly the topics both filters match, or null when there is none
 * (`a/+` and `+/b` → `a/b`; `a/#` and `+/b/#` → `a/b/#`; `#` and `$SYS/#` → null).
 */
export function intersection(a: readonly string[], b: readonly string[]): string[] | null {
  const common: string[] = [];
  for (let i = 0; ; i++) {
    if (i === a.length || i === b.length) {
      if (i === a.length && i === b.length) return common;
      // "x/#" also matches "x" [MQTT-4.7.1-2]: the shorter filter is what both match.
      return (i === a.length ? b[i] : a[i]) === '#' ? common : null;
    }
    const x = a[i]!;
    const y = b[i]!;
    if (isWildcard(x) && isWildcard(y)) {
      if (x === '#' || y === '#') return common.concat((x === '#' ? b : a).slice(i));
      common.push('+');
      continue;
    }
    if (isWildcard(x) || isWildcard(y)) {
      const literal = isWildcard(x) ? y : x;
      // A first-level wildcard leaves $ topics alone [MQTT-4.7.2-1].
      if (i === 0 && isDollar(literal)) return null;
      if ((isWildcard(x) ? x : y) === '#') return common.concat((x === '#' ? b : a).slice(i));
      common.push(literal);
      continue;
    }
    if (x !== y) return null;
    common.push(x);
  }
}
