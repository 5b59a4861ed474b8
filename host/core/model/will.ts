import type { WillMessage } from '../codec/packets.js';
import type { Engine } from './engine.js';
import { Message } from './message.js';
import type { Session } from './session.js';
import { isBrokerTopic } from './topics.js';

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
export function scheduleWill(engine: Engine, session: Session): void {
  if (!session.will) return;
  const due = willDue(session);
  if (due <= session.disconnectedAt) publishWill(engine, session);
  else session.willAt = due;
}

/**
 * Publishes and forgets the session's will, if it still has one. Its topic was authorized at CONNECT;
 * it is asked again now, since the rules may have changed (an ACL reload, a restart): a will its
 * owner may no longer publish is dropped.
 */
export function publishWill(engine: Engine, session: Session): void {
  cancelWillTimer(session);
  const will = session.will;
  session.will = null;
  if (!will) return;
  if (isBrokerTopic(will.topic)) {
    dropWill(engine, session, will, 'wills never go to $SYS');
    return;
  }
  const authorize = engine.options.authorizePublish;
  const client = { clientId: session.clientId, username: session.owner, remoteAddress: session.remoteAddress };
  const decision = authorize ? authorize(client, will.topic, will.qos, will.retain) : true;
  if (decision === true) sendWill(engine, session, will);
  else if (decision === false) dropWill(engine, session, will, 'not authorized to publish to this topic');
  else {
    decision.then(
      (ok) => {
        if (engine.isClosing) return;
        if (ok) sendWill(engine, session, will);
        else dropWill(engine, session, will, 'not authorized to publish to this topic');
      },
      (error: Error) => dropWill(engine, session, will, `the authorization failed: ${error.message}`),
    );
  }
}

function sendWill(engine: Engine, session: Session, will: WillMessage): void {
  const expiry = will.props.messageExpiryInterval;
  const expiresAt = expiry === undefined ? 0 : performance.now() + expiry * 1000;
  const message = Message.create(engine.core, will.topic, will.payload, will.qos, will.retain, will.forward, expiresAt);
  if (!message) {
    engine.metrics.arenaFullDropped++;
    engine.logRepeatable('error', 'arena full: will message dropped', session.clientId, { client: session.clientId });
    return;
  }
  engine.log('debug', 'publishing will', { client: session.clientId, topic: will.topic });
  engine.router.publish(message, null);
  message.unref();
}

function dropWill(engine: Engine, session: Session, will: WillMessage, reason: string): void {
  engine.logRepeatable('info', 'will message dropped', session.clientId, { client: session.clientId, topic: will.topic, reason });
}

/** The will is no longer pending (the session's timer finds nothing due for it). */
export function cancelWillTimer(session: Session): void {
  session.willAt = Infinity;
}
