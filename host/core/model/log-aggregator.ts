import type { Logger, LogLevel } from './options.js';

/** The interval one summary line covers. */
export const LOG_INTERVAL_MS = 10_000;
/** Keys with lines of their own per interval; events for keys beyond them are counted together. */
const MAX_KEYS = 100;
/** The key under which events beyond MAX_KEYS are counted, per message. */
const OTHERS = '\u0000others';

interface Pending {
  level: LogLevel;
  message: string;
  fields: Record<string, unknown> | undefined;
  /** Events since the last line written for this key. */
  count: number;
}

/**
 * Log lines that input can cause once per packet or per message — a message dropped, a PUBLISH
 * refused, a connection closed for a protocol error. Written one by one they would let a client
 * fill the disk (one line per message dropped for a full queue made 210 MB in 20 s), so they are
 * aggregated: per (message, key) — the key is a client or an address — the first event of an
 * interval is written at once, and the others are counted and written as one line at the end of
 * the interval, with the latest event's fields and `repeated`: how many events it stands for. A
 * key with events in every interval thus gets one line per interval. Beyond MAX_KEYS keys in an
 * interval, events are counted per message only. The broker's counters count every event.
 */
export class LogAggregator {
  private readonly pending = new Map<string, Pending>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Events folded into a summary line instead of a line of their own, since start. */
  suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = LOG_INTERVAL_MS,
  ) {}

  /** Logs `message` for `key` (a client id, an address), or counts it if this key already had a line this interval. */
  note(level: LogLevel, message: string, key: string, fields?: Record<string, unknown>): void {
    let id = `${message}\u0000${key}`;
    let entry = this.pending.get(id);
    if (entry === undefined && this.pending.size >= MAX_KEYS) {
      id = `${message}${OTHERS}`;
      entry = this.pending.get(id);
      if (entry === undefined) {
        this.pending.set(id, { level, message, fields, count: 1 });
        this.suppressed++;
        return;
      }
    }
    if (entry !== undefined) {
      entry.count++;
      entry.fields = fields;
      this.suppressed++;
      return;
    }
    this.pending.set(id, { level, message, fields, count: 0 });
    this.logger(level, message, fields);
    if (this.timer === null) {
      this.timer = setTimeout(this.endInterval, this.intervalMs);
      // A Node timer must not keep the process alive on its own; browsers have no unref.
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /** Writes the counts still pending (at shutdown) and forgets every key. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const entry of this.pending.values()) this.summarize(entry);
    this.pending.clear();
  }

  private readonly endInterval = (): void => {
    this.timer = null;
    for (const [id, entry] of this.pending) {
      // A key quiet for a whole interval is forgotten: its next event is written at once again.
      if (entry.count === 0 || id.endsWith(OTHERS)) this.pending.delete(id);
      this.summarize(entry);
      entry.count = 0;
    }
    if (this.pending.size > 0) {
      this.timer = setTimeout(this.endInterval, this.intervalMs);
      (this.timer as { unref?: () => void }).unref?.();
    }
  };

  private summarize(entry: Pending): void {
    if (entry.count === 0) return;
    this.logger(entry.level, entry.message, { ...entry.fields, repeated: entry.count, intervalSeconds: this.intervalMs / 1000 });
  }
}
