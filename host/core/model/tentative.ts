import { cancel, release, sendQos0 } from './delivery.js';
import type { Engine } from './engine.js';
import type { Message } from './message.js';
import type { Delivery, Session } from './session.js';

/**
 * The deliveries of one QoS 1/2 PUBLISH while its acceptance is undecided: its acknowledgement
 * waits for a commit, and if that commit fails the publisher is refused, so nobody may have
 * received the message. They are held here and sent (or cancelled) when the commit ends — at once
 * when nothing was waiting to be written. A RETAIN it applied is undone.
 */
export class Tentative {
  private readonly sessions: Session[] = [];
  /** The QoS 1/2 delivery to sessions[i], or null for a QoS 0 send. */
  private readonly deliveries: (Delivery | null)[] = [];
  private readonly qos0: { retain: boolean; subscriptionIds: number[] | null }[] = [];
  private readonly message: Message;
  /** The message's RETAIN replaced this one (or nothing); kept until the commit ends, to undo it. */
  private previousRetained: Message | null | undefined;

  constructor(
    private readonly engine: Engine,
    message: Message,
  ) {
    this.message = message.ref();
  }

  replacedRetained(previous: Message | null): void {
    this.previousRetained = previous;
  }

  holdQos0(session: Session, retain: boolean, subscriptionIds: number[] | null): void {
    this.sessions.push(session);
    this.deliveries.push(null);
    this.qos0.push({ retain, subscriptionIds });
  }

  hold(session: Session, delivery: Delivery): void {
    delivery.holds++;
    this.sessions.push(session);
    this.deliveries.push(delivery);
  }

  /** The commit ended: deliver what was held, or (`failed`) cancel all of it. */
  settle(failed: boolean): void {
    const engine = this.engine;
    let q = 0;
    for (let i = 0; i < this.sessions.length; i++) {
      const session = this.sessions[i]!;
      const delivery = this.deliveries[i]!;
      if (delivery === null) {
        const { retain, subscriptionIds } = this.qos0[q++]!;
        if (!failed && session.outlet !== null) sendQos0(engine, session, this.message, retain, subscriptionIds);
      } else if (failed) {
        // Created by this PUBLISH, so its record is part of the commit that failed.
        cancel(engine, session, delivery);
      } else {
        release(engine, session, delivery);
      }
    }
    if (this.previousRetained !== undefined) {
      if (failed) engine.retained.revert(this.message, this.previousRetained);
      else this.previousRetained?.unref();
    }
    this.message.unref();
  }
}
