import type { Broker } from '../core/broker.js';

/** How often the process's memory is looked at: a refusal starts at most this late. */
export const MEMORY_CHECK_MS = 1000;

/**
 * Keeps the broker under a limit on the process's resident memory (RSS: the JavaScript heap, the wasm
 * arena, LevelDB, socket buffers): while over it the broker is `overloaded` and refuses new
 * connections and messages; it serves again once what it held has drained below the limit.
 */
export class MemoryLimit {
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly broker: Broker,
    private readonly maxBytes: number,
  ) {
    this.timer = setInterval(() => this.check(), MEMORY_CHECK_MS);
    this.timer.unref();
  }

  check(): void {
    const rss = process.memoryUsage.rss();
    const over = rss > this.maxBytes;
    if (over === this.broker.overloaded) return;
    this.broker.overloaded = over;
    if (over) this.broker.log('warn', 'over maxMemory: refusing new connections and messages', { rss, maxMemory: this.maxBytes });
    else this.broker.log('info', 'back under maxMemory: serving new connections and messages', { rss, maxMemory: this.maxBytes });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
