import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import type { Broker } from '../../core/broker.js';
import { ClusterRefusal, type BrokerCluster, type OpeningClient, type Qos2Origin, type RemoteConfirmation } from '../../core/model/cluster-hooks.js';
import { Reason } from '../../core/codec/constants.js';
import { parseFilter } from '../../core/model/topics.js';
import type { Message } from '../../core/model/message.js';
import type { Logger } from '../../core/model/options.js';
import type { ClientOutlet } from '../../core/model/outlet.js';
import { afterIo } from '../../core/model/schedule.js';
import type { Session } from '../../core/model/session.js';
import { ConfigError } from '../config-error.js';
import { connectEtcd, etcdKeys, type Etcd3 } from './etcd.js';
import { eachAtMost } from './at-most.js';
import { faultPoints, heldBack, slowWrites } from './fault-points.js';
import { EntryReader, relayTarget } from './forward-codec.js';
import { FrameType, FrameWriter, LINK_PROTOCOL_VERSION, LinkProtocolError, FrameReader } from './frame.js';
import { compareStamps, type Stamp } from './hlc.js';
import type { LinkIdentity } from './handshake.js';
import { listenForLinks, type LinkListener, type LinkTls } from './link-listener.js';
import { Membership, type MemberInfo } from './membership.js';
import { Mesh, type Peer } from './mesh.js';
import { CLUSTER_DEFAULTS, type ClusterOptions } from './options.js';
import { OwnershipUnavailable, SessionOwnership, type Standing } from './ownership.js';
import { Confirmation, PeerOutlet } from './peer-outlet.js';
import { fingerprint, Qos2Receipts } from './qos2-receipts.js';
import type { ReplicaStores } from './replica-store.js';
import { Replication } from './replication.js';
import { RetainedSync } from './retained-sync.js';
import { LocalRoutes, RemoteRoutes } from './routes.js';
import { MoveCut, MovedAway, type MoveWitness, type PeerProgress } from './session-moves.js';
import { topicMatches } from '../../client/topic-match.js';
import { handOver, takeIn, TakeoverStatus, type TakeoverRequest } from './session-transfer.js';

/** What the cluster keeps about one peer node. */
interface PeerState {
  /** The trie client id standing for the peer's routes. */
  readonly client: number;
  readonly outlet: PeerOutlet;
  readonly routes: RemoteRoutes;
  /**
   * The last forward processed from the peer's current incarnation (repeats are dropped). Kept
   * durable as a mark in the group commit of the deliveries it made, so a repeat sent after this
   * node crashed between that commit and its ForwardAck is dropped too.
   */
  lastSeq: number;
  /** ForwardAcks waiting for relays of a moved session to be confirmed; later ones queue behind them. */
  acksHeld: number;
  ackChain: Promise<void>;
  /** Moves away from the peer whose forwards routed here before this node's cut it has not confirmed yet. */
  relaysOwed: RelayOwed[];
  /** Forward frames come while this node could not say which sessions are still its own, applied once it can. */
  held: Buffer[];
  heldBytes: number;
  messagesIn: number;
  bytesIn: number;
}

/**
 * Forwards up to `upTo` that this node routed to a session's old owner before its cut are that
 * node's to relay to the new owner `to`. If the old owner comes back as a new process before it
 * confirmed them, it knows nothing of the move: this node relays them itself.
 */
interface RelayOwed {
  upTo: number;
  to: string;
  clientId: string;
  filters: readonly string[];
}

interface PendingTakeover {
  node: string;
  clientId: string;
  /** What this node's takeover wrote to the session key. */
  revision: string;
  resolve(status: TakeoverStatus): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A session handed over from here whose new owner has not yet said it is durable there (or not taken). */
interface HandedOver {
  clientId: string;
  /** This node's copy, offline, kept in its store until the hand-over is settled. */
  session: Session;
  node: string;
  /** The new owner's process: if another one comes back, the hand-over died with it. */
  incarnation: string | null;
}

const faults = faultPoints();
/** Runs the settling of a hand-over (held back by the settle-delay fault point in tests). */
const settleDelayed = (fn: () => void): void => heldBack(faults.settleDelayMs, fn);
const TAKEOVER_TIMEOUT_MS = 5000;
/** How long a CONNECT waits for the lease (one needing ownership) or the members' routes before it is refused with 0x88. */
const READY_WAIT_MS = 1500;
const LEASE_UNPROVEN = 'the cluster cannot confirm who owns sessions right now (etcd is unreachable)';
const ROUTES_UNKNOWN = 'this node does not know the routes of every member yet';
/** How often receipts whose release was lost are looked for. */
const RECEIPT_SWEEP_MS = 3600_000;
/** Sessions claimed again at once after a fresh lease. */
const RECLAIM_CONCURRENCY = 32;
/** How often held forwards look whether this node can apply them. */
const HELD_RECHECK_MS = 20;
/** Forward bytes held per peer before its link is closed instead (the peer sends them again on the next one). */
const HELD_LIMIT_BYTES = 64 * 1024 * 1024;
/** Lease TTLs a member that came back has to claim its sessions again before a CONNECT elsewhere asks it for them. */
const RECLAIM_TTLS = 2;

/** One node's view of the cluster, for `/cluster` and `arbormq cluster status`. */
export interface ClusterStatus {
  node: string;
  url: string;
  healthy: boolean;
  /** Holds its etcd lease. */
  lease: boolean;
  leaseLosses: number;
  etcdRttMs: number;
  routes: number;
  ownedSessions: number;
  takeovers: number;
  /** QoS 2 messages sent again after their publisher's node was lost that this node had delivered already. */
  qos2RepeatsSkipped: number;
  replication: ReturnType<Replication['status']> & { factor: number };
  peers: {
    node: string;
    url: string | null;
    up: boolean;
    routes: number;
    messagesOut: number;
    framesOut: number;
    bytesOut: number;
    messagesIn: number;
    bytesIn: number;
    buffered: number;
    unconfirmed: number;
    dropped: number;
  }[];
}

/**
 * This node's part in a cluster (docs/CLUSTERING.md): membership and session ownership in etcd,
 * a link to every other member, routes announced and received, messages forwarded once per node,
 * retained messages replicated, sessions handed over. The broker sees it through BrokerCluster.
 */
export class Cluster implements BrokerCluster {
  private readonly routes: LocalRoutes;
  private readonly retainedSync: RetainedSync;
  private readonly owned = new Set<string>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly pendingTakeovers = new Map<number, PendingTakeover>();
  /** Hand-overs from here not yet settled by their new owner, by `${node}/${request id}`. */
  private readonly handedOver = new Map<string, HandedOver>();
  /** When each local CONNECT asked to open its session, by the outlet it gets. */
  private readonly connectStamps = new WeakMap<ClientOutlet, Stamp>();
  /** Sessions handed over from here whose move is not complete, by token (session-moves.ts). */
  private readonly movedAway = new Map<string, MovedAway>();
  /** Sessions taken over by this node whose move is not complete, by token. */
  private readonly movedIn = new Map<string, MoveCut>();
  /** Fresh leases so far; the claims of the newest one done (`reclaimed`) end the doubt about which sessions are this node's. */
  private reclaims = 0;
  private reclaimed = false;
  private heldTimer: ReturnType<typeof setTimeout> | null = null;
  /** When each member was last seen joining or coming back (performance.now()). */
  private readonly joinedAt = new Map<string, number>();
  /**
   * Of each member given up: the last forward sent to it and the last applied from its process. One
   * that comes back as the same process (it was frozen) is sent numbers it has not seen, and what it
   * sends again is recognised.
   */
  private readonly givenUp = new Map<string, { sent: number; applied: number; incarnation: string | null }>();
  /** Since when each node that is not a member has been away as far as this node knows; -Infinity once given up. */
  private readonly absentSince = new Map<string, number>();
  private incarnation = '';
  private nextTakeover = 1;
  /** Outlets of the peers the message being routed matched: the first `touchedCount` (the array is reused, never shrunk). */
  private readonly touched: PeerOutlet[] = [];
  private touchedCount = 0;
  private dirtyOutlets: PeerOutlet[] = [];
  private flushScheduled = false;
  private routesScheduled = false;
  private mesh!: Mesh<PeerState>;
  private membership!: Membership;
  private ownership!: SessionOwnership;
  private etcd!: Etcd3;
  private listener!: LinkListener;
  private url = '';
  private closed = false;
  /** The members have been read from etcd once. */
  private membersListed = false;
  /** replicationFactor 2: this node's sessions' buddies, and the replicas it keeps for others. */
  private replication: Replication | null = null;
  /** The QoS 2 messages this node delivered, until their publishers release them. */
  private readonly receipts: Qos2Receipts;
  private receiptSweep: ReturnType<typeof setInterval> | null = null;
  takeovers = 0;
  qos2RepeatsSkipped = 0;

  private constructor(
    private readonly broker: Broker,
    private readonly options: ClusterOptions,
    private readonly log: Logger,
    private readonly replicaStores: ReplicaStores,
  ) {
    this.routes = new LocalRoutes(() => this.scheduleRoutes());
    this.retainedSync = new RetainedSync(broker, options.nodeId);
    this.receipts = new Qos2Receipts(broker.persistence);
    if (faults.commitDelayMs > 0) slowWrites(broker.persistence.store, faults.commitDelayMs);
  }

  /**
   * Attaches to `broker` before it restores its state (so restored subscriptions are routes), and
   * returns a starter to run once the broker has started: it opens the link listener, connects to
   * etcd and joins.
   */
  static attach(
    broker: Broker,
    options: ClusterOptions,
    log: Logger,
    replicaStores: ReplicaStores,
  ): { cluster: Cluster; start(httpPort: number | null): Promise<void> } {
    const cluster = new Cluster(broker, options, log, replicaStores);
    broker.cluster = cluster;
    return { cluster, start: (httpPort) => cluster.start(httpPort) };
  }

  private async start(httpPort: number | null): Promise<void> {
    const o = this.options;
    const secret = o.secretFile === undefined ? null : await readSecret(o.secretFile);
    const tls = o.certFile === undefined ? null : await readLinkTls(o);
    const self: LinkIdentity = { cluster: o.name ?? CLUSTER_DEFAULTS.name, node: o.nodeId, incarnation: randomBytes(8).toString('hex'), secret };
    this.incarnation = self.incarnation;
    this.mesh = new Mesh<PeerState>(self, tls, this.meshHandler(), this.log);
    const host = o.host ?? CLUSTER_DEFAULTS.host;
    this.listener = await listenForLinks(o.port ?? CLUSTER_DEFAULTS.port, host, tls, self, (link) => this.mesh.accepted(link), this.log);
    this.url = o.advertise ?? `${tls ? 'wss' : 'ws'}://${advertisedHost(host)}:${this.listener.address().port}`;
    this.etcd = await connectEtcd(o.etcd);
    const http = httpPort === null ? null : `http://${new URL(this.url).hostname}:${httpPort}`;
    const member: MemberInfo = { node: o.nodeId, url: this.url, protocol: LINK_PROTOCOL_VERSION, incarnation: self.incarnation, ...(http ? { http } : {}) };
    const keys = etcdKeys(self.cluster);
    this.membership = new Membership(this.etcd, keys, member, o.leaseTtlSeconds ?? CLUSTER_DEFAULTS.leaseTtlSeconds, {
      joined: (m) => {
        this.joinedAt.set(m.node, performance.now());
        this.absentSince.delete(m.node);
        this.mesh.memberJoined(m);
        this.replication?.membersChanged();
      },
      left: (node) => {
        this.absentSince.set(node, performance.now());
        this.handOversLost(node, null);
        this.mesh.memberLeft(node, this.departedGraceMs);
        this.replication?.membersChanged();
        this.replication?.ownerLeft(node);
      },
      listed: () => {
        this.membersListed = true;
        this.replication?.membersListed();
      },
      lease: (holding, fresh) => this.leaseChanged(holding, fresh),
    }, this.log);
    this.ownership = new SessionOwnership(this.etcd, keys, this.membership);
    // Every node keeps the replicas others send it, whatever its own replication factor.
    this.replication = new Replication(
      {
        broker: this.broker,
        self: o.nodeId,
        membership: this.membership,
        ownership: this.ownership,
        log: this.log,
        peers: () => this.mesh.peers.values(),
        serialized: (clientId, fn) => this.serialized(clientId, fn),
        owns: (clientId) => this.owned.add(clientId),
        claimed: (clientId) => this.owned.has(clientId),
      },
      this.replicaStores,
      o.replicationFactor ?? CLUSTER_DEFAULTS.replicationFactor,
      o.maxReplicationBacklogBytes ?? CLUSTER_DEFAULTS.maxReplicationBacklogBytes,
    );
    await this.replication.open();
    this.receipts.sweep();
    this.receiptSweep = setInterval(() => this.receipts.sweep(), RECEIPT_SWEEP_MS).unref();
    this.membership.start();
    this.log('info', 'cluster: joining', { node: o.nodeId, cluster: self.cluster, url: this.url, etcd: o.etcd });
  }

  private readonly groupName = (id: number): string => this.broker.router.shareGroupName(id);

  private get leaseTtlMs(): number {
    return (this.options.leaseTtlSeconds ?? CLUSTER_DEFAULTS.leaseTtlSeconds) * 1000;
  }

  private get departedGraceMs(): number {
    return (this.options.departedGraceSeconds ?? CLUSTER_DEFAULTS.departedGraceSeconds) * 1000;
  }

  // ---- BrokerCluster -------------------------------------------------------------------

  subscribed(filter: string): void {
    this.routes.add(filter);
  }

  unsubscribed(filter: string): void {
    this.routes.remove(filter);
  }

  routed(message: Message, _publisher: Session | null, origin: Qos2Origin | null): RemoteConfirmation | null {
    if (origin) this.receipts.admit(origin.clientId, origin.packetId, origin.repeat, printOf(message));
    const count = this.touchedCount;
    if (count === 0 && !message.retain && this.movedAway.size === 0) return null;
    this.touchedCount = 0;
    const touched = this.touched;
    if (isSys(message)) {
      for (let i = 0; i < count; i++) touched[i]!.unmatch();
      return null;
    }
    const replicate = message.retain && this.broker.options.retainAvailable;
    const stamp = replicate ? this.retainedSync.stampLocal(message) : null;
    const confirmation = message.qos > 0 ? new Confirmation() : null;
    const outlets = stamp ? [...this.mesh.peers.values()].map((p) => p.state.outlet) : touched;
    const n = stamp ? outlets.length : count;
    for (let i = 0; i < n; i++) outlets[i]!.forwardMatched(message, stamp, confirmation, this.groupName, origin);
    if (this.movedAway.size > 0) this.relayLocal(message, confirmation, origin);
    return confirmation && confirmation.remaining > 0 ? confirmation.promise : null;
  }

  deliveredHere(message: Message, origin: Qos2Origin): boolean {
    return this.receipts.has(origin.clientId, origin.packetId, printOf(message));
  }

  released(clientId: string, packetId: number): void {
    this.receipts.release(clientId, packetId);
    // Which nodes delivered it is not tracked (the session may have moved here since): every peer is told.
    for (const peer of this.mesh?.peers.values() ?? []) peer.state.outlet.release(clientId, packetId);
  }

  beforeOpen(client: OpeningClient, clientId: string, cleanStart: boolean, persistent: boolean): Promise<void> | null {
    const stamp = this.retainedSync.clock.now();
    this.connectStamps.set(client.outlet, stamp);
    if (this.mesh) this.broadcast(kickFrame(clientId, client.username, stamp, !persistent || cleanStart));
    if (!persistent) return this.routesKnown() ? null : this.waitFor(() => this.routesKnown(), ROUTES_UNKNOWN);
    return this.serialized(clientId, async () => {
      await this.waitFor(() => this.membership?.holding === true, LEASE_UNPROVEN);
      await this.waitFor(() => this.routesKnown(), ROUTES_UNKNOWN);
      await this.acquire(client, clientId, cleanStart);
    });
  }

  /**
   * Every member's routes are known here: each has sent its snapshot since this process started.
   * Until then a message published here would not reach that member's subscribers — acknowledged
   * and lost — so a node that has just started lets no client in before.
   */
  private routesKnown(): boolean {
    return this.membersListed && this.mesh.expected().every((p) => p.state.routes.known);
  }

  sessionEnded(session: Session): void {
    if (!this.owned.delete(session.clientId) || this.closed) return;
    this.ownership.release(session.clientId).catch((error: Error) => this.log('warn', 'cluster: could not release a session key', { client: session.clientId, error: error.message }));
  }

  // ---- ownership and takeover --------------------------------------------------------

  /** Runs `fn` after every earlier call for the same client id: one takeover at a time per id. */
  private serialized(clientId: string, fn: () => Promise<void>): Promise<void> {
    const before = this.locks.get(clientId) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(clientId, tail);
    void tail.then(() => {
      if (this.locks.get(clientId) === tail) this.locks.delete(clientId);
    });
    return run;
  }

  /**
   * Resolves once `ready()` — at once, or within READY_WAIT_MS (a node just started, a keepalive late
   * by a moment) — and otherwise refuses the CONNECT with 0x88 saying `why`.
   */
  private async waitFor(ready: () => boolean, why: string): Promise<void> {
    for (const deadline = performance.now() + READY_WAIT_MS; !ready(); ) {
      if (performance.now() > deadline) throw new ClusterRefusal(Reason.ServerUnavailable, why);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Makes this node the owner of a persistent session, taking it over from the node that has it. */
  private async acquire(client: OpeningClient, clientId: string, cleanStart: boolean): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const ownership = await this.unavailableAsRefusal(this.ownership.claim(clientId, 'respect', this.broker.sessions.has(clientId)));
      if (ownership.owner === 'self') {
        this.owned.add(clientId);
        // A new key: the session is new here, or its owner is gone and a buddy may hold it.
        if (ownership.created && !cleanStart && !this.broker.sessions.has(clientId)) await this.replication?.recover(clientId);
        return;
      }
      const peer = this.mesh.peers.get(ownership.node);
      const member = peer?.member != null;
      if (member && !peer!.up) throw new ClusterRefusal(Reason.ServerUnavailable, `node ${ownership.node} holds this session and is unreachable`);
      // Clean Start discards the session anyway: the node that had it drops its copy when it claims it again.
      if (!cleanStart && (ownership.owner === 'away' || !member)) this.refuseWhileAway(ownership.node, peer);
      const taken = await this.unavailableAsRefusal(
        ownership.owner === 'other' ? this.ownership.takeOver(clientId, ownership.revision) : this.ownership.takeAway(clientId, ownership.revision),
      );
      if (!taken) continue;
      this.owned.add(clientId);
      // A node that is no member any more (given up, or at factor 2 gone to its buddy) has nothing to hand over.
      if (!member) {
        await this.settle(clientId, taken.revision);
        if (!cleanStart && !this.broker.sessions.has(clientId)) await this.replication?.recover(clientId);
        return;
      }
      const giveBack = async (lease: string | null): Promise<void> => {
        this.owned.delete(clientId);
        await this.ownership.giveBack(clientId, taken.revision, ownership.node, lease).catch(() => undefined);
      };
      const ownerLease = ownership.owner === 'other' ? ownership.lease : null;
      const status = await this.requestTakeover(peer!, { clientId, username: client.username, cleanStart, version: client.version, revision: taken.revision }).catch(async (error: Error) => {
        // The owner died or its link dropped before it answered: it still has the session (in its
        // store, if killed), so the key goes back to it rather than leave this node owning an empty one.
        await giveBack(ownerLease);
        throw error;
      });
      if (status === TakeoverStatus.Denied) {
        await giveBack(ownerLease);
        throw new ClusterRefusal(Reason.NotAuthorized, 'the client identifier is in use by another user');
      }
      if (status === TakeoverStatus.None && ownership.owner === 'other' && ownership.home !== null && !cleanStart) {
        // The owner lost a hand-over it never settled (it restarted): the session is still at its home.
        await giveBack(null);
        throw new ClusterRefusal(Reason.ServerUnavailable, `node ${ownership.home} holds this session and is taking it back`);
      }
      if (status === TakeoverStatus.Moved) await this.movedHere(clientId, taken.revision);
      else await this.settle(clientId, taken.revision);
      this.takeovers++;
      this.broker.metrics.sessionTakeovers++;
      this.log('debug', 'cluster: session taken over', { client: clientId, from: peer!.node, moved: status === TakeoverStatus.Moved });
      return;
    }
    throw new ClusterRefusal(Reason.ServerUnavailable, 'the session kept changing hands; try again');
  }

  /**
   * A session moved here: once it is durable here, its home record names this node. Only then is
   * the client let in: from then on its old owner can no longer take its copy back (it does when
   * this node restarts or leaves before settling), so nothing delivered from here is sent again
   * from there under new packet identifiers.
   */
  private async movedHere(clientId: string, revision: string): Promise<void> {
    await new Promise<void>((resolve) => this.broker.persistence.whenWritten(() => settleDelayed(resolve)));
    const settled = await this.ownership.settle(clientId, revision).catch(() => false);
    // The session stays here, and the key: the client's next attempt finds it.
    if (!settled) throw new ClusterRefusal(Reason.ServerUnavailable, 'the new home of the session could not be recorded; try again');
  }

  /** The session is this node's: its home record says so (a failure only leaves the old home, which a takeover asks in vain). */
  private async settle(clientId: string, revision: string): Promise<void> {
    await this.ownership.settle(clientId, revision).catch((error: Error) => this.log('warn', 'cluster: could not record the new home of a session', { client: clientId, error: error.message }));
  }

  /**
   * A session's home is `node`'s store but nobody holds its key: `node` is restarting, or just back
   * and claiming its sessions again. Starting the session afresh here would lose what that store
   * holds, so the CONNECT is refused (0x88) until `node` has it again — or, at replication factor 2,
   * until its buddy has promoted its replica — or until `node` is given up (departedGraceSeconds).
   */
  private refuseWhileAway(node: string, peer: Peer<PeerState> | undefined): void {
    const now = performance.now();
    if (peer?.member) {
      // Back: it claims its sessions right after its lease; one it has not claimed by then it does not have.
      if (now - (this.joinedAt.get(node) ?? 0) < this.leaseTtlMs * RECLAIM_TTLS) {
        throw new ClusterRefusal(Reason.ServerUnavailable, `node ${node} holds this session and is claiming its sessions again`);
      }
      return;
    }
    if ((this.options.replicationFactor ?? CLUSTER_DEFAULTS.replicationFactor) > 1) return;
    // Not known here as a member: absent since this node first noticed, unless given up already.
    let since = this.absentSince.get(node);
    if (since === undefined) this.absentSince.set(node, (since = now));
    if (now - since < this.departedGraceMs) {
      throw new ClusterRefusal(Reason.ServerUnavailable, `node ${node} holds this session and is down or restarting`);
    }
  }

  private async unavailableAsRefusal<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      if (error instanceof OwnershipUnavailable) throw new ClusterRefusal(Reason.ServerUnavailable, error.message);
      throw error;
    }
  }

  private requestTakeover(peer: Peer<PeerState>, request: TakeoverRequest): Promise<TakeoverStatus> {
    const id = this.nextTakeover++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingTakeovers.delete(id);
        reject(new ClusterRefusal(Reason.ServerUnavailable, `node ${peer.node} did not hand the session over in time`));
      }, TAKEOVER_TIMEOUT_MS);
      this.pendingTakeovers.set(id, { node: peer.node, clientId: request.clientId, revision: request.revision, resolve, reject, timer });
      peer.link!.send(new FrameWriter(FrameType.Takeover).uint(id).json(request).finish());
    });
  }

  /** A peer takes a session over: hand it over (serialized with this node's own CONNECTs for the id). */
  private takeoverRequested(peer: Peer<PeerState>, reader: FrameReader): void {
    const id = reader.uint();
    const request = reader.json<TakeoverRequest>();
    void this.serialized(request.clientId, async () => {
      const w = new FrameWriter(FrameType.TakeoverReply).uint(id);
      const statusAt = w.reserve(1);
      const wasOwned = this.owned.delete(request.clientId);
      const session = this.broker.sessions.get(request.clientId);
      const filters = relayedFilters(session);
      // Kept as routes until the move is complete: no node stops sending them here before it sends them to the new owner.
      for (const filter of filters) this.routes.add(filter);
      const status = handOver(this.broker, request, w);
      if (status === TakeoverStatus.Moved) {
        this.endMovesAway(request.clientId);
        this.moveAway(peer, `${peer.node}/${peer.incarnation}/${id}`, request.clientId, filters);
        // Two-phase: this node's copy stays (offline, in its store) until the new owner has it durable.
        for (const [key, handed] of this.handedOver) if (handed.clientId === request.clientId) this.handedOver.delete(key);
        this.handedOver.set(`${peer.node}/${id}`, { clientId: request.clientId, session: session!, node: peer.node, incarnation: peer.incarnation });
      } else for (const filter of filters) this.routes.remove(filter);
      if (status === TakeoverStatus.Denied && wasOwned) this.owned.add(request.clientId);
      this.log('debug', 'cluster: asked to hand a session over', { client: request.clientId, to: peer.node, id, status });
      w.target()[statusAt] = status;
      const reply = w.finish();
      heldBack(faults.takeoverReplyDelayMs, () => peer.link?.send(reply));
    });
  }

  private takeoverReplied(peer: Peer<PeerState>, reader: FrameReader): void {
    const id = reader.uint();
    const status = reader.u8() as TakeoverStatus;
    const pending = this.pendingTakeovers.get(id);
    if (!pending || pending.node !== peer.node) {
      // Too late: this node refused the CONNECT and gave the key back; the old owner keeps the session.
      if (status === TakeoverStatus.Moved) peer.link?.send(settledFrame(id, false));
      return;
    }
    this.pendingTakeovers.delete(id);
    clearTimeout(pending.timer);
    if (status === TakeoverStatus.Moved) {
      // At once, before the next frame of the link: a relay of the old owner may follow.
      try {
        // A stale copy here ends without releasing the key this node just took.
        this.owned.delete(pending.clientId);
        this.endMovesAway(pending.clientId);
        takeIn(this.broker, pending.clientId, reader);
        this.owned.add(pending.clientId);
      } catch (error) {
        peer.link?.send(settledFrame(id, false));
        pending.reject(error as Error);
        return;
      }
      if (faults.crashAfterTakeIn) process.kill(process.pid, 'SIGKILL');
      this.broker.persistence.whenWritten(() => settleDelayed(() => peer.link?.send(settledFrame(id, true))));
      this.moveIn(peer, `${this.options.nodeId}/${this.incarnation}/${id}`, pending.clientId);
    }
    pending.resolve(status);
  }

  /** The new owner settled a hand-over: it has the session durable (this copy goes), or did not take it (this copy stays). */
  private takeoverSettled(peer: Peer<PeerState>, reader: FrameReader): void {
    const key = `${peer.node}/${reader.uint()}`;
    const handed = this.handedOver.get(key);
    if (!handed) return;
    this.handedOver.delete(key);
    const durable = reader.u8() === 1;
    this.log('debug', 'cluster: hand-over settled', { client: handed.clientId, to: peer.node, durable });
    if (durable) this.endHandedOver(handed);
    else this.takeBack(handed);
  }

  private endHandedOver(handed: HandedOver): void {
    if (this.broker.sessions.get(handed.clientId) === handed.session) this.broker.endSession(handed.session);
  }

  /**
   * A hand-over the new owner did not settle as durable — it refused it late, restarted, or left:
   * the session is this node's again unless the new owner kept it after all (etcd decides).
   */
  private takeBack(handed: HandedOver): void {
    void this.serialized(handed.clientId, async () => {
      if (this.broker.sessions.get(handed.clientId) !== handed.session) return;
      const mine = await this.ownership.reclaim(handed.clientId).catch((error: Error) => {
        this.log('warn', 'cluster: could not reclaim a session whose hand-over was not settled', { client: handed.clientId, error: error.message });
        return false;
      });
      if (mine) {
        this.owned.add(handed.clientId);
        this.endMovesAway(handed.clientId);
        this.log('warn', 'cluster: took back a session handed over to a node that did not keep it', { client: handed.clientId, to: handed.node });
      } else this.endHandedOver(handed);
    });
  }

  /** `node` restarted (`incarnation` is its new process) or left: the hand-overs to it it did not settle are taken back. */
  private handOversLost(node: string, incarnation: string | null): void {
    for (const [key, handed] of this.handedOver) {
      if (handed.node !== node || (incarnation !== null && handed.incarnation === incarnation)) continue;
      this.handedOver.delete(key);
      this.takeBack(handed);
    }
  }

  // ---- a session moving between nodes (session-moves.ts) ---------------------------------

  /** Handed a session over: relay what still comes here for it until every node has its cut. */
  private moveAway(to: Peer<PeerState>, token: string, clientId: string, filters: string[], takenOver = false): void {
    this.movedAway.set(token, new MovedAway(token, clientId, this.moveWitnesses(), () => this.endMoveAway(token), to.node, filters, takenOver));
  }

  /**
   * The session is here again (taken back, moved back in, or about to be handed over anew): what
   * reaches this node for it is its copy's, and relayed by an earlier move it would reach the
   * session twice should it be at that move's node by then.
   */
  private endMovesAway(clientId: string): void {
    for (const moved of this.movedAway.values()) if (moved.clientId === clientId) this.endMoveAway(moved.token);
  }

  private endMoveAway(token: string): void {
    const moved = this.movedAway.get(token);
    if (!moved) return;
    this.movedAway.delete(token);
    clearTimeout(moved.timer);
    for (const filter of moved.filters) this.routes.remove(filter);
    this.log('debug', 'cluster: a moved session is no longer relayed', { client: moved.clientId, to: moved.to, token });
  }

  /** Took a session in: its routes go out now, then the barrier that makes every node send its cut. */
  private moveIn(from: Peer<PeerState>, token: string, clientId: string): void {
    this.sendRoutesDelta();
    const session = this.broker.sessions.get(clientId);
    const filters = relayedFilters(session);
    const barrier = new FrameWriter(FrameType.MoveBarrier).string(token).string(from.node).string(clientId).json(filters).finish();
    const witnesses = this.moveWitnesses();
    for (const peer of this.mesh.peers.values()) if (peer.up) this.sendRouteFrame(peer, barrier);
    this.movedIn.set(token, new MoveCut(token, clientId, witnesses, () => this.movedIn.delete(token)));
    // This node's own cut: what it routed to the old owner until now is the old owner's to relay.
    this.owe(from, this.options.nodeId, clientId, filters);
    from.link?.send(passFrame(token, from.state.outlet.lastSeq));
  }

  /** The new owner's routes are known here: tell the old owner and the new one where this node's cut is. */
  private moveBarrier(from: Peer<PeerState>, reader: FrameReader): void {
    const token = reader.string();
    const old = reader.string();
    const clientId = reader.string();
    const filters = reader.json<string[]>();
    if (old === this.options.nodeId) {
      const moved = this.movedAway.get(token);
      if (moved) moved.localPassed = true;
    } else {
      const oldPeer = this.mesh.peers.get(old);
      if (oldPeer) {
        this.owe(oldPeer, from.node, clientId, filters);
        oldPeer.link?.send(passFrame(token, oldPeer.state.outlet.lastSeq));
      }
    }
    from.link?.send(passFrame(token, from.state.outlet.lastSeq));
    this.settleMoves();
  }

  private movePassed(from: Peer<PeerState>, reader: FrameReader): void {
    const token = reader.string();
    const upTo = reader.uint();
    this.movedAway.get(token)?.passed(from.node, upTo);
    this.movedIn.get(token)?.passed(from.node, upTo);
    this.settleMoves();
  }

  /** Every peer's process now: a move's cut is between what each sent before and after it. */
  private moveWitnesses(): Map<string, MoveWitness> {
    return new Map([...this.mesh.peers.values()].map((p) => [p.node, { incarnation: p.incarnation, linked: p.up }]));
  }

  /** Ends the moves whose cut is complete everywhere. */
  private settleMoves(): void {
    const current = (node: string): PeerProgress | undefined => {
      const peer = this.mesh.peers.get(node);
      return peer && { incarnation: peer.incarnation, applied: peer.state.lastSeq };
    };
    for (const moved of this.movedAway.values()) if (moved.localPassed && moved.complete(current)) this.endMoveAway(moved.token);
    for (const cut of this.movedIn.values()) {
      if (!cut.complete(current)) continue;
      clearTimeout(cut.timer);
      this.movedIn.delete(cut.token);
    }
  }

  /** A message published here, for sessions that moved away while this node did not know their new routes yet. */
  private relayLocal(message: Message, confirmation: Confirmation | null, origin: Qos2Origin | null): void {
    const topic = message.topic();
    for (const moved of this.movedAway.values()) {
      if (!moved.localPassed && moved.matches(topic)) this.mesh.peers.get(moved.to)?.state.outlet.forward(message, false, [relayTarget(moved.clientId)], null, confirmation, relayedOrigin(moved.takenOver, origin));
    }
  }

  /** A forward `node` routed before its cut, for sessions that moved away: relayed; resolves once the new owners confirm it. */
  private relayForwarded(node: string, incarnation: string | null, seq: number, message: Message, origin: Qos2Origin | null): Promise<void>[] | null {
    let relays: Promise<void>[] | null = null;
    let topic: string | null = null;
    for (const moved of this.movedAway.values()) {
      if (!moved.before(node, incarnation, seq) || !moved.matches((topic ??= message.topic()))) continue;
      if (faults.crashBeforeRelay) process.kill(process.pid, 'SIGKILL');
      const confirmation = message.qos > 0 ? new Confirmation() : null;
      this.mesh.peers.get(moved.to)?.state.outlet.forward(message, false, [relayTarget(moved.clientId)], null, confirmation, relayedOrigin(moved.uncertain(node), origin));
      if (confirmation && confirmation.remaining > 0) (relays ??= []).push(confirmation.promise);
    }
    return relays;
  }

  /** What this node routed to `old` until now for `clientId`'s filters is the old owner's to relay to `to`, until `old` confirms it. */
  private owe(old: Peer<PeerState>, to: string, clientId: string, filters: readonly string[]): void {
    const upTo = old.state.outlet.lastSeq;
    if (filters.length > 0 && old.state.outlet.unconfirmed > 0) old.state.relaysOwed.push({ upTo, to, clientId, filters });
  }

  /**
   * `old` came back as a new process before confirming forwards it was to relay to a moved
   * session's new owner: they go there from here (to this node's own session if it is the new owner).
   */
  private relayOwed(old: Peer<PeerState>): void {
    const moves = old.state.relaysOwed;
    old.state.relaysOwed = [];
    for (const owed of moves) {
      old.state.outlet.eachUnconfirmed(owed.upTo, (message, plain, confirmation, origin) => {
        if (!plain || !owed.filters.some((filter) => topicMatches(filter, message.topic()))) return;
        if (owed.to !== this.options.nodeId) {
          this.mesh.peers.get(owed.to)?.state.outlet.forward(message, false, [relayTarget(owed.clientId)], null, confirmation, origin);
          return;
        }
        if (!origin || this.receipts.admit(origin.clientId, origin.packetId, origin.repeat, printOf(message))) this.broker.router.deliverForwarded(message, false, NO_GROUPS, owed.clientId);
        if (!confirmation) return;
        confirmation.remaining++;
        this.broker.persistence.whenDurable((error) => (error ? confirmation.fail(error) : confirmation.done()));
      });
      this.log('warn', 'cluster: a node restarted before relaying forwards of a moved session; relaying them from here', { peer: old.node, client: owed.clientId, to: owed.to });
    }
  }

  /** Sessions moved here that a forward `node`'s process `incarnation` routed before its cut is not for: their old owner delivers it. */
  private excluded(node: string, incarnation: string | null, seq: number): Set<string> | null {
    let except: Set<string> | null = null;
    for (const cut of this.movedIn.values()) if (cut.before(node, incarnation, seq)) (except ??= new Set()).add(cut.clientId);
    return except;
  }

  /** A client id connected elsewhere: a clean session here (or, for a clean start there, any session) goes. */
  private kicked(reader: FrameReader): void {
    const clientId = reader.string();
    const username = reader.u8() === 1 ? reader.string() : undefined;
    const stamp: Stamp = { wall: reader.uint(), logical: reader.u32(), node: reader.string() };
    const discardPersistent = reader.u8() === 1;
    this.retainedSync.clock.observe(stamp);
    const session = this.broker.sessions.get(clientId);
    if (!session) return;
    const persistent = session.expiryInterval > 0;
    if (persistent && !discardPersistent) return;
    const outlet = session.outlet;
    if (outlet) {
      const mine = this.connectStamps.get(outlet);
      if (mine && compareStamps(mine, stamp) > 0) return;
    }
    void this.serialized(clientId, async () => {
      if (this.broker.sessions.get(clientId) !== session) return;
      handOver(this.broker, { clientId, username, cleanStart: true, version: 5 }, new FrameWriter(FrameType.TakeoverReply));
    });
  }

  /** The lease is held again; a fresh one means every session key must be claimed again. */
  private leaseChanged(holding: boolean, fresh: boolean): void {
    if (!holding || !fresh || this.closed) return;
    const reclaim = ++this.reclaims;
    this.reclaimed = false;
    this.replication?.leaseFresh();
    const persistent = [...this.broker.sessions.values()].filter((s) => s.expiryInterval > 0);
    const counts: Record<Standing | 'failed', number> = { self: 0, lost: 0, unsettled: 0, failed: 0 };
    let error: string | undefined;
    const claim = (session: Session): Promise<void> =>
      this.claimAgain(session.clientId, session, counts).catch((e: Error) => {
        counts.failed++;
        error = e.message;
        this.claimAgainLater(session.clientId, session);
      });
    heldBack(faults.reclaimDelayMs, () =>
      void eachAtMost(persistent, RECLAIM_CONCURRENCY, claim).then(() => {
        if (reclaim === this.reclaims) this.reclaimed = true;
        this.applyHeldForwards();
        this.replication?.reclaimed();
        this.log(counts.failed > 0 ? 'warn' : 'info', 'cluster: claimed the sessions again', { sessions: persistent.length, ...counts, ...(error ? { error } : {}) });
      }),
    );
  }

  /**
   * Claims `session` again after a new lease (serialized with the takeovers of its client id). One
   * another node took over meanwhile is stale here and goes. One another node is taking over but has
   * not settled — its takeover request on its way, or the session handed over and not yet durable
   * there, or its new owner killed before it was — is still the session: it stays, and its fate is
   * decided by the hand-over, or by looking again a moment later.
   */
  private claimAgain(clientId: string, session: Session, counts?: Record<Standing, number>): Promise<void> {
    return this.serialized(clientId, async () => {
      if (this.broker.sessions.get(clientId) !== session || this.closed) return;
      const { standing, owner } = await this.ownership.reassert(clientId);
      if (counts) counts[standing]++;
      if (this.broker.sessions.get(clientId) !== session) return;
      if (standing === 'self') {
        this.owned.add(clientId);
        return;
      }
      this.owned.delete(clientId);
      if (standing === 'unsettled') {
        if (this.handingOver(session)) return;
        this.log('debug', 'cluster: another node is taking this session over; keeping it until that is settled', { client: clientId });
        this.claimAgainLater(clientId, session);
        return;
      }
      this.log('warn', 'cluster: another node took this session over while this node was fenced; dropping the stale copy', { client: clientId, owner });
      session.will = null;
      session.willAt = Infinity;
      session.outlet?.disconnect(Reason.SessionTakenOver);
      // What its peers forwarded here for it — they kept this node's routes while it was away — goes to
      // the node that has it, as an old owner's does during a move, until they all know its routes.
      const to = owner === null ? undefined : this.mesh.peers.get(owner);
      const filters = to ? relayedFilters(session) : [];
      for (const filter of filters) this.routes.add(filter);
      this.broker.endSession(session);
      if (to && filters.length > 0) {
        this.endMovesAway(clientId);
        this.moveAway(to, `${to.node}/${to.incarnation}/taken-over/${clientId}`, clientId, filters, true);
      }
    });
  }

  private claimAgainLater(clientId: string, session: Session): void {
    setTimeout(() => void this.claimAgain(clientId, session).catch(() => this.claimAgainLater(clientId, session)), TAKEOVER_TIMEOUT_MS).unref();
  }

  /** This copy of a session was handed over and waits for its new owner to settle the hand-over. */
  private handingOver(session: Session): boolean {
    for (const handed of this.handedOver.values()) if (handed.session === session) return true;
    return false;
  }

  /**
   * Whether a forward could land in a copy of a session another node has by now: before this node
   * has claimed its sessions again under its newest lease, or, with replicated sessions, while
   * etcd's answers no longer prove that lease (a buddy may be taking them over).
   */
  private forwardsInDoubt(): boolean {
    return !this.reclaimed || this.replication?.leaseInDoubt() === true;
  }

  /** A Forward frame that comes while forwardsInDoubt(): applied, in order, once that is over. */
  private holdForwards(peer: Peer<PeerState>, frame: Buffer): void {
    const state = peer.state;
    if (state.heldBytes + frame.length > HELD_LIMIT_BYTES) {
      peer.link?.close('too many forwards held while this node claims its sessions again');
      return;
    }
    state.held.push(Buffer.from(frame));
    state.heldBytes += frame.length;
    this.heldTimer ??= setTimeout(() => this.applyHeldForwards(), HELD_RECHECK_MS);
  }

  private applyHeldForwards(): void {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    if (this.closed) return;
    const peers = [...this.mesh.peers.values()].filter((p) => p.state.held.length > 0);
    if (peers.length === 0) return;
    if (this.forwardsInDoubt()) {
      this.heldTimer = setTimeout(() => this.applyHeldForwards(), HELD_RECHECK_MS);
      return;
    }
    for (const peer of peers) {
      const held = peer.state.held;
      peer.state.held = [];
      peer.state.heldBytes = 0;
      try {
        for (const frame of held) this.forwarded(peer, new FrameReader(frame));
      } catch (error) {
        peer.link?.close(`held forwards not applied: ${(error as Error).message}`);
      }
    }
  }

  // ---- links -------------------------------------------------------------------------

  private meshHandler(): ConstructorParameters<typeof Mesh<PeerState>>[2] {
    return {
      newPeerState: (node) => {
        const outlet = new PeerOutlet(
          node,
          this.options.maxLinkBufferBytes ?? CLUSTER_DEFAULTS.maxLinkBufferBytes,
          (o) => this.scheduleFlush(o),
          (o) => (this.touched[this.touchedCount++] = o),
          this.givenUp.get(node)?.sent,
        );
        // The router hands the peer's outlet what its routes match, as it hands a session's what its subscriptions match.
        const client = this.broker.router.addLink(outlet);
        const state: PeerState = {
          client,
          outlet,
          routes: new RemoteRoutes({
            addRoute: (filter) => this.addPeerRoute(client, node, filter),
            removeRoute: (filter) => this.removePeerRoute(client, filter),
          }),
          lastSeq: 0,
          acksHeld: 0,
          ackChain: Promise.resolve(),
          relaysOwed: [],
          held: [],
          heldBytes: 0,
          messagesIn: 0,
          bytesIn: 0,
        };
        return state;
      },
      linkUp: (peer, restarted) => {
        if (restarted) this.handOversLost(peer.node, peer.incarnation);
        const before = this.givenUp.get(peer.node);
        if (before) {
          this.givenUp.delete(peer.node);
          if (before.incarnation === peer.incarnation) peer.state.lastSeq = before.applied;
        }
        const applied = this.appliedSeq(peer);
        peer.state.lastSeq = restarted ? applied : Math.max(peer.state.lastSeq, applied);
        // A link back to the same process needs nothing: that process still relays for its moves.
        if (restarted) this.relayOwed(peer);
        peer.state.outlet.linkUp(peer.link!);
        this.replication?.linkUp(peer, restarted);
        // Pending changes go to the other peers as a delta; this one gets them in its snapshot (a
        // delta before the snapshot would be out of sequence there: a protocol error, the link lost).
        this.sendRoutesDelta(peer);
        this.sendRouteFrame(peer, this.routes.snapshot());
        for (const frame of this.retainedSync.snapshot()) peer.link!.send(frame);
      },
      linkDown: (peer) => {
        // Not applied, not acknowledged: the peer sends them again on the next link.
        peer.state.held = [];
        peer.state.heldBytes = 0;
        peer.state.outlet.linkDown();
        this.replication?.linkDown(peer);
        peer.state.routes.expectSnapshot();
        for (const [id, pending] of this.pendingTakeovers) {
          if (pending.node !== peer.node) continue;
          this.pendingTakeovers.delete(id);
          clearTimeout(pending.timer);
          pending.reject(new ClusterRefusal(Reason.ServerUnavailable, `the link to ${peer.node} went down during the takeover`));
        }
      },
      frame: (peer, reader) => this.frame(peer, reader),
      peerLeft: (peer) => {
        this.absentSince.set(peer.node, -Infinity);
        this.givenUp.set(peer.node, { sent: peer.state.outlet.lastSeq, applied: peer.state.lastSeq, incarnation: peer.incarnation });
        this.broker.persistence.saveMark(forwardMark(peer.node), null);
        peer.state.outlet.close();
        peer.state.relaysOwed = [];
        peer.state.routes.clear();
        this.broker.router.removeLink(peer.state.client);
        this.log('warn', 'cluster: gave up on a member that did not come back', { peer: peer.node });
      },
    };
  }

  private addPeerRoute(client: number, node: string, filter: string): void {
    const parsed = parseFilter(this.broker.core, filter);
    if (!parsed) throw new LinkProtocolError(`node ${node} announced an invalid filter ${JSON.stringify(filter)}`);
    this.broker.router.addRoute(client, parsed);
  }

  private removePeerRoute(client: number, filter: string): void {
    const parsed = parseFilter(this.broker.core, filter);
    if (parsed) this.broker.router.removeRoute(client, parsed);
  }

  private frame(peer: Peer<PeerState>, reader: FrameReader): void {
    switch (reader.type) {
      case FrameType.Forward:
        if (peer.state.held.length > 0 || this.forwardsInDoubt()) this.holdForwards(peer, reader.buf);
        else this.forwarded(peer, reader);
        break;
      case FrameType.ForwardAck: {
        const upTo = reader.uint();
        peer.state.outlet.acknowledged(upTo);
        if (peer.state.relaysOwed.length > 0) peer.state.relaysOwed = peer.state.relaysOwed.filter((owed) => owed.upTo > upTo);
        break;
      }
      case FrameType.Released:
        for (let n = reader.u32(); n > 0; n--) this.receipts.release(reader.string(), reader.u16());
        break;
      case FrameType.Routes:
        peer.state.routes.apply(reader);
        break;
      case FrameType.Retained:
        this.retainedSync.applySnapshot(reader);
        break;
      case FrameType.Takeover:
        this.takeoverRequested(peer, reader);
        break;
      case FrameType.TakeoverReply:
        this.takeoverReplied(peer, reader);
        break;
      case FrameType.TakeoverSettled:
        this.takeoverSettled(peer, reader);
        break;
      case FrameType.Kick:
        this.kicked(reader);
        break;
      case FrameType.MoveBarrier:
        this.moveBarrier(peer, reader);
        break;
      case FrameType.MovePass:
        this.movePassed(peer, reader);
        break;
      case FrameType.Replicate:
      case FrameType.ReplicateAck:
      case FrameType.ReplicaRequest:
      case FrameType.ReplicaReply:
        this.replication!.frame(peer, reader);
        break;
      default:
        throw new LinkProtocolError(`unknown frame type ${reader.type}`);
    }
  }

  /**
   * Messages a peer forwarded: each is delivered to this node's own subscribers (never forwarded
   * again: one hop), and acknowledged once what it changed here is durable.
   */
  private forwarded(peer: Peer<PeerState>, reader: FrameReader): void {
    const state = peer.state;
    state.bytesIn += reader.buf.length;
    const broker = this.broker;
    const entry = new EntryReader(reader);
    const count = reader.u32();
    let seq = reader.uint();
    // The mark goes with what the batch made durable; a batch that stored nothing needs none.
    const collected = broker.persistence.pending;
    const moving = this.movedAway.size + this.movedIn.size > 0;
    let relays: Promise<void>[] | null = null;
    for (let n = count; n > 0; n--) {
      entry.next();
      seq += entry.seqDelta;
      if (seq <= state.lastSeq) continue;
      const { plain, groups, session } = entry;
      if ((plain || groups.length > 0 || session !== null) && !this.deliveredBefore(entry)) {
        const message = entry.message(broker.core);
        if (!message) {
          // Not acknowledged: the link starts over and the peer sends it again later.
          broker.metrics.arenaFullDropped++;
          throw new Error('no arena room for a forwarded message');
        }
        const router = broker.router;
        const groupIds = groups.length === 0 ? NO_GROUPS : new Set(groups.map((g) => router.shareGroupId(g)));
        // A relay may come after this node's part of the move is over: it names its session itself.
        if (session !== null) router.deliverForwarded(message, false, NO_GROUPS, session);
        else if (!moving) router.deliverForwarded(message, plain, groupIds);
        else {
          router.deliverForwarded(message, plain, groupIds, null, plain ? this.excluded(peer.node, peer.incarnation, seq) : null);
          const relayed = plain && this.movedAway.size > 0 ? this.relayForwarded(peer.node, peer.incarnation, seq, message, originOf(entry)) : null;
          if (relayed) (relays ??= []).push(...relayed);
        }
        message.unref();
      }
      if (entry.stamp) this.retainedSync.applyRemote(entry);
      state.lastSeq = seq;
      state.messagesIn++;
    }
    const upTo = state.lastSeq;
    if (broker.persistence.pending !== collected) broker.persistence.saveMark(forwardMark(peer.node), `${peer.incarnation} ${upTo}`);
    if (moving) this.settleMoves();
    const relayed = relays === null ? null : Promise.all(relays);
    const ack = (): void => peer.link?.send(new FrameWriter(FrameType.ForwardAck, 16).uint(upTo).finish());
    broker.persistence.whenDurable((error) => {
      if (faults.crashBeforeForwardAck && !error) process.kill(process.pid, 'SIGKILL');
      if (error) return;
      if (relayed === null && state.acksHeld === 0) return ack();
      // Acknowledged only once the new owner of a moved session has what was relayed to it; in order.
      state.acksHeld++;
      state.ackChain = state.ackChain
        .then(() => relayed)
        .then(ack, () => undefined)
        .finally(() => state.acksHeld--);
    });
  }

  /**
   * A forwarded QoS 2 message that may be a repeat and that this node delivered already is skipped;
   * any other gets its receipt, written with the deliveries it makes.
   */
  private deliveredBefore(entry: EntryReader): boolean {
    const clientId = entry.originClient;
    if (clientId === null) return false;
    if (this.receipts.admit(clientId, entry.originPacketId, entry.originRepeat, fingerprint(entry.reader.buf, entry.blockStart, entry.blockLength))) return false;
    this.qos2RepeatsSkipped++;
    return true;
  }

  /** The last forward of the peer's current incarnation this node made durable (its mark), 0 if none. */
  private appliedSeq(peer: Peer<PeerState>): number {
    const mark = this.broker.persistence.marks.get(forwardMark(peer.node));
    if (mark === undefined) return 0;
    const space = mark.indexOf(' ');
    return mark.slice(0, space) === peer.incarnation ? Number(mark.slice(space + 1)) : 0;
  }

  private broadcast(frame: Buffer): void {
    for (const peer of this.mesh.peers.values()) peer.link?.send(frame);
  }

  private scheduleRoutes(): void {
    if (this.routesScheduled || !this.mesh) return;
    this.routesScheduled = true;
    afterIo(() => {
      this.routesScheduled = false;
      this.sendRoutesDelta();
    });
  }

  private sendRoutesDelta(except?: Peer<PeerState>): void {
    const delta = this.routes.delta();
    if (delta) for (const peer of this.mesh.peers.values()) if (peer.up && peer !== except) this.sendRouteFrame(peer, delta);
  }

  /** Route announcements and move barriers, in order (held back by the route-delay fault point in tests). */
  private sendRouteFrame(peer: Peer<PeerState>, frame: Buffer): void {
    const link = peer.link!;
    // Held back, it goes on the link it was made for: a snapshot for an old link would be stale on a new one.
    heldBack(faults.routeDelayMs, () => link.send(frame));
  }

  private scheduleFlush(outlet: PeerOutlet): void {
    this.dirtyOutlets.push(outlet);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    afterIo(this.flushOutlets);
  }

  private readonly flushOutlets = (): void => {
    this.flushScheduled = false;
    const dirty = this.dirtyOutlets;
    this.dirtyOutlets = [];
    for (const outlet of dirty) outlet.flush();
  };

  // ---- observability -----------------------------------------------------------------

  /** Holds its lease, has a link to every member and knows their routes: ready for clients behind a load balancer. */
  get healthy(): boolean {
    return this.healthReason() === null;
  }

  /** Why the node is not healthy, for `/health` (the same conditions a CONNECT waits for, see beforeOpen). */
  healthReason(): string | null {
    if (!this.membership || !this.membersListed) return 'cluster starting';
    if (!this.membership.holding) return 'no etcd lease';
    const expected = this.mesh.expected();
    const down = expected.filter((p) => !p.up).map((p) => p.node);
    if (down.length > 0) return `no link to ${down.join(', ')}`;
    const unknown = expected.filter((p) => !p.state.routes.known).map((p) => p.node);
    return unknown.length > 0 ? `no routes from ${unknown.join(', ')} yet` : null;
  }

  status(): ClusterStatus {
    return {
      node: this.options.nodeId,
      url: this.url,
      healthy: this.healthy,
      lease: this.membership?.holding ?? false,
      leaseLosses: this.membership?.leaseLosses ?? 0,
      etcdRttMs: Math.round((this.membership?.rttMs ?? 0) * 100) / 100,
      routes: this.routes.size,
      ownedSessions: this.owned.size,
      takeovers: this.takeovers,
      qos2RepeatsSkipped: this.qos2RepeatsSkipped,
      replication: { factor: this.options.replicationFactor ?? CLUSTER_DEFAULTS.replicationFactor, ...(this.replication?.status() ?? REPLICATION_IDLE) },
      peers: [...(this.mesh?.peers.values() ?? [])]
        .sort((a, b) => (a.node < b.node ? -1 : 1))
        .map((p) => ({
          node: p.node,
          url: p.member?.url ?? null,
          up: p.up,
          routes: p.state.routes.size,
          messagesOut: p.state.outlet.messagesOut,
          framesOut: p.state.outlet.framesOut,
          bytesOut: p.state.outlet.bytesOut,
          messagesIn: p.state.messagesIn,
          bytesIn: p.state.bytesIn,
          buffered: p.state.outlet.backlog,
          unconfirmed: p.state.outlet.unconfirmed,
          dropped: p.state.outlet.dropped,
        })),
    };
  }

  /** Leaves the cluster: links close and the lease is revoked (session keys go with it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.receiptSweep) clearInterval(this.receiptSweep);
    if (this.heldTimer) clearTimeout(this.heldTimer);
    await this.replication?.close();
    this.mesh?.close();
    for (const peer of this.mesh?.peers.values() ?? []) peer.state.outlet.close();
    await this.membership?.close();
    this.etcd?.close();
    await this.listener?.close();
  }
}

const NO_GROUPS: ReadonlySet<number> = new Set();
const REPLICATION_IDLE = { replicatedSessions: 0, replicaSessions: 0, unacknowledged: 0, unacknowledgedBytes: 0, buddiesBehind: 0, failovers: 0, fenced: false };

const originOf = (entry: EntryReader): Qos2Origin | null =>
  entry.originClient === null ? null : { clientId: entry.originClient, packetId: entry.originPacketId, repeat: entry.originRepeat };

const printOf = (message: Message): string => fingerprint(message.core.bytes(), message.ptr(), message.length);

/** Name of the mark holding `${incarnation} ${seq}` of the last forward applied from `node`. */
const forwardMark = (node: string): string => `cluster/forwarded/${node}`;

/** A moving session's filters that are relayed and kept as routes (a shared group's messages go to another member meanwhile). */
const relayedFilters = (session: Session | undefined): string[] => (session ? [...session.subscriptions.keys()].filter((f) => !f.startsWith('$share/')) : []);

/** A relayed QoS 2 message's origin, marked a possible repeat when the new owner may have had it directly. */
const relayedOrigin = (uncertain: boolean, origin: Qos2Origin | null): Qos2Origin | null => (origin && uncertain && !origin.repeat ? { ...origin, repeat: true } : origin);

const settledFrame = (id: number, durable: boolean): Buffer => new FrameWriter(FrameType.TakeoverSettled).uint(id).u8(durable ? 1 : 0).finish();

const passFrame = (token: string, upTo: number): Buffer => new FrameWriter(FrameType.MovePass).string(token).uint(upTo).finish();

function isSys(message: Message): boolean {
  const core = message.core;
  const ptr = message.topicPtr();
  return message.topicLength >= 5 && core.bytes()[ptr] === 0x24 && message.topic().startsWith('$SYS/');
}

function kickFrame(clientId: string, username: string | undefined, stamp: Stamp, discardPersistent: boolean): Buffer {
  const w = new FrameWriter(FrameType.Kick).string(clientId);
  if (username === undefined) w.u8(0);
  else w.u8(1).string(username);
  return w.uint(stamp.wall).u32(stamp.logical).string(stamp.node).u8(discardPersistent ? 1 : 0).finish();
}

async function readSecret(path: string): Promise<Buffer> {
  let secret: Buffer;
  try {
    secret = await readFile(path);
  } catch (error) {
    throw new ConfigError('cluster.secretFile', `cannot read ${path}: ${(error as Error).message}`);
  }
  const trimmed = Buffer.from(secret.toString('utf8').trim());
  if (trimmed.length < 16) throw new ConfigError('cluster.secretFile', `${path} must hold a secret of at least 16 characters`);
  return trimmed;
}

async function readLinkTls(o: ClusterOptions): Promise<LinkTls> {
  const read = async (field: 'certFile' | 'keyFile' | 'caFile'): Promise<Buffer> => {
    try {
      return await readFile(o[field]!);
    } catch (error) {
      throw new ConfigError(`cluster.${field}`, `cannot read ${o[field]}: ${(error as Error).message}`);
    }
  };
  return { cert: await read('certFile'), key: await read('keyFile'), ca: await read('caFile') };
}

/** The address peers dial when none is advertised: the bind address, or for a wildcard the first external IPv4 one. */
function advertisedHost(host: string): string {
  if (host !== '0.0.0.0' && host !== '::') return host.includes(':') ? `[${host}]` : host;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
