import mqttPacket, { type Packet } from 'mqtt-packet';
import type { Transport, TransportEvents } from '../../host/core/transport.js';
import { ArborServer, type ServerOptions } from '../../host/node/server.js';
import { assertArenaEmpty } from '../helpers/broker.js';

/**
 * The broker's own pipeline — framer, parser, handlers, sessions, routing, the wasm arena — fed a
 * client's bytes without a socket in between: an in-memory Transport per fuzz case. A case fails on
 * anything that is not the broker refusing bad input: an internal error (something other than a
 * ProtocolError thrown while handling input), an uncaught exception, an arena handle misused, or a
 * connection the broker never lets go of (a hang).
 */

/** How long a closed case's connection may take to leave the broker before it counts as a hang. */
const HANG_MS = 2000;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A byte stream whose far end is the fuzzer: bytes go in as given, what the broker writes is handed to `output`. */
export class MemoryTransport implements Transport {
  readonly writableLength = 0;
  private events: TransportEvents | null = null;
  private paused = false;
  private held: Uint8Array[] = [];
  closed = false;

  constructor(
    readonly remoteAddress: string,
    private readonly output?: (bytes: Uint8Array) => void,
  ) {}

  attach(events: TransportEvents): void {
    this.events = events;
  }

  /** Delivers bytes as a socket would: one chunk per call, held while the broker has paused reading. */
  feed(chunk: Uint8Array): void {
    if (this.closed) return;
    if (this.paused) this.held.push(chunk);
    else this.events?.received(chunk);
  }

  write(chunks: Uint8Array[], done: () => void): void {
    // The chunks may be views of wasm memory: copied before done().
    if (this.output && !this.closed) for (const c of chunks) this.output(c.slice());
    done();
  }

  end(): void {
    this.closeSoon();
  }

  destroy(): void {
    this.closeSoon();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const chunk of held) this.feed(chunk);
  }

  /** The peer went away (or the broker closed): `close` is reported once, never inside the caller's stack. */
  closeSoon(): void {
    if (this.closed) return;
    this.closed = true;
    this.held = [];
    queueMicrotask(() => this.events?.closed());
  }
}

/** A well-behaved 5.0 client on its own transport: subscribes to its topic and checks that every message it publishes comes back. */
class Bystander {
  private readonly parser = mqttPacket.parser({ protocolVersion: 5 });
  private readonly transport: MemoryTransport;
  private readonly received: string[] = [];
  private acks = 0;
  private nextId = 1;
  exchanged = 0;

  constructor(server: ArborServer) {
    this.transport = new MemoryTransport('bystander', (bytes) => this.parser.parse(Buffer.from(bytes)));
    this.parser.on('packet', (p: Packet) => {
      if (p.cmd === 'publish') this.received.push(p.payload.toString());
      if (p.cmd === 'puback' || p.cmd === 'suback') this.acks++;
    });
    server.broker.accept(this.transport);
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'bystander', clean: true, keepalive: 0 });
    this.send({ cmd: 'subscribe', messageId: this.nextId++, subscriptions: [{ topic: 'bystander/#', qos: 1 }] });
  }

  private send(packet: Packet): void {
    this.transport.feed(mqttPacket.generate(packet, { protocolVersion: 5 }));
  }

  /** Publishes one QoS 1 message to itself and waits for it and its PUBACK. */
  async exchange(): Promise<void> {
    const payload = `m${this.exchanged}`;
    const acks = this.acks;
    this.send({ cmd: 'publish', topic: 'bystander/echo', payload, qos: 1, messageId: (this.nextId = (this.nextId % 0xffff) + 1), retain: false, dup: false });
    for (const deadline = Date.now() + HANG_MS; !(this.received.includes(payload) && this.acks > acks); ) {
      if (this.transport.closed) throw new Error('the bystander was disconnected');
      if (Date.now() > deadline) throw new Error(`the bystander's message ${payload} did not come back`);
      await nextTurn();
    }
    this.received.length = 0;
    this.exchanged++;
  }

  close(): void {
    this.transport.closeSoon();
  }
}

/** What a case did wrong, or null. */
export type Verdict = string | null;

export interface BrokerTargetOptions extends Partial<ServerOptions> {
  /** A bystander exchange every this many cases (0: none). */
  bystanderEvery?: number;
}

/** One in-process broker that cases run against, one connection each; close() checks the arena. */
export class BrokerTarget {
  private readonly errors: string[] = [];
  private readonly bystander: Bystander | null;
  private cases = 0;

  private constructor(
    readonly server: ArborServer,
    private readonly bystanderEvery: number,
  ) {
    this.bystander = bystanderEvery > 0 ? new Bystander(server) : null;
  }

  static async start(options: BrokerTargetOptions = {}): Promise<BrokerTarget> {
    const { bystanderEvery = 0, ...rest } = options;
    let target: BrokerTarget | null = null;
    const server = await ArborServer.start({
      listeners: [],
      memory: true,
      ...rest,
      logger: (level, message, fields) => {
        if (level === 'error') target?.errors.push(`${message}: ${JSON.stringify(fields)}`);
      },
    });
    target = new BrokerTarget(server, bystanderEvery);
    return target;
  }

  get exchanged(): number {
    return this.bystander?.exchanged ?? 0;
  }

  /** Feeds one client's chunks (one per event-loop turn), closes, and returns what went wrong. */
  async run(chunks: Uint8Array[]): Promise<Verdict> {
    const broker = this.server.broker;
    const internal = broker.metrics.internalErrors;
    const arenaErrors = broker.core.arenaStats().errors;
    const transport = new MemoryTransport(`fuzz-${this.cases++}`);
    const conn = broker.accept(transport);
    if (!conn) return 'the broker refused a connection';
    for (const chunk of chunks) {
      transport.feed(chunk);
      await nextTurn();
    }
    await nextTurn();
    transport.closeSoon();
    for (const deadline = Date.now() + HANG_MS; broker.connections.has(conn); ) {
      if (Date.now() > deadline) return 'hang: the connection was still held after its client went away';
      await nextTurn();
    }
    // The log aggregator writes a client's first such line only: the last one written is the best clue.
    if (broker.metrics.internalErrors > internal) return `internal error: ${this.errors.at(-1) ?? '(logged before)'}`;
    if (broker.core.arenaStats().errors > arenaErrors) return 'an arena handle was used after release or released twice';
    if (this.bystander && this.cases % this.bystanderEvery === 0) {
      try {
        await this.bystander.exchange();
      } catch (error) {
        return (error as Error).message;
      }
    }
    return null;
  }

  /** Stops the broker and asserts that every arena reference taken was released exactly once. */
  async close(): Promise<void> {
    this.bystander?.close();
    await nextTurn();
    await this.server.close();
    await assertArenaEmpty(this.server.broker.core);
  }
}
