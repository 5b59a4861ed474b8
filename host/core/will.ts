import type { Broker } from './broker.js';
import { isBrokerTopic } from './broker-topics.js';
import type { WillMessage } from './codec/packets.js';
import { Message } from './message.js';
import type { Session } from './session.js';

/**
 * When the will of a disconnected session is due: after its Will Delay Interval, or when the session
 * ends if that is sooner [MQTT-3.1.3-9], counted from the disconnection.
 */
export function willDue(session: Session): number {
  return session.disconnectedAt + Math.min(session.will!.props.willDelayInterval ?? 0, session.expiryInterval) * 1000;
}

/**
 * After an abnormal close: the will goes now, or (5.0 Will Delay) at `willDue` unless the client
 * reconnects first [MQTT-3.1.2-8]. The caller arms the session's timer.
 */
export function scheduleWill(broker: Broker, session: Session): void {
  if (!session.will) return;
  const due = willDue(session);
  if (due <= session.disconnectedAt) publishWill(broker, session);
  else session.willAt = due;
}

/**
 * Publishes and forgets the session's will, if it still has one. Its topic was authorized at CONNECT;
 * it is asked again now, since the rules may have changed (an ACL reload, a restart): a will its
 * owner may no longer publish is dropped.
 */
export function publishWill(broker: Broker, session: Session): void {
  cancelWillTimer(session);
  const will = session.will;
  session.will = null;
  if (!will) return;
  if (isBrokerTopic(will.topic)) {
    dropWill(broker, session, will, 'wills never go to $SYS');
    return;
  }
  const authorize = broker.options.authorizePublish;
  const client = { clientId: session.clientId, username: session.owner, remoteAddress: session.remoteAddress };
  const decision = authorize ? authorize(client, will.topic, will.qos, will.retain) : true;
  if (decision === true) sendWill(broker, session, will);
  else if (decision === false) dropWill(broker, session, will, 'not authorized to publish to this topic');
  else {
    decision.then(
      (ok) => {
        if (broker.isClosing) return;
        if (ok) sendWill(broker, session, will);
        else dropWill(broker, session, will, 'not authorized to publish to this topic');
      },
      (error: Error) => dropWill(broker, session, will, `the authorization failed: ${error.message}`),
    );
  }
}

function sendWill(broker: Broker, session: Session, will: WillMessage): void {
  const expiry = will.props.messageExpiryInterval;
  const expiresAt = expiry === undefined ? 0 : performance.now() + expiry * 1000;
  const message = Message.create(broker.core, will.topic, will.payload, will.qos, will.retain, will.forward, expiresAt);
  if (!message) {
    broker.metrics.arenaFullDropped++;
    broker.logRepeatable('error', 'arena full: will message dropped', session.clientId, { client: session.clientId });
    return;
  }
  broker.log('debug', 'publishing will', { client: session.clientId, topic: will.topic });
  broker.publish(message, null);
  message.unref();
}

function dropWill(broker: Broker, session: Session, will: WillMessage, reason: string): void {
  broker.logRepeatable('info', 'will message dropped', session.clientId, { client: session.clientId, topic: will.topic, reason });
}

/** The will is no longer pending (the session's timer finds nothing due for it). */
export function cancelWillTimer(session: Session): void {
  session.willAt = Infinity;
}
