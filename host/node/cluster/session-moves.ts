import { topicMatches } from '../../client/topic-match.js';

/** How long a moved session's cut is waited for before the nodes stop relaying / excluding for it. */
export const MOVE_TTL_MS = 10_000;

/**
 * The cut of one session's move from an old owner to a new one, shared by both: for each peer node,
 * the sequence number of the last forward it routed (to the node keeping this) before it knew the
 * new owner's routes — its "pass", sent when the new owner's barrier reaches it, right after the
 * new routes. A forward routed before a node's cut is the old owner's to deliver to the session (it
 * relays it to the new owner); one routed after is the new owner's, which then gets it directly.
 */
export class MoveCut {
  private readonly passes = new Map<string, number>();
  readonly timer: ReturnType<typeof setTimeout>;

  constructor(
    /** `${newOwner}/${its incarnation}/${takeover id}`. */
    readonly token: string,
    readonly clientId: string,
    /** The nodes whose passes are awaited (those linked when the move happened). */
    private readonly awaited: ReadonlySet<string>,
    expired: () => void,
  ) {
    this.timer = setTimeout(expired, MOVE_TTL_MS);
    this.timer.unref();
  }

  /** Forward `seq` of `node` was routed before that node learned the new owner's routes (or may have been). */
  before(node: string, seq: number): boolean {
    const upTo = this.passes.get(node);
    return upTo === undefined || seq <= upTo;
  }

  passed(node: string, upTo: number): void {
    this.passes.set(node, upTo);
  }

  /** Every awaited node passed, and every forward it routed before its pass has been applied here. */
  complete(applied: (node: string) => number): boolean {
    for (const node of this.awaited) {
      const upTo = this.passes.get(node);
      if (upTo === undefined || applied(node) < upTo) return false;
    }
    return true;
  }
}

/** On the old owner: the moved session's filters, kept as routes, and what it still relays to the new owner. */
export class MovedAway extends MoveCut {
  /** This node's own publishes: relayed until the new owner's routes and barrier arrive here. */
  localPassed = false;

  constructor(
    token: string,
    clientId: string,
    awaited: ReadonlySet<string>,
    expired: () => void,
    readonly to: string,
    /** Its non-shared filters (a shared group's messages go to another member while it moves). */
    readonly filters: readonly string[],
  ) {
    super(token, clientId, awaited, expired);
  }

  matches(topic: string): boolean {
    for (const filter of this.filters) if (topicMatches(filter, topic)) return true;
    return false;
  }
}
