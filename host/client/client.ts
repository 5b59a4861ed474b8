import { MAX_REMAINING_LENGTH, PacketType } from '../core/codec/constants.js';
import { Framer, type PacketSink } from '../core/codec/frame.js';
import type { Properties } from '../core/codec/properties.js';
import { Deque } from '../core/model/deque.js';
import { malformed, protocolError } from '../core/codec/errors.js';
import {
  decodeServerPacket,
  encodeAck,
  encodeConnect,
  encodeDisconnect,
  encodePublish,
  encodeSubscribe,
  encodeUnsubscribe,
  encodePingreq,
  toBytes,
  type ConnackPacket,
  type PublishPacket,
  type ServerPacket,
} from './codec.js';
import { ConnectionClosedError, ConnectRefusedError, ReasonCodeError } from './errors.js';
import type { ClientLink } from './link.js';
import { topicMatches } from './topic-match.js';
import type {
  ClientProtocolVersion,
  CloseInfo,
  ConnectOptions,
  MessageHandler,
  PublishOptions,
  QoS,
  ReceivedMessage,
  SubscribeOptions,
  SubscribeResult,
} from './types.js';

const DEFAULT_KEEP_ALIVE = 60;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** An operation waiting for the broker's answer, by packet identifier. */
interface Pending {
  kind: PacketType.PUBLISH | PacketType.SUBSCRIBE | PacketType.UNSUBSCRIBE;
  qos: QoS;
  resolve(codes: number[]): void;
  reject(error: Error): void;
}

/** An incoming QoS 1/2 message whose acknowledgement waits for its handlers, in arrival order. */
interface PendingAck {
  ready: boolean;
  bytes: Uint8Array;
}

/** A QoS 1/2 PUBLISH waiting for room in the broker's Receive Maximum. */
interface Queued {
  topic: Uint8Array;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  options: PublishOptions;
  pending: Pending;
}

const enum State {
  Connecting,
  Connected,
  Closed,
}

/**
 * A small MQTT 3.1.1 / 5.0 client over any ClientLink: what ArborMQ's browser API hands to
 * applications that do not bring MQTT.js, and what the bridge uses towards a remote broker.
 *
 * One instance is one network connection: when it closes the instance is done (create another to
 * reconnect; with `clean: false` the broker keeps the session). Writes of one tick leave as one
 * chunk. QoS 1/2 publishes beyond the broker's Receive Maximum wait in order.
 */
export class MqttClient {
  /** The identifier the session has (the broker's assigned one when the CONNECT sent none). */
  clientId: string;
  /** Whether the broker resumed a stored session (CONNACK Session Present). */
  sessionPresent = false;
  /** CONNACK properties (5.0): the broker's limits and assigned values. */
  connackProperties: Properties = {};
  /** Resolves once when the connection ends, for whatever reason. */
  readonly closed: Promise<CloseInfo>;

  private state = State.Connecting;
  private readonly framer = new Framer(MAX_REMAINING_LENGTH + 5);
  private readonly pending = new Map<number, Pending>();
  private readonly queued = new Deque<Queued>();
  private publishesInFlight = 0;
  private sendWindow = 65535;
  private maximumQoS: QoS = 2;
  private nextPacketId = 1;
  private readonly incomingQos2 = new Set<number>();
  private readonly acks = new Deque<PendingAck>();
  private readonly subscriptions: { filter: string; handler: MessageHandler }[] = [];
  private readonly listeners = new Set<MessageHandler>();
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private keepAliveTimer: ReturnType<typeof setInterval> | null = null;
  private pingOutstanding = false;
  private closeInfo: CloseInfo | null = null;
  private endRequested = false;
  private resolveClosed!: (info: CloseInfo) => void;
  private connackWaiter: { resolve(p: ConnackPacket): void; reject(e: Error): void } | null = null;

  private constructor(
    private readonly link: ClientLink,
    readonly protocolVersion: ClientProtocolVersion,
    clientId: string,
  ) {
    this.clientId = clientId;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    link.attach({ data: (chunk) => this.onData(chunk), close: (error) => this.onClose(error) });
  }

  /** Sends CONNECT over `link` and resolves once the broker accepted it; rejects with ConnectRefusedError otherwise. */
  static async connect(link: ClientLink, options: ConnectOptions = {}): Promise<MqttClient> {
    const version = options.protocolVersion ?? 5;
    if (version !== 4 && version !== 5) {
      link.close();
      throw new TypeError(`protocolVersion must be 4 (3.1.1) or 5, not ${String(version)}`);
    }
    const keepAlive = options.keepAlive ?? DEFAULT_KEEP_ALIVE;
    const properties: Properties = {};
    if (version === 5) {
      if (options.sessionExpiryInterval) properties.sessionExpiryInterval = options.sessionExpiryInterval;
      if (options.receiveMaximum !== undefined && options.receiveMaximum < 65535) properties.receiveMaximum = options.receiveMaximum;
    }
    const will = options.will;
    // Encoded first: options it refuses close the link rather than leave it to a half-made client.
    let connect: Uint8Array;
    try {
      connect = encodeConnect({
        version,
        clientId: options.clientId ?? '',
        clean: options.clean ?? true,
        keepAlive,
        username: options.username,
        password: options.password === undefined ? undefined : toBytes(options.password),
        will: will && {
          topic: will.topic,
          payload: toBytes(will.payload),
          qos: will.qos ?? 0,
          retain: will.retain ?? false,
          properties: version === 5 ? (will.properties as Properties | undefined) : undefined,
        },
        properties,
      });
    } catch (error) {
      link.close();
      throw error;
    }
    const client = new MqttClient(link, version, options.clientId ?? '');
    if (options.onMessage) client.listeners.add(options.onMessage);
    const connack = new Promise<ConnackPacket>((resolve, reject) => (client.connackWaiter = { resolve, reject }));
    client.queue(connect);
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const timer = setTimeout(() => client.destroy(new Error(`no CONNACK within ${timeoutMs} ms`)), timeoutMs);
    let ack: ConnackPacket;
    try {
      ack = await connack;
    } finally {
      clearTimeout(timer);
    }
    client.startKeepAlive(ack.props.serverKeepAlive ?? keepAlive);
    return client;
  }

  get connected(): boolean {
    return this.state === State.Connected;
  }

  /** Bytes written but not yet handed to the peer: a publisher that floods can wait for this to fall. */
  get bufferedAmount(): number {
    return this.outBytes + this.link.bufferedAmount;
  }

  /**
   * Subscribes `filter` (or several with the same options). `onMessage`, when given, receives the
   * messages whose topic matches these filters; `onMessage()` receives every message.
   */
  async subscribe(filter: string | string[], options: SubscribeOptions = {}, onMessage?: MessageHandler): Promise<SubscribeResult[]> {
    const filters = typeof filter === 'string' ? [filter] : filter;
    if (filters.length === 0) throw new TypeError('subscribe needs at least one topic filter');
    // Registered before SUBSCRIBE goes out: retained messages may arrive right behind the SUBACK.
    const added = onMessage ? filters.map((f) => ({ filter: f, handler: onMessage })) : [];
    this.subscriptions.push(...added);
    try {
      const codes = await this.request(PacketType.SUBSCRIBE, 0, (id) => encodeSubscribe(this.protocolVersion, id, filters, options));
      const results = filters.map((f, i) => ({ filter: f, reasonCode: codes[i] ?? 0x80 }));
      for (const r of results) if (r.reasonCode >= 0x80) this.removeHandlers(added.filter((a) => a.filter === r.filter));
      return results;
    } catch (error) {
      this.removeHandlers(added);
      throw error;
    }
  }

  async unsubscribe(filter: string | string[]): Promise<void> {
    const filters = typeof filter === 'string' ? [filter] : filter;
    await this.request(PacketType.UNSUBSCRIBE, 0, (id) => encodeUnsubscribe(this.protocolVersion, id, filters));
    for (let i = this.subscriptions.length - 1; i >= 0; i--) if (filters.includes(this.subscriptions[i]!.filter)) this.subscriptions.splice(i, 1);
  }

  /** Receives every message, whatever subscription delivered it; returns a function that stops it. */
  onMessage(handler: MessageHandler): () => void {
    this.listeners.add(handler);
    return () => this.listeners.delete(handler);
  }

  /**
   * Publishes a message. QoS 0 resolves once queued; QoS 1 when PUBACKed; QoS 2 when PUBCOMPed.
   * A 5.0 failure reason code rejects with ReasonCodeError; a QoS above the broker's Maximum QoS
   * is lowered to it (MQTT forbids sending more [MQTT-3.2.2-11]).
   */
  publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
    if (this.state !== State.Connected) return Promise.reject(new ConnectionClosedError());
    const requested = options.qos ?? 0;
    const qos = (requested > this.maximumQoS ? this.maximumQoS : requested) as QoS;
    const topicBytes = toBytes(topic);
    const body = toBytes(payload);
    const retain = options.retain ?? false;
    if (qos === 0) {
      this.queue(encodePublish(this.protocolVersion, topicBytes, body, 0, retain, false, 0, options.properties));
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = { kind: PacketType.PUBLISH, qos, resolve: () => resolve(), reject };
      if (this.publishesInFlight < this.sendWindow && this.queued.length === 0) this.sendPublish(topicBytes, body, qos, retain, options, pending);
      else this.queued.push({ topic: topicBytes, payload: body, qos, retain, options, pending });
    });
  }

  /** Sends DISCONNECT (the will is discarded) and closes; resolves when the connection is gone. */
  async end(): Promise<CloseInfo> {
    if (this.state !== State.Closed && !this.endRequested) {
      this.endRequested = true;
      this.stopKeepAlive();
      this.queue(encodeDisconnect(this.protocolVersion));
      this.flush();
      this.link.close();
    }
    return this.closed;
  }

  /** Drops the connection without DISCONNECT: the broker publishes the will, as for a lost network. */
  destroy(error?: Error): void {
    if (this.state === State.Closed) return;
    this.closeInfo ??= { clean: false, error };
    this.out = [];
    this.outBytes = 0;
    this.link.close();
  }

  // ---- sending ----

  private sendPublish(topic: Uint8Array, payload: Uint8Array, qos: QoS, retain: boolean, options: PublishOptions, pending: Pending): void {
    const id = this.allocatePacketId();
    this.pending.set(id, pending);
    this.publishesInFlight++;
    this.queue(encodePublish(this.protocolVersion, topic, payload, qos, retain, false, id, options.properties));
  }

  private request(kind: PacketType.SUBSCRIBE | PacketType.UNSUBSCRIBE, qos: QoS, build: (packetId: number) => Uint8Array): Promise<number[]> {
    if (this.state !== State.Connected) return Promise.reject(new ConnectionClosedError());
    return new Promise<number[]>((resolve, reject) => {
      const id = this.allocatePacketId();
      this.pending.set(id, { kind, qos, resolve, reject });
      this.queue(build(id));
    });
  }

  private allocatePacketId(): number {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
    throw new Error('all 65535 packet identifiers are in use');
  }

  /** Queues a packet; everything queued in one tick goes to the link as one chunk. */
  private queue(bytes: Uint8Array): void {
    if (this.state === State.Closed) return;
    this.out.push(bytes);
    this.outBytes += bytes.length;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.state === State.Closed) return;
    const chunks = this.out;
    let chunk: Uint8Array;
    if (chunks.length === 1) {
      chunk = chunks[0]!;
    } else {
      chunk = new Uint8Array(this.outBytes);
      let at = 0;
      for (const c of chunks) {
        chunk.set(c, at);
        at += c.length;
      }
    }
    this.out = [];
    this.outBytes = 0;
    this.link.send(chunk);
  }

  // ---- receiving ----

  private onData(chunk: Uint8Array): void {
    if (this.state === State.Closed) return;
    this.pingOutstanding = false;
    try {
      this.framer.push(chunk, 0, chunk.length, this.packets);
    } catch (error) {
      this.destroy(error as Error);
    }
  }

  private readonly packets: PacketSink = {
    onPacket: (header, buf, start, end) => {
      const packet = decodeServerPacket(header, buf, start, end, this.protocolVersion);
      if (this.state === State.Connecting) {
        if (packet.type !== PacketType.CONNACK) throw protocolError('the first packet from the server must be CONNACK');
        this.onConnack(packet);
        return this.connected;
      }
      this.handle(packet);
      return this.state !== State.Closed;
    },
  };

  private onConnack(ack: ConnackPacket): void {
    const waiter = this.connackWaiter!;
    this.connackWaiter = null;
    if (ack.reasonCode !== 0) {
      const error = new ConnectRefusedError(ack.reasonCode, `the broker refused the connection (${connackReason(this.protocolVersion, ack.reasonCode)})`);
      waiter.reject(error);
      this.destroy(error);
      return;
    }
    this.state = State.Connected;
    this.sessionPresent = ack.sessionPresent;
    this.connackProperties = ack.props;
    if (ack.props.assignedClientIdentifier) this.clientId = ack.props.assignedClientIdentifier;
    if (ack.props.receiveMaximum !== undefined) this.sendWindow = ack.props.receiveMaximum;
    if (ack.props.maximumQoS !== undefined) this.maximumQoS = ack.props.maximumQoS as QoS;
    waiter.resolve(ack);
  }

  private handle(packet: ServerPacket): void {
    switch (packet.type) {
      case PacketType.PUBLISH:
        this.onPublish(packet);
        break;
      case PacketType.PUBACK:
      case PacketType.PUBCOMP:
        this.completePublish(packet.packetId, packet.reasonCode, packet.type === PacketType.PUBACK ? 1 : 2);
        break;
      case PacketType.PUBREC: {
        const pending = this.pending.get(packet.packetId);
        if (!pending || pending.kind !== PacketType.PUBLISH || pending.qos !== 2) throw protocolError(`PUBREC for unknown packet identifier ${packet.packetId}`);
        if (packet.reasonCode >= 0x80) {
          this.completePublish(packet.packetId, packet.reasonCode, 2);
          break;
        }
        this.queue(encodeAck(PacketType.PUBREL, this.protocolVersion, packet.packetId));
        break;
      }
      case PacketType.PUBREL:
        this.incomingQos2.delete(packet.packetId);
        this.queueAck(encodeAck(PacketType.PUBCOMP, this.protocolVersion, packet.packetId), true);
        break;
      case PacketType.SUBACK:
      case PacketType.UNSUBACK: {
        const kind = packet.type === PacketType.SUBACK ? PacketType.SUBSCRIBE : PacketType.UNSUBSCRIBE;
        const pending = this.pending.get(packet.packetId);
        if (!pending || pending.kind !== kind) throw protocolError(`${kind === PacketType.SUBSCRIBE ? 'SUBACK' : 'UNSUBACK'} for unknown packet identifier ${packet.packetId}`);
        this.pending.delete(packet.packetId);
        pending.resolve(packet.codes);
        break;
      }
      case PacketType.PINGRESP:
        break;
      case PacketType.DISCONNECT:
        this.closeInfo = {
          clean: false,
          reasonCode: packet.reasonCode,
          error: new ReasonCodeError(packet.reasonCode, `the broker disconnected (reason 0x${packet.reasonCode.toString(16)}${packet.props.reasonString ? `: ${packet.props.reasonString}` : ''})`),
        };
        this.link.close();
        break;
      case PacketType.CONNACK:
        throw protocolError('a second CONNACK');
    }
  }

  private completePublish(packetId: number, reasonCode: number, qos: QoS): void {
    const pending = this.pending.get(packetId);
    if (!pending || pending.kind !== PacketType.PUBLISH || pending.qos !== qos) {
      throw protocolError(`acknowledgement for unknown packet identifier ${packetId}`);
    }
    this.pending.delete(packetId);
    this.publishesInFlight--;
    if (reasonCode >= 0x80) pending.reject(new ReasonCodeError(reasonCode, `the broker refused the message (reason 0x${reasonCode.toString(16)})`));
    else pending.resolve([reasonCode]);
    while (this.queued.length > 0 && this.publishesInFlight < this.sendWindow) {
      const q = this.queued.shift()!;
      this.sendPublish(q.topic, q.payload, q.qos, q.retain, q.options, q.pending);
    }
  }

  private onPublish(packet: PublishPacket): void {
    if (packet.topicAlias !== undefined) throw protocolError('topic alias from a broker we allowed none [MQTT-3.3.2-10]');
    if (packet.topic.length === 0) throw malformed('PUBLISH without a topic name');
    const { qos, packetId } = packet;
    if (qos === 2 && this.incomingQos2.has(packetId)) {
      // A resend of a message already delivered: acknowledge again, do not deliver twice [MQTT-4.3.3-10].
      this.queueAck(encodeAck(PacketType.PUBREC, this.protocolVersion, packetId), true);
      return;
    }
    const message: ReceivedMessage = packet;
    let waits: Promise<void>[] | null = null;
    const run = (handler: MessageHandler): void => {
      let result: void | Promise<void>;
      try {
        result = handler(message);
      } catch (error) {
        result = Promise.reject(error);
      }
      if (result instanceof Promise) (waits ??= []).push(result);
    };
    for (const listener of this.listeners) run(listener);
    for (const sub of this.subscriptions) if (topicMatches(sub.filter, message.topic)) run(sub.handler);
    if (qos === 2) this.incomingQos2.add(packetId);
    const ack = qos === 0 ? null : encodeAck(qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, this.protocolVersion, packetId);
    const w: Promise<void>[] | null = waits;
    if (w === null) {
      if (ack) this.queueAck(ack, true);
      return;
    }
    const entry = ack ? this.queueAck(ack, false) : null;
    Promise.all(w).then(
      () => {
        if (!entry) return;
        entry.ready = true;
        this.releaseAcks();
      },
      (error: unknown) => {
        // Not acknowledging keeps the message with the broker (a persistent session gets it again on
        // reconnect); the stream cannot skip one acknowledgement, so the connection goes.
        if (qos > 0) this.destroy(new Error(`a message handler failed: ${(error as Error)?.message ?? String(error)}`));
        else queueMicrotask(() => {
          throw error;
        });
      },
    );
  }

  /** Acknowledgements leave in the order the messages arrived, each once its handlers are done. */
  private queueAck(bytes: Uint8Array, ready: boolean): PendingAck {
    const entry = { ready, bytes };
    if (ready && this.acks.length === 0) this.queue(bytes);
    else this.acks.push(entry);
    return entry;
  }

  private releaseAcks(): void {
    while (this.acks.length > 0 && this.acks.peek()!.ready) this.queue(this.acks.shift()!.bytes);
  }

  private removeHandlers(handlers: { filter: string; handler: MessageHandler }[]): void {
    for (const h of handlers) {
      const i = this.subscriptions.indexOf(h);
      if (i >= 0) this.subscriptions.splice(i, 1);
    }
  }

  // ---- keep alive and closing ----

  private startKeepAlive(seconds: number): void {
    if (seconds <= 0 || this.state !== State.Connected) return;
    // One PINGREQ per interval; an interval without any packet from the broker means the link is dead.
    this.keepAliveTimer = setInterval(() => {
      if (this.pingOutstanding) {
        this.destroy(new Error(`no answer from the broker within the keep alive of ${seconds} s`));
        return;
      }
      this.pingOutstanding = true;
      this.queue(encodePingreq());
    }, seconds * 1000);
  }

  private stopKeepAlive(): void {
    if (this.keepAliveTimer !== null) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }

  private onClose(error?: Error): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    this.stopKeepAlive();
    const info: CloseInfo = this.closeInfo ?? (this.endRequested ? { clean: true } : { clean: false, error: error ?? new ConnectionClosedError('the connection was lost') });
    this.connackWaiter?.reject(info.error ?? new ConnectionClosedError('the connection closed before CONNACK'));
    this.connackWaiter = null;
    const closedError = new ConnectionClosedError(info.error ? `the MQTT connection closed: ${info.error.message}` : undefined);
    for (const pending of this.pending.values()) pending.reject(closedError);
    this.pending.clear();
    for (const q of this.queued) q.pending.reject(closedError);
    this.queued.clear();
    this.acks.clear();
    this.out = [];
    this.outBytes = 0;
    this.resolveClosed(info);
  }
}

const CONNACK_311 = ['accepted', 'unacceptable protocol version', 'identifier rejected', 'server unavailable', 'bad user name or password', 'not authorized'];

function connackReason(version: ClientProtocolVersion, code: number): string {
  return version === 4 ? (CONNACK_311[code] ?? `code ${code}`) : `reason 0x${code.toString(16)}`;
}
