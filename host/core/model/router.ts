import type { QoS, Subscription } from '../codec/packets.js';
import { SubOption } from '../wasm/abi.js';
import { deliver } from './delivery.js';
import type { Engine } from './engine.js';
import type { Message } from './message.js';
import type { Qos2Origin, RemoteConfirmation } from './cluster-hooks.js';
import type { ReadCheck } from './options.js';
import { Handoff, PublishOutcome } from './outcomes.js';
import type { Outlet } from './outlet.js';
import type { Session } from './session.js';
import type { ParsedFilter } from './topics.js';

/**
 * Routing: the wasm trie's half of every subscription (sessions are numbered for it), the match of
 * each published message, the read checks on what it found, and the hand-over of the message to
 * each matching session (delivery.ts), which sends it through the session's Outlet — or, for a
 * trie client that is a link to another node, straight to that link's Outlet.
 */
export class Router {
  /** Sessions by the numeric id the trie reports; index 0 stays empty (0 = "no publisher"). */
  private readonly byId: (Session | undefined)[] = [undefined];
  private readonly freeIds: number[] = [];
  /** Outlets that are trie clients of their own (a cluster peer's routes), by that number. */
  private readonly links: (Outlet | undefined)[] = [];
  private readonly shareGroups = new Map<string, number>();
  /** Share names by interned id (index 0 unused). */
  private readonly shareGroupNames: string[] = [''];
  /** What the publisher's acknowledgement of the message routed last must wait for on other nodes (a cluster's). */
  remoteConfirmation: RemoteConfirmation | null = null;
  /** The message being routed, while a read-checked match runs (shared-group members are asked about it). */
  private routing: Message | null = null;
  /** The shared read check asked last while routing `routing`, and its answer: consecutive subscribers mostly share one. */
  private lastShared: ReadCheck['shared'] | null = null;
  private lastVerdict: boolean | undefined = undefined;

  constructor(private readonly engine: Engine) {}

  /** The number the trie will know the next session by. */
  nextId(): number {
    return this.freeIds.pop() ?? this.byId.length;
  }

  /** Starts routing to `session` (numbered by nextId()). */
  add(session: Session): void {
    this.byId[session.id] = session;
  }

  /**
   * Starts routing to `outlet` as a trie client of its own, with no session between (a cluster
   * peer's link): its number, for its routes. Offline in the trie, so a share group prefers a
   * member served here.
   */
  addLink(outlet: Outlet): number {
    const id = this.nextId();
    if (id === this.byId.length) this.byId.push(undefined);
    this.links[id] = outlet;
    this.engine.core.setClientOnline(id, false);
    return id;
  }

  /** Stops routing to the link numbered `id` (its routes are gone from the trie already). */
  removeLink(id: number): void {
    this.links[id] = undefined;
    this.engine.core.setClientOnline(id, true);
    this.freeIds.push(id);
  }

  /** Whether trie client `client` is a link. */
  isLink(client: number): boolean {
    return this.links[client] !== undefined;
  }

  /** Adds a route of the link `id`: QoS 2 and retain as published, so each message crosses as it was published. */
  addRoute(id: number, filter: ParsedFilter): void {
    this.engine.core.subscribe(id, filter.bytes, 2 | SubOption.RetainAsPublished, 0, filter.group ? this.shareGroupId(filter.group) : 0);
  }

  removeRoute(id: number, filter: ParsedFilter): void {
    this.engine.core.unsubscribe(id, filter.bytes, filter.group ? this.shareGroupId(filter.group) : 0);
  }

  /** Stops routing to `session`: its subscriptions leave the trie and its number is free again. */
  remove(session: Session): void {
    const core = this.engine.core;
    const cluster = this.engine.cluster;
    if (session.subscriptionCount > 0) {
      for (const [filter, sub] of session.subscriptions) {
        core.unsubscribe(session.id, utf8.encode(sub.topicFilter), sub.group ? this.shareGroupId(sub.group) : 0);
        cluster?.unsubscribed(filter);
      }
      session.subscriptions.clear();
    }
    core.setClientOnline(session.id, true);
    this.byId[session.id] = undefined;
    this.freeIds.push(session.id);
  }

  /** Whether shared groups should prefer `session` (its client is connected). */
  setOnline(session: Session, online: boolean): void {
    this.engine.core.setClientOnline(session.id, online);
  }

  /** Adds `session`'s subscription to `filter`, or replaces its options [MQTT-3.8.4-3]. */
  subscribe(session: Session, filter: ParsedFilter, sub: Subscription, subscriptionId: number): void {
    const options = sub.qos | (sub.noLocal ? SubOption.NoLocal : 0) | (sub.retainAsPublished ? SubOption.RetainAsPublished : 0) | (sub.retainHandling << SubOption.RetainHandlingShift);
    this.engine.core.subscribe(session.id, filter.bytes, options, subscriptionId, filter.group ? this.shareGroupId(filter.group) : 0);
    const existed = session.subscriptions.has(sub.filter);
    session.subscriptions.set(sub.filter, { ...sub, topicFilter: filter.topicFilter, group: filter.group, subscriptionId });
    if (!existed) this.engine.cluster?.subscribed(sub.filter);
  }

  /** Removes `session`'s subscription to `filter`, if it has one. */
  unsubscribe(session: Session, filter: ParsedFilter, original: string): boolean {
    if (!session.subscriptions.delete(original)) return false;
    this.engine.core.unsubscribe(session.id, filter.bytes, filter.group ? this.shareGroupId(filter.group) : 0);
    this.engine.cluster?.unsubscribed(original);
    return true;
  }

  /** Interned id of a `$share/{name}/` group for the trie. */
  shareGroupId(name: string): number {
    let id = this.shareGroups.get(name);
    if (id === undefined) {
      id = this.shareGroups.size + 1;
      this.shareGroups.set(name, id);
      this.shareGroupNames.push(name);
    }
    return id;
  }

  /** The share name of an interned group id. */
  shareGroupName(id: number): string {
    return this.shareGroupNames[id]!;
  }

  /**
   * Routes a message to every matching subscription and applies its RETAIN flag. The caller keeps
   * its own reference. In a cluster, a client's QoS 2 message names its `origin`: a repeat of one
   * this node delivered already goes only to the other nodes (they skip it too if they had it).
   */
  publish(message: Message, publisher: Session | null, origin: Qos2Origin | null = null): PublishOutcome {
    const engine = this.engine;
    const cluster = engine.cluster;
    const local = origin === null || !origin.repeat || cluster === null || !cluster.deliveredHere(message, origin);
    if (message.retain && engine.options.retainAvailable) {
      engine.retained.apply(message);
    }
    // Without a read hook no delivery pays anything for read checks.
    const checking = engine.options.readAccess !== undefined;
    if (checking) {
      this.routing = message;
      this.lastShared = null;
    }
    const result = engine.core.match(message.topicPtr(), message.topicLength, publisher ? publisher.id : 0, checking ? this.memberMayRead : undefined);
    const count = result.count;
    let outcome = count === 0 ? PublishOutcome.NoSubscribers : PublishOutcome.Delivered;
    for (let i = 0; i < count; i++) {
      const session = this.byId[result.client(i)];
      if (!session) {
        // A link's routes: the message crosses as published, once per route (plain or a group's pick).
        this.links[result.client(i)]?.sendPublish(message, message.qos, 0, message.retain, false, result.shared(i) ? [result.group(i)] : null);
        continue;
      }
      if (!local) continue;
      // A shared group's pick was checked during the match already; asking again is cheap.
      if (checking && !this.mayReadRouted(session)) continue;
      const granted = result.qos(i);
      const qos = (message.qos < granted ? message.qos : granted) as QoS;
      // RETAIN is cleared on normal delivery unless the subscription asked for it as published [MQTT-3.3.1-12], [MQTT-3.3.1-13].
      const retain = message.retain && result.retainAsPublished(i);
      const ids = session.version === 5 ? result.subscriptionIds(i) : null;
      if (deliver(engine, session, message, qos, retain, ids !== null && ids.length > 0 ? ids : null) === Handoff.QueueFull) {
        outcome = PublishOutcome.QuotaExceeded;
      }
    }
    this.routing = null;
    if (cluster) this.remoteConfirmation = cluster.routed(message, publisher, origin);
    return outcome;
  }

  /**
   * Delivers a message another node forwarded to this one, to local sessions only (one hop): to
   * non-shared subscribers if `plain`, and to one local member of each share group in `groups`
   * (interned ids) — the groups the publishing node picked this node for. Retained state is not touched.
   * While a session moves between nodes the cluster narrows it: `only` delivers to that client id's
   * non-shared subscriptions alone (a relay from its old node), `except` leaves those client ids out
   * (their old node delivers or relays the message).
   */
  deliverForwarded(message: Message, plain: boolean, groups: ReadonlySet<number>, only: string | null = null, except: ReadonlySet<string> | null = null): PublishOutcome {
    const engine = this.engine;
    const checking = engine.options.readAccess !== undefined;
    this.routing = message;
    this.lastShared = null;
    const result = engine.core.match(message.topicPtr(), message.topicLength, 0, this.localMemberMayRead);
    let outcome = PublishOutcome.NoSubscribers;
    for (let i = 0; i < result.count; i++) {
      const session = this.byId[result.client(i)];
      if (!session || (result.shared(i) ? only !== null || !groups.has(result.group(i)) : !plain && only === null)) continue;
      if ((only !== null && session.clientId !== only) || (except !== null && except.has(session.clientId))) continue;
      if (checking && !this.mayReadRouted(session)) continue;
      const granted = result.qos(i);
      const qos = (message.qos < granted ? message.qos : granted) as QoS;
      const retain = message.retain && result.retainAsPublished(i);
      const ids = session.version === 5 ? result.subscriptionIds(i) : null;
      const handoff = deliver(engine, session, message, qos, retain, ids !== null && ids.length > 0 ? ids : null);
      if (handoff === Handoff.QueueFull) outcome = PublishOutcome.QuotaExceeded;
      else if (outcome === PublishOutcome.NoSubscribers) outcome = PublishOutcome.Delivered;
    }
    this.routing = null;
    return outcome;
  }

  private readonly memberMayRead = (client: number): boolean => {
    const session = this.byId[client];
    if (session === undefined) return this.links[client] !== undefined;
    return this.mayReadRouted(session);
  };

  /** For forwarded messages: share group picks among this node's sessions only. */
  private readonly localMemberMayRead = (client: number): boolean => {
    const session = this.byId[client];
    return session !== undefined && (this.engine.options.readAccess === undefined || this.mayReadRouted(session));
  };

  /** May the session read the message being routed? */
  private mayReadRouted(session: Session): boolean {
    const check = session.readCheck;
    if (check === null) return true;
    if (check.shared !== this.lastShared) {
      this.lastShared = check.shared;
      this.lastVerdict = check.shared(this.routing!.topic());
    }
    return this.lastVerdict ?? check.own(this.routing!.topic());
  }

  /** May the session read this message (its owner's current read access)? */
  mayRead(session: Session, message: Message): boolean {
    const check = session.readCheck;
    if (check === null) return true;
    const topic = message.topic();
    return check.shared(topic) ?? check.own(topic);
  }
}

const utf8 = new TextEncoder();
