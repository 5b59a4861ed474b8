import type { Broker } from './broker.js';
import { PacketType, Reason, type ProtocolVersion } from './codec/constants.js';
import { Framer } from './codec/frame.js';
import * as generate from './codec/generate.js';
import type { QoS } from './codec/packets.js';
import { parseControl, UnsupportedVersion } from './codec/parse.js';
import type { Properties } from './codec/properties.js';
import { publishHeaderSize, writePublishHeader } from './codec/publish.js';
import { encodeDeliveryProperties } from './codec/delivery-properties.js';
import { varintSize, writeVarint } from './codec/writer.js';
import { malformed, ProtocolError, protocolError } from './errors.js';
import type { AuthConversation, AuthMethod } from './auth/method.js';
import type { ClientInfo } from './options.js';
import { handleAck } from './handlers/acks.js';
import { handleAuth } from './handlers/auth.js';
import { handleConnect, type PendingConnect, refuseUnsupportedVersion } from './handlers/connect.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { handlePingreq } from './handlers/pingreq.js';
import { handlePublish } from './handlers/publish.js';
import { handleSubscribe } from './handlers/subscribe.js';
import { handleUnsubscribe } from './handlers/unsubscribe.js';
import type { Message } from './message.js';
import { Outbox } from './outbox.js';
import type { Session } from './session.js';
import type { Timed } from './timers.js';
import type { Transport } from './transport.js';
import { afterIo } from './schedule.js';

export const enum ConnState {
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

/** Why a connection ended, which decides whether its will is published (§3.1.2.5). */
export const enum CloseKind {
  /** DISCONNECT 0x00 received: the will is discarded [MQTT-3.14.4-3]. */
  Graceful,
  /** Anything else: network loss, keep alive, protocol error, takeover, DISCONNECT 0x04. */
  Abnormal,
}

/**
 * One client's network connection, independent of the transport under it: frames packets,
 * dispatches them to the handlers, enforces keep alive, and batches output per tick. It is its own
 * entry in the broker's Timers (the CONNECT deadline, then keep alive).
 */
export class Connection implements Timed {
  state = ConnState.New;
  version: ProtocolVersion | 0 = 0;
  session: Session | null = null;
  closeKind = CloseKind.Abnormal;
  readonly framer: Framer;
  readonly outbox: Outbox;
  /** The client's own limits (5.0 CONNECT properties). */
  clientMaxPacketSize = Number.MAX_SAFE_INTEGER;
  clientReceiveMaximum = 65535;
  clientTopicAliasMaximum = 0;
  /** Request Problem Information: may reason strings and user properties go on acks [MQTT-3.1.2-29]. */
  problemInformation = true;
  /** Incoming topic aliases (5.0) → topic bytes. */
  topicAliases: Map<number, Uint8Array> | null = null;
  /** Topic aliases this connection told its client: topic → alias. */
  private outgoingAliases: Map<string, number> | null = null;
  /** Incoming QoS 1 PUBLISHes whose PUBACK waits for durability: they count against Receive Maximum. */
  pendingQos1Acks = 0;
  /** All incoming QoS 1/2 PUBLISHes whose acknowledgement waits for durability. */
  private pendingAcks = 0;
  private paused = 0;
  /** Until CONNECT is accepted, what the connection holds is counted (see accountUnauthenticated). */
  private untrusted = true;
  /** Bytes counted for this connection in metrics.unauthenticatedBytes. */
  private unauthenticatedBytes = 0;
  /** Bytes of the packets in `deferred`. */
  private deferredBytes = 0;
  keepAlive = 0;
  /** maxMessagesPerSecond token bucket: tokens left, and when (performance.now()) they were last topped up; -Infinity = full. */
  readonly publishBudget = { tokens: 0, refilledAt: -Infinity };
  /** Who the client authenticated as (user name, or the enhanced authentication identity). */
  username: string | undefined;
  pendingConnect: PendingConnect | null = null;
  /** Enhanced authentication (5.0) state, kept after CONNACK for re-authentication. */
  auth: { method: AuthMethod; conversation: AuthConversation; busy: boolean; reauthenticating: boolean } | null = null;
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
  private scheduled = false;

  constructor(
    readonly broker: Broker,
    readonly transport: Transport,
  ) {
    const { maxPacketSize, maxUnauthenticatedBytes } = broker.options;
    // Until CONNECT is accepted a packet may be no larger than what an unauthenticated client may hold.
    this.framer = new Framer(Math.min(maxPacketSize, maxUnauthenticatedBytes));
    transport.limitReceive?.(maxUnauthenticatedBytes);
    this.outbox = new Outbox(broker.core, broker.options.copyLimitBytes);
    this.superviseIdle(broker.options.connectTimeoutMs);
    transport.attach({
      data: (chunk) => this.onData(chunk),
      close: () => this.onClose(),
      drain: () => undefined,
    });
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  get clientId(): string {
    return this.session?.clientId ?? '';
  }

  private onData(chunk: Uint8Array): void {
    if (this.state === ConnState.Closed) return;
    this.broker.metrics.bytesReceived += chunk.length;
    try {
      // One copy of the chunk into wasm memory: PUBLISH bodies then move into arena blocks with
      // copyWithin, and nothing per packet is allocated on the JavaScript heap.
      const core = this.broker.core;
      const at = core.receiveBuffer(chunk.length);
      const mem = core.bytes();
      mem.set(chunk, at);
      this.packetSeen = false;
      this.framer.push(mem, at, at + chunk.length, this.onPacket, core.refreshBytes);
      // Keep alive counts complete control packets, not bytes [MQTT-3.1.2-22]; one clock read per chunk.
      if (this.packetSeen) this.lastSeen = performance.now();
      if (this.untrusted) this.accountUnauthenticated();
    } catch (error) {
      this.fail(error);
    }
  }

  private readonly onPacket = (header: number, buf: Uint8Array, start: number, end: number): boolean => {
    const type = header >> 4;
    this.broker.metrics.packetsReceived++;
    this.packetSeen = true;
    if (this.state === ConnState.New) {
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
    if (this.state === ConnState.Closed) return false;
    if (this.holding && !(this.auth !== null && this.state === ConnState.Connecting)) {
      (this.deferred ??= []).push([header, buf.slice(start, end)]);
      this.deferredBytes += end - start;
      return true;
    }
    if (this.state === ConnState.Connecting) {
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
      const packet = parseControl(header, buf, start, end, this.version);
      switch (packet.type) {
        case PacketType.CONNECT:
          throw protocolError('a second CONNECT on one connection [MQTT-3.1.0-2]');
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
  };

  /**
   * Holds later packets back until `decision` settles, then runs `then` with its value and serves
   * them in order; a rejection closes the connection. `abandon` runs instead of `then` if the
   * connection is gone by then (to give back what `then` would have consumed).
   */
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
  acknowledgementPending(qos: number): void {
    if (qos === 1) this.pendingQos1Acks++;
    if (++this.pendingAcks >= this.broker.options.receiveMaximum) this.pause(Paused.Acks, true);
  }

  acknowledgementDone(qos: number): void {
    if (qos === 1) this.pendingQos1Acks--;
    if (--this.pendingAcks < this.broker.options.receiveMaximum) this.pause(Paused.Acks, false);
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
    if (this.state === ConnState.Connected || this.state === ConnState.Closed) {
      metrics.unauthenticatedBytes -= this.unauthenticatedBytes;
      this.unauthenticatedBytes = 0;
      this.untrusted = false;
      if (this.state === ConnState.Connected) {
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
    if (this.state === ConnState.Connecting && held >= maxUnauthenticatedBytes) this.pause(Paused.Unauthenticated, true);
  }

  /** Who this client is, for authorization hooks. */
  info(): ClientInfo {
    return { clientId: this.clientId, username: this.username, remoteAddress: this.remoteAddress };
  }

  /** Not closing; a getter so TypeScript does not narrow `state` across handler calls that change it. */
  get open(): boolean {
    return this.state !== ConnState.Closed;
  }

  /** Closes the connection because of bad input: with the 5.0 reason code first where the spec has one. */
  fail(error: unknown): void {
    if (this.state === ConnState.Closed) return;
    const reason = error instanceof ProtocolError ? error.reason : Reason.UnspecifiedError;
    const message = error instanceof Error ? error.message : String(error);
    this.broker.metrics.protocolErrors++;
    const key = this.clientId || this.remoteAddress;
    this.broker.logRepeatable('info', 'closing connection', key, { client: this.clientId, address: this.remoteAddress, reason, error: message });
    if (!(error instanceof ProtocolError)) this.broker.logRepeatable('error', 'internal error', key, { stack: (error as Error)?.stack });
    if (this.version === 5) {
      const connected = this.state === ConnState.Connected;
      this.sendWithProperties((p) => (connected ? generate.disconnect(reason, p) : generate.connack(5, false, reason, p)), { reasonString: message });
    }
    this.close(CloseKind.Abnormal);
  }

  /** Ends the connection after flushing what is queued; `kind` decides the will. */
  close(kind: CloseKind): void {
    if (this.state === ConnState.Closed) return;
    this.closeKind = kind;
    this.state = ConnState.Closed;
    this.clearKeepAlive();
    this.outbox.flush(this.transport);
    this.transport.end();
  }

  /** Sends a 5.0 DISCONNECT with `reason` (nothing for older versions) and closes. */
  disconnect(reason: Reason, props?: Properties): void {
    if (this.state === ConnState.Closed) return;
    if (this.version === 5) this.sendWithProperties((p) => generate.disconnect(reason, p), props);
    this.close(CloseKind.Abnormal);
  }

  private onClose(): void {
    const wasOpen = this.state !== ConnState.Closed;
    this.state = ConnState.Closed;
    this.clearKeepAlive();
    this.outbox.discard();
    this.topicAliases = null;
    if (this.untrusted) this.accountUnauthenticated();
    this.broker.connectionClosed(this, wasOpen ? CloseKind.Abnormal : this.closeKind);
  }

  /** Starts keep alive supervision: 1.5 × the interval without a packet closes the connection [MQTT-3.1.2-24]. */
  startKeepAlive(seconds: number): void {
    this.keepAlive = seconds;
    this.superviseIdle(seconds * 1500);
  }

  /** Counts `limitMs` from the last packet; 0 stops supervision. */
  private superviseIdle(limitMs: number): void {
    this.idleLimitMs = limitMs;
    if (limitMs > 0) this.broker.timers.schedule(this, this.lastSeen + limitMs);
    else this.clearKeepAlive();
  }

  /**
   * The idle deadline came. Packets only move `lastSeen` (no timer work per packet), so the deadline
   * is checked here and moved on if a packet arrived since it was set.
   */
  onTimer(now: number): void {
    const due = this.lastSeen + this.idleLimitMs;
    if (due > now) {
      this.broker.timers.schedule(this, due);
      return;
    }
    // Timers run before the event loop reads sockets: a broker running behind may hold this client's
    // packet unread. Decide after this turn's reads (a packet arriving by then moves lastSeen).
    afterIo(() => this.expireIfSilent());
  }

  private expireIfSilent(): void {
    if (this.state === ConnState.Closed || this.timerSlot >= 0 || this.idleLimitMs === 0) return;
    const now = performance.now();
    if (this.lastSeen + this.idleLimitMs > now) {
      this.superviseIdle(this.idleLimitMs);
      return;
    }
    if (this.state === ConnState.New) {
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

  /**
   * Queues a control packet built from `props`. If it would exceed the client's Maximum Packet Size,
   * the Reason String and User Properties are left out first [MQTT-3.1.2-25]; only then is it dropped.
   */
  sendWithProperties(build: (props: Properties | undefined) => Uint8Array, props: Properties | undefined): void {
    let packet = build(props);
    if (packet.length > this.clientMaxPacketSize && props && (props.reasonString !== undefined || props.userProperties !== undefined)) {
      const { reasonString: _r, userProperties: _u, ...rest } = props;
      packet = build(Object.keys(rest).length > 0 ? rest : undefined);
    }
    this.sendBytes(packet);
  }

  /** Queues a whole packet; it leaves with this tick's batch. */
  sendBytes(packet: Uint8Array): void {
    if (packet.length > this.clientMaxPacketSize) {
      this.broker.metrics.packetsDropped++;
      this.broker.logRepeatable('warn', 'packet larger than the client accepts was not sent', this.clientId, { client: this.clientId, size: packet.length });
      return;
    }
    this.outbox.bytes(packet);
    this.broker.metrics.packetsSent++;
    this.schedule();
  }

  /** Queues PUBACK, PUBREC, PUBREL or PUBCOMP; the two-byte form is written straight into the batch. */
  sendAck(type: PacketType.PUBACK | PacketType.PUBREC | PacketType.PUBREL | PacketType.PUBCOMP, packetId: number, reason: number, props?: Properties): void {
    if ((reason !== 0 && this.version === 5) || props !== undefined) {
      this.sendWithProperties((p) => generate.ack(type, this.version as ProtocolVersion, packetId, reason, p), props);
      return;
    }
    const at = this.outbox.reserve(4);
    const buf = this.outbox.target;
    buf[at] = (type << 4) | (type === PacketType.PUBREL ? 2 : 0);
    buf[at + 1] = 2;
    buf[at + 2] = packetId >> 8;
    buf[at + 3] = packetId & 0xff;
    this.broker.metrics.packetsSent++;
    this.schedule();
  }

  /**
   * Queues a PUBLISH of a stored message. Returns false if the packet exceeds the client's Maximum
   * Packet Size and was discarded [MQTT-3.1.2-25].
   */
  sendPublish(message: Message, qos: QoS, packetId: number, retain: boolean, dup: boolean, subscriptionIds: number[] | null): boolean {
    let props: Uint8Array | null = null;
    let alias = 0;
    let aliasKnown = false;
    let forwardLength = 0;
    if (this.version === 5) {
      if (this.clientTopicAliasMaximum > 0) [alias, aliasKnown] = this.topicAliasFor(message.topic());
      props = encodeDeliveryProperties(message, subscriptionIds, alias, message.expiresAt === 0 ? 0 : performance.now());
      forwardLength = message.forwardLength;
    }
    // A topic the client already knows by its alias goes as an empty topic name [MQTT-3.3.2-12].
    const stored = aliasKnown ? message.length - message.topicLength : message.length;
    const topicEnd = 2 + message.topicLength;
    let middle = qos > 0 ? 2 : 0;
    let propsLength = 0;
    if (this.version === 5) {
      propsLength = (props ? props.length : 0) + forwardLength;
      middle += varintSize(propsLength) + propsLength;
    }
    const remaining = stored + middle;
    const headerSize = publishHeaderSize(remaining);
    if (headerSize + remaining > this.clientMaxPacketSize) return false;
    if (alias !== 0 && !aliasKnown) (this.outgoingAliases ??= new Map()).set(message.topic(), alias);
    const outbox = this.outbox;
    const src = message.ptr();
    if (forwardLength > 0) {
      this.writeForwarding(message, qos, packetId, retain, dup, aliasKnown, headerSize, remaining, props, propsLength);
    } else if (aliasKnown) {
      let at = outbox.reserve(headerSize + 2 + middle);
      const buf = outbox.target;
      at += writePublishHeader(buf, at, qos, dup, retain, remaining);
      buf[at++] = 0;
      buf[at++] = 0;
      this.writeMiddle(buf, at, qos, packetId, props, propsLength);
      outbox.copyOrReference(message.handle, src + topicEnd, stored - 2);
    } else if (stored <= outbox.copyLimit) {
      // Small: the whole packet is built in the batch block, topic and payload copied in wasm memory.
      let at = outbox.reserve(headerSize + remaining);
      const buf = outbox.target;
      at += writePublishHeader(buf, at, qos, dup, retain, remaining);
      outbox.copyAt(at, src, topicEnd);
      at = this.writeMiddle(buf, at + topicEnd, qos, packetId, props, propsLength);
      outbox.copyAt(at, src + topicEnd, stored - topicEnd);
    } else {
      // Large: topic and payload go out straight from the message's own arena block.
      const at = outbox.reserve(headerSize);
      writePublishHeader(outbox.target, at, qos, dup, retain, remaining);
      outbox.reference(message.handle, src, topicEnd);
      if (middle > 0) this.writeMiddle(outbox.target, outbox.reserve(middle), qos, packetId, props, propsLength);
      outbox.reference(message.handle, src + topicEnd, stored - topicEnd);
    }
    this.broker.metrics.messagesSent++;
    this.broker.metrics.packetsSent++;
    this.schedule();
    return true;
  }

  /**
   * A 5.0 PUBLISH with forwarded properties: they come after this delivery's own properties, copied
   * or referenced from the message's forward block like topic and payload are from its own block —
   * however many subscribers, their bytes are stored once [MQTT-3.3.2-17], [MQTT-3.3.2-18].
   */
  private writeForwarding(
    message: Message,
    qos: QoS,
    packetId: number,
    retain: boolean,
    dup: boolean,
    aliasKnown: boolean,
    headerSize: number,
    remaining: number,
    props: Uint8Array | null,
    propsLength: number,
  ): void {
    const outbox = this.outbox;
    const src = message.ptr();
    const topicEnd = 2 + message.topicLength;
    const own = props ? props.length : 0;
    const fixed = (qos > 0 ? 2 : 0) + varintSize(propsLength) + own;
    let at = outbox.reserve(headerSize + (aliasKnown ? 2 : 0));
    at += writePublishHeader(outbox.target, at, qos, dup, retain, remaining);
    if (aliasKnown) {
      outbox.target[at] = 0;
      outbox.target[at + 1] = 0;
    } else {
      outbox.copyOrReference(message.handle, src, topicEnd);
    }
    this.writeMiddle(outbox.target, outbox.reserve(fixed), qos, packetId, props, propsLength);
    outbox.copyOrReference(message.forwardHandle, this.broker.core.ptr(message.forwardHandle), message.forwardLength);
    outbox.copyOrReference(message.handle, src + topicEnd, message.length - topicEnd);
  }
  /**
   * The alias to send `topic` with: [alias, whether the client already knows it]. New topics take
   * the next free alias until the client's Topic Alias Maximum is used up; then they go without.
   */
  private topicAliasFor(topic: string): [number, boolean] {
    const known = this.outgoingAliases?.get(topic);
    if (known !== undefined) return [known, true];
    const next = (this.outgoingAliases?.size ?? 0) + 1;
    return next <= this.clientTopicAliasMaximum ? [next, false] : [0, false];
  }

  /**
   * Packet identifier and (5.0) the properties' length and this delivery's own properties, between
   * topic and payload (forwarded ones, counted in `propsLength`, follow); returns the end offset.
   */
  private writeMiddle(buf: Uint8Array, at: number, qos: QoS, packetId: number, props: Uint8Array | null, propsLength: number): number {
    if (qos > 0) {
      buf[at++] = packetId >> 8;
      buf[at++] = packetId & 0xff;
    }
    if (this.version === 5) {
      at = writeVarint(buf, at, propsLength);
      if (props) {
        buf.set(props, at);
        at += props.length;
      }
    }
    return at;
  }

  /** Bytes waiting to leave: ours for this tick plus the transport's buffer (slow consumer detection). */
  get backlog(): number {
    return this.outbox.pendingBytes + this.transport.writableLength;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.broker.scheduleFlush(this);
  }

  /** Called by the broker's per-tick flush. */
  flush(): void {
    this.scheduled = false;
    if (!this.outbox.empty) {
      const bytes = this.outbox.pendingBytes;
      this.outbox.flush(this.transport);
      this.broker.metrics.bytesSent += bytes;
    }
  }
}
