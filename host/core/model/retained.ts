import type { Message } from './message.js';
import type { Core } from '../wasm/core.js';

/**
 * Retained messages (§3.3.1.3): the wasm index maps topic → arena handle and answers filter
 * lookups; this side keeps each handle's Message and the one reference the index holds.
 */
export class RetainedMessages {
  private readonly byHandle = new Map<number, Message>();

  constructor(
    private readonly core: Core,
    /** Told of every change (null = deleted), for persistence. */
    private readonly changed: (topic: string, message: Message | null) => void,
  ) {}

  get count(): number {
    return this.byHandle.size;
  }

  /**
   * Applies a PUBLISH with RETAIN set: replaces the topic's retained message [MQTT-3.3.1-5], or
   * deletes it when the payload is empty [MQTT-3.3.1-10].
   */
  apply(message: Message): void {
    const ptr = message.topicPtr();
    let previous: number;
    let stored: Message | null = null;
    if (message.payloadLength === 0) {
      previous = this.core.retainDeleteAt(ptr, message.topicLength);
    } else {
      message.ref();
      previous = this.core.retainSetAt(ptr, message.topicLength, message.handle);
      this.byHandle.set(message.handle, message);
      stored = message;
    }
    if (stored || previous !== 0) this.changed(message.topic(), stored);
    if (previous !== 0) this.drop(previous);
  }

  /** Puts a message loaded from the store back into the index (a restart): nothing changes in the store. */
  restore(message: Message): void {
    message.ref();
    const previous = this.core.retainSetAt(message.topicPtr(), message.topicLength, message.handle);
    this.byHandle.set(message.handle, message);
    if (previous !== 0) this.drop(previous);
  }

  /** Retained messages whose topic matches `filter` (UTF-8 bytes), expired ones removed on the way [MQTT-3.3.2-5]. */
  match(filter: Uint8Array, now: number): Message[] {
    const out: Message[] = [];
    for (const handle of this.core.retainMatch(filter)) {
      const message = this.byHandle.get(handle)!;
      if (message.expired(now)) {
        this.core.retainDeleteAt(message.topicPtr(), message.topicLength);
        this.changed(message.topic(), null);
        this.drop(handle);
      } else {
        out.push(message);
      }
    }
    return out;
  }

  all(): IterableIterator<Message> {
    return this.byHandle.values();
  }

  /** Releases every retained message from memory (broker shutdown; the store keeps them). */
  clear(): void {
    for (const message of [...this.byHandle.values()]) {
      this.core.retainDeleteAt(message.topicPtr(), message.topicLength);
      this.drop(message.handle);
    }
  }

  private drop(handle: number): void {
    const message = this.byHandle.get(handle);
    if (!message) throw new Error(`retained index returned unknown handle ${handle}`);
    this.byHandle.delete(handle);
    message.unref();
  }
}
