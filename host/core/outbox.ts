import type { PublishTarget } from './codec/publish.js';
import type { Message } from './model/message.js';
import type { Transport } from './transport.js';
import type { Core } from './wasm/core.js';
import { afterIo } from './model/schedule.js';

const MIN_BLOCK = 4096;
const MAX_BLOCK = 256 * 1024;

/**
 * One connection's outgoing bytes for the current tick, built in wasm memory. Packets are written
 * into batch blocks allocated from the arena (headers directly, small messages copied from their
 * arena block with copyWithin); a large message's bytes are referenced in place instead, holding a
 * reference. flush() hands the whole batch to the transport as a few views, and the references
 * (batch blocks and messages) are released when the transport is done with them.
 *
 * If the arena is full the outbox writes into ordinary memory instead, so control packets and
 * in-flight deliveries never fail for lack of an output buffer.
 */
export class Outbox implements PublishTarget<number | Message> {
  /** Flat [handle, ptr, length] triples; handle 0 means `ptr` indexes `fallback`. Reused from batch to batch. */
  private readonly segments: number[] = [];
  /** Created when first needed: an idle connection's outbox holds no per-batch arrays. */
  private fallback: Uint8Array[] | null = null;
  private held: number[] | null = null;
  /** Messages referenced: released as messages, so that the last release frees their forwarded properties too. */
  private heldMessages: Message[] | null = null;
  /** Current batch block: handle (0 = none, -1 = fallback buffer), write position, end, open segment start. */
  private block = 0;
  private pos = 0;
  private end = 0;
  private segmentStart = 0;
  private fallbackBuf: Uint8Array | null = null;
  private nextBlockSize = MIN_BLOCK;
  /** Bytes queued here and not yet given to the transport. */
  pendingBytes = 0;
  /** Of those, bytes queued by reference (not written into batch blocks). */
  private referencedBytes = 0;

  /** What this turn queued as copies: referenced ranges of stored messages cost no memory of their own. */
  get copiedBytes(): number {
    return this.pendingBytes - this.referencedBytes;
  }

  constructor(
    private readonly core: Core,
    /** Stored bytes up to this size are copied into the batch; larger ones are sent by reference (options.copyLimitBytes). */
    readonly copyLimit: number,
  ) {}

  get empty(): boolean {
    return this.pendingBytes === 0;
  }

  /** The buffer that offsets returned by reserve() point into (wasm memory, or the fallback). */
  get bytes(): Uint8Array {
    return this.block === -1 ? this.fallbackBuf! : this.core.bytes();
  }

  /** Reserves `n` contiguous bytes; write them at the returned offset of `this.bytes` (read after this call). */
  reserve(n: number): number {
    if (this.block === 0 || this.pos + n > this.end) this.newBlock(n);
    const at = this.pos;
    this.pos += n;
    this.pendingBytes += n;
    return at;
  }

  /** Appends `length` bytes of wasm memory at `ptr`. */
  private copy(ptr: number, length: number): void {
    const at = this.reserve(length);
    if (this.block === -1) this.fallbackBuf!.set(this.core.bytes().subarray(ptr, ptr + length), at);
    else this.core.copy(at, ptr, length);
  }

  /** Appends bytes from ordinary memory. */
  write(chunk: Uint8Array): void {
    const at = this.reserve(chunk.length);
    this.bytes.set(chunk, at);
  }

  /** Appends a range of an arena block, or of a message's block, by reference (one reference, released after the write). */
  reference(holder: number | Message, ptr: number, length: number): void {
    if (length === 0) return;
    this.closeSegment();
    if (typeof holder === 'number') {
      this.core.ref(holder);
      (this.held ??= []).push(holder);
    } else {
      (this.heldMessages ??= []).push(holder.ref());
    }
    this.segments.push(typeof holder === 'number' ? holder : holder.handle, ptr, length);
    this.pendingBytes += length;
    this.referencedBytes += length;
  }

  /** Appends a range of an arena block, or of a message's block: copied when small, else by reference (copyLimit). */
  append(holder: number | Message, ptr: number, length: number): void {
    if (length <= this.copyLimit) this.copy(ptr, length);
    else this.reference(holder, ptr, length);
  }

  /** Gives everything queued to the transport as one batch. */
  flush(transport: Transport): void {
    if (this.pendingBytes === 0) return;
    this.closeSegment();
    this.retireBlock();
    const segments = this.segments;
    const views: Uint8Array[] = [];
    // Views of wasm memory are made only now: memory may have grown (detaching older views) while queueing.
    const mem = this.core.bytes();
    for (let i = 0; i < segments.length; i += 3) {
      const handle = segments[i]!;
      const ptr = segments[i + 1]!;
      views.push(handle === 0 ? this.fallback![ptr]! : mem.subarray(ptr, ptr + segments[i + 2]!));
    }
    const held = this.held;
    const messages = this.heldMessages;
    // The next tick starts with a block about the size of what this tick wrote into blocks.
    const written = this.pendingBytes - this.referencedBytes;
    let size = MIN_BLOCK;
    while (size < written && size < MAX_BLOCK) size *= 2;
    this.nextBlockSize = size;
    segments.length = 0;
    this.fallback = null;
    this.held = null;
    this.heldMessages = null;
    this.pendingBytes = 0;
    this.referencedBytes = 0;
    const core = this.core;
    transport.write(views, () => {
      if (held !== null) for (let i = 0; i < held.length; i++) core.unref(held[i]!);
      if (messages !== null) for (let i = 0; i < messages.length; i++) messages[i]!.unref();
    });
  }

  /** Releases what was queued but never sent (the connection died first). */
  discard(): void {
    this.retireBlock();
    if (this.held !== null) for (const h of this.held) this.core.unref(h);
    if (this.heldMessages !== null) for (const m of this.heldMessages) m.unref();
    this.segments.length = 0;
    this.fallback = null;
    this.held = null;
    this.heldMessages = null;
    this.pendingBytes = 0;
    this.referencedBytes = 0;
  }

  private closeSegment(): void {
    if (this.pos > this.segmentStart) {
      if (this.block === -1) {
        const fallback = (this.fallback ??= []);
        this.segments.push(0, fallback.length, this.pos - this.segmentStart);
        fallback.push(this.fallbackBuf!.subarray(this.segmentStart, this.pos));
      } else {
        this.segments.push(this.block, this.segmentStart, this.pos - this.segmentStart);
      }
    }
    this.segmentStart = this.pos;
  }

  /** The current block takes no more writes; the batch that holds its bytes owns its reference. */
  private retireBlock(): void {
    if (this.block > 0) (this.held ??= []).push(this.block);
    this.block = 0;
    this.fallbackBuf = null;
    this.pos = this.end = this.segmentStart = 0;
  }

  private newBlock(n: number): void {
    this.closeSegment();
    this.retireBlock();
    let size = this.nextBlockSize;
    while (size < n) size *= 2;
    this.nextBlockSize = Math.min(MAX_BLOCK, size * 2);
    const handle = this.core.alloc(size);
    if (handle === 0) {
      this.block = -1;
      this.fallbackBuf = new Uint8Array(size);
      this.pos = 0;
    } else {
      this.block = handle;
      this.pos = this.core.ptr(handle);
    }
    this.segmentStart = this.pos;
    this.end = this.pos + size;
  }
}

/** Spare outboxes kept at most: a turn with output for more connections creates the rest (and drops them after). */
const MAX_SPARE = 1024;

/**
 * The broker's outboxes, lent to a connection from its first output of a turn until its flush. An
 * outbox holds nothing between batches (the transport's write callback owns what a batch referenced),
 * so connections without output — idle ones — hold none; how many exist is how many connections had
 * output in one turn.
 */
export class OutboxPool {
  private readonly spare: Outbox[] = [];

  constructor(
    private readonly core: Core,
    private readonly copyLimit: number,
  ) {}

  take(): Outbox {
    return this.spare.pop() ?? new Outbox(this.core, this.copyLimit);
  }

  /** `outbox` was flushed or discarded, and is not used by its connection any more. */
  give(outbox: Outbox): void {
    if (this.spare.length < MAX_SPARE) this.spare.push(outbox);
  }
}

/** What a FlushQueue flushes: a connection whose Outbox holds output. */
export interface Flushable {
  flush(): void;
}

/**
 * When queued output goes to the transports: everything queued during an event-loop turn's I/O
 * callbacks goes out together once they are done (afterIo), one write per connection per turn
 * however many sockets fed it. (Flushing a turn's first output at the end of its own callback, a
 * microtask, was measured too: it took nothing measurable off the broker's read-to-write time at
 * 5,000 msg/s — 10–20 µs at the median either way — so the batch boundary stays the turn's end.)
 */
export class FlushQueue {
  private dirty: Flushable[] = [];
  private scheduled = false;

  /** `target` has output; it must not be added again until its flush() is called. */
  add(target: Flushable): void {
    this.dirty.push(target);
    if (this.scheduled) return;
    this.scheduled = true;
    afterIo(this.flushAll);
  }

  /** Flushes everything queued now (the end of a turn, or shutdown). */
  readonly flushAll = (): void => {
    this.scheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
  };
}
