// Flow control for throughput scenarios. Two brakes keep the generator from outrunning the
// broker without bound: a per-socket write high-water mark (resume on 'drain'), and an end-to-end
// window on messages sent but not yet received by subscribers, so the measured rate is what the
// broker sustains end to end rather than what it manages to buffer.

import type { BenchConn } from './conn.js';

const HIGH_WATER = 1024 * 1024;
/** Blocked on the window this long with nothing received: count the outstanding messages lost and go on. */
const STALL_MS = 1000;

export class Flow {
  /** Deliveries the brokers owes us for what was sent. */
  sent = 0;
  received = 0;
  /** Deliveries given up on after a stall (the broker dropped them). */
  writtenOff = 0;
  stalls = 0;

  constructor(readonly limit: number) {}

  room(): number {
    return this.limit - (this.sent - this.received - this.writtenOff);
  }

  outstanding(): number {
    return this.sent - this.received - this.writtenOff;
  }
}

export interface Source {
  conn: BenchConn;
  /** Deliveries the next batch will cause; -1 when this source has nothing more to send. */
  nextDeliveries(): number;
  /** Writes the next batch. */
  writeNext(): void;
}

/** Writes batches round-robin over sources while both brakes allow. */
export class Pump {
  private running = false;
  private scheduled = false;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private lastReceived = 0;
  private lastProgressAt = 0;
  private first = 0;
  private readonly waitingDrain = new Set<BenchConn>();

  constructor(
    private readonly flow: Flow,
    private readonly sources: Source[],
  ) {}

  start(): void {
    this.running = true;
    this.lastProgressAt = performance.now();
    this.watchdog = setInterval(() => this.checkStall(), 250);
    this.kick();
  }

  stop(): void {
    this.running = false;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  /** Call when subscribers received something (room may have opened). */
  kick(): void {
    if (this.scheduled || !this.running) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    if (!this.running) return;
    const flow = this.flow;
    let wrote = false;
    // Bounded per turn so received data is processed between rounds.
    const sources = this.sources;
    for (let round = 0; round < 32; round++) {
      let any = false;
      // Rotating start: whoever comes first would otherwise take all the room the window frees.
      this.first = (this.first + 1) % sources.length;
      for (let i = 0; i < sources.length; i++) {
        const s = sources[(this.first + i) % sources.length]!;
        if (this.waitingDrain.has(s.conn)) continue;
        const n = s.nextDeliveries();
        if (n < 0 || (n > flow.room() && flow.outstanding() > 0)) continue;
        s.writeNext();
        flow.sent += n;
        any = true;
        if (s.conn.writableLength > HIGH_WATER) this.awaitDrain(s.conn);
      }
      if (!any) break;
      wrote = true;
    }
    if (wrote) this.kick();
  };

  private awaitDrain(conn: BenchConn): void {
    this.waitingDrain.add(conn);
    conn.socket.once('drain', () => {
      this.waitingDrain.delete(conn);
      this.kick();
    });
  }

  private checkStall(): void {
    const flow = this.flow;
    const now = performance.now();
    if (flow.received !== this.lastReceived) {
      this.lastReceived = flow.received;
      this.lastProgressAt = now;
      return;
    }
    if (flow.outstanding() > 0 && now - this.lastProgressAt > STALL_MS) {
      flow.writtenOff += flow.outstanding();
      flow.stalls++;
      this.lastProgressAt = now;
      this.kick();
    }
  }
}
