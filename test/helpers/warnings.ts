import assert from 'node:assert/strict';

/**
 * Runs `body` and fails if Node warned of a timer it could not hold (TimeoutOverflowWarning: a
 * setTimeout over 2^31-1 ms, which Node fires after 1 ms instead).
 */
export async function withoutTimerOverflow(body: () => Promise<void>): Promise<void> {
  const overflows: string[] = [];
  const listener = (warning: Error): void => {
    if (warning.name === 'TimeoutOverflowWarning') overflows.push(warning.message);
  };
  process.on('warning', listener);
  try {
    await body();
    // Node emits warnings on a later tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listener);
  }
  assert.deepEqual(overflows, [], 'no timer was asked for more than 2^31-1 ms');
}
