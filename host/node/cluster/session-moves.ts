import { topicMatches } from '../../client/topic-match.js';

/** How long a moved session's cut is waited for before the nodes stop relaying / excluding for it. */
export const MOVE_TTL_MS = 10_000;

/** A peer node's process when a move happened, and whether its pass is awaited (it was linked then). */
export interface MoveWitness {
  incarnation: string | null;
  linked: boolean;
}

/** A peer node's process now, and the last of its forwards applied here. */
export interface PeerProgress {
  incarnation: string | null;
  applied: number;
}

/**
 * The cut of one session's move from an old owner to a new one, shared by both: for each peer node,
 * the sequence number of the last forward it routed (to the node keeping this) before it knew the
 * new owner's routes — its "pass", sent when the new owner's barrier reaches it, right after the
 * new routes. A forward routed before a node's cut is the old owner's to deliver to the session (it
 * relays it to the new owner); one routed after is the new owner's, which then gets it directly.
 * A node's process started after the move (its sequence numbers start again) learned the new
 * owner's routes before it let a client in: all it forwards is after the cut.
 */
export class MoveCut {
  private readonly passes = new Map<string, number>();
  readonly timer: ReturnType<typeof setTimeout>;

  constructor(
    /** `${newOwner}/${its incarnation}/${takeover id}`. */
    readonly token: string,
    readonly clientId: string,
    /** Every peer node known when the move happened. */
    protected readonly witnesses: ReadonlyMap<string, MoveWitness>,
    expired: () => void,
  ) {
    this.timer = setTimeout(expired, MOVE_TTL_MS);
    this.timer.unref();
  }

  /** Forward `seq` of `node`'s process `incarnation` was routed before that node learned the new owner's routes (or may have been). */
  before(node: string, incarnation: string | null, seq: number): boolean {
    if (this.witnesses.get(node)?.incarnation !== incarnation) return false;
    const upTo = this.passes.get(node);
    return upTo === undefined || seq <= upTo;
  }

  passed(node: string, upTo: number): void {
    this.passes.set(node, upTo);
  }

  /**
   * Every node linked at the move passed, and every forward it routed before its pass has been
   * applied here — or it is another process now, whose forwards are all after the cut.
   */
  complete(current: (node: string) => PeerProgress | undefined): boolean {
    for (const [node, witness] of this.witnesses) {
      if (!witness.linked) continue;
      const now = current(node);
      if (now !== undefined && now.incarnation !== witness.incarnation) continue;
      const upTo = this.passes.get(node);
      if (upTo === undefined || (now?.applied ?? Infinity) < upTo) return false;
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
    witnesses: ReadonlyMap<string, MoveWitness>,
    expired: () => void,
    readonly to: string,
    /** Its non-shared filters (a shared group's messages go to another member while it moves). */
    readonly filters: readonly string[],
    /**
     * Taken over while this node was fenced: no cut tells what the peers also sent the new owner
     * directly, so a QoS 2 message relayed goes as a possible repeat, which the new owner's receipt skips.
     */
    readonly takenOver = false,
  ) {
    super(token, clientId, witnesses, expired);
  }

  /**
   * A node not linked here at the move (this node just restarted, or the link was down) may have
   * routed here before it learned the new routes, and its pass may never come (the barrier went out
   * before the link was up): what it forwards is relayed for as long as the move lasts, unless its
   * process is a later one than the one known here.
   */
  override before(node: string, incarnation: string | null, seq: number): boolean {
    const witness = this.witnesses.get(node);
    if (witness === undefined || !witness.linked) return witness?.incarnation == null || witness.incarnation === incarnation;
    return super.before(node, incarnation, seq);
  }

  /** A node not linked at the move may never pass: the move lasts its full time then. */
  override complete(current: (node: string) => PeerProgress | undefined): boolean {
    for (const witness of this.witnesses.values()) if (!witness.linked) return false;
    return super.complete(current);
  }

  /**
   * Whether a QoS 2 message `node` forwarded is relayed as a possible repeat: no cut tells what that
   * node also sent the new owner directly, and the new owner's receipt then skips the second copy.
   */
  uncertain(node: string): boolean {
    return this.takenOver || this.witnesses.get(node)?.linked !== true;
  }

  matches(topic: string): boolean {
    for (const filter of this.filters) if (topicMatches(filter, topic)) return true;
    return false;
  }
}
