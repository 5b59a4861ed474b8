/** Shared by every empty Deque, never written: push grows into an array of its own first. */
const EMPTY: never[] = [];

/** A FIFO with O(1) push and shift (an offline queue can hold many thousands of messages). */
export class Deque<T> {
  /** Allocated on the first push: most sessions never queue anything. */
  private items: (T | undefined)[] = EMPTY;
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  push(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size) & (this.items.length - 1)] = item;
    this.size++;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.size--;
    return item;
  }

  peek(): T | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  clear(): void {
    this.items = EMPTY;
    this.head = 0;
    this.size = 0;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.size; i++) yield this.items[(this.head + i) & (this.items.length - 1)]!;
  }

  private grow(): void {
    const next: (T | undefined)[] = new Array(Math.max(16, this.items.length * 2));
    for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = next;
    this.head = 0;
  }
}
