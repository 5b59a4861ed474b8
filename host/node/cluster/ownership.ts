import type { Etcd3, EtcdKeys } from './etcd.js';
import type { Membership } from './membership.js';

/** Who owns a persistent session, as etcd says. */
export type Ownership =
  /** This node: it created the key now (`created`), or already held it. */
  | { owner: 'self'; revision: string; created?: boolean }
  /** Another node; `revision` is the key's mod revision, the fencing token a takeover compares. */
  | { owner: 'other'; node: string; revision: string; lease: string }
  /**
   * Nobody holds the key, but the session's home is another node's store: that node is down or
   * restarting (its lease went with it). `revision` is the home record's, which takeAway compares.
   */
  | { owner: 'away'; node: string; revision: string };

/** Whether claim may take a session whose home is another node (a buddy promoting its replica does). */
export type HomeRule = 'respect' | 'take';

/** etcd cannot be reached, or this node is fenced (no lease it is sure of): ownership cannot change now. */
export class OwnershipUnavailable extends Error {}

/** Keys re-claimed at once after a new lease. */
const REASSERT_CONCURRENCY = 32;

/**
 * Ownership of persistent sessions: one etcd key per client id, holding the owner's node id and
 * bound to the owner's lease (so a node that is gone for good releases them all), and beside it a
 * home record naming the node whose store holds the session, bound to no lease (so a node that is
 * restarting still has its sessions). Both are written in one transaction when a session is created
 * or moves — never per message or subscription. Every change compares before it writes, so two nodes
 * racing for one client id cannot both win.
 */
export class SessionOwnership {
  constructor(
    private readonly etcd: Etcd3,
    private readonly keys: EtcdKeys,
    private readonly membership: Membership,
  ) {}

  private lease(): string {
    const id = this.membership.leaseId;
    if (!this.membership.holding || id === null) throw new OwnershipUnavailable('this node holds no etcd lease right now');
    return id;
  }

  private key(clientId: string): string {
    return this.keys.sessions + clientId;
  }

  private home(clientId: string): string {
    return this.keys.homes + clientId;
  }

  /** The writes that make `node` the session's owner (on `lease`) and its home. */
  private owning(clientId: string, node: string, lease: string) {
    return [this.etcd.put(this.key(clientId)).value(node).lease(lease), this.etcd.put(this.home(clientId)).value(node)];
  }

  /**
   * Claims the session if nobody owns it; otherwise says who does. With `respect`, a session whose
   * home is another node is not claimed ('away'): that node may be restarting with it in its store.
   */
  async claim(clientId: string, homes: HomeRule = 'take'): Promise<Ownership> {
    const lease = this.lease();
    const key = this.key(clientId);
    const home = this.home(clientId);
    const self = this.membership.self.node;
    let compare = this.etcd.if(key, 'Create', '==', 0);
    if (homes === 'respect') compare = compare.and(home, 'Create', '==', 0);
    const result = await this.call(() => compare.then(...this.owning(clientId, self, lease)).else(this.etcd.get(key), this.etcd.get(home)).commit());
    if (result.succeeded) return { owner: 'self', revision: result.header.revision, created: true };
    const kv = result.responses[0]?.response_range?.kvs[0];
    if (!kv) {
      const homeKv = result.responses[1]?.response_range?.kvs[0];
      // Deleted between the compare and the read: another claim wins the race next time.
      if (!homeKv) return this.claim(clientId, homes);
      const node = homeKv.value.toString();
      if (node !== self) return { owner: 'away', node, revision: homeKv.mod_revision };
      // At home here, its key gone with an older lease of this node (a restart): claim it again.
      return (await this.takeAway(clientId, homeKv.mod_revision)) ?? this.claim(clientId, homes);
    }
    const revision = kv.mod_revision;
    if (kv.value.toString() !== self) return { owner: 'other', node: kv.value.toString(), revision, lease: kv.lease };
    if (kv.lease === lease) return { owner: 'self', revision };
    // Ours under an older lease (this node got a new one since): move it to the current lease.
    return (await this.takeOver(clientId, revision)) ?? this.claim(clientId, homes);
  }

  /** Takes the session from its owner if the key is still at `revision`; null when it changed meanwhile. */
  async takeOver(clientId: string, revision: string): Promise<Ownership | null> {
    const lease = this.lease();
    const key = this.key(clientId);
    const result = await this.call(() => this.etcd.if(key, 'Mod', '==', revision).then(...this.owning(clientId, this.membership.self.node, lease)).commit());
    return result.succeeded ? { owner: 'self', revision: result.header.revision } : null;
  }

  /** Takes a session nobody holds from its home if the home record is still at `revision`; null when something changed. */
  async takeAway(clientId: string, revision: string): Promise<Ownership | null> {
    const lease = this.lease();
    const result = await this.call(() =>
      this.etcd
        .if(this.key(clientId), 'Create', '==', 0)
        .and(this.home(clientId), 'Mod', '==', revision)
        .then(...this.owning(clientId, this.membership.self.node, lease))
        .commit(),
    );
    return result.succeeded ? { owner: 'self', revision: result.header.revision } : null;
  }

  /**
   * Undoes takeOver or takeAway (the owner refused to hand the session over, or did not answer): the
   * session is `node`'s again — its key on `lease`, or no key when it had none (it reclaims it).
   */
  async giveBack(clientId: string, revision: string, node: string, lease: string | null): Promise<void> {
    const key = this.key(clientId);
    const back = this.etcd.put(this.home(clientId)).value(node);
    await this.call(() =>
      this.etcd
        .if(key, 'Mod', '==', revision)
        .then(lease === null ? this.etcd.delete().key(key) : this.etcd.put(key).value(node).lease(lease), back)
        .commit(),
    );
  }

  /** Gives the session up (it ended), unless another node owns it by now. */
  async release(clientId: string): Promise<void> {
    const key = this.key(clientId);
    await this.call(() => this.etcd.if(key, 'Value', '==', this.membership.self.node).then(this.etcd.delete().key(key), this.etcd.delete().key(this.home(clientId))).commit());
  }

  /**
   * After a new lease: claims again every session this node holds. Returns the client ids another
   * node owns by now — this node's copies of those are stale and must go.
   */
  async reassert(clientIds: Iterable<string>): Promise<string[]> {
    const lost: string[] = [];
    const queue = [...clientIds];
    const worker = async (): Promise<void> => {
      for (let clientId = queue.pop(); clientId !== undefined; clientId = queue.pop()) {
        const ownership = await this.claim(clientId, 'respect');
        if (ownership.owner !== 'self') lost.push(clientId);
      }
    };
    await Promise.all(Array.from({ length: Math.min(REASSERT_CONCURRENCY, queue.length) }, worker));
    return lost;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw new OwnershipUnavailable(`etcd: ${(error as Error).message}`);
    }
  }
}
