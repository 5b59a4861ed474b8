/**
 * The topic aliases one connection has told its 5.0 client (§3.3.2.3.4): a topic gets the next
 * alias the first time it is sent while the client's Topic Alias Maximum allows, and afterwards
 * goes as an empty topic name with that alias [MQTT-3.3.2-12]. Aliases are never reassigned.
 */
export class OutgoingAliases {
  private readonly byTopic = new Map<string, number>();

  constructor(
    /** The client's Topic Alias Maximum (CONNECT), at least 1. */
    private readonly maximum: number,
  ) {}

  /** The alias the client knows `topic` by, or 0. */
  known(topic: string): number {
    return this.byTopic.get(topic) ?? 0;
  }

  /** The alias a new topic would get, or 0 when they are used up. */
  next(): number {
    const next = this.byTopic.size + 1;
    return next <= this.maximum ? next : 0;
  }

  /** The client was sent `topic` with `alias` (from next()): it knows it from now on. */
  remember(topic: string, alias: number): void {
    this.byTopic.set(topic, alias);
  }
}
