import { FrameReader, FrameType, FrameWriter, LinkProtocolError } from './frame.js';

const enum RoutesKind {
  Snapshot = 0,
  Delta = 1,
}

/**
 * The distinct filters this node has subscribers for (a `$share/{group}/` filter counts as its own),
 * each reference-counted: a million subscribers to one filter are one route. Changes made during an
 * event-loop turn go out together as one numbered delta; a new link gets a snapshot first.
 */
export class LocalRoutes {
  private readonly counts = new Map<string, number>();
  private seq = 0;
  private added = new Set<string>();
  private removed = new Set<string>();

  constructor(
    /** Called once per turn with changes to send (schedules `flush`). */
    private readonly changed: () => void,
  ) {}

  get size(): number {
    return this.counts.size;
  }

  add(filter: string): void {
    const count = this.counts.get(filter) ?? 0;
    this.counts.set(filter, count + 1);
    if (count > 0) return;
    if (!this.removed.delete(filter)) this.added.add(filter);
    this.changed();
  }

  remove(filter: string): void {
    const count = this.counts.get(filter);
    if (count === undefined) return;
    if (count > 1) {
      this.counts.set(filter, count - 1);
      return;
    }
    this.counts.delete(filter);
    if (!this.added.delete(filter)) this.removed.add(filter);
    this.changed();
  }

  /** The delta frame of the changes since the last one, or null when they cancelled out. */
  delta(): Buffer | null {
    if (this.added.size === 0 && this.removed.size === 0) return null;
    const frame = encode(RoutesKind.Delta, ++this.seq, this.added, this.removed);
    this.added = new Set();
    this.removed = new Set();
    return frame;
  }

  /** Every route as of the last delta (call delta() first so nothing pending is left out or sent twice). */
  snapshot(): Buffer {
    const current = [...this.counts.keys()].filter((f) => !this.added.has(f));
    return encode(RoutesKind.Snapshot, this.seq, [...current, ...this.removed], []);
  }
}

function encode(kind: RoutesKind, seq: number, adds: Iterable<string>, removes: Iterable<string>): Buffer {
  const w = new FrameWriter(FrameType.Routes).u8(kind).uint(seq);
  for (const list of [adds, removes]) {
    const items = [...list];
    w.u32(items.length);
    for (const filter of items) w.string(filter);
  }
  return w.finish();
}

/** Where a peer's routes go: the broker's trie, with the peer as a pseudo-subscriber. */
export interface RouteSink {
  addRoute(filter: string): void;
  removeRoute(filter: string): void;
}

/**
 * A peer's routes as it announced them. A delta out of sequence means a lost frame: a protocol
 * error, and the link starts over (with a snapshot).
 */
export class RemoteRoutes {
  readonly filters = new Set<string>();
  private seq = -1;
  /** A snapshot has come: the peer's routes are known (a link going down keeps them). */
  known = false;

  constructor(private readonly sink: RouteSink) {}

  get size(): number {
    return this.filters.size;
  }

  apply(reader: FrameReader): void {
    const kind = reader.u8();
    const seq = reader.uint();
    const adds = list(reader);
    const removes = list(reader);
    if (kind === RoutesKind.Snapshot) {
      const next = new Set(adds);
      for (const filter of [...this.filters]) if (!next.has(filter)) this.drop(filter);
      for (const filter of next) this.take(filter);
      this.known = true;
    } else if (kind === RoutesKind.Delta) {
      if (seq !== this.seq + 1) throw new LinkProtocolError(`route delta ${seq} after ${this.seq}`);
      for (const filter of removes) this.drop(filter);
      for (const filter of adds) this.take(filter);
    } else {
      throw new LinkProtocolError(`unknown routes frame kind ${kind}`);
    }
    this.seq = seq;
  }

  /** The link went down: deltas start over with the next snapshot (the routes stay until then or until the peer leaves). */
  expectSnapshot(): void {
    this.seq = -1;
  }

  /** The peer left: every route goes. */
  clear(): void {
    for (const filter of [...this.filters]) this.drop(filter);
    this.seq = -1;
  }

  private take(filter: string): void {
    if (this.filters.has(filter)) return;
    this.filters.add(filter);
    this.sink.addRoute(filter);
  }

  private drop(filter: string): void {
    if (this.filters.delete(filter)) this.sink.removeRoute(filter);
  }
}

function list(reader: FrameReader): string[] {
  const n = reader.u32();
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(reader.string());
  return out;
}
