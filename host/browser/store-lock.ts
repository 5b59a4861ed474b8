/**
 * Exclusive ownership of an IndexedDB database among the tabs and workers of an origin (Web Locks):
 * two brokers writing one database would each restore and overwrite the other's sessions.
 * Resolves with a release function, or null when another holder kept it for `waitMs`. Without
 * Web Locks (old browsers) there is no way to know, and ownership is assumed.
 */
export async function acquireStoreLock(name: string, waitMs: number): Promise<(() => void) | null> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return () => undefined;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  return new Promise((resolve) => {
    const signal = AbortSignal.timeout(waitMs);
    locks
      .request(`arbormq:store:${name}`, { signal }, () => {
        resolve(release);
        return held;
      })
      .catch(() => resolve(null));
  });
}
