import type { Broker } from './broker.js';
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

/** Publishes and forgets the session's will, if it still has one. */
export function publishWill(broker: Broker, session: Session): void {
  cancelWillTimer(session);
  const will = session.will;
  session.will = null;
  if (!will) return;
  const expiry = will.props.messageExpiryInterval;
  const expiresAt = expiry === undefined ? 0 : performance.now() + expiry * 1000;
  const message = Message.create(broker.core, will.topic, will.payload, will.qos, will.retain, will.forward, expiresAt);
  if (!message) {
    broker.metrics.arenaFullDropped++;
    broker.log('error', 'arena full: will message dropped', { client: session.clientId });
    return;
  }
  broker.log('debug', 'publishing will', { client: session.clientId, topic: will.topic });
  broker.publish(message, null);
  message.release();
}

/** The will is no longer pending (the session's timer finds nothing due for it). */
export function cancelWillTimer(session: Session): void {
  session.willAt = Infinity;
}
