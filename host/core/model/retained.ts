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
   * deletes it when the payload is empty [MQTT-3.3.1-10]. Returns what was stored (null if deleted).
   */
  apply(message: Message): void {
    this.replace(message)?.unref();
  }

  /** Puts a message loaded from the store back into the index (a restart): nothing changes in the store. */
  restore(message: Message): void {
    message.ref();
    const previous = this.core.retainSetAt(message.topicPtr(), message.topicLength, message.handle);
    this.byHandle.set(message.handle, message);
    if (previous !== 0) this.drop(previous);
  }

  /**
   * apply(), handing the replaced message to the caller (with the index's reference) instead of
   * releasing it, so that revert() can undo a change whose PUBLISH was then refused.
   */
  replace(message: Message): Message | null {
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
    if (previous === 0) return null;
    const replaced = this.byHandle.get(previous)!;
    this.byHandle.delete(previous);
    return replaced;
  }

  /**
   * Undoes replace(message) unless a later change to the topic superseded it: `previous` (whose
   * reference the caller hands back) is the topic's retained message again.
   */
  revert(message: Message, previous: Message | null): void {
    const ptr = message.topicPtr();
    const current = this.core.retainMatch(this.core.bytes().slice(ptr, ptr + message.topicLength));
    const stillCurrent = message.payloadLength === 0 ? current.length === 0 : current.length === 1 && current[0] === message.handle;
    if (!stillCurrent) {
      previous?.unref();
      return;
    }
    const undone = previous ? this.core.retainSetAt(ptr, message.topicLength, previous.handle) : this.core.retainDeleteAt(ptr, message.topicLength);
    if (previous) this.byHandle.set(previous.handle, previous);
    if (undone !== 0) this.drop(undone);
    this.changed(message.topic(), previous);
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
