import type { QoS } from '../../core/codec/packets.js';
import { Deque } from '../../core/model/deque.js';
import type { Message } from '../../core/model/message.js';
import type { Outlet } from '../../core/model/outlet.js';
import { CountedFrame, FrameType } from './frame.js';
import { NO_GROUPS, writeEntry, type ForwardRoute } from './forward-codec.js';
import type { Stamp } from './hlc.js';
import type { Link } from './link.js';
import type { Qos2Origin } from '../../core/model/cluster-hooks.js';

/** Counts down the nodes a QoS 1/2 message still waits for; the publisher's acknowledgement waits on `promise`. */
export class Confirmation {
  remaining = 0;
  readonly promise: Promise<void>;
  private resolve!: () => void;
  private reject!: (error: Error) => void;

  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  done(): void {
    if (--this.remaining === 0) this.resolve();
  }

  /** A node will never confirm: the publisher is refused rather than told a loss is a success. */
  fail(error: Error): void {
    this.remaining = -1;
    this.reject(error);
  }
}

/** A forward the peer must confirm (QoS 1/2) or must not miss (a retained change): kept until acknowledged. */
interface Kept {
  seq: number;
  message: Message;
  route: ForwardRoute;
  confirmation: Confirmation | null;
}

const MIN_BATCH_CAPACITY = 4096;
/** Largest batch before it is sent without waiting for the end of the turn. */
const BATCH_LIMIT = 64 * 1024;
/** How often a congested outlet looks whether its link has room again. */
const DRAIN_POLL_MS = 10;

/**
 * What routing delivers to for one peer node — its outlet, as a connection is a client's: the
 * router hands it each match of the peer's routes (sendPublish), and once the message's routing
 * has ended the cluster has it forwarded (forwardMatched). Forwards of one event-loop turn go out as one frame. Those that must not be lost are kept, with their
 * message reference, until the peer says they are durable, and are sent again (same sequence
 * numbers: the peer drops repeats) when a new link comes up. The link's buffer is bounded: past
 * `limit` bytes, QoS 0 forwards are dropped and counted, and kept ones wait — so a QoS 1/2
 * publisher's acknowledgement waits, which slows it down.
 */
export class PeerOutlet implements Outlet {
  messagesOut = 0;
  bytesOut = 0;
  /** Forward frames sent (messagesOut / framesOut is the batching achieved). */
  framesOut = 0;
  dropped = 0;
  private link: Link | null = null;
  private batch: CountedFrame | null = null;
  /** Sequence number of the batch's last entry: entries carry the distance from it. */
  private batchSeq = 0;
  private batchCapacity = MIN_BATCH_CAPACITY;
  /** This turn's Released frame, sent after its forwards (their messages reached the peer before). */
  private releases: CountedFrame | null = null;
  /** Sent, not yet acknowledged, in sequence order. */
  private inFlight = new Deque<Kept>();
  /** Not sent yet (no link, or the link is congested), in sequence order. */
  private waiting = new Deque<Kept>();
  private drainTimer: ReturnType<typeof setTimeout> | null = null;
  private scheduled = false;
  /** Reused for forwards that are written at once and not kept. */
  private readonly route: ForwardRoute = { plain: false, groups: [], stamp: null, origin: null };
  /** Whether the message being routed matched the peer's routes: its plain ones, and which share groups picked it. */
  private matched = false;
  private plain = false;
  private groups: number[] | null = null;

  constructor(
    /** The peer's node id. */
    readonly remoteAddress: string,
    private readonly limit: number,
    /** Asks for flush() at the end of this turn. */
    private readonly schedule: (outlet: PeerOutlet) => void,
    /** The message being routed matched this outlet for the first time: forwardMatched() is due when its routing ends. */
    private readonly touched: (outlet: PeerOutlet) => void,
    /** Sequence number of the last forward sent to the peer before (an outlet for a member given up that came back). */
    private seq = 0,
  ) {}

  /** Bytes waiting to reach the peer: the link's buffer and this turn's batch. */
  get backlog(): number {
    return (this.link?.buffered ?? 0) + (this.batch?.writer.length ?? 0);
  }

  /** Sequence number of the last forward handed to this outlet. */
  get lastSeq(): number {
    return this.seq;
  }

  /** Forwards kept until the peer confirms them. */
  get unconfirmed(): number {
    return this.inFlight.length + this.waiting.length;
  }

  private get congested(): boolean {
    return this.link === null || this.waiting.length > 0 || this.backlog > this.limit;
  }

  /**
   * The router matched one of the peer's routes: a plain one, or a share group's pick (`matched` is
   * [the group's interned id]). Noted for forwardMatched(); every route takes the message as it was
   * published, so QoS and RETAIN are the message's own and there is no packet identifier.
   */
  sendPublish(_message: Message, _qos: QoS, _packetId: number, _retain: boolean, _dup: boolean, matched: number[] | null): boolean {
    if (!this.matched) {
      this.matched = true;
      this.plain = false;
      this.groups = null;
      this.touched(this);
    }
    if (matched) (this.groups ??= []).push(matched[0]!);
    else this.plain = true;
    return true;
  }

  /**
   * The routing of `message` ended: it goes to the peer once, for what it matched there (nothing but
   * `stamp`'s retained change if it matched nothing). `confirmation` counts it if it is for subscribers.
   */
  forwardMatched(message: Message, stamp: Stamp | null, confirmation: Confirmation | null, groupName: (id: number) => string, origin: Qos2Origin | null): void {
    const plain = this.matched && this.plain;
    const groups = this.matched && this.groups ? this.groups.map(groupName) : NO_GROUPS;
    this.matched = false;
    this.forward(message, plain, groups, stamp, plain || groups.length > 0 ? confirmation : null, origin);
  }

  /** The message being routed is not forwarded after all ($SYS). */
  unmatch(): void {
    this.matched = false;
  }

  /** Hands one message to the peer; false when it was dropped (QoS 0 over a congested or missing link). */
  forward(message: Message, plain: boolean, groups: readonly string[], stamp: Stamp | null, confirmation: Confirmation | null, origin: Qos2Origin | null = null): boolean {
    const keep = confirmation !== null || stamp !== null;
    if (!keep && this.congested) {
      this.dropped++;
      return false;
    }
    const seq = ++this.seq;
    this.route.plain = plain;
    this.route.groups = groups;
    this.route.stamp = stamp;
    this.route.origin = origin;
    if (!keep) {
      this.write(seq, message, this.route);
      return true;
    }
    if (confirmation) confirmation.remaining++;
    const route = { plain, groups, stamp, origin };
    const kept: Kept = { seq, message: message.ref(), route, confirmation };
    if (this.congested) {
      this.waiting.push(kept);
      this.drainSoon();
    } else {
      this.write(seq, message, route);
      this.inFlight.push(kept);
    }
    return true;
  }

  private write(seq: number, message: Message, route: ForwardRoute): void {
    if (!this.batch) {
      // Sized like the last batch, so a busy link does not grow each one by doubling.
      this.batch = new CountedFrame(FrameType.Forward, this.batchCapacity);
      this.batch.writer.uint(seq);
      this.batchSeq = seq;
    }
    const batch = this.batch;
    writeEntry(batch.writer, seq - this.batchSeq, message, route, message.expiresAt === 0 ? 0 : performance.now());
    this.batchSeq = seq;
    batch.count++;
    this.messagesOut++;
    if (batch.writer.length >= BATCH_LIMIT) this.flushForwards();
    else if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(this);
    }
  }

  /**
   * `clientId` released a QoS 2 packet identifier: the peer forgets its receipt. Not kept: one lost
   * with a link only lingers there until it expires or the identifier's next message replaces it.
   */
  release(clientId: string, packetId: number): void {
    if (!this.link) return;
    this.releases ??= new CountedFrame(FrameType.Released, 256);
    this.releases.writer.string(clientId).u16(packetId);
    this.releases.count++;
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(this);
    }
  }

  /** Sends this turn's batch, then its releases. */
  flush(): void {
    this.scheduled = false;
    this.flushForwards();
    const releases = this.releases;
    if (!releases) return;
    this.releases = null;
    this.link?.send(releases.finish());
  }

  private flushForwards(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = null;
    const frame = batch.finish();
    this.batchCapacity = Math.min(Math.max(MIN_BATCH_CAPACITY, frame.length + (frame.length >> 2)), BATCH_LIMIT + 64 * 1024);
    this.bytesOut += frame.length;
    this.framesOut++;
    this.link?.send(frame);
  }

  /** The peer made every forward up to `seq` durable. */
  acknowledged(seq: number): void {
    for (let kept = this.inFlight.peek(); kept !== undefined && kept.seq <= seq; kept = this.inFlight.peek()) {
      this.inFlight.shift();
      this.settle(kept);
    }
  }

  private settle(kept: Kept, error?: Error): void {
    kept.message.unref();
    if (error) kept.confirmation?.fail(error);
    else kept.confirmation?.done();
  }

  /** Calls `fn` for each kept forward up to `seq` not confirmed yet, in sequence order. */
  eachUnconfirmed(seq: number, fn: (message: Message, plain: boolean, confirmation: Confirmation | null, origin: Qos2Origin | null) => void): void {
    for (const queue of [this.inFlight, this.waiting]) {
      for (const kept of queue) if (kept.seq <= seq) fn(kept.message, kept.route.plain, kept.confirmation, kept.route.origin ?? null);
    }
  }

  /** A link is up: everything unconfirmed goes again, in order, before anything new. */
  linkUp(link: Link): void {
    this.link = link;
    const again = new Deque<Kept>();
    for (const kept of this.inFlight) again.push(kept);
    for (const kept of this.waiting) again.push(kept);
    this.inFlight = new Deque();
    this.waiting = again;
    this.drain();
  }

  linkDown(): void {
    this.link = null;
    this.batch = null;
    this.releases = null;
    this.scheduled = false;
  }

  /** Sends waiting forwards while the link has room. */
  private drain(): void {
    this.drainTimer = null;
    const link = this.link;
    if (!link) return;
    while (this.waiting.length > 0 && this.backlog <= this.limit) {
      const kept = this.waiting.shift()!;
      this.write(kept.seq, kept.message, kept.route);
      this.inFlight.push(kept);
    }
    if (this.waiting.length > 0) this.drainSoon();
  }

  private drainSoon(): void {
    if (this.drainTimer || !this.link) return;
    this.drainTimer = setTimeout(() => this.drain(), DRAIN_POLL_MS);
  }

  /**
   * The peer is given up (or this node stops): what it did not confirm may never be delivered
   * there. The references go, and publishers waiting on it are refused.
   */
  close(): void {
    const error = new Error('a node the message was forwarded to is gone');
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = null;
    this.link = null;
    this.batch = null;
    this.releases = null;
    for (const kept of this.inFlight) this.settle(kept, error);
    for (const kept of this.waiting) this.settle(kept, error);
    this.inFlight = new Deque();
    this.waiting = new Deque();
  }
}
