import type { Broker } from './broker.js';
import { Message } from './message.js';
import type { Session } from './session.js';

/**
 * After an abnormal close: the will goes after its Will Delay Interval, or when the session ends if
 * that is sooner, unless the client reconnects first [MQTT-3.1.3-9], [MQTT-3.1.2-8].
 */
export function scheduleWill(broker: Broker, session: Session, elapsedSeconds = 0): void {
  const will = session.will;
  if (!will) return;
  const delay = Math.min(will.props.willDelayInterval ?? 0, session.expiryInterval) - elapsedSeconds;
  if (delay <= 0) {
    publishWill(broker, session);
    return;
  }
  session.willTimer = setTimeout(() => publishWill(broker, session), delay * 1000);
  session.willTimer.unref?.();
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
    broker.logRepeatable('error', 'arena full: will message dropped', session.clientId, { client: session.clientId });
    return;
  }
  broker.log('debug', 'publishing will', { client: session.clientId, topic: will.topic });
  broker.publish(message, null);
  message.release();
}

export function cancelWillTimer(session: Session): void {
  if (session.willTimer) clearTimeout(session.willTimer);
  session.willTimer = null;
}
