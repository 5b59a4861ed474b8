import { ConnackCode311, Reason } from '../codec/constants.js';
import { ProtocolError, protocolError } from '../codec/errors.js';
import * as generate from '../codec/generate.js';
import type { ConnectPacket } from '../codec/packets.js';
import type { Properties } from '../codec/properties.js';
import { ClusterRefusal } from '../model/cluster-hooks.js';
import { drainQueue, resendInflight } from '../model/delivery.js';
import type { Engine } from '../model/engine.js';
import type { AuthDecision } from '../model/options.js';
import { CloseKind } from '../model/outcomes.js';
import { NEVER_EXPIRES, type Session } from '../model/session.js';
import { isBrokerTopic, isTopicName } from '../model/topics.js';
import { publishWill } from '../model/will.js';
import { startAuthentication } from './auth.js';
import { type ClientContext, type ClientLimits, NO_LIMITS } from './context.js';

/** 5.0 reason codes and their 3.1.1 CONNACK return codes (§3.2.2.3 of each). */
const V311_CODE: Partial<Record<Reason, ConnackCode311>> = {
  [Reason.UnsupportedProtocolVersion]: ConnackCode311.UnacceptableProtocolVersion,
  [Reason.ClientIdentifierNotValid]: ConnackCode311.IdentifierRejected,
  [Reason.ServerUnavailable]: ConnackCode311.ServerUnavailable,
  [Reason.ServerBusy]: ConnackCode311.ServerUnavailable,
  [Reason.BadUserNameOrPassword]: ConnackCode311.BadUserNameOrPassword,
  [Reason.NotAuthorized]: ConnackCode311.NotAuthorized,
};

const randomId = (): string => Array.from(globalThis.crypto.getRandomValues(new Uint8Array(9)), (b) => b.toString(36).padStart(2, '0')).join('');

/**
 * CONNECT (§3.1): validates, authenticates (a hook, or 5.0 enhanced authentication), then sets up or
 * resumes the session and answers CONNACK. Authentication may be asynchronous: meanwhile the
 * connection is Connecting and packets that follow CONNECT are held back (§3.1.4).
 */
export function handleConnect(conn: ClientContext, packet: ConnectPacket): void {
  const broker = conn.broker;
  conn.beginConnect(packet.version, packet.version === 5 ? limitsOf(packet) : NO_LIMITS);
  if (broker.overloaded) {
    broker.metrics.memoryRefused++;
    refuse(conn, Reason.QuotaExceeded, 'the server is over its memory limit');
    return;
  }
  let clientId = packet.clientId;
  let assigned = false;
  if (clientId.length === 0) {
    // 3.1 requires an identifier; 3.1.1 allows none only with CleanSession=1 [MQTT-3.1.3-7], [MQTT-3.1.3-8];
    // 5.0 assigns one in every case [MQTT-3.1.3-6].
    if (packet.version === 3 || (packet.version === 4 && !packet.cleanStart)) {
      refuse(conn, Reason.ClientIdentifierNotValid, 'a zero-length client identifier needs a clean session');
      return;
    }
    // Random, and checked: an assigned identifier must not take over an existing session.
    do clientId = `arbormq-${randomId()}`;
    while (broker.sessions.has(clientId));
    assigned = true;
  }
  const props = packet.props;
  if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
    throw protocolError('Authentication Data without an Authentication Method (§3.1.2.11.10)');
  }
  if (packet.will) checkWill(conn, packet);
  const maxKeepAlive = broker.options.maxKeepAlive;
  if (packet.version !== 5 && maxKeepAlive > 0 && packet.keepAlive > maxKeepAlive) {
    // 3.x cannot be told a Server Keep Alive: refused as Mosquitto does, "identifier rejected".
    // Keep alive 0 (none) is a 3.x client's own choice and accepted, as by Mosquitto.
    refuse(conn, Reason.ClientIdentifierNotValid, `keep alive ${packet.keepAlive} s exceeds the maximum of ${maxKeepAlive} s`);
    return;
  }
  const redirect = broker.options.redirect;
  if (redirect && packet.version === 5) {
    const reason = redirect.permanent ? Reason.ServerMoved : Reason.UseAnotherServer;
    conn.send(generate.connack(5, false, reason, { serverReference: redirect.serverReference }));
    conn.close(CloseKind.Abnormal);
    return;
  }
  if (redirect) {
    refuse(conn, Reason.ServerUnavailable, `server moved to ${redirect.serverReference}`);
    return;
  }
  conn.state.pendingConnect = { packet, clientId, assigned };
  if (props.authenticationMethod !== undefined) {
    startAuthentication(conn, props.authenticationMethod, props.authenticationData);
    return;
  }
  const hook = broker.options.authenticate;
  if (!hook) {
    completeConnect(conn);
    return;
  }
  const decision = hook({
    clientId,
    username: packet.username,
    password: packet.password,
    remoteAddress: conn.remoteAddress,
    version: packet.version,
  });
  if (decision instanceof Promise) conn.holdFor(decision, (d) => authenticated(conn, d));
  else authenticated(conn, decision);
}

function authenticated(conn: ClientContext, decision: AuthDecision): void {
  if (decision === true || (typeof decision === 'object' && 'username' in decision)) {
    conn.authenticated(decision === true ? conn.state.pendingConnect!.packet.username : decision.username);
    completeConnect(conn);
    return;
  }
  const { reason, message } = decision === false ? { reason: Reason.BadUserNameOrPassword, message: 'bad user name or password' } : decision;
  refuse(conn, reason, message ?? 'not authorized');
}

/**
 * Authentication succeeded (`conn.username` is who the client is): the will's topic is authorized as a
 * PUBLISH there would be (refused: the CONNECT is refused, as Mosquitto 2.0 does), then the
 * session is opened and CONNACK answered.
 */
export function completeConnect(conn: ClientContext, authProps?: Properties): void {
  const broker = conn.broker;
  const { packet, clientId } = conn.state.pendingConnect!;
  const will = packet.will;
  if (!will) {
    openSessionAndAcknowledge(conn, authProps);
    return;
  }
  if (isBrokerTopic(will.topic)) {
    refuse(conn, Reason.NotAuthorized, 'a will may not be published to $SYS');
    return;
  }
  const authorize = broker.options.authorizePublish;
  const decision = authorize ? authorize({ clientId, username: conn.username, remoteAddress: conn.remoteAddress }, will.topic, will.qos, will.retain) : true;
  const settle = (allowed: boolean): void => {
    if (allowed) openSessionAndAcknowledge(conn, authProps);
    else refuse(conn, Reason.NotAuthorized, 'not authorized to publish the will to its topic');
  };
  if (decision instanceof Promise) conn.holdFor(decision, settle);
  else settle(decision);
}

/**
 * Opens the session, answers CONNACK, then serves what the client sent meanwhile. A session — and its
 * connection — belongs to the user who created it: another user's CONNECT for its client identifier
 * is refused and touches neither.
 */
function openSessionAndAcknowledge(conn: ClientContext, authProps: Properties | undefined, clusterCleared = false): void {
  const broker = conn.broker;
  const { packet, clientId, assigned } = conn.state.pendingConnect!;
  const props = packet.props;
  const requestedExpiry = packet.version === 5 ? (props.sessionExpiryInterval ?? 0) : packet.cleanStart ? 0 : NEVER_EXPIRES;
  const expiry = Math.min(requestedExpiry, broker.options.maxSessionExpiry);
  // In a cluster the client id may be served elsewhere: that node lets go of it (and hands its session over) first.
  const cleared = clusterCleared || !broker.cluster ? null : broker.cluster.beforeOpen(conn, clientId, packet.cleanStart, expiry > 0);
  if (cleared) {
    conn.holdFor(
      cleared.then(
        () => null,
        (error: Error) => error,
      ),
      (error) => {
        if (error === null) openSessionAndAcknowledge(conn, authProps, true);
        else refuse(conn, error instanceof ClusterRefusal ? error.reason : Reason.ServerUnavailable, error.message);
      },
    );
    return;
  }
  const existing = broker.sessions.get(clientId);
  if (existing && existing.ownerKnown && existing.owner !== conn.username) {
    refuse(conn, Reason.NotAuthorized, 'the client identifier is in use by another user');
    return;
  }
  conn.state.pendingConnect = null;
  const [session, sessionPresent] = openSession(broker, clientId, packet.cleanStart, packet.version === 5);
  if (!session.ownerKnown || !sessionPresent) broker.setOwner(session, conn.username);
  session.version = packet.version;
  session.expiryInterval = expiry;
  session.will = packet.will;

  let keepAlive = packet.keepAlive;
  const maxKeepAlive = broker.options.maxKeepAlive;
  let serverKeepAlive: number | undefined;
  if (packet.version === 5 && maxKeepAlive > 0 && (keepAlive === 0 || keepAlive > maxKeepAlive)) {
    keepAlive = maxKeepAlive;
    serverKeepAlive = keepAlive;
  }

  if (packet.version === 5) {
    const options = broker.options;
    const ack: Properties = { ...authProps };
    if (assigned) ack.assignedClientIdentifier = clientId;
    if (expiry !== requestedExpiry) ack.sessionExpiryInterval = expiry;
    if (serverKeepAlive !== undefined) ack.serverKeepAlive = serverKeepAlive;
    if (options.receiveMaximum < 65535) ack.receiveMaximum = options.receiveMaximum;
    ack.maximumPacketSize = options.maxPacketSize;
    if (options.topicAliasMaximum > 0) ack.topicAliasMaximum = options.topicAliasMaximum;
    if (options.maxQoS < 2) ack.maximumQoS = options.maxQoS;
    if (!options.retainAvailable) ack.retainAvailable = 0;
    if (!options.wildcardSubscriptions) ack.wildcardSubscriptionAvailable = 0;
    if (!options.subscriptionIdentifiers) ack.subscriptionIdentifiersAvailable = 0;
    if (!options.sharedSubscriptions) ack.sharedSubscriptionAvailable = 0;
    if (props.requestResponseInformation === 1 && options.responseInformation) {
      ack.responseInformation = options.responseInformation.replaceAll('{clientId}', clientId);
    }
    conn.send(generate.connack(5, sessionPresent, Reason.Success, ack));
  } else {
    // 3.1 has no Session Present flag: the byte is reserved there.
    conn.send(generate.connack(packet.version, packet.version === 4 && sessionPresent, 0));
  }
  conn.connected(session, keepAlive);
  broker.log('debug', 'client connected', { client: clientId, version: packet.version, address: conn.remoteAddress });
  broker.persistence.saveSession(session);
  resendInflight(broker, session);
  drainQueue(broker, session);
}

/**
 * Finds or creates the session. An existing connection with the same identifier is closed first
 * [MQTT-3.1.4-3]; Clean Start discards the old session [MQTT-3.1.2-4], otherwise it is resumed.
 */
function openSession(broker: Engine, clientId: string, cleanStart: boolean, v5: boolean): [Session, boolean] {
  let session = broker.sessions.get(clientId);
  if (session?.outlet) {
    const old = session.outlet;
    broker.metrics.sessionTakeovers++;
    broker.logRepeatable('info', 'session taken over', clientId, { client: clientId, address: old.remoteAddress });
    // The old connection closes without DISCONNECT: its will goes now, unless (5.0) a Will Delay lets the
    // resuming connection cancel it [MQTT-3.1.2-8], [MQTT-3.1.3-9].
    const delayed = v5 && !cleanStart && (session.will?.props.willDelayInterval ?? 0) > 0;
    if (!delayed) publishWill(broker, session);
    session.will = null;
    session.outlet = null;
    old.disconnect(Reason.SessionTakenOver);
  }
  if (session && cleanStart) {
    broker.endSession(session);
    session = undefined;
  }
  return session ? [session, true] : [broker.createSession(clientId), false];
}

/** The limits a 5.0 client states in CONNECT; what it leaves out has the specification's default. */
function limitsOf(packet: ConnectPacket): ClientLimits {
  const props = packet.props;
  return {
    receiveMaximum: props.receiveMaximum ?? NO_LIMITS.receiveMaximum,
    maxPacketSize: props.maximumPacketSize ?? NO_LIMITS.maxPacketSize,
    topicAliasMaximum: props.topicAliasMaximum ?? NO_LIMITS.topicAliasMaximum,
    problemInformation: props.requestProblemInformation !== 0,
  };
}

function checkWill(conn: ClientContext, packet: ConnectPacket): void {
  const will = packet.will!;
  const broker = conn.broker;
  if (!isTopicName(broker.core, will.topic)) {
    throw new ProtocolError(Reason.TopicNameInvalid, `will topic ${JSON.stringify(will.topic)} is not a valid topic name`);
  }
  if (will.qos > broker.options.maxQoS) {
    throw new ProtocolError(Reason.QoSNotSupported, `will QoS ${will.qos} exceeds the maximum QoS ${broker.options.maxQoS}`);
  }
  if (will.retain && !broker.options.retainAvailable) {
    throw new ProtocolError(Reason.RetainNotSupported, 'retained wills are not supported here');
  }
}

/** Answers CONNACK with a refusal (the version's own code) and closes [MQTT-3.2.2-5]. */
export function refuse(conn: ClientContext, reason: Reason, message: string, props: Properties = {}): void {
  conn.broker.metrics.connectsRefused++;
  conn.broker.logRepeatable('info', 'connection refused', conn.remoteAddress, { address: conn.remoteAddress, reason, message });
  conn.state.pendingConnect = null;
  if (conn.version === 5) {
    conn.sendWithProperties((p) => generate.connack(5, false, reason, p), { ...props, reasonString: message });
  } else {
    conn.send(generate.connack(conn.version || 4, false, V311_CODE[reason] ?? ConnackCode311.ServerUnavailable));
  }
  conn.close(CloseKind.Abnormal);
}

/** A protocol level we do not speak: CONNACK 0x01 in the 3.1.1 form, then close [MQTT-3.1.2-2]. */
export function refuseUnsupportedVersion(conn: ClientContext, level: number): void {
  conn.beginConnect(4, NO_LIMITS);
  refuse(conn, Reason.UnsupportedProtocolVersion, `protocol level ${level} is not supported`);
}
