import type { QoS } from './codec/packets.js';
import type { Core } from './wasm.js';

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/**
 * An application message whose bytes live in the wasm arena as [topic length u16][topic][payload].
 * The arena reference count is the message's lifetime: every holder (routing in progress, a socket
 * write, an inflight or queue entry, the retained index) owns one reference and releases it once.
 */
export class Message {
  private topicCache: string | undefined;
  /** Id of the message's record in the store, while any stored delivery refers to it. */
  storeId: string | undefined;
  /** Stored deliveries referring to the record. */
  storeRefs = 0;

  constructor(
    readonly core: Core,
    readonly handle: number,
    readonly topicLength: number,
    /** Stored bytes: topic length, topic, payload. */
    readonly length: number,
    readonly qos: QoS,
    readonly retain: boolean,
    /** MQTT 5.0 properties forwarded unchanged (payload format, content type, response topic, correlation data, user properties). */
    readonly forward: Uint8Array | null,
    /** Absolute expiry in ms on the broker clock (performance.now() based), 0 = never. */
    readonly expiresAt: number,
  ) {}

  /** Copies topic and payload into a new arena buffer; returns null when the arena is full. */
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
    const handle = core.alloc(2 + topicBytes.length + payload.length);
    if (handle === 0) return null;
    const mem = core.bytes();
    const ptr = core.ptr(handle);
    mem[ptr] = topicBytes.length >> 8;
    mem[ptr + 1] = topicBytes.length & 0xff;
    mem.set(topicBytes, ptr + 2);
    mem.set(payload, ptr + 2 + topicBytes.length);
    const message = new Message(core, handle, topicBytes.length, 2 + topicBytes.length + payload.length, qos, retain, forward, expiresAt);
    if (typeof topic === 'string') message.topicCache = topic;
    return message;
  }

  get payloadLength(): number {
    return this.length - 2 - this.topicLength;
  }

  /** Address of the stored bytes in wasm memory (stable: arena blocks never move). */
  ptr(): number {
    return this.core.ptr(this.handle);
  }

  /** Address of the topic bytes in wasm memory. */
  topicPtr(): number {
    return this.core.ptr(this.handle) + 2;
  }

  topic(): string {
    return (this.topicCache ??= utf8Decoder.decode(this.topicBytes()));
  }

  /** A copy of the topic bytes. */
  topicBytes(): Uint8Array {
    const ptr = this.core.ptr(this.handle);
    return this.core.bytes().slice(ptr + 2, ptr + 2 + this.topicLength);
  }

  /** A copy of the payload. */
  payload(): Uint8Array {
    const ptr = this.core.ptr(this.handle);
    return this.core.bytes().slice(ptr + 2 + this.topicLength, ptr + this.length);
  }

  retainRef(): this {
    this.core.retain(this.handle);
    return this;
  }

  release(): void {
    this.core.release(this.handle);
  }

  expired(now: number): boolean {
    return this.expiresAt !== 0 && now >= this.expiresAt;
  }

  /** Seconds of the Message Expiry Interval left, rounded up [MQTT-3.3.2-6]; undefined when it has none. */
  remainingExpiry(now: number): number | undefined {
    return this.expiresAt === 0 ? undefined : Math.max(0, Math.ceil((this.expiresAt - now) / 1000));
  }
}
