import type { Broker } from '../../core/broker.js';
import { Message } from '../../core/model/message.js';
import { CountedFrame, FrameType, type FrameReader } from './frame.js';
import { EntryReader, NO_GROUPS, writeEntry } from './forward-codec.js';
import { compareStamps, HybridClock, ZERO_STAMP, type Stamp } from './hlc.js';

/** Snapshot frames stay below this size (a link frame may be larger, but a smaller one interleaves with forwards). */
const SNAPSHOT_PART_BYTES = 4 * 1024 * 1024;
/** Deletions are remembered this long, so a node returning with an old copy learns it was deleted. */
const TOMBSTONE_MS = 60 * 60 * 1000;

/**
 * Retained messages on every node. Each change is stamped with a hybrid logical clock and sent to
 * every peer with the forward of its PUBLISH; the latest stamp wins (node id breaking ties), so
 * concurrent updates converge to the same message everywhere. A link coming up exchanges a
 * snapshot both ways: a node that joins, or returns with stale copies, converges the same way.
 * Messages restored from a node's own store have no stamp and lose to any stamped one.
 */
export class RetainedSync {
  readonly clock: HybridClock;
  private readonly stamps = new Map<string, Stamp>();
  /** Topics deleted, and when (for expiring the tombstones). */
  private readonly deleted = new Map<string, number>();

  constructor(
    private readonly broker: Broker,
    node: string,
  ) {
    this.clock = new HybridClock(node);
  }

  /** A local PUBLISH changed the topic's retained message: its stamp, for the forwards. */
  stampLocal(message: Message): Stamp {
    const stamp = this.clock.now();
    this.record(message.topic(), stamp, message.payloadLength === 0);
    return stamp;
  }

  private record(topic: string, stamp: Stamp, deletion: boolean): void {
    this.stamps.set(topic, stamp);
    if (deletion) this.deleted.set(topic, Date.now());
    else this.deleted.delete(topic);
  }

  /**
   * A peer's change: applied if its stamp is newer than this node's for the topic. An unstamped one
   * (restored from the peer's store) is adopted only where this node knows nothing of the topic.
   */
  applyRemote(entry: EntryReader): void {
    const stamp = entry.stamp!;
    this.clock.observe(stamp);
    const topic = entry.topic();
    if (topic.startsWith('$SYS/')) return;
    const known = this.stamps.get(topic);
    const newer = compareStamps(stamp, known ?? ZERO_STAMP) > 0;
    if (!newer && (known !== undefined || compareStamps(stamp, ZERO_STAMP) !== 0 || this.hasLocal(entry))) return;
    const message = entry.message(this.broker.core);
    if (!message) {
      this.broker.log('warn', 'cluster: no arena room for a replicated retained message', { topic });
      return;
    }
    if (newer) this.record(topic, stamp, message.payloadLength === 0);
    this.broker.retained.apply(message);
    message.unref();
  }

  private hasLocal(entry: EntryReader): boolean {
    return this.broker.core.retainMatch(entry.topicBytes()).length > 0;
  }

  /** Snapshot frames of every retained message and remembered deletion, with their stamps. */
  snapshot(): Buffer[] {
    const frames: Buffer[] = [];
    const now = performance.now();
    let part: CountedFrame | null = null;
    const finish = (): void => {
      if (!part) return;
      frames.push(part.finish());
      part = null;
    };
    const add = (message: Message, stamp: Stamp): void => {
      part ??= new CountedFrame(FrameType.Retained, 4096);
      writeEntry(part.writer, 0, message, { plain: false, groups: NO_GROUPS, stamp }, now);
      part.count++;
      if (part.writer.length > SNAPSHOT_PART_BYTES) finish();
    };
    for (const message of this.broker.retained.all()) {
      const topic = message.topic();
      if (topic.startsWith('$SYS/') || message.expired(now)) continue;
      add(message, this.stamps.get(topic) ?? ZERO_STAMP);
    }
    const cutoff = Date.now() - TOMBSTONE_MS;
    for (const [topic, at] of this.deleted) {
      if (at < cutoff) {
        this.deleted.delete(topic);
        this.stamps.delete(topic);
        continue;
      }
      const tombstone = Message.create(this.broker.core, topic, new Uint8Array(0), 0, true);
      if (!tombstone) break;
      add(tombstone, this.stamps.get(topic)!);
      tombstone.unref();
    }
    finish();
    return frames;
  }

  /** A snapshot part from a peer. */
  applySnapshot(reader: FrameReader): void {
    const entry = new EntryReader(reader);
    for (let n = reader.u32(); n > 0; n--) {
      entry.next();
      if (entry.stamp) this.applyRemote(entry);
    }
  }
}
