import type { Etcd3, EtcdKeys } from './etcd.js';
import type { Membership } from './membership.js';

/** Who owns a persistent session, as etcd says. */
export type Ownership =
  /** This node: it created the key now (`created`), or already held it. */
  | { owner: 'self'; revision: string; created?: boolean }
  /**
   * Another node; `revision` is the key's mod revision, the fencing token a takeover compares.
   * `home` names the node whose store holds the session when that is not the owner yet (a hand-over
   * to the owner not yet settled), null otherwise.
   */
  | { owner: 'other'; node: string; revision: string; lease: string; home: string | null }
  /**
   * Nobody holds the key, but the session's home is another node's store: that node is down or
   * restarting (its lease went with it). `revision` is the home record's, which takeAway compares.
   */
  | { owner: 'away'; node: string; revision: string };

/**
 * Where a session this node holds stands after a new lease: this node's again, another node's
 * (`lost`: this copy is stale), or being taken over by another node (`unsettled`).
 */
export type Standing = 'self' | 'lost' | 'unsettled';

/** Whether claim may take a session whose home is another node (a buddy promoting its replica does). */
export type HomeRule = 'respect' | 'take';

/** etcd cannot be reached, or this node is fenced (no lease it is sure of): ownership cannot change now. */
export class OwnershipUnavailable extends Error {}

/**
 * Ownership of persistent sessions: one etcd key per client id, holding the owner's node id and
 * bound to the owner's lease (so a node that is gone for good releases them all), and beside it a
 * home record naming the node whose store holds the session, bound to no lease (so a node that is
 * restarting still has its sessions). Both are written when a session is created (one transaction)
 * or moves (the key when the new owner takes it, the home once the session is durable there) —
 * never per message or subscription. Every change compares before it writes, so two nodes racing
 * for one client id cannot both win.
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

  /** The writes that make this node the session's owner (on `lease`) and its home. */
  private owning(clientId: string, lease: string) {
    const self = this.membership.self.node;
    return [this.etcd.put(this.key(clientId)).value(self).lease(lease), this.etcd.put(this.home(clientId)).value(self)];
  }

  /**
   * Claims the session if nobody owns it; otherwise says who does. With `respect`, a session whose
   * home is another node is not claimed ('away'): that node may be restarting with it in its store.
   * `holds`: this node has the session (a key of its own under an older lease is then its own again;
   * without the session, such a key left over from a hand-over it did not keep is given up).
   */
  async claim(clientId: string, homes: HomeRule = 'take', holds = true): Promise<Ownership> {
    const lease = this.lease();
    const key = this.key(clientId);
    const home = this.home(clientId);
    const self = this.membership.self.node;
    let compare = this.etcd.if(key, 'Create', '==', 0);
    if (homes === 'respect') compare = compare.and(home, 'Create', '==', 0);
    const result = await this.call(() => compare.then(...this.owning(clientId, lease)).else(this.etcd.get(key), this.etcd.get(home)).commit());
    if (result.succeeded) return { owner: 'self', revision: result.header.revision, created: true };
    const kv = result.responses[0]?.response_range?.kvs[0];
    const homeKv = result.responses[1]?.response_range?.kvs[0];
    const homeNode = homeKv?.value.toString() ?? null;
    if (!kv) {
      // Deleted between the compare and the read: another claim wins the race next time.
      if (!homeKv || homeNode === null) return this.claim(clientId, homes, holds);
      if (homeNode !== self) return { owner: 'away', node: homeNode, revision: homeKv.mod_revision };
      // At home here, its key gone with an older lease of this node (a restart): claim it again.
      return (await this.takeAway(clientId, homeKv.mod_revision, true)) ?? this.claim(clientId, homes, holds);
    }
    const revision = kv.mod_revision;
    const owner = kv.value.toString();
    if (owner !== self) return { owner: 'other', node: owner, revision, lease: kv.lease, home: homeNode !== null && homeNode !== owner ? homeNode : null };
    if (!holds && homeNode !== null && homeNode !== self) {
      // A key left from a takeover this node did not keep (it restarted, or could not give the key
      // back): the session is still at its home.
      await this.call(() => this.etcd.if(key, 'Mod', '==', revision).then(this.etcd.delete().key(key)).commit());
      return this.claim(clientId, homes, holds);
    }
    if (kv.lease === lease) return { owner: 'self', revision };
    // Ours under an older lease (this node got a new one since): move it to the current lease, and home here.
    return (await this.takeOver(clientId, revision, true)) ?? this.claim(clientId, homes, holds);
  }

  /**
   * Takes the session from its owner if the key is still at `revision`; null when it changed meanwhile.
   * The home record moves here too with `home`, otherwise once the session is durable here (settle).
   */
  async takeOver(clientId: string, revision: string, home = false): Promise<Ownership | null> {
    const lease = this.lease();
    const key = this.key(clientId);
    const writes = home ? this.owning(clientId, lease) : [this.etcd.put(key).value(this.membership.self.node).lease(lease)];
    const result = await this.call(() => this.etcd.if(key, 'Mod', '==', revision).then(...writes).commit());
    return result.succeeded ? { owner: 'self', revision: result.header.revision } : null;
  }

  /** Takes a session nobody holds from its home if the home record is still at `revision`; null when something changed. */
  async takeAway(clientId: string, revision: string, home = false): Promise<Ownership | null> {
    const lease = this.lease();
    const key = this.key(clientId);
    const writes = home ? this.owning(clientId, lease) : [this.etcd.put(key).value(this.membership.self.node).lease(lease)];
    const result = await this.call(() => this.etcd.if(key, 'Create', '==', 0).and(this.home(clientId), 'Mod', '==', revision).then(...writes).commit());
    return result.succeeded ? { owner: 'self', revision: result.header.revision } : null;
  }

  /** The session taken over at `revision` is durable here: its home record names this node. False when the key changed meanwhile. */
  async settle(clientId: string, revision: string): Promise<boolean> {
    const result = await this.call(() => this.etcd.if(this.key(clientId), 'Mod', '==', revision).then(this.etcd.put(this.home(clientId)).value(this.membership.self.node)).commit());
    return result.succeeded;
  }

  /**
   * Takes back a session this node handed over but the new owner never settled: it is this node's
   * again if the home record still names this node. False when the new owner settled it after all.
   */
  async reclaim(clientId: string): Promise<boolean> {
    const lease = this.lease();
    const result = await this.call(() => this.etcd.if(this.home(clientId), 'Value', '==', this.membership.self.node).then(...this.owning(clientId, lease)).commit());
    return result.succeeded;
  }

  /**
   * Undoes takeOver or takeAway (the owner refused, or did not answer): the key is `node`'s again on
   * `lease`, or gone (null, or that lease expired meanwhile: the node restarted, and the home record
   * still names whichever node has the session).
   */
  async giveBack(clientId: string, revision: string, node: string, lease: string | null): Promise<void> {
    const key = this.key(clientId);
    const back = (lease: string | null) =>
      this.call(() =>
        this.etcd
          .if(key, 'Mod', '==', revision)
          .then(lease === null ? this.etcd.delete().key(key) : this.etcd.put(key).value(node).lease(lease))
          .commit(),
      );
    await (lease === null ? back(null) : back(lease).catch(() => back(null)));
  }

  /** Gives the session up (it ended), unless another node owns it by now. */
  async release(clientId: string): Promise<void> {
    const key = this.key(clientId);
    await this.call(() => this.etcd.if(key, 'Value', '==', this.membership.self.node).then(this.etcd.delete().key(key), this.etcd.delete().key(this.home(clientId))).commit());
  }

  /**
   * After a new lease: claims again a session this node holds. `unsettled` when another node holds
   * its key while the home record still names this node — that node's takeover is on its way or not
   * settled yet, and this node's copy is the session until it is. `owner` names the node that has
   * it when that is another.
   */
  async reassert(clientId: string): Promise<{ standing: Standing; owner: string | null }> {
    const ownership = await this.claim(clientId, 'respect');
    if (ownership.owner === 'self') return { standing: 'self', owner: null };
    const owner = ownership.owner === 'other' || ownership.owner === 'away' ? ownership.node : null;
    return { standing: ownership.owner === 'other' && ownership.home === this.membership.self.node ? 'unsettled' : 'lost', owner };
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw new OwnershipUnavailable(`etcd: ${(error as Error).message}`);
    }
  }
}
