import { PacketType, Reason } from '../codec/constants.js';
import { malformed, ProtocolError, protocolError } from '../codec/errors.js';
import { parsePublish } from '../codec/publish.js';
import { Message } from '../model/message.js';
import { PublishOutcome } from '../model/outcomes.js';
import { isBrokerTopicBytes } from '../model/topics.js';
import { CoreError, MessageBlock } from '../wasm/abi.js';
import { coreErrorName } from '../wasm/core.js';
import type { ClientContext } from './context.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * PUBLISH from a client (§3.3): the topic and payload are copied once into the arena, the topic is
 * validated there, and the message is routed; QoS 1 is answered with PUBACK, QoS 2 with PUBREC
 * and remembered until PUBREL so a resent PUBLISH is not delivered twice [MQTT-4.3.3-10].
 */
export function handlePublish(conn: ClientContext, header: number, buf: Uint8Array, start: number, end: number): void {
  const broker = conn.broker;
  const rate = broker.options.maxMessagesPerSecond;
  if (rate > 0 && !takePublishToken(conn, rate)) {
    throw new ProtocolError(Reason.MessageRateTooHigh, `more than ${rate} PUBLISH packets per second`);
  }
  const core = broker.core;
  const session = conn.session!;
  const version = conn.version as 3 | 4 | 5;
  // The packet is in wasm memory — the receive staging area, or the arena block a packet split
  // across chunks was assembled in — or, held back while a decision was pending or assembled
  // while the arena was full, in a buffer of its own.
  const inWasm = buf === core.bytes();
  const frame = parsePublish(header, buf, start, end, version);
  const { qos, packetId, props } = frame;
  if (qos > broker.options.maxQoS) {
    throw new ProtocolError(Reason.QoSNotSupported, `QoS ${qos} exceeds the maximum QoS ${broker.options.maxQoS} [MQTT-3.2.2-11]`);
  }
  if (frame.retain && !broker.options.retainAvailable) {
    throw new ProtocolError(Reason.RetainNotSupported, 'retained messages are not supported here [MQTT-3.2.2-14]');
  }
  const held = qos === 2 && session.incomingQos2.has(packetId);
  if (held && !broker.cluster) {
    // A resent PUBLISH whose first PUBREC may still wait for its commit: answered after it, in order.
    // (A cluster node routes it again: a node whose forward of it was lost gets it, the others skip it.)
    broker.persistence.whenWritten(() => {
      if (conn.open) conn.sendAck(PacketType.PUBREC, packetId, Reason.Success);
    });
    return;
  }
  // QoS 2 flows count until PUBCOMP is sent, QoS 1 until PUBACK (§4.9).
  // 5.0 only: 3.1.1 has no Receive Maximum; its publishers are slowed down instead (route()).
  if (version === 5 && qos > 0 && !held && session.incomingQos2.size + conn.state.pendingQos1Acks >= broker.options.receiveMaximum) {
    throw new ProtocolError(Reason.ReceiveMaximumExceeded, 'more unacknowledged QoS 1/2 PUBLISHes than Receive Maximum [MQTT-3.3.4-9]');
  }

  if (broker.overloaded) {
    // New work is refused like a full arena's: a resent QoS 2 PUBLISH (above) is still acknowledged.
    broker.metrics.memoryRefused++;
    if (qos === 0) throw new ProtocolError(Reason.QuotaExceeded, 'the server is over its memory limit');
    refuse(conn, qos, packetId, Reason.QuotaExceeded, 'the server is over its memory limit');
    return;
  }
  if (props.responseTopic !== undefined && /[+#]/.test(props.responseTopic)) {
    throw protocolError('a Response Topic must not contain wildcards [MQTT-3.3.2-14]');
  }
  // The topic comes from the packet, or from the connection's alias table (5.0).
  let topicSource = buf;
  let topicStart = frame.topicStart;
  let topicLength = frame.topicLength;
  let topicInWasm = inWasm;
  if (props.topicAlias !== undefined) {
    if (props.topicAlias > broker.options.topicAliasMaximum) {
      throw new ProtocolError(Reason.TopicAliasInvalid, `topic alias ${props.topicAlias} exceeds the maximum [MQTT-3.3.2-9]`);
    }
    if (topicLength === 0) {
      const known = conn.state.topicAliases?.get(props.topicAlias);
      if (!known) throw protocolError(`topic alias ${props.topicAlias} was never set`);
      topicSource = known;
      topicStart = 0;
      topicLength = known.length;
      topicInWasm = false;
    } else {
      (conn.state.topicAliases ??= new Map()).set(props.topicAlias, buf.slice(topicStart, topicStart + topicLength));
    }
  } else if (topicLength === 0) {
    throw new ProtocolError(Reason.TopicNameInvalid, 'empty topic name without a topic alias [MQTT-4.7.3-1]');
  }
  const payloadStart = frame.payloadStart;
  const payloadLength = frame.payloadEnd - payloadStart;
  if (props.payloadFormatIndicator === 1 && !isUtf8(buf.subarray(payloadStart, frame.payloadEnd))) {
    refuse(conn, qos, packetId, Reason.PayloadFormatInvalid, 'payload is not UTF-8 but its format indicator says so');
    return;
  }

  // Topic and payload are copied once, into the message's arena block; bytes not in wasm memory
  // (a packet in a buffer of its own, an aliased topic) pass through the scratch area first.
  let topicPtr = topicStart;
  let payloadPtr = payloadStart;
  if (!inWasm) {
    const joined = new Uint8Array(topicLength + payloadLength);
    joined.set(topicSource.subarray(topicStart, topicStart + topicLength));
    joined.set(buf.subarray(payloadStart, frame.payloadEnd), topicLength);
    topicPtr = core.place(joined);
    payloadPtr = topicPtr + topicLength;
  } else if (!topicInWasm) {
    topicPtr = core.place(topicSource);
  }
  const handle = core.storeMessage(topicPtr, topicLength, payloadPtr, payloadLength);
  // Forwarded properties get an arena block of their own, shared by every delivery like the message's.
  const forward = frame.forward;
  const forwardHandle = handle !== 0 && forward ? Message.storeForward(core, forward) : 0;
  if (handle === 0 || (forward && forwardHandle === 0)) {
    const status = handle === 0 ? core.error() : CoreError.ArenaFull;
    if (handle !== 0) core.unref(handle);
    if (status === CoreError.ArenaFull) {
      broker.metrics.arenaFullDropped++;
      // A transient error: QoS 1/2 are refused (5.0) or the connection closed so the client retries
      // later; a QoS 0 publisher is disconnected too rather than silently losing what it sends [MQTT-4.8.0-2].
      if (qos === 0) throw new ProtocolError(Reason.QuotaExceeded, 'the broker has no room for messages right now');
      refuse(conn, qos, packetId, Reason.QuotaExceeded, 'the broker has no room for this message');
      return;
    }
    if (status === CoreError.BadUtf8 || status === CoreError.NullChar) {
      throw malformed('topic name is not well-formed UTF-8 or contains U+0000 [MQTT-1.5.4-1], [MQTT-1.5.4-2]');
    }
    throw new ProtocolError(Reason.TopicNameInvalid, `topic name is invalid (${coreErrorName(status)}) [MQTT-3.3.2-2]`);
  }
  const length = MessageBlock.Topic + topicLength + payloadLength;
  const expiry = props.messageExpiryInterval;
  const message = Message.of(
    core,
    handle,
    topicLength,
    length,
    qos,
    frame.retain,
    forwardHandle,
    forward ? forward.length : 0,
    expiry === undefined ? 0 : performance.now() + expiry * 1000,
  );
  broker.metrics.messagesReceived++;
  // `$SYS` is the broker's own: clients may read it, never publish there (§4.7.2). Other `$` topics are theirs.
  if (isBrokerTopicBytes(core.bytes(), core.topicPtr(handle), topicLength)) {
    deny(conn, message, packetId);
    return;
  }
  const repeat = frame.dup || held;
  const authorize = broker.options.authorizePublish;
  if (!authorize) {
    route(conn, message, packetId, repeat);
    return;
  }
  const decision = authorize(conn.info(), message.topic(), qos, frame.retain);
  if (decision === true) route(conn, message, packetId, repeat);
  else if (decision === false) deny(conn, message, packetId);
  else conn.holdFor(decision, (ok) => (ok ? route(conn, message, packetId, repeat) : deny(conn, message, packetId)), () => message.unref());
}

/**
 * Token bucket of `rate` tokens, refilled continuously: a client may burst up to one second's worth,
 * and is over the limit only when its sustained rate exceeds `rate`.
 */
function takePublishToken(conn: ClientContext, rate: number): boolean {
  const state = conn.state;
  const now = performance.now();
  state.publishTokens = Math.min(rate, state.publishTokens + ((now - state.tokensRefilledAt) * rate) / 1000);
  state.tokensRefilledAt = now;
  if (state.publishTokens < 1) return false;
  state.publishTokens -= 1;
  return true;
}

/**
 * Routes an accepted message and acknowledges it once what it changed is durable (QoS 2: the packet
 * identifier is remembered until PUBREL). Once routed, a message is never refused: a failed store
 * write delays the acknowledgement until the retry succeeds, since subscribers may have it already.
 * `repeat`: a QoS 2 message that may have been routed before (in a cluster its receivers skip it then).
 */
function route(conn: ClientContext, message: Message, packetId: number, repeat: boolean): void {
  const broker = conn.broker;
  const session = conn.session!;
  const qos = message.qos;
  const router = broker.router;
  if (qos === 0) {
    router.publish(message, session);
    message.unref();
    return;
  }
  if (broker.persistence.failing) {
    // The store cannot take it now: refused before anyone receives it.
    message.unref();
    refuse(conn, qos, packetId, Reason.UnspecifiedError, 'the broker cannot store messages right now');
    return;
  }
  let outcome: PublishOutcome;
  let remote: Promise<void> | null = null;
  try {
    outcome = router.publish(message, session, qos === 2 && broker.cluster ? { clientId: session.clientId, packetId, repeat } : null);
    remote = router.remoteConfirmation;
  } finally {
    router.remoteConfirmation = null;
  }
  message.unref();
  const reason =
    outcome === PublishOutcome.QuotaExceeded
      ? Reason.QuotaExceeded
      : outcome === PublishOutcome.NoSubscribers
        ? Reason.NoMatchingSubscribers
        : Reason.Success;
  // A 5.0 PUBREC of 0x80 or more ends the flow: no PUBREL follows, and the identifier's next PUBLISH is a new message [MQTT-4.3.3-9].
  const flowEnds = conn.version === 5 && reason >= 0x80;
  if (qos === 2 && !flowEnds) session.rememberIncoming(packetId);
  const type = qos === 1 ? PacketType.PUBACK : PacketType.PUBREC;
  if (qos === 1) conn.state.pendingQos1Acks++;
  conn.acknowledgementPending();
  const answered = (): boolean => {
    if (qos === 1) conn.state.pendingQos1Acks--;
    conn.acknowledgementDone();
    return conn.open;
  };
  const acknowledge = (): void => {
    if (answered()) conn.sendAck(type, packetId, reason, reason === Reason.QuotaExceeded && conn.limits.problemInformation ? { reasonString: 'a subscriber queue is full' } : undefined);
  };
  // In a cluster, the nodes it was forwarded to must have made it durable too; a node gone for good refuses it.
  const refuseUndelivered = (error: Error): void => {
    if (!answered()) return;
    if (qos === 2) session.forgetIncoming(packetId);
    refuse(conn, qos, packetId, Reason.UnspecifiedError, `the message could not be delivered: ${error.message}`);
  };
  broker.persistence.whenWritten(() => {
    if (remote) remote.then(acknowledge, refuseUndelivered);
    else acknowledge();
  });
}

/**
 * A publish that may not be made (`$SYS`, or the authorization hook said no): 5.0 says so with
 * 0x87; 3.1.1 has no way to, so the message is acknowledged as usual and dropped (what Mosquitto does).
 */
function deny(conn: ClientContext, message: Message, packetId: number): void {
  const qos = message.qos;
  conn.broker.metrics.publishDenied++;
  conn.broker.logRepeatable('info', 'publish not authorized', conn.clientId, { client: conn.clientId, topic: message.topic() });
  message.unref();
  if (qos === 0) return;
  if (conn.version === 5) {
    refuse(conn, qos, packetId, Reason.NotAuthorized, 'not authorized to publish to this topic');
    return;
  }
  if (qos === 2) {
    conn.session!.rememberIncoming(packetId);
  }
  conn.sendAck(qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, packetId, Reason.Success);
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Turns a PUBLISH away without routing it. 5.0 says why in PUBACK / PUBREC; 3.1.1
 * has no negative acknowledgement, so a QoS 1/2 sender is disconnected rather than told "done".
 */
function refuse(conn: ClientContext, qos: number, packetId: number, reason: Reason, message: string): void {
  conn.broker.metrics.publishRefused++;
  conn.broker.logRepeatable('warn', 'publish refused', conn.clientId, { client: conn.clientId, reason, message });
  if (qos === 0) return;
  if (conn.version === 5) {
    const type = qos === 1 ? PacketType.PUBACK : PacketType.PUBREC;
    conn.sendAck(type, packetId, reason, conn.limits.problemInformation ? { reasonString: message } : undefined);
  } else {
    conn.disconnect(reason);
  }
}
