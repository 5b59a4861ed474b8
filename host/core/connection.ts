import type { Broker } from './broker.js';
import { PacketType, Reason, type ProtocolVersion } from './codec/constants.js';
import { Framer, type PacketSink } from './codec/frame.js';
import { ackSize, type AckType, encodeAck, writeAck } from './codec/acks.js';
import * as generate from './codec/generate.js';
import type { QoS } from './codec/packets.js';
import { parseControl, UnsupportedVersion } from './codec/parse.js';
import type { Properties } from './codec/properties.js';
import { encodeDeliveryProperties, type OutgoingPublish, publishSize, writePublish } from './codec/publish.js';
import { malformed, ProtocolError, protocolError } from './codec/errors.js';
import type { ClientInfo } from './model/options.js';
import { handleAck } from './handlers/acks.js';
import { handleAuth } from './handlers/auth.js';
import { handleConnect, refuseUnsupportedVersion } from './handlers/connect.js';
import { type ClientContext, type ClientLimits, ClientState, NO_LIMITS } from './handlers/context.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { handlePingreq } from './handlers/pingreq.js';
import { handlePublish } from './handlers/publish.js';
import { handleSubscribe } from './handlers/subscribe.js';
import { handleUnsubscribe } from './handlers/unsubscribe.js';
import type { Message } from './model/message.js';
import { CloseKind } from './model/outcomes.js';
import type { ClientOutlet } from './model/outlet.js';
import { OutgoingAliases } from './outgoing-aliases.js';
import { Outbox } from './outbox.js';
import type { Session } from './model/session.js';
import type { Timed } from './model/timers.js';
import type { Transport, TransportEvents } from './transport.js';
import { MessageBlock } from './wasm/abi.js';
import { afterIo } from './model/schedule.js';

/** Filled for each PUBLISH a connection sends (never two at once). */
const outgoing: OutgoingPublish<number | Message> = {
  version: 4,
  qos: 0,
  dup: false,
  retain: false,
  packetId: 0,
  topic: 0,
  topicAt: 0,
  topicLength: 0,
  properties: null,
  forward: null,
  forwardAt: 0,
  forwardLength: 0,
  payload: 0,
  payloadAt: 0,
  payloadLength: 0,
};

/**
 * The idle deadline in whole milliseconds, never earlier than the exact one: a small integer is
 * stored in the connection itself (its timer entry), a fraction would be a heap number of its own.
 */
function idleDeadline(lastSeen: number, limitMs: number): number {
  return Math.ceil(lastSeen + limitMs);
}

/** Where a connection is in its life. */
const enum Phase {
  /** Waiting for CONNECT. */
  New,
  /** CONNECT received, authentication under way, CONNACK not yet sent. */
  Connecting,
  /** CONNACK sent. */
  Connected,
  /** Closing or closed: nothing more is read or routed. */
  Closed,
}

/** Why reading is paused (a bit each): both must be gone before it resumes. */
const enum Paused {
  /** As many acknowledgements wait for the store as the Receive Maximum allows. */
  Acks = 1,
  /** The client pipelined maxUnauthenticatedBytes behind a CONNECT still being authenticated. */
  Unauthenticated = 2,
}

/**
 * One client's network connection, independent of the transport under it: frames packets,
 * dispatches them to the handlers, enforces keep alive, and batches output per tick. It is its own
 * entry in the broker's Timers (the CONNECT deadline, then keep alive).
 */
export class Connection implements Timed, ClientOutlet, ClientContext, PacketSink, TransportEvents {
  private phase = Phase.New;
  /** What the packet handlers keep about this connection, once they keep anything (see `state`). */
  private clientState: ClientState | null = null;
  version: ProtocolVersion | 0 = 0;
  session: Session | null = null;
  private closeKind = CloseKind.Abnormal;
  readonly framer: Framer;
  /** This turn's output, from its first packet until the flush: lent by the broker's OutboxPool. */
  private outbox: Outbox | null = null;
  /** The client's own limits (5.0 CONNECT properties). */
  limits = NO_LIMITS;
  /** Topic aliases this connection told its client (5.0, when it accepts any). */
  private outgoingAliases: OutgoingAliases | null = null;
  /** Incoming QoS 1/2 PUBLISHes whose acknowledgement waits for durability. */
  private pendingAcks = 0;
  private paused = 0;
  /** Until CONNECT is accepted, what the connection holds is counted (see accountUnauthenticated). */
  private untrusted = true;
  /** Bytes counted for this connection in metrics.unauthenticatedBytes. */
  private unauthenticatedBytes = 0;
  /** Bytes of the packets in `deferred`. */
  private deferredBytes = 0;
  private keepAliveSeconds = 0;
  /** Who the client authenticated as (user name, or the enhanced authentication identity). */
  username: string | undefined;
  /** Packets that arrived while an asynchronous decision was pending (authentication, authorization), in order. */
  private deferred: [number, Uint8Array][] | null = null;
  /** An asynchronous decision is pending: later packets wait in `deferred`. */
  private holding = false;
  private lastSeen = performance.now();
  private packetSeen = false;
  /** Milliseconds without a packet that end the connection: the CONNECT deadline, then 1.5 × keep alive; 0 = none. */
  private idleLimitMs = 0;
  timerDue = 0;
  timerSlot = -1;

  constructor(
    readonly broker: Broker,
    readonly transport: Transport,
  ) {
    const { maxPacketSize, maxUnauthenticatedBytes } = broker.options;
    // Until CONNECT is accepted a packet may be no larger than what an unauthenticated client may hold.
    this.framer = new Framer(Math.min(maxPacketSize, maxUnauthenticatedBytes));
    transport.limitReceive?.(maxUnauthenticatedBytes);
    this.superviseIdle(broker.options.connectTimeoutMs);
    transport.attach(this);
  }

  /** What the packet handlers keep about this connection: created on first use, dropped at CONNACK when empty. */
  get state(): ClientState {
    return (this.clientState ??= new ClientState());
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  get outlet(): ClientOutlet {
    return this;
  }

  /** Keep Alive in force, seconds (0: none). */
  get keepAlive(): number {
    return this.keepAliveSeconds;
  }

  get clientId(): string {
    return this.session?.clientId ?? '';
  }

  /** Bytes from the transport (TransportEvents). */
  received(chunk: Uint8Array): void {
    if (this.phase === Phase.Closed) return;
    this.broker.metrics.bytesReceived += chunk.length;
    try {
      this.packetSeen = false;
      const core = this.broker.core;
      const framer = this.framer;
      // The rest of a packet being assembled in the arena goes there straight from the chunk.
      const direct = Math.min(framer.owed, chunk.length);
      if (direct > 0) framer.push(chunk, 0, direct, this);
      if (direct < chunk.length && this.open) {
        // One copy of the chunk into wasm memory: PUBLISH bodies then move into arena blocks with
        // memory.copy, and nothing per packet is allocated on the JavaScript heap.
        const length = chunk.length - direct;
        const at = core.receiveBuffer(length);
        const mem = core.bytes();
        mem.set(direct === 0 ? chunk : chunk.subarray(direct), at);
        framer.push(mem, at, at + length, this, core.refreshBytes);
      }
      // Keep alive counts complete control packets, not bytes [MQTT-3.1.2-22]; one clock read per chunk.
      if (this.packetSeen) this.lastSeen = performance.now();
      if (this.untrusted) this.accountUnauthenticated();
    } catch (error) {
      this.fail(error);
    }
  }

  /** Each packet its framer cuts from the stream (PacketSink). */
  onPacket(header: number, buf: Uint8Array, start: number, end: number): boolean {
    const type = header >> 4;
    this.broker.metrics.packetsReceived++;
    this.packetSeen = true;
    if (this.phase === Phase.New) {
      if (type !== PacketType.CONNECT) throw protocolError('the first packet must be CONNECT [MQTT-3.1.0-1]');
      try {
        // Packets pipelined behind CONNECT may have any size; while authentication runs they are held, bounded by pausing.
        this.framer.maxPacketSize = this.broker.options.maxPacketSize;
        handleConnect(this, parseControl(header, buf, start, end, 0) as never);
      } catch (error) {
        if (error instanceof UnsupportedVersion) {
          refuseUnsupportedVersion(this, error.level);
          return false;
        }
        // A 5.0 CONNECT that fails validation is answered with a CONNACK reason code [MQTT-3.1.4-1].
        if (error instanceof ProtocolError && end - start > 6 && buf[start + 6] === 5 && this.version === 0) this.version = 5;
        throw error;
      }
      return this.open;
    }
    if (this.phase === Phase.Closed) return false;
    if (this.holding && !(this.state.auth !== null && this.phase === Phase.Connecting)) {
      (this.deferred ??= []).push([header, buf.slice(start, end)]);
      this.deferredBytes += end - start;
      return true;
    }
    if (this.phase === Phase.Connecting) {
      // During enhanced authentication only AUTH and DISCONNECT may come [MQTT-3.1.2-30].
      if (type !== PacketType.AUTH && type !== PacketType.DISCONNECT) {
        throw protocolError('only AUTH or DISCONNECT may follow CONNECT until CONNACK during enhanced authentication [MQTT-3.1.2-30]');
      }
    }
    if (type === PacketType.PUBLISH) {
      handlePublish(this, header, buf, start, end);
    } else if (type >= PacketType.PUBACK && type <= PacketType.PUBCOMP && end - start === 2 && (header & 0x0f) === (type === PacketType.PUBREL ? 2 : 0)) {
      // The two-byte acknowledgement (no reason code, no properties) is the QoS 1/2 hot path.
      const packetId = (buf[start]! << 8) | buf[start + 1]!;
      if (packetId === 0) throw malformed('packet identifier 0 is not allowed [MQTT-2.3.1-1]');
      handleAck(this, type, packetId, 0);
    } else {
      // Refused before it is parsed: a second CONNECT naming an unknown protocol level is no less a protocol error.
      if (type === PacketType.CONNECT) throw protocolError('a second CONNECT on one connection [MQTT-3.1.0-2]');
      const packet = parseControl(header, buf, start, end, this.version);
      switch (packet.type) {
        case PacketType.SUBSCRIBE:
          handleSubscribe(this, packet);
          break;
        case PacketType.UNSUBSCRIBE:
          handleUnsubscribe(this, packet);
          break;
        case PacketType.PUBACK:
        case PacketType.PUBREC:
        case PacketType.PUBREL:
        case PacketType.PUBCOMP:
          handleAck(this, packet.type, packet.packetId, packet.reason);
          break;
        case PacketType.PINGREQ:
          handlePingreq(this);
          break;
        case PacketType.DISCONNECT:
          handleDisconnect(this, packet);
          break;
        case PacketType.AUTH:
          handleAuth(this, packet);
          break;
      }
    }
    return this.open;
  }

  holdFor<T>(decision: Promise<T>, then: (value: T) => void, abandon?: () => void): void {
    this.holding = true;
    decision.then(
      (value) => {
        if (!this.open) {
          abandon?.();
          return;
        }
        this.holding = false;
        try {
          then(value);
        } catch (error) {
          this.fail(error);
          return;
        }
        this.replayDeferred();
        try {
          if (this.untrusted) this.accountUnauthenticated();
        } catch (error) {
          this.fail(error);
        }
      },
      (error: unknown) => {
        abandon?.();
        this.fail(error);
      },
    );
  }

  private replayDeferred(): void {
    const deferred = this.deferred;
    if (deferred === null) return;
    while (deferred.length > 0 && !this.holding && this.open) {
      const [header, body] = deferred.shift()!;
      this.deferredBytes -= body.length;
      try {
        this.onPacket(header, body, 0, body.length);
      } catch (error) {
        this.fail(error);
      }
    }
  }

  /**
   * An acknowledgement now waits for the store. Past the broker's Receive Maximum the connection
   * stops reading: that is how a 3.1.1 publisher (which has no Receive Maximum) is slowed down.
   */
  acknowledgementPending(): void {
    if (++this.pendingAcks >= this.broker.options.receiveMaximum) this.pause(Paused.Acks, true);
  }

  acknowledgementDone(): void {
    if (--this.pendingAcks < this.broker.options.receiveMaximum) this.pause(Paused.Acks, false);
  }

  // ---- transitions (ClientContext) ----

  beginConnect(version: ProtocolVersion, limits: ClientLimits): void {
    this.version = version;
    this.limits = limits;
    this.outgoingAliases = limits.topicAliasMaximum > 0 ? new OutgoingAliases(limits.topicAliasMaximum) : null;
    this.phase = Phase.Connecting;
  }

  authenticated(username: string | undefined): void {
    this.username = username;
  }

  connected(session: Session, keepAlive: number): void {
    this.session = session;
    this.broker.attach(session, this);
    this.phase = Phase.Connected;
    if (this.clientState?.empty) this.clientState = null;
    // An authenticated client's packets spanning chunks are assembled in the arena, allocated once
    // at their size (bounded by maxPacketSize and the arena's cap) instead of growing buffers.
    this.framer.area = this.broker.core;
    this.startKeepAlive(keepAlive);
  }

  private pause(reason: Paused, on: boolean): void {
    const before = this.paused;
    this.paused = on ? before | reason : before & ~reason;
    if (before === 0 && this.paused !== 0) this.transport.pause();
    else if (before !== 0 && this.paused === 0) this.transport.resume();
  }

  /**
   * Until its CONNECT is accepted a client is nobody: what its connection holds — a packet partly
   * received, packets pipelined behind a CONNECT still being authenticated — is bounded per connection
   * (the framer refuses a larger CONNECT; past maxUnauthenticatedBytes reading pauses until CONNACK)
   * and over all such connections (maxUnauthenticatedTotalBytes: the connection going over is closed).
   */
  private accountUnauthenticated(): void {
    const metrics = this.broker.metrics;
    if (this.phase === Phase.Connected || this.phase === Phase.Closed) {
      metrics.unauthenticatedBytes -= this.unauthenticatedBytes;
      this.unauthenticatedBytes = 0;
      this.untrusted = false;
      if (this.phase === Phase.Connected) {
        this.transport.limitReceive?.(null);
        this.pause(Paused.Unauthenticated, false);
      }
      return;
    }
    const { maxUnauthenticatedBytes, maxUnauthenticatedTotalBytes } = this.broker.options;
    const held = this.framer.allocated + this.deferredBytes;
    const grew = held - this.unauthenticatedBytes;
    metrics.unauthenticatedBytes += grew;
    this.unauthenticatedBytes = held;
    if (grew > 0 && metrics.unauthenticatedBytes > maxUnauthenticatedTotalBytes) {
      metrics.unauthenticatedOverflows++;
      throw new ProtocolError(Reason.ServerBusy, `connections not yet authenticated already hold ${maxUnauthenticatedTotalBytes} bytes`);
    }
    if (this.phase === Phase.Connecting && held >= maxUnauthenticatedBytes) this.pause(Paused.Unauthenticated, true);
  }

  info(): ClientInfo {
    return { clientId: this.clientId, username: this.username, remoteAddress: this.remoteAddress };
  }

  /** CONNACK accepted the client and it is not closing. */
  get isConnected(): boolean {
    return this.phase === Phase.Connected;
  }

  /** The client's Receive Maximum: QoS 1/2 PUBLISHes it takes unacknowledged. */
  get receiveWindow(): number {
    return this.limits.receiveMaximum;
  }

  get connecting(): boolean {
    return this.phase === Phase.Connecting;
  }

  /** Not closing; a getter so TypeScript does not narrow `phase` across handler calls that change it. */
  get open(): boolean {
    return this.phase !== Phase.Closed;
  }

  fail(error: unknown): void {
    if (this.phase === Phase.Closed) return;
    const reason = error instanceof ProtocolError ? error.reason : Reason.UnspecifiedError;
    const message = error instanceof Error ? error.message : String(error);
    this.broker.metrics.protocolErrors++;
    const key = this.clientId || this.remoteAddress;
    this.broker.logRepeatable('info', 'closing connection', key, { client: this.clientId, address: this.remoteAddress, reason, error: message });
    if (!(error instanceof ProtocolError)) {
      this.broker.metrics.internalErrors++;
      this.broker.logRepeatable('error', 'internal error', key, { stack: (error as Error)?.stack });
    }
    if (this.version === 5) {
      const connected = this.phase === Phase.Connected;
      this.sendWithProperties((p) => (connected ? generate.disconnect(reason, p) : generate.connack(5, false, reason, p)), { reasonString: message });
    }
    this.close(CloseKind.Abnormal);
  }

  close(kind: CloseKind): void {
    if (this.phase === Phase.Closed) return;
    this.closeKind = kind;
    this.phase = Phase.Closed;
    this.clearKeepAlive();
    this.outbox?.flush(this.transport);
    this.transport.end();
  }

  disconnect(reason: Reason, props?: Properties): void {
    if (this.phase === Phase.Closed) return;
    if (this.version === 5) this.sendWithProperties((p) => generate.disconnect(reason, p), props);
    this.close(CloseKind.Abnormal);
  }

  /** The transport has closed (TransportEvents). */
  closed(): void {
    const wasOpen = this.phase !== Phase.Closed;
    this.phase = Phase.Closed;
    this.clearKeepAlive();
    this.outbox?.discard();
    this.framer.discard();
    if (this.untrusted) this.accountUnauthenticated();
    this.broker.connectionClosed(this, wasOpen ? CloseKind.Abnormal : this.closeKind);
  }

  /** Starts keep alive supervision: 1.5 × the interval without a packet closes the connection [MQTT-3.1.2-24]. */
  private startKeepAlive(seconds: number): void {
    this.keepAliveSeconds = seconds;
    this.superviseIdle(seconds * 1500);
  }

  /** Counts `limitMs` from the last packet; 0 stops supervision. */
  private superviseIdle(limitMs: number): void {
    this.idleLimitMs = limitMs;
    if (limitMs > 0) this.broker.timers.schedule(this, idleDeadline(this.lastSeen, limitMs));
    else this.clearKeepAlive();
  }

  /**
   * The idle deadline came. Packets only move `lastSeen` (no timer work per packet), so the deadline
   * is checked here and moved on if a packet arrived since it was set.
   */
  onTimer(now: number): void {
    const due = idleDeadline(this.lastSeen, this.idleLimitMs);
    if (due > now) {
      this.broker.timers.schedule(this, due);
      return;
    }
    // Timers run before the event loop reads sockets: a broker running behind may hold this client's
    // packet unread. Decide after this turn's reads (a packet arriving by then moves lastSeen).
    afterIo(() => this.expireIfSilent());
  }

  private expireIfSilent(): void {
    if (this.phase === Phase.Closed || this.timerSlot >= 0 || this.idleLimitMs === 0) return;
    const now = performance.now();
    if (this.lastSeen + this.idleLimitMs > now) {
      this.superviseIdle(this.idleLimitMs);
      return;
    }
    if (this.phase === Phase.New) {
      this.broker.metrics.connectTimeouts++;
      this.broker.logRepeatable('info', 'no CONNECT in time', this.remoteAddress, { address: this.remoteAddress });
      this.close(CloseKind.Abnormal);
    } else {
      this.broker.metrics.keepAliveTimeouts++;
      this.broker.logRepeatable('info', 'keep alive expired', this.clientId, { client: this.clientId, keepAlive: this.keepAlive });
      this.disconnect(Reason.KeepAliveTimeout);
    }
  }

  private clearKeepAlive(): void {
    this.broker.timers.cancel(this);
  }

  sendWithProperties(build: (props: Properties | undefined) => Uint8Array, props: Properties | undefined): void {
    let packet = build(props);
    if (packet.length > this.limits.maxPacketSize && props && (props.reasonString !== undefined || props.userProperties !== undefined)) {
      const { reasonString: _r, userProperties: _u, ...rest } = props;
      packet = build(Object.keys(rest).length > 0 ? rest : undefined);
    }
    this.send(packet);
  }

  send(packet: Uint8Array): void {
    if (this.tooLarge(packet.length)) return;
    this.output().write(packet);
    this.broker.metrics.packetsSent++;
  }

  /** A packet larger than the client's Maximum Packet Size is not sent, but counted [MQTT-3.1.2-25]. */
  private tooLarge(size: number): boolean {
    if (size <= this.limits.maxPacketSize) return false;
    this.broker.metrics.packetsDropped++;
    this.broker.logRepeatable('warn', 'packet larger than the client accepts was not sent', this.clientId, { client: this.clientId, size });
    return true;
  }

  /** Queues PUBACK, PUBREC, PUBREL or PUBCOMP; without properties it is written straight into the batch. */
  sendAck(type: AckType, packetId: number, reason: number, props?: Properties): void {
    const version = this.version as ProtocolVersion;
    if (props !== undefined) {
      this.sendWithProperties((p) => encodeAck(type, version, packetId, reason, p), props);
      return;
    }
    const size = ackSize(version, reason);
    if (this.tooLarge(size)) return;
    const outbox = this.output();
    const at = outbox.reserve(size);
    writeAck(outbox.bytes, at, type, version, packetId, reason);
    this.broker.metrics.packetsSent++;
  }

  /**
   * Queues a PUBLISH of a stored message: its topic, payload and forwarded properties are copied
   * from the message's arena blocks, or referenced when large. Returns false if the packet exceeds
   * the client's Maximum Packet Size and was discarded [MQTT-3.1.2-25].
   */
  sendPublish(message: Message, qos: QoS, packetId: number, retain: boolean, dup: boolean, subscriptionIds: number[] | null): boolean {
    const p = outgoing;
    const v5 = this.version === 5;
    const aliases = this.outgoingAliases;
    let alias = 0;
    let known = false;
    if (aliases !== null) {
      alias = aliases.known(message.topic());
      known = alias !== 0;
      if (!known) alias = aliases.next();
    }
    const src = message.ptr();
    p.version = this.version as ProtocolVersion;
    p.qos = qos;
    p.dup = dup;
    p.retain = retain;
    p.packetId = packetId;
    // The message itself, not its block: a reference held by the outbox releases the message, forwarded properties and all.
    p.topic = p.payload = message;
    p.topicAt = src + MessageBlock.Topic;
    // A topic the client already knows by its alias goes as an empty topic name [MQTT-3.3.2-12].
    p.topicLength = known ? 0 : message.topicLength;
    p.payloadAt = p.topicAt + message.topicLength;
    p.payloadLength = message.payloadLength;
    p.properties = v5 ? encodeDeliveryProperties(message.expiresAt === 0 ? undefined : message.remainingExpiry(performance.now()), subscriptionIds, alias) : null;
    // Forwarded properties come from the message's own block: however many subscribers, stored once [MQTT-3.3.2-17], [MQTT-3.3.2-18].
    p.forwardLength = v5 ? message.forwardLength : 0;
    p.forward = p.forwardLength > 0 ? message.forwardHandle : null;
    p.forwardAt = p.forwardLength > 0 ? this.broker.core.ptr(message.forwardHandle) : 0;
    if (publishSize(p) > this.limits.maxPacketSize) return false;
    if (alias !== 0 && !known) aliases!.remember(message.topic(), alias);
    writePublish(this.output(), p);
    this.broker.metrics.messagesSent++;
    this.broker.metrics.packetsSent++;
    return true;
  }

  /** Bytes waiting to leave: what this tick copied for it plus the transport's buffer (slow consumer detection, see Outlet.backlog). */
  get backlog(): number {
    return (this.outbox === null ? 0 : this.outbox.copiedBytes) + this.transport.writableLength;
  }

  /** The outbox this turn's output goes into; the first output of a turn takes one and schedules the flush. */
  private output(): Outbox {
    let outbox = this.outbox;
    if (outbox === null) {
      outbox = this.outbox = this.broker.outboxes.take();
      this.broker.flushes.add(this);
    }
    return outbox;
  }

  /** Called by the broker's FlushQueue, once per output() that took an outbox. */
  flush(): void {
    const outbox = this.outbox!;
    this.outbox = null;
    if (!outbox.empty) {
      const bytes = outbox.pendingBytes;
      outbox.flush(this.transport);
      this.broker.metrics.bytesSent += bytes;
    }
    this.broker.outboxes.give(outbox);
  }
}
