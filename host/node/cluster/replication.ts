import type { Broker } from '../../core/broker.js';
import { Reason } from '../../core/codec/constants.js';
import type { Logger } from '../../core/model/options.js';
import { toStoredMessage, toStoredSession } from '../../core/model/persistence.js';
import type { Session } from '../../core/model/session.js';
import type { StoreBatch, StoredDelivery } from '../../core/model/store.js';
import { eachAtMost } from './at-most.js';
import { BuddyAssignments } from './buddy-assignments.js';
import { faultPoints, heldBack } from './fault-points.js';
import { FrameReader, FrameType, FrameWriter } from './frame.js';
import type { Membership } from './membership.js';
import type { Peer } from './mesh.js';
import type { SessionOwnership } from './ownership.js';
import { promoteReplica } from './replica-promotion.js';
import { decodeChanges, emptyChanges, encodeChanges, type ReplicaChanges } from './replica-codec.js';
import { OwnerReplica, type ReplicaSession, type ReplicaStores } from './replica-store.js';
import { rendezvousPick } from './rendezvous.js';

/** What replication needs of the cluster it is part of. */
export interface ReplicationHost {
  readonly broker: Broker;
  readonly self: string;
  readonly membership: Membership;
  readonly ownership: SessionOwnership;
  readonly log: Logger;
  /** The peers, members or not (a departed one stays a while). */
  peers(): Iterable<Peer<unknown>>;
  /** Runs `fn` after every earlier call for the same client id (CONNECTs, hand-overs). */
  serialized(clientId: string, fn: () => Promise<void>): Promise<void>;
  /** This node owns the session now (it took it over from a replica). */
  owns(clientId: string): void;
  /** This node holds the session's key: it created it, took it over, or claimed it again since it started. */
  claimed(clientId: string): boolean;
}

/**
 * The replication stream to one buddy: frames not yet acknowledged are sent again when its link
 * comes back — up to the backlog bound; past it the buddy is behind (see fallBehind).
 */
class BuddyStream {
  seq = 0;
  readonly unacked: { seq: number; frame: Buffer }[] = [];
  unackedBytes = 0;
  readonly waiters: { seq: number; resolve(): void }[] = [];
  /** Behind: no frames are kept for it; these sessions go to it in full when its link is back. */
  behind: Set<string> | null = null;
  /** Acknowledgements that wait for those snapshots. */
  readonly held: (() => void)[] = [];
  /** The next frame carries the snapshots: the held acknowledgements wait for it. */
  snapshotDue = false;
  constructor(readonly node: string) {}

  acknowledged(seq: number): void {
    while (this.unacked.length > 0 && this.unacked[0]!.seq <= seq) this.unackedBytes -= this.unacked.shift()!.frame.length;
    while (this.waiters.length > 0 && this.waiters[0]!.seq <= seq) this.waiters.shift()!.resolve();
  }
}

interface PendingRequest {
  waiting: Set<string>;
  resolve(found: ReplicaChanges | null): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A fenced node stops this long before its lease could have expired in etcd (clock rates, the watch's delivery). */
const FENCE_MARGIN_MS = 500;
const FENCE_CHECK_MS = 100;
const REQUEST_TIMEOUT_MS = 2000;
const FAILOVER_CONCURRENCY = 16;

const faults = faultPoints();

const notProven = (): Error => new Error('this node cannot prove it still owns its sessions (its etcd lease is gone): not acknowledged');

/**
 * replicationFactor 2 (docs/CLUSTERING.md): every persistent session this node owns has a buddy
 * among the live members (rendezvous hashing of the client id), which keeps the session's store
 * records in its own store. Each group commit's changes go to each buddy as one frame, and the
 * commit's acknowledgements wait until the buddies made them durable too. When an owner's lease
 * expires, its buddy claims the sessions in etcd and installs them from its replica.
 */
export class Replication {
  // ---- as owner
  private readonly streams = new Map<string, BuddyStream>();
  /** The buddy each replicated session's records were sent to. */
  private readonly assigned = new BuddyAssignments();
  /** Sessions whose buddy changed or must be sent in full again at the next commit. */
  private readonly resync = new Set<string>();
  private readonly buddyCache = new Map<string, string | null>();
  private candidates: string[] = [];
  /** Acknowledgements that waited for a buddy that left: they wait for the snapshots to the new ones. */
  private carried: (() => void)[] = [];
  /** Commits the buddies have that wait for this node to prove again the lease they were sent under (see proven). */
  private unproven: { lease: string; resolve(): void; reject(error: Error): void }[] = [];
  private fenced = false;
  /** The node is leaving: its buddies take its sessions over, so nothing more is acknowledged for them here. */
  private leaving = false;
  private readonly fenceTimer: ReturnType<typeof setInterval>;
  // ---- as buddy
  private readonly replicas = new Map<string, OwnerReplica>();
  private readonly requests = new Map<number, PendingRequest>();
  /** The highest frame made durable per owner, to acknowledge once the frames settled with it have run. */
  private readonly acksDue = new Map<Peer<unknown>, number>();
  private nextRequest = 1;
  /** The members were read once: a replica's owner that is no member is gone. */
  private listed = false;
  failovers = 0;

  constructor(
    private readonly host: ReplicationHost,
    private readonly stores: ReplicaStores,
    readonly factor: number,
    private readonly maxBacklogBytes: number,
  ) {
    if (factor > 1) host.broker.persistence.replicator = (batch) => this.replicate(batch);
    this.fenceTimer = setInterval(() => this.checkFence(), FENCE_CHECK_MS);
    this.fenceTimer.unref();
  }

  /** Opens the replicas this node kept for others before it stopped. */
  async open(): Promise<void> {
    for (const owner of await this.stores.owners()) await this.replicaOf(owner).ready;
  }

  // ---- owner side --------------------------------------------------------------------

  /** Members came or went: sessions whose buddy changes are sent in full to the new one. */
  membersChanged(): void {
    const members = [...this.host.peers()].filter((p) => p.member !== null).map((p) => p.node);
    this.candidates = members;
    this.buddyCache.clear();
    for (const [node, stream] of this.streams) {
      if (members.includes(node)) continue;
      // Gone: what waited for it waits for its sessions' snapshots to their new buddies.
      this.streams.delete(node);
      for (const w of stream.waiters) this.carried.push(w.resolve);
      this.carried.push(...stream.held);
      this.host.log('warn', 'cluster: a buddy left; its sessions are replicated to other members', { buddy: node });
    }
    this.resyncMoved();
    if (this.resync.size > 0 || this.carried.length > 0) this.host.broker.persistence.nudge();
  }

  /** This node claimed its sessions again (a fresh lease): the ones it still owns go in full to buddies that do not have them. */
  reclaimed(): void {
    this.resyncMoved();
    if (this.resync.size > 0) this.host.broker.persistence.nudge();
  }

  /**
   * Sessions whose buddy is not the one that has their records go to it in full at the next commit.
   * A copy restored from the store waits until this node has claimed it again: another node may
   * have taken the session over meanwhile, and this copy is dropped then.
   */
  private resyncMoved(): void {
    for (const session of this.host.broker.sessions.values()) {
      const clientId = session.clientId;
      if (!session.stored || this.assigned.get(clientId) === this.buddyOf(clientId)) continue;
      if (this.assigned.has(clientId) || this.host.claimed(clientId)) this.resync.add(clientId);
    }
  }

  /** A link is up: what the buddy has not acknowledged goes again; a restarted buddy gets its sessions in full. */
  linkUp(peer: Peer<unknown>, restarted: boolean): void {
    const stream = this.streams.get(peer.node);
    if (!stream) return;
    const behind = stream.behind !== null;
    if (behind) this.catchUp(stream);
    else for (const { frame } of stream.unacked) peer.link!.send(frame);
    if (restarted) for (const [clientId, node] of this.assigned) if (node === peer.node) this.resync.add(clientId);
    if (this.resync.size > 0) heldBack(behind ? faults.catchUpDelayMs : 0, () => this.host.broker.persistence.nudge());
  }

  /** A link is down: a buddy whose kept frames are past the bound now falls behind. */
  linkDown(peer: Peer<unknown>): void {
    const stream = this.streams.get(peer.node);
    if (stream) this.checkBacklog(stream);
  }

  private checkBacklog(stream: BuddyStream): void {
    if (stream.behind || stream.unackedBytes <= this.maxBacklogBytes) return;
    this.host.log('warn', 'cluster: a buddy out of reach is too far behind; its sessions go to it in full when its link is back', {
      buddy: stream.node,
      backlogBytes: stream.unackedBytes,
    });
    // Every session it keeps may have changes in the frames dropped here: all of them are sent in full.
    stream.behind = new Set();
    for (const [clientId, node] of this.assigned) if (node === stream.node) stream.behind.add(clientId);
    for (const w of stream.waiters) stream.held.push(w.resolve);
    stream.waiters.length = 0;
    stream.unacked.length = 0;
    stream.unackedBytes = 0;
  }

  /**
   * The link to a buddy that fell behind is back: the sessions it keeps go in full at the next
   * commit (the held acknowledgements wait for that frame), the ones it no longer keeps are dropped there.
   */
  private catchUp(stream: BuddyStream): void {
    const gone = emptyChanges(0);
    let snapshots = 0;
    for (const clientId of stream.behind!) {
      if (this.assigned.get(clientId) === stream.node && this.host.broker.sessions.get(clientId)?.stored) {
        this.resync.add(clientId);
        snapshots++;
        continue;
      }
      gone.clear.push(clientId);
      if (this.assigned.get(clientId) === stream.node) this.assigned.delete(clientId);
    }
    stream.behind = null;
    if (snapshots === 0) stream.snapshotDue = true;
    if (gone.clear.length > 0) void this.send(stream.node, gone);
    if (snapshots > 0) stream.snapshotDue = true;
    else if (stream.snapshotDue) {
      stream.snapshotDue = false;
      for (const resolve of stream.held.splice(0)) resolve();
    }
  }

  private buddyOf(clientId: string): string | null {
    let buddy = this.buddyCache.get(clientId);
    if (buddy === undefined) {
      buddy = rendezvousPick(clientId, this.candidates);
      this.buddyCache.set(clientId, buddy);
    }
    return buddy;
  }

  /** Persistence's replicator: the batch's session changes, one frame per buddy. */
  private replicate(batch: StoreBatch): Promise<void> | null {
    const out = new Map<string, ReplicaChanges>();
    const changes = (node: string): ReplicaChanges => out.get(node) ?? out.set(node, emptyChanges(0)).get(node)!;
    const sentInFull = new Set<string>();
    /** Buddies behind whose sessions this batch changes: its acknowledgements wait for their snapshots. */
    const behind = new Set<BuddyStream>();
    /** The buddy a session's changes go to, or null when none do (sent in full instead, or no buddy). */
    const target = (clientId: string): string | null => {
      if (sentInFull.has(clientId)) return null;
      const buddy = this.buddyOf(clientId);
      const stream = buddy === null ? undefined : this.streams.get(buddy);
      if (stream?.behind) {
        stream.behind.add(clientId);
        behind.add(stream);
        return null;
      }
      if (this.assigned.get(clientId) === buddy && !this.resync.has(clientId)) return buddy;
      this.sendInFull(clientId, buddy, changes);
      sentInFull.add(clientId);
      return null;
    };
    for (const clientId of this.resync) target(clientId);
    this.resync.clear();
    for (const [clientId, s] of batch.sessions) {
      const buddy = target(clientId);
      if (buddy === null) continue;
      changes(buddy).sessions.set(clientId, s);
      if (s === null) this.assigned.delete(clientId);
    }
    // A batch's deliveries come in runs of one session's: its target is looked up once per run (a
    // second call would answer the same: sending in full, or a buddy behind, leaves null for good).
    let runId: string | null = null;
    let run: ReplicaChanges['deliveries'] | null = null;
    for (const [key, d] of batch.deliveries) {
      if (key.clientId !== runId) {
        runId = key.clientId;
        const buddy = target(runId);
        run = buddy === null ? null : changes(buddy).deliveries;
      }
      run?.push(d ?? { clientId: key.clientId, seq: key.seq, gone: true });
    }
    for (const [key, v] of batch.incomingQos2) {
      const buddy = target(key.slice(0, key.indexOf('\u0000')));
      if (buddy !== null) changes(buddy).incomingQos2.set(key, v);
    }
    if (batch.messages.size > 0) {
      // A body may be any replicated session's: every buddy gets the changes of shared bodies.
      for (const node of this.assigned.nodes()) {
        if (this.streams.get(node)?.behind) continue;
        const c = changes(node);
        for (const [id, m] of batch.messages) c.messages.set(id, m);
      }
    }
    const carried = this.carried;
    this.carried = [];
    if (out.size === 0 && behind.size === 0) {
      for (const resolve of carried) resolve();
      return null;
    }
    if (this.leaving) return Promise.reject(new Error('this node is leaving the cluster: its sessions continue at their buddies'));
    const lease = this.host.membership.leaseId;
    const acks: Promise<void>[] = [];
    for (const stream of behind) acks.push(new Promise((resolve) => stream.held.push(resolve)));
    for (const [node, c] of out) acks.push(this.send(node, c));
    return Promise.all(acks).then(() => {
      for (const resolve of carried) resolve();
      return this.proven(lease);
    });
  }

  /**
   * The buddies have a commit's changes. They count once this node proves it still holds the lease
   * it sent them under: then no buddy can have taken one of its sessions over meanwhile. A proof that
   * lapses for a moment (etcd answering late, a busy node) holds the commit until the lease is
   * proven again; a lease lost or replaced fails it.
   */
  private proven(lease: string | null): Promise<void> | undefined {
    const current = this.host.membership.leaseId;
    if (lease === null || lease !== current) return Promise.reject(notProven());
    if (!this.leaseUnproven()) return undefined;
    return new Promise((resolve, reject) => this.unproven.push({ lease, resolve, reject }));
  }

  /** Whether a buddy may be taking this node's replicated sessions over now: its lease is not proven. */
  leaseInDoubt(): boolean {
    return this.factor > 1 && this.leaseUnproven();
  }

  /** Whether etcd's answers no longer prove the lease held (FENCE_MARGIN_MS before it could have expired). */
  private leaseUnproven(): boolean {
    return performance.now() > this.host.membership.leaseProvenUntil - FENCE_MARGIN_MS;
  }

  /**
   * The session's records in full to its buddy (a snapshot: the buddy drops what it had of it first),
   * and dropped at the one that has them if it gets no snapshot: its previous buddy, or its buddy
   * when the session is no longer kept here.
   */
  private sendInFull(clientId: string, buddy: string | null, changes: (node: string) => ReplicaChanges): void {
    const previous = this.assigned.get(clientId);
    const before = previous === undefined ? undefined : this.streams.get(previous);
    const session = this.host.broker.sessions.get(clientId);
    const kept = buddy !== null && session?.stored === true;
    // A session that ended before its snapshot went is dropped by the frame that was to carry it (what is held waits for it).
    // A buddy that is behind is told when its link is back (catchUp).
    if (before && (previous !== buddy || !kept)) {
      if (before.behind) before.behind.add(clientId);
      else changes(previous!).clear.push(clientId);
    }
    if (!kept) {
      this.assigned.delete(clientId);
      return;
    }
    this.assigned.set(clientId, buddy);
    const c = changes(buddy);
    c.clear.push(clientId);
    c.sessions.set(clientId, toStoredSession(session));
    for (const d of [...session.inflightList(), ...session.queue]) {
      if (d.storage === null) continue;
      const message = d.released ? null : d.message;
      const record: StoredDelivery = {
        clientId,
        seq: d.seq,
        messageId: message?.storage?.id ?? '',
        qos: d.qos,
        retain: d.retain,
        subscriptionIds: d.subscriptionIds,
        packetId: d.packetId,
        released: d.released,
      };
      if (message) {
        if (message.storage!.inlineHolder === d) record.message = toStoredMessage(message);
        else c.messages.set(message.storage!.id, toStoredMessage(message));
      }
      c.deliveries.push(record);
    }
    for (const packetId of session.incomingQos2) c.incomingQos2.set(`${clientId}\u0000${packetId}`, true);
  }

  private send(node: string, c: ReplicaChanges): Promise<void> {
    const stream = this.streams.get(node) ?? this.streams.set(node, new BuddyStream(node)).get(node)!;
    c.seq = ++stream.seq;
    const frame = encodeChanges(c);
    if (stream.snapshotDue) {
      stream.snapshotDue = false;
      for (const resolve of stream.held.splice(0)) stream.waiters.push({ seq: c.seq, resolve });
    }
    const acked = new Promise<void>((resolve) => stream.waiters.push({ seq: c.seq, resolve }));
    stream.unacked.push({ seq: c.seq, frame });
    stream.unackedBytes += frame.length;
    const peer = this.peer(node);
    if (peer?.up) peer.link!.send(frame);
    else this.checkBacklog(stream);
    return acked;
  }

  private peer(node: string): Peer<unknown> | undefined {
    for (const p of this.host.peers()) if (p.node === node) return p;
    return undefined;
  }

  /**
   * A node that cannot prove it holds its lease could be replaced by a buddy any moment: it stops
   * acknowledging (see replicate) and closes the connections of its persistent sessions, so that two
   * nodes never deliver from one session's queue.
   */
  private checkFence(): void {
    if (this.factor === 1) return;
    const fenced = this.leaseUnproven();
    if (this.unproven.length > 0) this.settleUnproven(fenced);
    if (fenced !== this.fenced) {
      this.fenced = fenced;
      this.host.log(fenced ? 'warn' : 'info', fenced ? 'cluster: lease not proven; persistent sessions stop here until it is' : 'cluster: lease proven again');
    }
    if (!fenced) return;
    for (const session of this.host.broker.sessions.values()) {
      if (session.stored && session.outlet) session.outlet.disconnect(Reason.ServerUnavailable);
    }
  }

  /** Commits held for the proof of their lease: acknowledged once it is proven again, failed once it is gone. */
  private settleUnproven(fenced: boolean): void {
    const current = this.host.membership.leaseId;
    const waiting = this.unproven;
    this.unproven = [];
    for (const commit of waiting) {
      if (commit.lease !== current) commit.reject(notProven());
      else if (!fenced) commit.resolve();
      else this.unproven.push(commit);
    }
  }

  // ---- buddy side --------------------------------------------------------------------

  frame(peer: Peer<unknown>, reader: FrameReader): void {
    switch (reader.type) {
      case FrameType.Replicate: {
        const changes = decodeChanges(reader);
        this.replicaOf(peer.node)
          .apply(changes, reader.buf)
          .then(
            () => this.acknowledge(peer, changes.seq),
            (error: Error) => this.host.log('error', 'cluster: cannot store a replica; its owner waits', { owner: peer.node, error: error.message }),
          );
        break;
      }
      case FrameType.ReplicateAck:
        this.streams.get(peer.node)?.acknowledged(reader.uint());
        break;
      case FrameType.ReplicaRequest:
        this.requested(peer, reader);
        break;
      case FrameType.ReplicaReply:
        this.replied(peer, reader);
        break;
    }
  }

  /** Frames one write made durable are acknowledged in one frame (acknowledgements are cumulative). */
  private acknowledge(peer: Peer<unknown>, seq: number): void {
    const due = this.acksDue.get(peer);
    this.acksDue.set(peer, Math.max(seq, due ?? 0));
    if (due !== undefined) return;
    queueMicrotask(() => {
      const upTo = this.acksDue.get(peer)!;
      this.acksDue.delete(peer);
      peer.link?.send(new FrameWriter(FrameType.ReplicateAck, 16).uint(upTo).finish());
    });
  }

  private replicaOf(owner: string): OwnerReplica {
    return this.replicas.get(owner) ?? this.replicas.set(owner, new OwnerReplica(owner, this.stores.open(owner))).get(owner)!;
  }

  private isMember(node: string): boolean {
    return this.peer(node)?.member != null;
  }

  /**
   * The members were read in full. Replicas kept for a node that is none by now — it was lost while
   * this node was down — are claimed as if it had just left.
   */
  membersListed(): void {
    this.listed = true;
    this.claimOrphans();
  }

  /** A fresh lease: claims that failed for want of one (a node just started) go again. */
  leaseFresh(): void {
    if (this.listed) this.claimOrphans();
  }

  private claimOrphans(): void {
    for (const replica of this.replicas.values()) if (!this.isMember(replica.owner)) this.ownerLeft(replica.owner);
  }

  /**
   * A member's lease is gone (it died, or left): this node claims the sessions it kept for it, each
   * in an etcd transaction that succeeds only if nobody owns it by now, and installs the ones it won.
   */
  ownerLeft(owner: string): void {
    const replica = this.replicas.get(owner);
    if (!replica || replica.size === 0) return;
    const clientIds = replica.clientIds();
    this.host.log('warn', 'cluster: a node left; taking over the sessions replicated here', { owner, sessions: clientIds.length });
    const takeOver = (id: string): Promise<void> =>
      this.host.serialized(id, () => this.failOver(replica, id)).catch((error: Error) =>
        this.host.log('warn', 'cluster: could not take over a replicated session; a reconnecting client will', { client: id, error: error.message }),
      );
    replica.ready
      .then(() => eachAtMost(clientIds, FAILOVER_CONCURRENCY, takeOver))
      .catch((error: Error) => this.host.log('error', 'cluster: cannot read the replicas kept for a node that left', { owner, error: error.message }));
  }

  private async failOver(replica: OwnerReplica, clientId: string): Promise<void> {
    if (!replica.has(clientId) || this.isMember(replica.owner)) return;
    const ownership = await this.host.ownership.claim(clientId);
    // Another node owns it now: it asks for this replica if it started the session afresh.
    if (ownership.owner !== 'self') return;
    this.host.owns(clientId);
    const taken = replica.take(clientId);
    if (taken && (ownership.created || !this.host.broker.sessions.has(clientId))) this.promote(clientId, taken, replica.owner);
  }

  private promote(clientId: string, taken: ReplicaSession, owner: string): Session {
    const session = promoteReplica(this.host.broker, clientId, taken);
    this.failovers++;
    this.host.log('warn', 'cluster: took over a session from its replica', { client: clientId, owner, deliveries: session.inflightCount + session.queue.length });
    return session;
  }

  /**
   * This node just created the session's key — the session is new, or its owner is gone. A replica
   * of it (here, or at a peer) is installed: the session goes on with everything acknowledged.
   */
  async recover(clientId: string): Promise<void> {
    for (const replica of this.replicas.values()) {
      if (this.isMember(replica.owner) || !replica.has(clientId)) continue;
      await replica.ready;
      const taken = replica.take(clientId);
      if (taken) this.promote(clientId, taken, replica.owner);
      return;
    }
    // At factor 1 (set on every node, as documented) no peer keeps replicas: a new session costs no round trip.
    if (this.factor === 1) return;
    const up = [...this.host.peers()].filter((p) => p.up);
    if (up.length === 0) return;
    const id = this.nextRequest++;
    const found = await new Promise<ReplicaChanges | null>((resolve) => {
      const timer = setTimeout(() => {
        this.requests.delete(id);
        resolve(null);
      }, REQUEST_TIMEOUT_MS);
      this.requests.set(id, { waiting: new Set(up.map((p) => p.node)), resolve, timer });
      const frame = new FrameWriter(FrameType.ReplicaRequest).uint(id).string(clientId).finish();
      for (const p of up) p.link!.send(frame);
    });
    if (!found) return;
    const session = found.sessions.get(clientId);
    if (!session) return;
    const deliveries = found.deliveries.filter((d): d is StoredDelivery => !('gone' in d));
    const incomingQos2 = [...found.incomingQos2.keys()].map((k) => Number(k.slice(k.indexOf('\u0000') + 1)));
    this.promote(clientId, { session, deliveries, bodies: new Map([...found.messages].filter((e): e is [string, NonNullable<(typeof e)[1]>] => e[1] !== null)), incomingQos2 }, 'a peer');
  }

  private requested(peer: Peer<unknown>, reader: FrameReader): void {
    const id = reader.uint();
    const clientId = reader.string();
    const w = new FrameWriter(FrameType.ReplicaReply).uint(id);
    const replica = [...this.replicas.values()].find((r) => r.owner !== peer.node && !this.isMember(r.owner) && r.has(clientId));
    const taken = replica?.take(clientId) ?? null;
    if (!taken) {
      peer.link?.send(w.u8(0).finish());
      return;
    }
    const c = emptyChanges(0);
    c.sessions.set(clientId, taken.session);
    c.deliveries.push(...taken.deliveries);
    for (const [messageId, body] of taken.bodies) c.messages.set(messageId, body);
    for (const packetId of taken.incomingQos2) c.incomingQos2.set(`${clientId}\u0000${packetId}`, true);
    this.host.log('info', 'cluster: handed a replicated session to the node it reconnected to', { client: clientId, to: peer.node, owner: replica!.owner });
    peer.link?.send(w.u8(1).bytes(encodeChanges(c)).finish());
  }

  private replied(peer: Peer<unknown>, reader: FrameReader): void {
    const pending = this.requests.get(reader.uint());
    if (!pending || !pending.waiting.delete(peer.node)) return;
    const found = reader.u8() === 1 ? decodeChanges(new FrameReader(reader.bytes())) : null;
    if (!found && pending.waiting.size > 0) return;
    for (const [id, p] of this.requests) if (p === pending) this.requests.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(found);
  }

  // ---- observability -----------------------------------------------------------------

  status(): {
    replicatedSessions: number;
    replicaSessions: number;
    unacknowledged: number;
    unacknowledgedBytes: number;
    buddiesBehind: number;
    failovers: number;
    fenced: boolean;
  } {
    let replicaSessions = 0;
    for (const r of this.replicas.values()) replicaSessions += r.size;
    let unacknowledged = 0;
    let unacknowledgedBytes = 0;
    let buddiesBehind = 0;
    for (const s of this.streams.values()) {
      unacknowledged += s.unacked.length;
      unacknowledgedBytes += s.unackedBytes;
      if (s.behind) buddiesBehind++;
    }
    return { replicatedSessions: this.assigned.size, replicaSessions, unacknowledged, unacknowledgedBytes, buddiesBehind, failovers: this.failovers, fenced: this.fenced };
  }

  async close(): Promise<void> {
    clearInterval(this.fenceTimer);
    this.leaving = true;
    for (const commit of this.unproven.splice(0)) commit.reject(new Error('this node is leaving the cluster: not acknowledged'));
    for (const [, p] of this.requests) {
      clearTimeout(p.timer);
      p.resolve(null);
    }
    await Promise.all([...this.replicas.values()].map((r) => r.close().catch(() => undefined)));
  }
}
