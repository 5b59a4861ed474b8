import type { ProtocolVersion, Reason } from '../codec/constants.js';
import type { Message } from './message.js';
import type { ClientOutlet } from './outlet.js';
import type { Session } from './session.js';

/** Resolves once every node a message was forwarded to has made it durable (or left the cluster). */
export type RemoteConfirmation = Promise<void>;

/** A client's QoS 2 PUBLISH, as the nodes of a cluster tell it apart from a resend of it until its PUBREL. */
export interface Qos2Origin {
  readonly clientId: string;
  readonly packetId: number;
  /** It may have been routed before: DUP is set, or its identifier is held already (its PUBREC was lost). */
  readonly repeat: boolean;
}

/** A client whose CONNECT is authenticated and about to open its session. */
export interface OpeningClient {
  /** The outlet its session will get (its connection). */
  readonly outlet: ClientOutlet;
  readonly username: string | undefined;
  readonly version: ProtocolVersion | 0;
}

/**
 * What a broker that is one node of a cluster tells the cluster layer (host/node/cluster) and asks
 * it. A single broker — and every browser broker — has none, and none of this runs. Messages reach
 * the other nodes through the Router like they reach sessions: each peer's routes are a trie client
 * of their own, delivered to the peer's Outlet (Router.addLink).
 */
export interface BrokerCluster {
  /** A local session now subscribes to `filter` (as written, `$share/{group}/` included) / no longer does. */
  subscribed(filter: string): void;
  unsubscribed(filter: string): void;
  /**
   * The message's local deliveries are made and its links were handed it: forwards go out (and a
   * retained one is replicated). For QoS 1/2, what the publisher's acknowledgement must wait for
   * besides the local store.
   */
  routed(message: Message, publisher: Session | null, origin: Qos2Origin | null): RemoteConfirmation | null;
  /** A QoS 2 message that may be a repeat: whether this node's subscribers were given it already (they are skipped). */
  deliveredHere(message: Message, origin: Qos2Origin): boolean;
  /** A client released a QoS 2 packet identifier (PUBREL): the nodes that delivered its message forget it. */
  released(clientId: string, packetId: number): void;
  /**
   * A CONNECT is authenticated and about to open its session here. Settles when the client id is
   * this node's to serve (ownership claimed, a session elsewhere taken over and installed); rejects
   * when the cluster cannot decide now. null: nothing to wait for.
   */
  beforeOpen(client: OpeningClient, clientId: string, cleanStart: boolean, persistent: boolean): Promise<void> | null;
  /** A session ended on this node (expired, or discarded by a clean start): its ownership goes. */
  sessionEnded(session: Session): void;
}

/** Why the cluster turns a CONNECT away: the CONNACK reason (0x88 Server unavailable while etcd is unreachable). */
export class ClusterRefusal extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
  ) {
    super(message);
  }
}
