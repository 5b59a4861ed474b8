// One playground client: its settings, its connection to the in-tab broker (the native client, with
// every packet observed), what it received, its subscriptions, and the exchanges of its packets.
import type { BrokerSnapshot, BrowserBroker, MqttClient, PacketEvent, PublishOptions, QoS, ReceivedMessage, SubscribeOptions } from '../../host/browser/index.js';
import { FlowLog, type Flow } from './flows.js';
import { payloadText, reasonText } from './format.js';

export interface WillSpec {
  topic: string;
  payload: string;
  qos: QoS;
  retain: boolean;
  /** 5.0: seconds the broker waits before publishing it. */
  delaySeconds: number;
}

/** How a client connects; plain data, so a persistent client can be remembered across reloads. */
export interface ClientSpec {
  clientId: string;
  protocolVersion: 4 | 5;
  /** Clean Session (3.1.1) / Clean Start (5.0). */
  clean: boolean;
  /** 5.0 persistent sessions: seconds the session outlives the connection. */
  sessionExpiryInterval: number;
  will: WillSpec | null;
}

export type ClientState = 'connecting' | 'online' | 'offline';

export interface LoggedMessage {
  /** Date.now() on arrival. */
  at: number;
  message: ReceivedMessage;
}

export interface SubscriptionEntry {
  filter: string;
  options: SubscribeOptions;
  /** The QoS the broker granted. */
  granted: number;
}

export type ClientEvent =
  | { kind: 'state' }
  | { kind: 'message'; entry: LoggedMessage }
  | { kind: 'flow'; flow: Flow; started: boolean }
  | { kind: 'subscriptions' }
  | { kind: 'responder' }
  | { kind: 'note'; text: string; error: boolean };

/** Messages kept per client for the log. */
const MESSAGE_LIMIT = 200;

export class PlaygroundClient {
  state: ClientState = 'offline';
  /** Why the last connection ended, in words; null while it never ended. */
  closeReason: string | null = null;
  /** Answers every message that carries a response topic (request / response): see setResponder. */
  responder = false;
  readonly messages: LoggedMessage[] = [];
  readonly flows = new FlowLog();
  /** The broker's copy of this client's session subscriptions (see refreshSubscriptions). */
  subscriptions: SubscriptionEntry[] = [];
  private client: MqttClient | null = null;
  private readonly listeners = new Set<(event: ClientEvent) => void>();

  constructor(
    private readonly broker: BrowserBroker,
    readonly spec: ClientSpec,
  ) {}

  get id(): string {
    return this.spec.clientId;
  }

  get v5(): boolean {
    return this.spec.protocolVersion === 5;
  }

  on(listener: (event: ClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Connects (or reconnects: a persistent session resumes, with what was queued for it). */
  async connect(): Promise<boolean> {
    if (this.state !== 'offline') return this.state === 'online';
    this.setState('connecting');
    const { spec } = this;
    const will = spec.will;
    try {
      const client = await this.broker.connect({
        clientId: spec.clientId,
        protocolVersion: spec.protocolVersion,
        clean: spec.clean,
        sessionExpiryInterval: this.v5 && !spec.clean ? spec.sessionExpiryInterval : undefined,
        will: will
          ? { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: this.v5 && will.delaySeconds > 0 ? { willDelayInterval: will.delaySeconds } : undefined }
          : undefined,
        // Registered with the CONNECT: a resumed session's queue arrives right behind the CONNACK.
        onMessage: (m) => this.onMessage(m),
        onPacket: (e) => this.onPacket(e),
      });
      this.client = client;
      void client.closed.then((info) => {
        if (this.client !== client) return;
        this.client = null;
        this.closeReason = info.clean ? 'disconnected' : info.reasonCode !== undefined ? `closed by the broker (${reasonText(info.reasonCode)})` : 'connection dropped';
        this.setState('offline');
      });
      this.closeReason = null;
      this.setState('online');
      await this.refreshSubscriptions();
      if (client.sessionPresent) this.note('session resumed: the broker kept its subscriptions and queued messages', false);
      return true;
    } catch (error) {
      this.setState('offline');
      this.note(`could not connect: ${(error as Error).message}`, true);
      return false;
    }
  }

  /**
   * Reads this client's subscriptions from the broker's session — what the broker will deliver by,
   * rather than what the page remembers asking for: a resumed session shows what it kept, a clean
   * one shows nothing.
   */
  async refreshSubscriptions(): Promise<void> {
    let snapshot: BrokerSnapshot;
    try {
      snapshot = await this.broker.inspect({ handles: 0, previewBytes: 0 });
    } catch {
      // The broker is closing (reset or unload): the list stays as it was.
      return;
    }
    const session = snapshot.sessions.find((s) => s.clientId === this.id);
    this.subscriptions = (session?.subscriptions ?? []).map((s) => ({
      filter: s.filter,
      granted: s.qos,
      options: {
        qos: s.qos,
        noLocal: s.noLocal,
        retainAsPublished: s.retainAsPublished,
        retainHandling: s.retainHandling,
        ...(s.subscriptionId > 0 ? { subscriptionIdentifier: s.subscriptionId } : {}),
      },
    }));
    this.emit({ kind: 'subscriptions' });
  }

  /** Turns the automatic answer to requests (messages with a response topic) on or off. */
  setResponder(on: boolean): void {
    if (this.responder === on) return;
    this.responder = on;
    this.emit({ kind: 'responder' });
  }

  /** DISCONNECT: a clean goodbye, so the broker discards the will. */
  async disconnect(): Promise<void> {
    await this.client?.end();
  }

  /** Drops the connection without DISCONNECT, as a lost network would: the will goes out. */
  drop(): void {
    this.client?.destroy();
  }

  async subscribe(filter: string, options: SubscribeOptions): Promise<boolean> {
    const client = this.requireOnline();
    if (!client) return false;
    try {
      const [result] = await client.subscribe(filter, options);
      const code = result?.reasonCode ?? 0x80;
      if (code >= 0x80) {
        this.note(`subscription to ${filter} refused: ${reasonText(code)}`, true);
        return false;
      }
      await this.refreshSubscriptions();
      return true;
    } catch (error) {
      this.note(`subscribe failed: ${(error as Error).message}`, true);
      return false;
    }
  }

  async unsubscribe(filter: string): Promise<void> {
    const client = this.requireOnline();
    if (!client) return;
    try {
      await client.unsubscribe(filter);
      await this.refreshSubscriptions();
    } catch (error) {
      this.note(`unsubscribe failed: ${(error as Error).message}`, true);
    }
  }

  /** Resolves once the publish completed (QoS 1: PUBACK, QoS 2: PUBCOMP); false if it failed, with a note saying why. */
  async publish(topic: string, payload: string, options: PublishOptions): Promise<boolean> {
    const client = this.requireOnline();
    if (!client) return false;
    try {
      await client.publish(topic, payload, options);
      return true;
    } catch (error) {
      this.note(`publish to ${topic} failed: ${(error as Error).message}`, true);
      return false;
    }
  }

  private requireOnline(): MqttClient | null {
    if (this.client?.connected) return this.client;
    this.note('not connected: reconnect first', true);
    return null;
  }

  private onMessage(message: ReceivedMessage): void {
    const entry = { at: Date.now(), message };
    this.messages.push(entry);
    if (this.messages.length > MESSAGE_LIMIT) this.messages.shift();
    this.emit({ kind: 'message', entry });
    const responseTopic = message.properties.responseTopic;
    if (this.responder && responseTopic && this.client) {
      // Not awaited: the acknowledgement of the request need not wait for the answer.
      void this.publish(responseTopic, `re: ${payloadText(message.payload)} (answered by ${this.id})`, {
        qos: message.qos === 0 ? 0 : 1,
        properties: { correlationData: message.properties.correlationData, contentType: 'text/plain' },
      });
    }
  }

  private onPacket(event: PacketEvent): void {
    const flow = this.flows.add(event);
    this.emit({ kind: 'flow', flow, started: flow.steps.length === 1 });
  }

  private setState(state: ClientState): void {
    this.state = state;
    this.emit({ kind: 'state' });
  }

  private note(text: string, error: boolean): void {
    this.emit({ kind: 'note', text, error });
  }

  private emit(event: ClientEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
