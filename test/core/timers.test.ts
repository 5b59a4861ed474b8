import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Clock, MAX_TIMER_DELAY_MS, type Timed, Timers } from '../../host/core/model/timers.js';

/** A clock the test moves by hand; it runs the host timer when its time comes, as a host would. */
class HandClock implements Clock {
  time = 1000.25;
  /** Every delay Timers asked the host for. */
  readonly requested: number[] = [];
  private pending: { run: () => void; at: number } | null = null;

  now(): number {
    return this.time;
  }

  setTimeout(run: () => void, ms: number): unknown {
    assert.ok(this.pending === null, 'one host timer at a time');
    this.requested.push(ms);
    this.pending = { run, at: this.time + Math.max(1, ms) };
    return this.pending;
  }

  clearTimeout(handle: unknown): void {
    assert.equal(handle, this.pending);
    this.pending = null;
  }

  get armed(): boolean {
    return this.pending !== null;
  }

  /** The next host timer fires while now() still reads this many ms before its time (Node's stale loop time). */
  nextFiresEarlyBy = 0;

  /** Moves time forward to `to`, firing the host timer each time it comes due on the way. */
  advanceTo(to: number): void {
    while (this.pending && this.pending.at <= to) {
      const { run, at } = this.pending;
      this.pending = null;
      this.time = at - this.nextFiresEarlyBy;
      this.nextFiresEarlyBy = 0;
      run();
    }
    this.time = to;
  }
}

class Entry implements Timed {
  timerDue = 0;
  timerSlot = -1;
  constructor(
    readonly name: string,
    readonly fired: [string, number][],
    readonly then?: (now: number) => void,
  ) {}

  onTimer(now: number): void {
    this.fired.push([this.name, now]);
    this.then?.(now);
  }
}

describe('Timers: one heap of deadlines behind one host timer', () => {
  it('fires entries in deadline order, each once, at or after its deadline', () => {
    const clock = new HandClock();
    const timers = new Timers(clock);
    const fired: [string, number][] = [];
    const t0 = clock.time;
    const dues = [500, 20, 300, 20, 7, 10_000, 1];
    dues.forEach((d, i) => timers.schedule(new Entry(`e${i}:${d}`, fired), t0 + d));
    clock.advanceTo(t0 + 20_000);
    assert.deepEqual(
      fired.map(([name]) => Number(name.split(':')[1])),
      [...dues].sort((a, b) => a - b),
    );
    for (const [name, at] of fired) assert.ok(at >= t0 + Number(name.split(':')[1]), `${name} fired at ${at - t0}`);
    assert.equal(timers.size, 0);
    assert.equal(clock.armed, false, 'no host timer is left set once nothing is scheduled');
  });

  it('never asks the host for more than 2^31-1 ms, and reaches a deadline 2^32-1 s away in steps', () => {
    const clock = new HandClock();
    const timers = new Timers(clock);
    const fired: [string, number][] = [];
    const due = clock.time + 0xffffffff * 1000;
    timers.schedule(new Entry('far', fired), due);
    clock.advanceTo(due - 1);
    assert.equal(fired.length, 0, 'nothing fires before the deadline');
    clock.advanceTo(due + 1);
    assert.deepEqual(fired.map(([n]) => n), ['far']);
    assert.ok(fired[0]![1] >= due);
    assert.ok(clock.requested.length >= 2000, `${clock.requested.length} steps of at most 24.8 days`);
    for (const ms of clock.requested) assert.ok(ms >= 0 && ms <= MAX_TIMER_DELAY_MS && Number.isInteger(ms), `asked for ${ms} ms`);
  });

  it('cancels: a cancelled entry never fires, the others still do', () => {
    const clock = new HandClock();
    const timers = new Timers(clock);
    const fired: [string, number][] = [];
    const entries = Array.from({ length: 50 }, (_, i) => new Entry(`e${i}`, fired));
    entries.forEach((e, i) => timers.schedule(e, clock.time + ((i * 37) % 50) + 1));
    const cancelled = new Set([0, 1, 13, 25, 49].map((i) => entries[i]!));
    for (const e of cancelled) timers.cancel(e);
    timers.cancel(entries[0]!); // twice: nothing happens
    assert.equal(timers.size, 45);
    clock.advanceTo(clock.time + 100);
    const names = fired.map(([n]) => n);
    assert.equal(names.length, 45);
    for (const e of cancelled) assert.ok(!names.includes(e.name), `${e.name} was cancelled`);
    const dues = fired.map(([n]) => (Number(n.slice(1)) * 37) % 50);
    assert.deepEqual(dues, [...dues].sort((a, b) => a - b), 'the heap kept its order through the removals');
  });

  it('reschedules: earlier re-arms the host timer, later does not fire early', () => {
    const clock = new HandClock();
    const timers = new Timers(clock);
    const fired: [string, number][] = [];
    const t0 = clock.time;
    const a = new Entry('a', fired);
    const b = new Entry('b', fired);
    timers.schedule(a, t0 + 1000);
    timers.schedule(b, t0 + 2000);
    timers.schedule(b, t0 + 10);
    clock.advanceTo(t0 + 11);
    assert.deepEqual(fired, [['b', t0 + 10]]);
    timers.schedule(a, t0 + 5000);
    clock.advanceTo(t0 + 4999);
    assert.equal(fired.length, 1, 'a moved later does not fire at its old deadline');
    clock.advanceTo(t0 + 5000);
    assert.deepEqual(fired[1], ['a', t0 + 5000]);
  });

  it('lets an entry schedule itself again from onTimer (the lazy keep-alive check)', () => {
    const clock = new HandClock();
    const timers = new Timers(clock);
    const fired: [string, number][] = [];
    let lastSeen = clock.time;
    const limit = 1500;
    const conn: Entry = new Entry('conn', fired, (now) => {
      if (now - lastSeen < limit) timers.schedule(conn, lastSeen + limit);
    });
    timers.schedule(conn, lastSeen + limit);
    // Activity moves lastSeen only; the entry stays where it is until its deadline.
    clock.advanceTo(clock.time + 1000);
    lastSeen = clock.time;
    clock.advanceTo(clock.time + 1000);
    lastSeen = clock.time;
    assert.equal(fired.length, 1, 'the first deadline found the connection active and moved on');
    clock.advanceTo(lastSeen + limit + 1);
    assert.equal(fired.length, 3);
    assert.equal(fired[2]![1], lastSeen + limit, 'the last check found it idle for the whole limit');
    assert.equal(timers.size, 0);
  });

  it('copes with a host timer that fires early: it waits again for the rest', () => {
    const clock = new HandClock();
    const timers = new Timers(clock);
    const fired: [string, number][] = [];
    const t0 = clock.time;
    timers.schedule(new Entry('x', fired), t0 + 100.5);
    clock.nextFiresEarlyBy = 2;
    clock.advanceTo(t0 + 101);
    // Woken at t0 + 99 by its clock, nothing was due: it asked for the 2 ms left, then fired.
    assert.deepEqual(clock.requested, [101, 2]);
    assert.deepEqual(fired, [['x', t0 + 101]]);
  });

  it('stop() unschedules everything and clears the host timer', () => {
    const clock = new HandClock();
    const timers = new Timers(clock);
    const fired: [string, number][] = [];
    const e = new Entry('e', fired);
    timers.schedule(e, clock.time + 10);
    timers.schedule(new Entry('f', fired), clock.time + 20);
    timers.stop();
    assert.equal(clock.armed, false);
    assert.equal(timers.size, 0);
    assert.equal(e.timerSlot, -1);
    clock.advanceTo(clock.time + 100);
    assert.deepEqual(fired, []);
  });

  it('keeps the heap ordered under random schedule, reschedule and cancel', () => {
    const clock = new HandClock();
    const timers = new Timers(clock);
    const fired: [string, number][] = [];
    const entries = Array.from({ length: 500 }, (_, i) => new Entry(String(i), fired));
    const due = new Map<Entry, number>();
    let seed = 42;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let step = 0; step < 5000; step++) {
      const e = entries[Math.floor(random() * entries.length)]!;
      if (random() < 0.25) {
        timers.cancel(e);
        due.delete(e);
      } else {
        const at = clock.time + 1 + Math.floor(random() * 10_000);
        timers.schedule(e, at);
        due.set(e, at);
      }
    }
    assert.equal(timers.size, due.size);
    clock.advanceTo(clock.time + 20_000);
    assert.equal(fired.length, due.size);
    const times = fired.map(([name, at]) => {
      const expected = due.get(entries[Number(name)]!)!;
      assert.equal(at, expected, `entry ${name} fires at its latest deadline`);
      return at;
    });
    assert.deepEqual(times, [...times].sort((a, b) => a - b));
  });
});
