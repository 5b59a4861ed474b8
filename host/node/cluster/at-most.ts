/** Runs `fn` for each item, at most `concurrency` at once (a few etcd transactions in flight, not thousands); resolves when all are done. */
export async function eachAtMost<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const worker = async (): Promise<void> => {
    for (let item = queue.pop(); item !== undefined; item = queue.pop()) await fn(item);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
}
