// The plain-JavaScript baseline for the wasm trie: a Map per level, topics split into strings,
// the same semantics as assembly/trie.ts for ordinary subscriptions (`+`, `#` also matching the
// parent level, no wildcard match of `$` topics at the first level, one record per client with
// the highest QoS of its matching subscriptions).

interface JsNode {
  children: Map<string, JsNode>;
  /** client → QoS of the subscription whose filter ends here */
  subs: Map<number, number> | null;
}

const node = (): JsNode => ({ children: new Map(), subs: null });

export class JsTrie {
  private readonly root = node();
  private readonly out = new Map<number, number>();
  size = 0;

  /** True when new; an existing (client, filter) has its QoS replaced. */
  subscribe(client: number, filter: string, qos: number): boolean {
    let n = this.root;
    for (const level of filter.split('/')) {
      let next = n.children.get(level);
      if (!next) {
        next = node();
        n.children.set(level, next);
      }
      n = next;
    }
    n.subs ??= new Map();
    const added = !n.subs.has(client);
    n.subs.set(client, qos);
    if (added) this.size++;
    return added;
  }

  /** client → highest QoS; the Map is reused by the next call. */
  match(topic: string): Map<number, number> {
    this.out.clear();
    this.walk(this.root, topic.split('/'), 0, topic.charCodeAt(0) === 0x24 /* $ */);
    return this.out;
  }

  private add(subs: Map<number, number> | null): void {
    if (subs === null) return;
    const out = this.out;
    for (const [client, qos] of subs) {
      const had = out.get(client);
      if (had === undefined || had < qos) out.set(client, qos);
    }
  }

  private walk(n: JsNode, levels: string[], i: number, dollar: boolean): void {
    if (i === levels.length) {
      this.add(n.subs);
      const hash = n.children.get('#');
      if (hash) this.add(hash.subs); // "a/#" matches "a"
      return;
    }
    const wild = !(i === 0 && dollar);
    if (wild) {
      const hash = n.children.get('#');
      if (hash) this.add(hash.subs);
      const plus = n.children.get('+');
      if (plus) this.walk(plus, levels, i + 1, dollar);
    }
    const child = n.children.get(levels[i]!);
    if (child) this.walk(child, levels, i + 1, dollar);
  }
}
