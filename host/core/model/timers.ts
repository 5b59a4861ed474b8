/**
 * Something with a deadline in `Timers`. The owner carries the two bookkeeping fields itself, so
 * scheduling allocates nothing: a connection or a session is its own timer entry.
 */
export interface Timed {
  /** When it is due, in the clock's milliseconds. Written by Timers only. */
  timerDue: number;
  /** Its index in the heap, -1 while not scheduled. Written by Timers only. */
  timerSlot: number;
  /** Its deadline has passed; it is no longer scheduled (it may schedule itself again). */
  onTimer(now: number): void;
}

/** Where Timers reads the time and sets its one host timer: the platform's, or a test's own. */
export interface Clock {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The longest delay a host timer holds: setTimeout fires at once (Node: TimeoutOverflowWarning) beyond it. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** performance.now() and the global setTimeout, unref'd where the host has unref (Node) so it never keeps a process alive. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(run, ms) {
    const handle = setTimeout(run, ms);
    (handle as { unref?: () => void }).unref?.();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Every deadline of a broker in one binary min-heap, driven by a single host timer set to the
 * nearest deadline (never asked for more than MAX_TIMER_DELAY_MS: a farther one is reached in
 * steps). Schedule, reschedule and cancel are O(log n); a timer that fires late is fine, one that
 * fires early (host timers count from a slightly stale loop time) finds nothing due and waits again.
 */
export class Timers {
  private readonly heap: Timed[] = [];
  private handle: unknown = null;
  /** When the host timer fires; Infinity when none is set. */
  private wakeAt = Infinity;
  /** Inside run(): entries scheduled by onTimer are picked up by its loop, the host timer is set once at the end. */
  private running = false;

  constructor(private readonly clock: Clock = systemClock) {}

  now(): number {
    return this.clock.now();
  }

  /** Entries scheduled. */
  get size(): number {
    return this.heap.length;
  }

  /** Makes `entry` due at `due` (ms on the clock), whether or not it was scheduled before. */
  schedule(entry: Timed, due: number): void {
    const slot = entry.timerSlot;
    if (slot < 0) {
      entry.timerDue = due;
      entry.timerSlot = this.heap.length;
      this.heap.push(entry);
      this.up(entry.timerSlot);
    } else {
      const earlier = due < entry.timerDue;
      entry.timerDue = due;
      if (earlier) this.up(slot);
      else this.down(slot);
    }
    // A later deadline than the one the host timer is set for only means one early wake-up.
    if (!this.running && due < this.wakeAt) this.arm(due);
  }

  /** Unschedules `entry` (nothing if it was not scheduled). */
  cancel(entry: Timed): void {
    const slot = entry.timerSlot;
    if (slot < 0) return;
    entry.timerSlot = -1;
    const last = this.heap.pop()!;
    if (last === entry) return;
    this.heap[slot] = last;
    last.timerSlot = slot;
    this.up(slot);
    this.down(last.timerSlot);
  }

  /** Unschedules everything and clears the host timer. */
  stop(): void {
    for (const entry of this.heap) entry.timerSlot = -1;
    this.heap.length = 0;
    this.disarm();
  }

  private readonly run = (): void => {
    this.handle = null;
    this.wakeAt = Infinity;
    this.running = true;
    const now = this.clock.now();
    const heap = this.heap;
    try {
      while (heap.length > 0 && heap[0]!.timerDue <= now) {
        const entry = heap[0]!;
        this.cancel(entry);
        entry.onTimer(now);
      }
    } finally {
      this.running = false;
      if (heap.length > 0) this.arm(heap[0]!.timerDue);
    }
  };

  private arm(due: number): void {
    this.disarm();
    const now = this.clock.now();
    const ms = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, Math.ceil(due - now)));
    this.wakeAt = now + ms;
    this.handle = this.clock.setTimeout(this.run, ms);
  }

  private disarm(): void {
    if (this.handle !== null) this.clock.clearTimeout(this.handle);
    this.handle = null;
    this.wakeAt = Infinity;
  }

  private up(slot: number): void {
    const heap = this.heap;
    const entry = heap[slot]!;
    const due = entry.timerDue;
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1;
      const parent = heap[parentSlot]!;
      if (parent.timerDue <= due) break;
      heap[slot] = parent;
      parent.timerSlot = slot;
      slot = parentSlot;
    }
    heap[slot] = entry;
    entry.timerSlot = slot;
  }

  private down(slot: number): void {
    const heap = this.heap;
    const length = heap.length;
    const entry = heap[slot]!;
    const due = entry.timerDue;
    for (;;) {
      let child = 2 * slot + 1;
      if (child >= length) break;
      if (child + 1 < length && heap[child + 1]!.timerDue < heap[child]!.timerDue) child++;
      const next = heap[child]!;
      if (next.timerDue >= due) break;
      heap[slot] = next;
      next.timerSlot = slot;
      slot = child;
    }
    heap[slot] = entry;
    entry.timerSlot = slot;
  }
}
