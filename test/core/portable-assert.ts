// A few assertions with no Node built-ins, so the same test cases run under node:test and inside a
// browser page (the IndexedDB store is checked in Chromium against the cases LevelDB passes).

export class AssertionFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionFailed';
  }
}

const show = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? `Uint8Array[${[...x].join(',')}]` : x instanceof Map ? { Map: [...x] } : x));

/** Structural equality: primitives by Object.is, arrays, plain objects, Uint8Array and Map by content. */
export function deepEqual(actual: unknown, expected: unknown): boolean {
  if (Object.is(actual, expected)) return true;
  if (typeof actual !== 'object' || typeof expected !== 'object' || actual === null || expected === null) return false;
  if (Object.getPrototypeOf(actual) !== Object.getPrototypeOf(expected)) return false;
  if (actual instanceof Uint8Array) return actual.length === (expected as Uint8Array).length && actual.every((b, i) => b === (expected as Uint8Array)[i]);
  if (actual instanceof Map) {
    const e = expected as Map<unknown, unknown>;
    return actual.size === e.size && [...actual].every(([k, v]) => e.has(k) && deepEqual(v, e.get(k)));
  }
  const ak = Object.keys(actual);
  const ek = Object.keys(expected);
  return ak.length === ek.length && ak.every((k) => Object.hasOwn(expected, k) && deepEqual((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k]));
}

export const check = {
  equal(actual: unknown, expected: unknown, message?: string): void {
    if (!Object.is(actual, expected)) throw new AssertionFailed(`${message ? `${message}: ` : ''}expected ${show(expected)}, got ${show(actual)}`);
  },
  deepEqual(actual: unknown, expected: unknown, message?: string): void {
    if (!deepEqual(actual, expected)) throw new AssertionFailed(`${message ? `${message}: ` : ''}expected ${show(expected)}, got ${show(actual)}`);
  },
  ok(value: unknown, message = 'expected a truthy value'): void {
    if (!value) throw new AssertionFailed(message);
  },
};
