import { Reason } from './codec/constants.js';
import { Connection } from './connection.js';
import { CloseKind } from './model/outcomes.js';
import { Engine } from './model/engine.js';
import { restore } from './model/restore.js';
import { FlushQueue, OutboxPool } from './outbox.js';
import type { Transport } from './transport.js';

/**
 * The broker: the Engine (sessions, routing, retained messages, persistence over the wasm core)
 * with the connections that feed it, from any transport, and their batched output.
 */
export class Broker extends Engine {
  readonly connections = new Set<Connection>();
  /** Every connection's queued output goes to its transport through this. */
  readonly flushes = new FlushQueue();
  /** Where a connection's output of one turn is built (lent until its flush). */
  readonly outboxes = new OutboxPool(this.core, this.options.copyLimitBytes);

  /**
   * Opens the store and rebuilds the arena, the trie and the sessions from it (restore.ts), before
   * the first connection is accepted.
   */
  start(): Promise<void> {
    return restore(this);
  }

  /** Starts serving one client over `transport`. */
  accept(transport: Transport): Connection | null {
    if (this.closing) {
      transport.destroy();
      return null;
    }
    const conn = new Connection(this, transport);
    this.connections.add(conn);
    this.metrics.connectionsAccepted++;
    return conn;
  }

  /** A connection is gone: its session (if it was still its own) is detached. */
  connectionClosed(conn: Connection, kind: CloseKind): void {
    this.connections.delete(conn);
    const session = conn.session;
    if (session && session.outlet === conn) this.detach(session, kind);
  }

  /**
   * Stops the broker: every client gets DISCONNECT 0x8B (5.0) and is closed, then all state held in
   * the arena is released.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // From here no deadline fires: the store keeps when each session was disconnected.
    this.timers.stop();
    for (const conn of [...this.connections]) {
      if (conn.isConnected) conn.disconnect(Reason.ServerShuttingDown);
      else conn.close(CloseKind.Abnormal);
    }
    this.flushes.flushAll();
    const now = performance.now();
    for (const session of this.sessions.values()) {
      if (!session.outlet) continue;
      session.outlet = null;
      session.disconnectedAt = now;
      this.persistence.saveSession(session);
    }
    await this.persistence.drain();
    // The store keeps the state; here only memory is given back.
    for (const session of [...this.sessions.values()]) this.releaseSession(session);
    this.retained.clear();
    this.logs.flush();
    await this.persistence.store.close();
  }
}
