import type { Logger } from '../../core/model/options.js';
import { LINK_PROTOCOL_VERSION, type FrameReader } from './frame.js';
import type { LinkIdentity } from './handshake.js';
import type { Link } from './link.js';
import { dialLink, type LinkTls } from './link-listener.js';
import type { MemberInfo } from './membership.js';

const REDIAL_MIN_MS = 100;
const REDIAL_MAX_MS = 5000;


/** A peer node: its membership, its link (when up), and what the cluster keeps about it across links. */
export class Peer<State> {
  member: MemberInfo | null = null;
  link: Link | null = null;
  /** The incarnation of the last link: a different one means the peer restarted. */
  incarnation: string | null = null;
  linkUps = 0;
  private redialDelay = REDIAL_MIN_MS;
  redialTimer: ReturnType<typeof setTimeout> | null = null;
  /** Set while the peer is gone from etcd: when it fires, the peer is given up. */
  departedTimer: ReturnType<typeof setTimeout> | null = null;
  dialing = false;

  constructor(
    readonly node: string,
    readonly state: State,
  ) {}

  get up(): boolean {
    return this.link !== null && this.link.open;
  }

  nextRedialDelay(): number {
    const delay = this.redialDelay;
    this.redialDelay = Math.min(delay * 2, REDIAL_MAX_MS);
    return delay * (0.75 + Math.random() * 0.5);
  }

  resetRedial(): void {
    this.redialDelay = REDIAL_MIN_MS;
  }
}

/** What the cluster does when peers and their links come and go. */
export interface MeshHandler<State> {
  newPeerState(node: string): State;
  /** A link is up; `restarted` when the peer is a new process since the last link. */
  linkUp(peer: Peer<State>, restarted: boolean): void;
  linkDown(peer: Peer<State>, reason: string): void;
  frame(peer: Peer<State>, reader: FrameReader): void;
  /** The peer left the cluster (its member key is gone). */
  peerLeft(peer: Peer<State>): void;
}

/**
 * One link per pair of nodes: the node whose id sorts first dials, the other accepts; a link that
 * drops is dialed again with backoff for as long as the peer is a member. A new authenticated link
 * from a peer replaces the one it had.
 */
export class Mesh<State> {
  readonly peers = new Map<string, Peer<State>>();
  private closed = false;
  private readonly refusedVersions = new Set<string>();

  constructor(
    private readonly self: LinkIdentity,
    private readonly tls: LinkTls | null,
    private readonly handler: MeshHandler<State>,
    private readonly log: Logger,
  ) {}

  private peer(node: string): Peer<State> {
    let peer = this.peers.get(node);
    if (!peer) {
      peer = new Peer(node, this.handler.newPeerState(node));
      this.peers.set(node, peer);
    }
    return peer;
  }

  memberJoined(member: MemberInfo): void {
    if (this.closed) return;
    if (member.protocol !== LINK_PROTOCOL_VERSION) {
      const key = `${member.node}/${member.incarnation}`;
      if (!this.refusedVersions.has(key)) {
        this.refusedVersions.add(key);
        this.log('error', 'cluster: not linking to a member with an incompatible link protocol', {
          peer: member.node,
          theirs: member.protocol,
          ours: LINK_PROTOCOL_VERSION,
        });
      }
      return;
    }
    const peer = this.peer(member.node);
    if (peer.departedTimer) {
      clearTimeout(peer.departedTimer);
      peer.departedTimer = null;
      this.log('info', 'cluster: member is back', { peer: member.node });
    }
    peer.member = member;
    if (!this.dials(member.node)) return;
    // A link to another process than the member's is stale; one dialed at the old key's address that
    // reached the new process already (it restarted at the same address) is not.
    if (peer.link && peer.incarnation !== member.incarnation) peer.link.close('the peer restarted');
    peer.resetRedial();
    this.dial(peer);
  }

  /**
   * A member's key is gone. Its link closes; what is kept for it stays for `graceMs` in case it comes
   * back as the same id (a restart finds its forwards kept), then the peer is given up.
   */
  memberLeft(node: string, graceMs: number): void {
    const peer = this.peers.get(node);
    if (!peer || peer.member === null) return;
    if (peer.redialTimer) clearTimeout(peer.redialTimer);
    peer.redialTimer = null;
    peer.member = null;
    peer.link?.close('the peer left the cluster');
    this.log('warn', 'cluster: member left; keeping its routes and unconfirmed forwards for a while in case it returns', { peer: node, graceMs });
    peer.departedTimer = setTimeout(() => {
      if (this.peers.get(node) !== peer || peer.member !== null) return;
      this.peers.delete(node);
      peer.link?.close('the peer left the cluster');
      this.handler.peerLeft(peer);
    }, graceMs);
    peer.departedTimer.unref();
  }

  /** Members with a compatible protocol: those this node must be linked to. */
  expected(): Peer<State>[] {
    return [...this.peers.values()].filter((p) => p.member !== null);
  }

  private dials(node: string): boolean {
    return this.self.node < node;
  }

  private dial(peer: Peer<State>): void {
    if (this.closed || peer.dialing || peer.up || !peer.member || this.peers.get(peer.node) !== peer) return;
    if (peer.redialTimer) {
      clearTimeout(peer.redialTimer);
      peer.redialTimer = null;
    }
    peer.dialing = true;
    const member = peer.member;
    dialLink(member.url, this.tls, this.self, peer.node).then(
      (link) => {
        peer.dialing = false;
        if (this.closed || this.peers.get(peer.node) !== peer) {
          link.close('not a member any more');
          return;
        }
        this.attach(peer, link);
      },
      (error: Error) => {
        peer.dialing = false;
        const delay = peer.nextRedialDelay();
        this.log(peer.linkUps === 0 && delay < 1000 ? 'debug' : 'warn', 'cluster: cannot link to peer; retrying', {
          peer: peer.node,
          url: member.url,
          error: error.message,
          retryMs: Math.round(delay),
        });
        this.scheduleDial(peer, delay);
      },
    );
  }

  private scheduleDial(peer: Peer<State>, delay: number): void {
    if (this.closed || !peer.member) return;
    peer.redialTimer = setTimeout(() => {
      peer.redialTimer = null;
      this.dial(peer);
    }, delay);
    peer.redialTimer.unref();
  }

  /** A link a peer dialed (after its handshake). */
  accepted(link: Link): void {
    if (this.closed) {
      link.close('shutting down');
      return;
    }
    this.attach(this.peer(link.peer.node), link);
  }

  private attach(peer: Peer<State>, link: Link): void {
    const old = peer.link;
    if (old && old.open) {
      peer.link = null;
      old.close('replaced by a new link');
    }
    peer.link = link;
    peer.linkUps++;
    peer.resetRedial();
    const restarted = peer.incarnation !== null && peer.incarnation !== link.peer.incarnation;
    peer.incarnation = link.peer.incarnation;
    this.log('info', 'cluster: link up', { peer: peer.node, dialed: link.dialed, restarted });
    // Before the first frame is handled, frames that came during the handshake included: linkUp
    // restores what was applied from the peer, and a forward handled before would be taken for new.
    this.handler.linkUp(peer, restarted);
    link.start({
      frame: (reader) => this.handler.frame(peer, reader),
      closed: (closed, reason) => {
        if (peer.link !== closed) return;
        peer.link = null;
        this.log(this.closed ? 'debug' : 'warn', 'cluster: link down', { peer: peer.node, reason });
        this.handler.linkDown(peer, reason);
        if (this.dials(peer.node)) this.scheduleDial(peer, peer.nextRedialDelay());
      },
    });
  }

  close(): void {
    this.closed = true;
    for (const peer of this.peers.values()) {
      if (peer.redialTimer) clearTimeout(peer.redialTimer);
      if (peer.departedTimer) clearTimeout(peer.departedTimer);
      peer.link?.close('shutting down');
    }
  }
}
