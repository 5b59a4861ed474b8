import type { Etcd3, EtcdKeys } from './etcd.js';
import type { Membership } from './membership.js';

/** Who owns a persistent session, as etcd says. */
export type Ownership =
  /** This node: it created the key now, or already held it. */
  | { owner: 'self'; revision: string }
  /** Another node; `revision` is the key's mod revision, the fencing token a takeover compares. */
  | { owner: 'other'; node: string; revision: string; lease: string };

/** etcd cannot be reached, or this node is fenced (no lease it is sure of): ownership cannot change now. */
export class OwnershipUnavailable extends Error {}

/** Keys re-claimed at once after a new lease. */
const REASSERT_CONCURRENCY = 32;

/**
 * Ownership of persistent sessions: one etcd key per client id, holding the owner's node id and
 * bound to the owner's lease (so a node that is gone for good releases them all). Every change is a
 * transaction that compares before it writes, so two nodes racing for one client id cannot both win.
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

  /** Claims the session if nobody owns it; otherwise says who does. */
  async claim(clientId: string): Promise<Ownership> {
    const lease = this.lease();
    const key = this.key(clientId);
    const self = this.membership.self.node;
    const result = await this.call(() => this.etcd.if(key, 'Create', '==', 0).then(this.etcd.put(key).value(self).lease(lease)).else(this.etcd.get(key)).commit());
    if (result.succeeded) return { owner: 'self', revision: result.header.revision };
    const kv = result.responses[0]?.response_range?.kvs[0];
    // Deleted between the compare and the read: another claim wins the race next time.
    if (!kv) return this.claim(clientId);
    const revision = kv.mod_revision;
    if (kv.value.toString() !== self) return { owner: 'other', node: kv.value.toString(), revision, lease: kv.lease };
    if (kv.lease === lease) return { owner: 'self', revision };
    // Ours under an older lease (this node got a new one since): move it to the current lease.
    return (await this.takeOver(clientId, revision)) ?? this.claim(clientId);
  }

  /** Takes the session from its owner if the key is still at `revision`; null when it changed meanwhile. */
  async takeOver(clientId: string, revision: string): Promise<Ownership | null> {
    const lease = this.lease();
    const key = this.key(clientId);
    const result = await this.call(() => this.etcd.if(key, 'Mod', '==', revision).then(this.etcd.put(key).value(this.membership.self.node).lease(lease)).commit());
    return result.succeeded ? { owner: 'self', revision: result.header.revision } : null;
  }

  /** Undoes takeOver (the owner refused to hand the session over): the key is `node`'s again, on its lease. */
  async giveBack(clientId: string, revision: string, node: string, lease: string): Promise<void> {
    const key = this.key(clientId);
    await this.call(() => this.etcd.if(key, 'Mod', '==', revision).then(this.etcd.put(key).value(node).lease(lease)).commit());
  }

  /** Gives the session up (it ended), unless another node owns it by now. */
  async release(clientId: string): Promise<void> {
    const key = this.key(clientId);
    await this.call(() => this.etcd.if(key, 'Value', '==', this.membership.self.node).then(this.etcd.delete().key(key)).commit());
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
        const ownership = await this.claim(clientId);
        if (ownership.owner === 'other') lost.push(clientId);
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
