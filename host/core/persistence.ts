import type { Broker } from './broker.js';
import type { Message } from './message.js';
import { afterIo } from './schedule.js';
import type { Session } from './session.js';
import { batchSize, emptyBatch, type Store, type StoredMessage, type StoredSession } from './store.js';

/**
 * Collects the state changes of one tick into a batch and writes it to the Store in one go
 * (group commit). Sessions with expiry 0 live and die with their connection and are not stored.
 */
export class Persistence {
  private batch = emptyBatch();
  private scheduled = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly broker: Broker,
    readonly store: Store,
  ) {}

  /** Records the session's current state (or its removal when it is not persistent). */
  saveSession(session: Session): void {
    if (session.expiryInterval === 0) {
      if (!session.stored) return;
      session.stored = false;
      this.batch.sessions.set(session.clientId, null);
    } else {
      session.stored = true;
      this.batch.sessions.set(session.clientId, toStoredSession(session));
    }
    this.schedule();
  }

  deleteSession(session: Session): void {
    if (!session.stored) return;
    session.stored = false;
    this.batch.sessions.set(session.clientId, null);
    this.schedule();
  }

  saveRetained(message: Message): void {
    this.batch.retained.set(message.topic(), toStoredMessage(message));
    this.schedule();
  }

  deleteRetained(topic: string): void {
    this.batch.retained.set(topic, null);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    afterIo(() => void this.commit());
  }

  /** Writes what is pending; resolves when it is durable. Writes are serialised in order. */
  commit(): Promise<void> {
    this.scheduled = false;
    if (batchSize(this.batch) === 0) return this.writing;
    const batch = this.batch;
    this.batch = emptyBatch();
    this.writing = this.writing.then(() =>
      this.store.write(batch).catch((error: Error) => {
        this.broker.log('error', 'store write failed', { error: error.message });
      }),
    );
    return this.writing;
  }
}

const wallClock = (monotonic: number): number => (monotonic === 0 ? 0 : Date.now() + (monotonic - performance.now()));

export function toStoredMessage(message: Message): StoredMessage {
  return {
    topic: message.topic(),
    payload: message.payload(),
    qos: message.qos,
    retain: message.retain,
    forward: message.forward,
    expiresAt: wallClock(message.expiresAt),
  };
}

function toStoredSession(session: Session): StoredSession {
  const will = session.will;
  return {
    clientId: session.clientId,
    version: session.version,
    expiryInterval: session.expiryInterval,
    disconnectedAt: session.connection ? 0 : Date.now() - (performance.now() - session.disconnectedAt),
    subscriptions: [...session.subscriptions.values()].map((s) => ({
      filter: s.filter,
      qos: s.qos,
      noLocal: s.noLocal,
      retainAsPublished: s.retainAsPublished,
      retainHandling: s.retainHandling,
      subscriptionId: s.subscriptionId,
    })),
    will: will
      ? {
          topic: will.topic,
          payload: will.payload,
          qos: will.qos,
          retain: will.retain,
          forward: will.forward,
          expiresAt: 0,
          delaySeconds: will.props.willDelayInterval ?? 0,
          messageExpiryInterval: will.props.messageExpiryInterval,
        }
      : null,
  };
}
