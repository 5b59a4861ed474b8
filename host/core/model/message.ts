import type { QoS } from '../codec/packets.js';
import type { BodyRecord } from './persistence.js';
import { CoreError, MessageBlock } from '../wasm/abi.js';
import { coreErrorName, type Core } from '../wasm/core.js';

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** Released Message objects, per core, reused so that routing a message allocates nothing. */
const pools = new WeakMap<Core, Message[]>();
const POOL_LIMIT = 4096;

/**
 * An application message whose bytes live in the wasm arena as a MessageBlock (wasm/abi.ts).
 * The arena reference count is the message's lifetime: every holder (routing in progress, a socket
 * write, an inflight or queue entry, the retained index) owns one reference and releases it once.
 * When the last is released the object goes back to a pool with handle 0, so a stale use fails
 * loudly (an invalid-handle ArenaError) instead of reading another message.
 */
export class Message {
  // Set by Message.of / create only; treat as read-only.
  handle = 0;
  topicLength = 0;
  /** Stored bytes: topic length, topic, payload. */
  length = 0;
  qos: QoS = 0;
  retain = false;
  /**
   * Arena block of the MQTT 5.0 properties forwarded unchanged (payload format, content type,
   * response topic, correlation data, user properties), 0 = none. Like the message's own block it
   * is stored once and shared by every delivery; it is released with the message.
   */
  forwardHandle = 0;
  forwardLength = 0;
  /** Absolute expiry in ms on the broker clock (performance.now() based), 0 = never. */
  expiresAt = 0;
  private topicCache: string | undefined;
  /** Persistence's record of the body, while a stored delivery refers to it; else null. */
  storage: BodyRecord | null = null;

  private constructor(readonly core: Core) {}

  /** A Message for an arena block that already holds [topic length][topic][payload] (refcount 1, owned by the caller). */
  static of(
    core: Core,
    handle: number,
    topicLength: number,
    length: number,
    qos: QoS,
    retain: boolean,
    forwardHandle: number,
    forwardLength: number,
    expiresAt: number,
  ): Message {
    const message = pools.get(core)?.pop() ?? new Message(core);
    message.handle = handle;
    message.topicLength = topicLength;
    message.length = length;
    message.qos = qos;
    message.retain = retain;
    message.forwardHandle = forwardHandle;
    message.forwardLength = forwardLength;
    message.expiresAt = expiresAt;
    return message;
  }

  /** Copies forwarded properties into an arena block of their own: its handle, 0 when the arena is full. */
  static storeForward(core: Core, forward: Uint8Array): number {
    const handle = core.alloc(forward.length);
    if (handle !== 0) core.bytes().set(forward, core.ptr(handle));
    return handle;
  }

  /**
   * Stores topic and payload as a new message block (through message_store, like a PUBLISH
   * received); null when the arena is full. The topic must be a valid topic name.
   */
  static create(
    core: Core,
    topic: string | Uint8Array,
    payload: Uint8Array,
    qos: QoS,
    retain: boolean,
    forward: Uint8Array | null = null,
    expiresAt = 0,
  ): Message | null {
    const topicBytes = typeof topic === 'string' ? utf8Encoder.encode(topic) : topic;
    const at = core.scratch(topicBytes.length + payload.length);
    const mem = core.bytes();
    mem.set(topicBytes, at);
    mem.set(payload, at + topicBytes.length);
    const handle = core.storeMessage(at, topicBytes.length, at + topicBytes.length, payload.length);
    if (handle === 0) {
      const error = core.error();
      if (error === CoreError.ArenaFull) return null;
      throw new Error(`not a valid topic name (${coreErrorName(error)})`);
    }
    const forwardHandle = forward ? Message.storeForward(core, forward) : 0;
    if (forward && forwardHandle === 0) {
      core.unref(handle);
      return null;
    }
    const length = MessageBlock.Topic + topicBytes.length + payload.length;
    const message = Message.of(core, handle, topicBytes.length, length, qos, retain, forwardHandle, forward ? forward.length : 0, expiresAt);
    if (typeof topic === 'string') message.topicCache = topic;
    return message;
  }

  /** Bytes the message holds in the arena, forwarded properties included (queue bounds count these). */
  get size(): number {
    return this.length + this.forwardLength;
  }

  /** A copy of the forwarded properties (for the store), or null. */
  forward(): Uint8Array | null {
    if (this.forwardHandle === 0) return null;
    const ptr = this.core.ptr(this.forwardHandle);
    return this.core.bytes().slice(ptr, ptr + this.forwardLength);
  }

  get payloadLength(): number {
    return this.length - MessageBlock.Topic - this.topicLength;
  }

  /** Address of the stored bytes in wasm memory (stable: arena blocks never move). */
  ptr(): number {
    return this.core.ptr(this.handle);
  }

  /** Address of the topic bytes in wasm memory. */
  topicPtr(): number {
    return this.core.ptr(this.handle) + MessageBlock.Topic;
  }

  topic(): string {
    if (this.topicCache === undefined) {
      const ptr = this.core.ptr(this.handle);
      const topic = ptr + MessageBlock.Topic;
      this.topicCache = utf8Decoder.decode(this.core.bytes().subarray(topic, topic + this.topicLength));
    }
    return this.topicCache;
  }

  /** A copy of the payload. */
  payload(): Uint8Array {
    const ptr = this.core.ptr(this.handle);
    return this.core.bytes().slice(ptr + MessageBlock.Topic + this.topicLength, ptr + this.length);
  }

  ref(): this {
    this.core.ref(this.handle);
    return this;
  }

  unref(): void {
    if (this.core.unref(this.handle) !== 0) return;
    this.handle = 0;
    if (this.forwardHandle !== 0) this.core.unref(this.forwardHandle);
    this.forwardHandle = 0;
    this.forwardLength = 0;
    this.topicCache = undefined;
    this.storage = null;
    let pool = pools.get(this.core);
    if (!pool) pools.set(this.core, (pool = []));
    if (pool.length < POOL_LIMIT) pool.push(this);
  }

  expired(now: number): boolean {
    return this.expiresAt !== 0 && now >= this.expiresAt;
  }

  /** Seconds of the Message Expiry Interval left, rounded up [MQTT-3.3.2-6]; undefined when it has none. */
  remainingExpiry(now: number): number | undefined {
    // Whole milliseconds first: the clock plus up to 0xFFFFFFFF s carries a float error that must not round
    // a full interval up by a second (more than was received, and 0x100000000 does not fit the property).
    return this.expiresAt === 0 ? undefined : Math.max(0, Math.ceil(Math.round(this.expiresAt - now) / 1000));
  }
}
