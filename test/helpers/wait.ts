/**
 * Waits until `done()` holds (an asynchronous check is awaited each time), checking every 5 ms; fails
 * after `ms` saying what did not happen. A loaded machine is slower, never faster: wait for the state
 * a test needs, not for a time.
 */
export async function until(done: () => boolean | Promise<boolean>, what = 'the condition', ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The client's own pace: time between a scenario's steps that the broker reacts to (activity
 * against keep alive, bytes trickling in). Never a wait for the broker to have done something.
 */
export const pace = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
