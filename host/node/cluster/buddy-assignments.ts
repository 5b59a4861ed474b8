/** The buddy each replicated session's records were sent to, and which buddies keep any. */
export class BuddyAssignments {
  private readonly buddies = new Map<string, string>();
  /** Sessions per buddy: what a commit's shared bodies go to, without a pass over every session. */
  private readonly counts = new Map<string, number>();

  get size(): number {
    return this.buddies.size;
  }

  get(clientId: string): string | undefined {
    return this.buddies.get(clientId);
  }

  has(clientId: string): boolean {
    return this.buddies.has(clientId);
  }

  set(clientId: string, node: string): void {
    const previous = this.buddies.get(clientId);
    if (previous === node) return;
    if (previous !== undefined) this.uncount(previous);
    this.buddies.set(clientId, node);
    this.counts.set(node, (this.counts.get(node) ?? 0) + 1);
  }

  delete(clientId: string): void {
    const previous = this.buddies.get(clientId);
    if (previous === undefined) return;
    this.buddies.delete(clientId);
    this.uncount(previous);
  }

  /** The buddies that keep at least one session. */
  nodes(): Iterable<string> {
    return this.counts.keys();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.buddies.entries();
  }

  private uncount(node: string): void {
    const n = this.counts.get(node)! - 1;
    if (n === 0) this.counts.delete(node);
    else this.counts.set(node, n);
  }
}
