import type { LogAggregator } from '../core/model/log-aggregator.js';
import type { Transport } from '../core/transport.js';

/** What a listener knows of a new network client. */
export interface PeerInfo {
  address: string | undefined;
  port: number | undefined;
  /** Listener protocol and port, for logs: "mqtts:8883". */
  listener: string;
  /** Common name of a verified client certificate, when the listener turns it into the user name. */
  certificateIdentity?: string | undefined;
}

/**
 * A network client of this server as the gate knows it. The listeners' transports (SocketTransport,
 * WebSocketTransport) are peers themselves: a connection carries one object for both.
 */
export abstract class Peer {
  /** The unique label the gate gives it: "address:port", "#2" (…) appended while that is taken. */
  readonly remoteAddress: string;
  readonly ip: string;
  readonly listener: string;
  readonly certificateIdentity: string | undefined;
  /** Arrived when maxConnections clients were already connected: answered "quota exceeded" and closed. */
  readonly overLimit: boolean;

  /** Registers with the gate; hand the finished transport to `gate.serve`. */
  constructor(
    private readonly gate: ConnectionGate,
    info: PeerInfo,
  ) {
    this.ip = info.address ?? 'unknown';
    this.remoteAddress = gate.label(this.ip, info.port);
    this.listener = info.listener;
    this.certificateIdentity = info.certificateIdentity;
    this.overLimit = gate.arrive(this);
  }

  /** Closes the connection at once (the shutdown deadline). */
  abstract destroy(): void;

  /** Its transport has closed: transports call this exactly once. */
  protected left(): void {
    this.gate.leave(this);
  }
}

/** Over-limit connections kept open long enough to hear why; beyond it they are dropped at once. */
const REFUSING_LIMIT = 256;
/** How long an over-limit connection has to send its CONNECT before it is dropped. */
const REFUSAL_TIMEOUT_MS = 2000;

/**
 * Every connection of every listener passes here: it is counted against `maxConnections`, given a
 * unique label (its transport's remoteAddress, the key access control looks peers up by), and then
 * handed to the broker — or, over the limit, told CONNACK 0x97 Quota exceeded (5.0) or 0x03 Server
 * unavailable (3.1, 3.1.1) and closed, without the broker ever seeing it.
 */
export class ConnectionGate {
  readonly peers = new Map<string, Peer>();
  private admitted = 0;
  private refusing = 0;
  private waiters: (() => void)[] = [];
  /** Connections turned away by maxConnections, since start. */
  refusedOverLimit = 0;

  constructor(
    /** Hands a transport to the broker. */
    private readonly accept: (transport: Transport) => void,
    /** 0 = no limit. */
    private readonly maxConnections: number,
    private readonly logs: LogAggregator,
  ) {}

  /** Connections being served (over-limit ones being refused are not counted). */
  get open(): number {
    return this.admitted;
  }

  /** A label for a client at `ip`:`port` that no connection has now. */
  label(ip: string, port: number | undefined): string {
    // Joined, not concatenated: V8 keeps an `a + b` of 13 characters or more as a tree of strings (three
    // objects here, ~56 bytes more per connection), a join as one flat string.
    const base = ip.includes(':') ? ['[', ip, ']:', port].join('') : [ip, port].join(':');
    let label = base;
    for (let n = 2; this.peers.has(label); n++) label = `${base}#${n}`;
    return label;
  }

  /** Counts a new client (its Peer constructor calls this); true when it is over maxConnections. */
  arrive(peer: Peer): boolean {
    const overLimit = this.maxConnections > 0 && this.admitted >= this.maxConnections;
    this.peers.set(peer.remoteAddress, peer);
    if (overLimit) {
      this.refusing++;
      this.refusedOverLimit++;
    } else {
      this.admitted++;
    }
    return overLimit;
  }

  /** Hands a new client to the broker, or refuses it when it arrived over the limit. */
  serve(transport: Peer & Transport): void {
    if (!transport.overLimit) {
      this.accept(transport);
      return;
    }
    this.logs.note('warn', 'connection refused: maxConnections reached', transport.ip, { address: transport.remoteAddress, listener: transport.listener, maxConnections: this.maxConnections });
    if (this.refusing > REFUSING_LIMIT) transport.destroy();
    else refuseConnect(transport);
  }

  /** The peer's transport has closed (transports call this exactly once). */
  leave(peer: Peer): void {
    if (this.peers.get(peer.remoteAddress) !== peer) return;
    this.peers.delete(peer.remoteAddress);
    if (peer.overLimit) this.refusing--;
    else this.admitted--;
    if (this.peers.size === 0) for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves once no connection is open. */
  drained(): Promise<void> {
    if (this.peers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Drops every connection still open (the shutdown deadline). */
  destroyAll(): void {
    for (const peer of [...this.peers.values()]) peer.destroy();
  }
}

/**
 * Answers a CONNECT with "quota exceeded" in the client's own protocol version and closes. Only
 * the protocol level is read: fixed header, Remaining Length, protocol name, level.
 */
function refuseConnect(transport: Transport): void {
  let received = new Uint8Array(0);
  const timer = setTimeout(() => transport.destroy(), REFUSAL_TIMEOUT_MS);
  timer.unref();
  let answered = false;
  transport.attach({
    received(chunk) {
      if (answered) return;
      const joined = new Uint8Array(received.length + chunk.length);
      joined.set(received);
      joined.set(chunk, received.length);
      received = joined.length > 32 ? joined.subarray(0, 32) : joined;
      const level = protocolLevel(received);
      if (level === undefined) return;
      answered = true;
      if (level === null) {
        transport.destroy();
        return;
      }
      // 5.0: CONNACK 0x97 Quota exceeded, no properties; 3.1/3.1.1: return code 3, Server unavailable.
      const connack = level === 5 ? [0x20, 0x03, 0x00, 0x97, 0x00] : [0x20, 0x02, 0x00, 0x03];
      transport.write([Uint8Array.from(connack)], () => undefined);
      transport.end();
    },
    closed() {
      clearTimeout(timer);
    },
  });
}

/** The protocol level of a CONNECT at the start of `bytes`: undefined = need more bytes, null = not a CONNECT. */
export function protocolLevel(bytes: Uint8Array): number | null | undefined {
  if (bytes.length === 0) return undefined;
  if (bytes[0] !== 0x10) return null;
  let i = 1;
  for (; ; i++) {
    if (i >= bytes.length) return undefined;
    if (i > 4) return null;
    if ((bytes[i]! & 0x80) === 0) break;
  }
  const nameAt = i + 1;
  if (bytes.length < nameAt + 2) return undefined;
  const nameLength = (bytes[nameAt]! << 8) | bytes[nameAt + 1]!;
  if (nameLength !== 4 && nameLength !== 6) return null;
  const levelAt = nameAt + 2 + nameLength;
  return bytes.length > levelAt ? bytes[levelAt]! : undefined;
}
