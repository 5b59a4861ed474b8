import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { ClientLink } from '../../host/client/link.js';
import { until } from './wait.js';
import { FrameSplitter, type Frame, type Part, T, typeName } from './wire.js';

/** How a peer's bytes reach the broker. */
export interface Wire {
  send(bytes: Uint8Array): void;
  /** Closes at once, without DISCONNECT. */
  destroy(): void;
}

/** Fixed-header flags each server → client packet must carry (§2.1.3); PUBLISH has its own. */
const EXPECTED_FLAGS: Record<number, number> = { 2: 0, 4: 0, 5: 0, 6: 2, 7: 0, 9: 0, 11: 0, 13: 0, 14: 0, 15: 0 };
/** Packet types only a client sends. */
const CLIENT_ONLY = new Set<number>([0, T.CONNECT, T.SUBSCRIBE, T.UNSUBSCRIBE, T.PINGREQ]);

const CMD_TYPES: Record<Packet['cmd'], number> = {
  connect: T.CONNECT,
  connack: T.CONNACK,
  publish: T.PUBLISH,
  puback: T.PUBACK,
  pubrec: T.PUBREC,
  pubrel: T.PUBREL,
  pubcomp: T.PUBCOMP,
  subscribe: T.SUBSCRIBE,
  suback: T.SUBACK,
  unsubscribe: T.UNSUBSCRIBE,
  unsuback: T.UNSUBACK,
  pingreq: T.PINGREQ,
  pingresp: T.PINGRESP,
  disconnect: T.DISCONNECT,
  auth: T.AUTH,
};

const PINGREQ = Uint8Array.from([T.PINGREQ << 4, 0]);

/**
 * The one raw-packet client of the tests, over TCP or an in-memory link to a broker: it sends bytes
 * exactly as given, splits what the broker sends into packets as they came (checking the framing
 * rules the server must follow), and hands them out by type — as Frames, or decoded by mqtt-packet
 * for the protocol version set with version(). Waiting for "nothing more" is a PINGREQ round trip,
 * never a pause: the broker answers in order, so what it sent before PINGRESP has arrived.
 */
export class Peer {
  /** Every packet received, in order (while `keep`). */
  readonly log: Frame[] = [];
  /** Framing rules the server broke, as they were seen; asserted empty by checkWire(). */
  readonly violations: string[] = [];
  /** Runs for each packet as it arrives, before it is queued. */
  onFrame: ((f: Frame) => void) | null = null;
  /** Keep every packet in `log` (off for long streams). */
  keep = true;
  isClosed = false;
  readonly closed: Promise<void>;
  private queue: Frame[] = [];
  private waiters: (() => void)[] = [];
  private readonly splitter = new FrameSplitter();
  /** What this peer sent, split the same way, to pair each PINGRESP with its PINGREQ. */
  private readonly sent = new FrameSplitter();
  /** Per PINGREQ sent and not answered yet: whether a round trip sent it (its answer is not the test's). */
  private readonly pings: boolean[] = [];
  private roundTripsAnswered = 0;
  private roundTripsSent = 0;
  private speaks: 3 | 4 | 5 = 4;
  private lastId = 0;
  /** The connection is gone (called by whatever carries the bytes; once is enough). */
  protected readonly markClosed: () => void;

  protected wire: Wire | null = null;
  /** The socket of a TCP peer. */
  private socket: Socket | null = null;
  /** Where the broker sees the connection coming from (Connection.remoteAddress). */
  address = '';
  /** Whether the broker still holds this peer's connection; set by the harness that made the peer. */
  held: () => boolean = () => {
    throw new Error('this peer was not made by a TestBroker');
  };

  constructor() {
    let markClosed!: () => void;
    this.closed = new Promise<void>((resolve) => (markClosed = resolve));
    this.markClosed = () => {
      if (this.isClosed) return;
      this.isClosed = true;
      markClosed();
      this.wake();
    };
  }

  /** Opens a TCP connection to `port` on 127.0.0.1, from `from` (another loopback address) when given; nothing is sent. */
  tcp(port: number, from?: string): Promise<this> {
    return new Promise((resolve, reject) => {
      const socket = (this.socket = netConnect({ port, host: '127.0.0.1', localAddress: from }, () => {
        socket.off('error', reject);
        this.address = `${socket.localAddress}:${socket.localPort}`;
        // Every send its own segment: tests that split packets across writes mean it.
        socket.setNoDelay(true);
        resolve(this);
      }));
      this.wire = { send: (b) => void socket.write(b), destroy: () => socket.destroy() };
      socket.once('error', reject);
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => this.receive(d));
      socket.once('close', this.markClosed);
    });
  }

  /** Speaks over an in-memory link to a broker (host/bridge/in-process-pipe.ts) that sees it as `address`; nothing is sent. */
  over(link: ClientLink, address: string): this {
    this.address = address;
    this.wire = { send: (b) => link.send(Uint8Array.from(b)), destroy: () => link.close() };
    link.attach({ data: (chunk) => this.receive(Buffer.from(chunk)), close: this.markClosed });
    return this;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Bytes from the broker, as they came. */
  protected receive(data: Buffer): void {
    for (const frame of this.splitter.push(data)) {
      if (!frame.minimalLength) this.violations.push('Remaining Length not minimally encoded [MQTT-1.5.5-1]');
      if (CLIENT_ONLY.has(frame.type)) this.violations.push(`the server sent a ${typeName(frame.type)} packet`);
      const expected = EXPECTED_FLAGS[frame.type];
      if (expected !== undefined && frame.flags !== expected) {
        this.violations.push(`${typeName(frame.type)} with fixed header flags ${frame.flags}, not ${expected} [MQTT-2.1.3-1]`);
      }
      if (frame.type === T.PINGRESP && this.pings.shift()) {
        // The answer to a round trip is the harness's, not the test's.
        this.roundTripsAnswered++;
        this.wake();
        continue;
      }
      this.onFrame?.(frame);
      if (this.keep) this.log.push(frame);
      this.queue.push(frame);
      this.wake();
    }
  }

  /** Sets the protocol version packets are decoded (and sendPacket encodes) with. */
  version(v: 3 | 4 | 5): this {
    this.speaks = v;
    return this;
  }

  /** Sends the parts as one write. */
  send(...parts: Part[]): void {
    this.write(Buffer.concat(parts.map((p) => Buffer.from(p as Uint8Array))), false);
  }

  private write(bytes: Buffer, roundTrip: boolean): void {
    for (const f of this.sent.push(bytes)) if (f.type === T.PINGREQ) this.pings.push(roundTrip);
    this.wire!.send(bytes);
  }

  /** Sends a packet mqtt-packet encodes for `version` (by default the peer's). */
  sendPacket(p: Packet, version: 3 | 4 | 5 = this.speaks): void {
    this.send(mqttPacket.generate(p, { protocolVersion: version }));
  }

  /** The next packet identifier (1..65535). */
  nextId(): number {
    this.lastId = (this.lastId % 65535) + 1;
    return this.lastId;
  }

  /** Packets received and not taken yet. */
  get queued(): Frame[] {
    return this.queue;
  }

  /** Those packets, decoded. */
  get packets(): Packet[] {
    return this.queue.map((f) => this.decode(f));
  }

  /** Packets in `log` of `type`. */
  of(type: number): Frame[] {
    return this.log.filter((f) => f.type === type);
  }

  /** A received packet decoded by mqtt-packet for the peer's version. */
  decode<P extends Packet = Packet>(frame: Frame): P {
    const parser = mqttPacket.parser({ protocolVersion: this.speaks });
    let packet: Packet | undefined;
    let failure: Error | undefined;
    parser.on('packet', (p: Packet) => (packet = p));
    parser.on('error', (e: Error) => (failure = e));
    parser.parse(frame.raw);
    if (!packet) throw new Error(`mqtt-packet cannot decode a ${typeName(frame.type)} packet: ${failure?.message ?? 'incomplete'}`);
    return packet as P;
  }

  /**
   * The next packet of `type` (or of any of the types), received already or within `ms`; packets
   * of other types stay queued. Given an mqtt-packet command name, the packet comes decoded.
   */
  next(type: number | number[], ms?: number): Promise<Frame>;
  next<P extends Packet = Packet>(cmd: Packet['cmd'], ms?: number): Promise<P>;
  async next(type: number | number[] | Packet['cmd'], ms = 2000): Promise<Frame | Packet> {
    if (typeof type === 'string') return this.decode(await this.take([CMD_TYPES[type]], type, ms));
    const types = typeof type === 'number' ? [type] : type;
    return this.take(types, types.map(typeName).join(' or '), ms);
  }

  private async take(types: number[], name: string, ms: number): Promise<Frame> {
    await this.waitFor(() => this.queue.some((f) => types.includes(f.type)), `${name}`, ms);
    const i = this.queue.findIndex((f) => types.includes(f.type));
    return this.queue.splice(i, 1)[0]!;
  }

  /** Waits until `done()`, a packet arriving or the connection closing being the only things that change it. */
  private async waitFor(done: () => boolean, what: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (!done()) {
        const seen = this.queue.map((f) => typeName(f.type)).join(',') || 'nothing';
        if (this.isClosed) throw new Error(`connection closed before ${what}; queued: ${seen}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no ${what} within ${ms} ms; queued: ${seen}`);
        await new Promise<void>((resolve) => {
          this.waiters.push(resolve);
          clearTimeout(timer);
          timer = setTimeout(resolve, left);
        });
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A PINGREQ answered: everything the broker sent this peer before reading it has arrived. The
   * peer must be connected (a PINGREQ before CONNACK, or during an AUTH exchange, is refused).
   */
  async roundTrip(ms = 2000): Promise<void> {
    this.write(Buffer.from(PINGREQ), true);
    const target = ++this.roundTripsSent;
    await this.waitFor(() => this.roundTripsAnswered >= target, 'PINGRESP to a round trip', ms);
  }

  /**
   * Waits until the broker has dealt with everything sent so far: it answered a PINGREQ sent after
   * it, or it closed the connection.
   */
  async settled(): Promise<void> {
    if (this.isClosed) return;
    try {
      await this.roundTrip();
    } catch (error) {
      if (!this.isClosed) throw error;
    }
  }

  /** Asserts that no packet of `type` (none at all when omitted) came before the answer to a PINGREQ sent now. */
  async none(type?: number): Promise<void> {
    await this.roundTrip();
    const got = this.queue.filter((f) => type === undefined || f.type === type);
    assert.deepEqual(got.map((f) => typeName(f.type)), [], `no ${type === undefined ? 'packet' : typeName(type)} expected`);
  }

  /** Every PUBLISH that came before the answer to a PINGREQ sent now, taken from the queue in order. */
  async drain(): Promise<Frame[]> {
    await this.roundTrip();
    const out = this.queue.filter((f) => f.type === T.PUBLISH);
    this.queue = this.queue.filter((f) => f.type !== T.PUBLISH);
    return out;
  }

  /** Resolves when the broker has closed the connection; fails after `ms`. */
  async expectClosed(ms = 2000): Promise<void> {
    await this.waitFor(() => this.isClosed, 'close', ms).catch(() => {
      throw new Error(`connection still open after ${ms} ms`);
    });
  }

  /** Stops reading what the broker sends (TCP only): the kernel's buffers fill, then the broker's — a consumer fallen behind. */
  stopReading(): void {
    if (!this.socket) throw new Error('only a TCP peer can stop reading');
    this.socket.pause();
  }

  /** Bytes written and not yet handed to the network (TCP). */
  get unsent(): number {
    return this.socket?.writableLength ?? 0;
  }

  /** Keeps the connection open after the broker ended its side (TCP half-open): a peer that ignores DISCONNECT. */
  ignoreEnd(): void {
    if (!this.socket) throw new Error('only a TCP peer can stay half-open');
    this.socket.allowHalfOpen = true;
    this.socket.on('end', () => undefined);
  }

  /** Waits until the broker has let go of this peer's connection: it handled the close. */
  async released(ms = 2000): Promise<void> {
    await until(() => !this.held(), `the broker to let ${this.address} go`, ms);
  }

  /** Closes without DISCONNECT, and waits until the broker handled the close. */
  async drop(): Promise<void> {
    this.destroy();
    await this.closed;
    await this.released();
  }

  /** Asserts the connection is open. */
  assertOpen(): void {
    assert.equal(this.isClosed, false, 'connection unexpectedly closed');
  }

  /** Asserts the broker still serves the connection: it answers a PINGREQ sent now. */
  async expectOpen(): Promise<void> {
    await this.roundTrip();
    this.assertOpen();
  }

  /** Asserts the last packet of `type` in the log is the last packet of all. */
  assertNothingAfter(type: number): void {
    const i = this.log.map((f) => f.type).lastIndexOf(type);
    assert.ok(i >= 0, `no ${typeName(type)} was sent`);
    assert.deepEqual(this.log.slice(i + 1).map((f) => typeName(f.type)), [], `packets after ${typeName(type)}`);
  }

  /** Asserts the server followed the framing rules on everything it sent so far. */
  checkWire(): void {
    assert.deepEqual(this.violations, []);
  }

  /** CONNECT (defaults as connectBytes), and its CONNACK decoded (within `ms`); the peer speaks the CONNECT's version from now on. */
  async handshake(options: Partial<mqttPacket.IConnectPacket> = {}, ms?: number): Promise<mqttPacket.IConnackPacket> {
    this.version((options.protocolVersion ?? 4) as 3 | 4 | 5);
    this.send(connectBytes(options));
    return this.next<mqttPacket.IConnackPacket>('connack', ms);
  }

  /** Closes without DISCONNECT. */
  destroy(): void {
    this.wire!.destroy();
  }
}

/**
 * CONNECT bytes from mqtt-packet, which refuses some combinations a test needs to send (an empty
 * client id with CleanSession=0): those are generated with CleanSession=1 and the flag cleared.
 */
export function connectBytes(options: Partial<mqttPacket.IConnectPacket> = {}): Buffer {
  const protocolVersion = (options.protocolVersion ?? 4) as 3 | 4 | 5;
  const packet = {
    cmd: 'connect',
    protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion,
    keepalive: 60,
    clientId: `raw-${Math.random().toString(36).slice(2)}`,
    ...options,
    clean: true,
  } as mqttPacket.IConnectPacket;
  const bytes = mqttPacket.generate(packet, { protocolVersion });
  if (options.clean === false) {
    let i = 1;
    while (bytes[i]! & 0x80) i++;
    const flags = i + 1 + 2 + (protocolVersion === 3 ? 6 : 4) + 1;
    bytes[flags]! &= ~0x02;
  }
  return bytes;
}
