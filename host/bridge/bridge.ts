import { MqttClient } from '../client/client.js';
import type { ClientLink } from '../client/link.js';
import { topicMatches } from '../client/topic-match.js';
import type { ConnectOptions, QoS, ReceivedMessage } from '../client/types.js';
import { WebSocketLink } from '../client/websocket-link.js';
import type { Logger } from '../core/model/options.js';
import { localBridgeId, type BridgeHandle, type BridgeStatus, type BridgeTopic, type ResolvedBridgeConfig } from './bridge-config.js';
import { markInbound, markOutbound } from './loop-marker.js';

/** Session expiry meaning "never" (5.0 §3.1.2.11.2). */
const NEVER_EXPIRES = 0xffffffff;

/** What the bridge needs of the broker it lives next to. */
export interface LocalSide {
  /** This broker instance's identity in the messages its bridges carry (see loop-marker.ts). */
  readonly brokerId: string;
  /** A client connection to the local broker. */
  connect(options: ConnectOptions): Promise<MqttClient>;
  /** Topic filters the stored session of `clientId` holds (to drop those no longer configured). */
  subscriptions(clientId: string): string[];
  /** Messages the session of `clientId` has queued or in flight. */
  pending(clientId: string): number;
}

export interface BridgeOptions {
  log: Logger;
  /** The database belongs to another tab: the bridge must not run (see docs/BROWSER.md). */
  standby?: boolean;
  /** Opens the byte link to the remote broker; default a WebSocket (subprotocol mqtt) with the global WebSocket. */
  openRemote?: (url: string) => Promise<ClientLink>;
  /**
   * Asks whether the remote WebSocket endpoint answers without opening the link (see
   * quiet-probe.ts): retries ask it first, so a server that stays away costs no console error per
   * attempt. undefined from it means "cannot tell": the retry goes ahead.
   */
  probe?: (url: string) => Promise<boolean | undefined>;
}

/** A link that was asked to go down (forced offline, or the bridge closed). */
class Interrupted extends Error {
  constructor() {
    super('the link was taken down');
    this.name = 'Interrupted';
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A waiter may never come; a rejection nobody awaited is not an error here.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

const minQoS = (a: QoS, b: QoS): QoS => (a < b ? a : b);

/**
 * Carries configured topics between the local broker (in a tab, a SharedWorker or a Node server) and
 * a remote broker.
 *
 * The durable outbound queue is the bridge's own persistent session on the local broker
 * (`bridge:{name}`, subscribed to every outbound filter): while the link is down the broker queues
 * matching QoS 1 messages there and writes them to its store (IndexedDB, LevelDB) like any offline
 * session's, so they survive reloads and restarts. The bridge connects that session only while the
 * remote link is up, and acknowledges each message locally only after the remote broker
 * acknowledged it — so a message leaves the queue only once it has arrived (at least once, in
 * order). Inbound messages go the other way under the same rule: the remote PUBACK waits for the
 * local one. Towards the remote broker the bridge keeps a persistent session too (clean: false), so
 * inbound subscriptions resume and the remote broker holds messages for it while the link is down.
 * Every message carried is marked with the brokers it has been on (loop-marker.ts), so brokers that
 * bridge to each other do not pass it round forever.
 */
export class Bridge implements BridgeHandle {
  private current: BridgeStatus;
  private readonly listeners = new Set<(status: BridgeStatus) => void>();
  private forcedOffline: boolean;
  private stopped = false;
  private wake: (() => void) | null = null;
  private interrupt: Deferred<never> | null = null;
  private attempts = 0;
  private lastError: string | undefined;
  private readonly running: Promise<void>;
  private readonly outbound: Required<BridgeTopic>[];
  private readonly inbound: Required<BridgeTopic>[];
  private readonly localId: string;
  /** Messages carried to the remote broker and from it, since start. */
  readonly carried = { out: 0, in: 0 };
  private readonly onNetworkBack = (): void => this.wake?.();

  constructor(
    readonly config: ResolvedBridgeConfig,
    private readonly local: LocalSide,
    private readonly options: BridgeOptions,
  ) {
    this.localId = localBridgeId(config.name);
    this.outbound = config.topics.filter((t) => t.direction !== 'in');
    this.inbound = config.topics.filter((t) => t.direction !== 'out');
    this.forcedOffline = !config.online;
    if (options.standby) {
      this.current = { state: 'standby', attempts: 0 };
      this.running = Promise.resolve();
      return;
    }
    this.current = { state: this.forcedOffline ? 'offline' : 'connecting', attempts: 0 };
    // The browser saying the network is back is a reason to retry now rather than after the backoff.
    (globalThis as { addEventListener?: (type: string, fn: () => void) => void }).addEventListener?.('online', this.onNetworkBack);
    this.running = this.run();
  }

  get clientId(): string {
    return this.config.clientId;
  }

  get name(): string {
    return this.config.name;
  }

  get status(): BridgeStatus {
    return { ...this.current };
  }

  onStatus(listener: (status: BridgeStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async queued(): Promise<number> {
    return this.local.pending(this.localId);
  }

  async setOnline(online: boolean): Promise<void> {
    if (this.stopped || this.current.state === 'standby') return;
    this.forcedOffline = !online;
    if (online) {
      this.attempts = 0;
      this.wake?.();
      return;
    }
    this.interrupt?.reject(new Interrupted());
    this.wake?.();
    // Resolves once the link is down: the caller may rely on nothing crossing any more.
    if (this.current.state !== 'offline') await new Promise<void>((resolve) => {
      const off = this.onStatus((s) => {
        if (s.state === 'offline' || s.state === 'stopped') {
          off();
          resolve();
        }
      });
    });
  }

  async close(): Promise<void> {
    if (this.stopped) return this.running;
    this.stopped = true;
    (globalThis as { removeEventListener?: (type: string, fn: () => void) => void }).removeEventListener?.('online', this.onNetworkBack);
    this.interrupt?.reject(new Interrupted());
    this.wake?.();
    await this.running;
    this.setStatus({ state: 'stopped', attempts: this.attempts });
  }

  private setStatus(status: BridgeStatus): void {
    this.current = status;
    for (const listener of this.listeners) {
      try {
        listener({ ...status });
      } catch (error) {
        this.options.log('error', 'bridge status listener failed', { error: (error as Error)?.message });
      }
    }
  }

  /** Waits for `ms` (forever when undefined) or until something calls wake(). */
  private sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      const self = this;
      function done(): void {
        if (timer !== undefined) clearTimeout(timer);
        if (self.wake === done) self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    try {
      await this.registerLocalSession();
    } catch (error) {
      this.options.log('error', 'bridge: cannot set up its local session', { bridge: this.name, error: (error as Error)?.message });
    }
    while (!this.stopped) {
      if (this.forcedOffline) {
        this.setStatus({ state: 'offline', attempts: this.attempts });
        await this.sleep();
        continue;
      }
      this.setStatus({ state: 'connecting', attempts: this.attempts, error: this.lastError });
      try {
        await this.connectOnce();
      } catch (error) {
        if (!(error instanceof Interrupted)) {
          this.lastError = (error as Error)?.message ?? String(error);
          this.options.log('info', 'bridge link down', { bridge: this.name, error: this.lastError });
        }
      }
      if (this.stopped || this.forcedOffline) continue;
      this.attempts++;
      const { initialMs, maxMs } = this.config.backoff;
      const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempts - 1, 30));
      // Jitter in the upper half: tabs that lost the same server do not come back in step.
      const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      this.setStatus({ state: 'waiting', attempts: this.attempts, error: this.lastError, retryAt: Date.now() + delay });
      await this.sleep(delay);
    }
  }

  /**
   * Makes sure the local session exists and subscribes the outbound filters before any message is
   * published — even if the link never comes up — so that messages published offline are queued.
   */
  private async registerLocalSession(): Promise<void> {
    const local = await this.connectLocal(() => new Promise<void>(() => undefined), 1);
    try {
      await this.syncLocalSubscriptions(local);
    } finally {
      // Whatever was delivered meanwhile stays unacknowledged, so it is delivered again later.
      await local.end();
    }
  }

  private connectLocal(onMessage: (m: ReceivedMessage) => Promise<void>, receiveMaximum?: number): Promise<MqttClient> {
    return this.local.connect({
      clientId: this.localId,
      clean: false,
      protocolVersion: 5,
      sessionExpiryInterval: NEVER_EXPIRES,
      keepAlive: 0,
      receiveMaximum,
      onMessage,
    });
  }

  private async syncLocalSubscriptions(local: MqttClient): Promise<void> {
    const wanted = this.outbound.map((t) => t.localPrefix + t.filter);
    const stale = this.local.subscriptions(this.localId).filter((f) => !wanted.includes(f));
    if (stale.length > 0) await local.unsubscribe(stale);
    for (const t of this.outbound) {
      // No Local: what the bridge itself publishes here (inbound) is not sent back out.
      // Retain handling 1: retained messages cross once, when the subscription is new.
      const [result] = await local.subscribe(t.localPrefix + t.filter, { qos: t.qos, noLocal: true, retainAsPublished: true, retainHandling: 1 });
      if (result!.reasonCode >= 0x80) throw new Error(`the local broker refused ${result!.filter} (0x${result!.reasonCode.toString(16)})`);
    }
  }

  /** One connection: remote first, then the local session; returns when either side goes. */
  private async connectOnce(): Promise<void> {
    const interrupt = (this.interrupt = deferred<never>());
    const localReady = deferred<MqttClient>();
    let remote: MqttClient | null = null;
    let local: MqttClient | null = null;
    const step = <T>(p: Promise<T>): Promise<T> => Promise.race([p, interrupt.promise]);
    try {
      // The first attempt connects outright (a failure there is worth its console line); retries ask quietly first.
      if (this.attempts > 0 && this.options.probe && (await step(this.options.probe(this.config.url))) === false) {
        throw new Error(`WebSocket to ${this.config.url} failed`);
      }
      const openRemote = this.options.openRemote ?? ((url: string) => WebSocketLink.open(url, { timeoutMs: 10_000 }));
      const linkPromise = openRemote(this.config.url);
      // A link that opens after we gave up on it is closed, not leaked.
      void linkPromise.then((l) => interrupt.promise.catch(() => (remote ? undefined : l.close())), () => undefined);
      const link = await step(linkPromise);
      const c = this.config;
      const remotePromise = MqttClient.connect(link, {
        clientId: c.clientId,
        clean: false,
        protocolVersion: c.protocolVersion,
        sessionExpiryInterval: c.sessionExpiryInterval,
        keepAlive: c.keepAlive,
        username: c.username,
        password: c.password,
        onMessage: (m) => this.carryIn(m, localReady.promise),
      });
      void remotePromise.then((r) => interrupt.promise.catch(() => void r.end()), () => undefined);
      remote = await step(remotePromise);
      for (const t of this.inbound) {
        const [result] = await step(
          remote.subscribe(t.remotePrefix + t.filter, { qos: t.qos, noLocal: c.protocolVersion === 5, retainAsPublished: true, retainHandling: 1 }),
        );
        if (result!.reasonCode >= 0x80) throw new Error(`the remote broker refused ${result!.filter} (0x${result!.reasonCode.toString(16)})`);
      }
      const r = remote;
      local = await step(this.connectLocal((m) => this.carryOut(m, r)));
      localReady.resolve(local);
      await step(this.syncLocalSubscriptions(local));
      this.attempts = 0;
      this.lastError = undefined;
      this.setStatus({ state: 'online', attempts: 0 });
      this.options.log('info', 'bridge online', { bridge: this.name, url: c.url });
      const ended = await step(Promise.race([remote.closed.then((i) => ['remote', i] as const), local.closed.then((i) => ['local', i] as const)]));
      throw new Error(`the ${ended[0]} connection closed${ended[1].error ? `: ${ended[1].error.message}` : ''}`);
    } finally {
      this.interrupt = null;
      localReady.reject(new Interrupted());
      // Local first: what it delivered but the remote did not acknowledge stays queued for next time.
      await Promise.all([local?.end(), remote?.end()]);
    }
  }

  /** A local message for the remote broker; the local PUBACK waits for the remote one. */
  private async carryOut(m: ReceivedMessage, remote: MqttClient): Promise<void> {
    const t = this.outbound.find((x) => topicMatches(x.localPrefix + x.filter, m.topic));
    if (!t || !m.topic.startsWith(t.localPrefix)) return;
    const topic = t.remotePrefix + m.topic.slice(t.localPrefix.length);
    const properties = markOutbound(m.properties, this.local.brokerId);
    if (topic.length === 0 || !properties) return;
    await remote.publish(topic, m.payload, { qos: minQoS(m.qos, t.qos), retain: m.retain, properties });
    this.carried.out++;
  }

  /** A remote message for the local broker; the remote PUBACK waits for the local one (durable). */
  private async carryIn(m: ReceivedMessage, localReady: Promise<MqttClient>): Promise<void> {
    const t = this.inbound.find((x) => topicMatches(x.remotePrefix + x.filter, m.topic));
    if (!t || !m.topic.startsWith(t.remotePrefix)) return;
    const topic = t.localPrefix + m.topic.slice(t.remotePrefix.length);
    const properties = markInbound(m.properties, this.local.brokerId);
    if (topic.length === 0 || !properties) return;
    const local = await localReady;
    await local.publish(topic, m.payload, { qos: minQoS(m.qos, t.qos), retain: m.retain, properties });
    this.carried.in++;
  }
}
