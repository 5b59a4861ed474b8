import type { Logger } from '../../core/model/options.js';
import type { Etcd3, EtcdKeys } from './etcd.js';
import { faultPoints, heldBack } from './fault-points.js';

type Lease = ReturnType<Etcd3['lease']>;
type Watcher = Awaited<ReturnType<ReturnType<Etcd3['watch']>['create']>>;

/** What a node publishes about itself in its member key. */
export interface MemberInfo {
  node: string;
  /** The URL peers dial for a link. */
  url: string;
  /** Link protocol version the node speaks. */
  protocol: number;
  /** Random per process start. */
  incarnation: string;
  /** Base URL of its HTTP endpoint (for `arbormq cluster status`), if it has one. */
  http?: string;
}

export interface MembershipEvents {
  /** A member appeared, or came back as a new process (another incarnation or URL). */
  joined(member: MemberInfo): void;
  /** A member's key is gone: it shut down, or its lease expired. */
  left(node: string): void;
  /** The members were read in full (at start, and after the watch was lost): whoever is not one by now is gone. */
  listed(): void;
  /**
   * The node holds its lease (true) or cannot be sure it still does (false: fenced). `fresh` is a
   * new lease: keys bound to the previous one may be gone and must be claimed again.
   */
  lease(holding: boolean, fresh: boolean): void;
}

const faults = faultPoints();
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 2000;

/**
 * Membership through etcd: the node keeps a lease with a few seconds' TTL and a member key bound
 * to it, and watches the other members' keys. Nothing else about a member is written, ever.
 *
 * Fencing: once no keepalive has succeeded for a TTL, the lease may have expired in etcd — keys
 * bound to it, the node's session ownerships among them, may be someone else's by now — so the node
 * reports itself fenced until a keepalive succeeds again (the lease survived) or a new lease is
 * granted (`fresh`: what was bound to the old one is claimed again).
 */
export class Membership {
  readonly members = new Map<string, MemberInfo>();
  /** The current lease's id while holding it. */
  leaseId: string | null = null;
  holding = false;
  leaseLosses = 0;
  /** Round trip of the last keepalive, in ms. */
  rttMs = 0;
  private lease: Lease | null = null;
  private lastConfirmed = 0;
  private firedAt = 0;
  /** When the request behind the last confirmed grant or keepalive left: etcd keeps the lease at least a TTL from then. */
  private provenAt = 0;
  private watcher: Watcher | null = null;
  private closed = false;
  private readonly watchdog: ReturnType<typeof setInterval>;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly etcd: Etcd3,
    private readonly keys: EtcdKeys,
    readonly self: MemberInfo,
    private readonly ttlSeconds: number,
    private readonly events: MembershipEvents,
    private readonly log: Logger,
  ) {
    this.watchdog = setInterval(() => this.checkLease(), 250);
    this.watchdog.unref();
  }

  start(): void {
    void this.acquire(RETRY_MIN_MS);
    void this.watchMembers(RETRY_MIN_MS);
  }

  /** Leaves the cluster: the lease is revoked, so the member key and the session keys go at once. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.watcher?.cancel().catch(() => undefined);
    const lease = this.lease;
    this.lease = null;
    if (lease && this.holding) await lease.revoke().catch(() => undefined);
    else lease?.release();
  }

  private retry(fn: (delay: number) => void, delay: number): void {
    if (this.closed) return;
    this.retryTimer = setTimeout(() => fn(Math.min(delay * 2, RETRY_MAX_MS)), delay);
    this.retryTimer.unref();
  }

  /** Gets a new lease and puts the member key on it. */
  private async acquire(delay: number): Promise<void> {
    if (this.closed) return;
    const lease = this.etcd.lease(this.ttlSeconds, { autoKeepAlive: true });
    let id: string;
    const asked = performance.now();
    try {
      id = await lease.grant();
      await this.etcd.put(this.keys.members + this.self.node).value(JSON.stringify(this.self)).lease(id);
    } catch (error) {
      lease.release();
      this.log('warn', 'cluster: cannot get an etcd lease; retrying', { error: (error as Error).message, retryMs: delay });
      this.retry((next) => void this.acquire(next), delay);
      return;
    }
    if (this.closed) {
      await lease.revoke().catch(() => undefined);
      return;
    }
    this.lease = lease;
    this.leaseId = id;
    this.lastConfirmed = performance.now();
    lease.on('keepaliveFired', () => (this.firedAt = performance.now()));
    this.provenAt = asked;
    lease.on('keepaliveSucceeded', () => {
      const fired = this.firedAt;
      const proven = (): void => {
        if (this.closed || this.lease !== lease) return;
        const now = performance.now();
        this.provenAt = fired;
        this.rttMs = now - fired;
        this.lastConfirmed = now;
        if (!this.holding && this.lease === lease) this.setHolding(true, false);
      };
      heldBack(faults.keepaliveLateMs, proven);
    });
    lease.on('lost', (error: Error) => {
      if (this.lease !== lease || this.closed) return;
      this.lease = null;
      this.leaseId = null;
      this.leaseLosses++;
      this.log('warn', 'cluster: etcd lease lost; fenced until a new one is granted', { error: error.message });
      if (this.holding) this.setHolding(false, false);
      lease.release();
      void this.acquire(RETRY_MIN_MS);
    });
    this.log('info', 'cluster: etcd lease granted', { lease: id, ttlSeconds: this.ttlSeconds });
    this.setHolding(true, true);
  }

  /**
   * Until when (performance.now()) this node can be sure etcd still has its lease — and so that no
   * other node has taken over what is bound to it — as far as etcd's answers prove; 0 without one.
   */
  get leaseProvenUntil(): number {
    return this.holding && this.leaseId !== null ? this.provenAt + this.ttlSeconds * 1000 : 0;
  }

  private checkLease(): void {
    if (this.holding && performance.now() - this.lastConfirmed > this.ttlSeconds * 1000) {
      this.log('warn', 'cluster: no etcd keepalive for a lease TTL; fenced until etcd answers', { ttlSeconds: this.ttlSeconds });
      this.setHolding(false, false);
    }
  }

  private setHolding(holding: boolean, fresh: boolean): void {
    this.holding = holding;
    this.events.lease(holding, fresh);
  }

  /** Reads the members, then follows their changes from that revision on (etcd3 resumes the watch after outages). */
  private async watchMembers(delay: number): Promise<void> {
    if (this.closed) return;
    try {
      const current = await this.etcd.getAll().prefix(this.keys.members).exec();
      const seen = new Set<string>();
      for (const kv of current.kvs) {
        const member = this.parse(kv.key, kv.value);
        if (member) {
          seen.add(member.node);
          this.upsert(member);
        }
      }
      for (const node of [...this.members.keys()]) if (!seen.has(node)) this.remove(node);
      this.events.listed();
      const watcher = await this.etcd
        .watch()
        .prefix(this.keys.members)
        .startRevision(String(Number(current.header.revision) + 1))
        .create();
      if (this.closed) {
        await watcher.cancel();
        return;
      }
      this.watcher = watcher;
      watcher.on('put', (kv) => {
        const member = this.parse(kv.key, kv.value);
        if (member) this.upsert(member);
      });
      watcher.on('delete', (kv) => this.remove(kv.key.toString().slice(this.keys.members.length)));
      watcher.on('error', (error) => this.log('warn', 'cluster: member watch error', { error: error.message }));
    } catch (error) {
      this.log('warn', 'cluster: cannot read the members from etcd; retrying', { error: (error as Error).message, retryMs: delay });
      this.retry((next) => void this.watchMembers(next), delay);
    }
  }

  private parse(key: Buffer, value: Buffer): MemberInfo | null {
    const node = key.toString().slice(this.keys.members.length);
    if (node === this.self.node) return null;
    try {
      const info = JSON.parse(value.toString()) as MemberInfo;
      if (typeof info.url !== 'string' || typeof info.protocol !== 'number' || typeof info.incarnation !== 'string') throw new Error('missing fields');
      return { ...info, node };
    } catch (error) {
      this.log('warn', 'cluster: ignoring a malformed member key', { node, error: (error as Error).message });
      return null;
    }
  }

  private upsert(member: MemberInfo): void {
    const known = this.members.get(member.node);
    if (known && known.incarnation === member.incarnation && known.url === member.url) return;
    this.members.set(member.node, member);
    this.events.joined(member);
  }

  private remove(node: string): void {
    if (node === this.self.node || !this.members.delete(node)) return;
    this.events.left(node);
  }
}
