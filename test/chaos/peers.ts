import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { until } from '../helpers/wait.js';

export type Version = 4 | 5;
export type QoS = 1 | 2;

const CONNACK_TIMEOUT_MS = 3000;

/**
 * A client that keeps its MQTT protocol state across connections exactly as the specification asks
 * of a client with a persistent session, reconnecting whenever its connection is lost: what the
 * broker sees from a well-behaved device while it is killed and restarted.
 */
abstract class PersistentPeer {
  private socket: Socket | null = null;
  private stopped = false;
  /** Round trips waiting for their PINGRESP, in order. */
  private readonly pings: (() => void)[] = [];
  connects = 0;
  /** CONNACKs with Session Present 0 after the first: the broker lost the session. */
  sessionsLost = 0;
  /** Called at every accepted CONNACK (a run's timeline). */
  onConnack?: (sessionPresent: boolean) => void;

  constructor(
    readonly clientId: string,
    readonly version: Version,
    private readonly port: () => number,
  ) {}

  get connected(): boolean {
    return this.socket !== null;
  }

  start(): void {
    this.dial();
  }

  stop(): void {
    this.stopped = true;
    this.socket?.destroy();
  }

  /** Loses the connection as a network failure would; the peer dials again (port() may name another node). */
  drop(): void {
    this.socket?.destroy();
  }

  /** A PINGREQ answered (on the connection of the time, or the next one if it is lost first): what the broker sent before it has arrived. */
  roundTrip(): Promise<void> {
    return new Promise((resolve) => {
      this.pings.push(resolve);
      this.send({ cmd: 'pingreq' });
    });
  }

  protected send(packet: Packet): void {
    this.socket?.write(mqttPacket.generate(packet, { protocolVersion: this.version }));
  }

  protected abstract onSession(sessionPresent: boolean): void;
  protected abstract onPacket(packet: Packet): void;

  private dial(): void {
    if (this.stopped) return;
    const socket = netConnect(this.port(), '127.0.0.1');
    const parser = mqttPacket.parser({ protocolVersion: this.version });
    let open = false;
    // A broker that accepted the TCP connection but is frozen (SIGSTOP) never answers: dial again.
    const unanswered = setTimeout(() => socket.destroy(), CONNACK_TIMEOUT_MS);
    socket.setNoDelay(true);
    socket.on('connect', () => {
      const connect: Packet = {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: this.version,
        clientId: this.clientId,
        clean: false,
        keepalive: 30,
        ...(this.version === 5 ? { properties: { sessionExpiryInterval: 0xffffffff } } : {}),
      };
      socket.write(mqttPacket.generate(connect, { protocolVersion: this.version }));
    });
    parser.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connack') {
        clearTimeout(unanswered);
        const code = this.version === 5 ? packet.reasonCode : packet.returnCode;
        if (code !== 0) {
          socket.destroy();
          return;
        }
        open = true;
        this.socket = socket;
        const first = this.connects++ === 0;
        if (!first && !packet.sessionPresent) this.sessionsLost++;
        this.onConnack?.(packet.sessionPresent === true);
        this.onSession(packet.sessionPresent === true);
        // A round trip asked for while disconnected, or whose PINGREQ went with a lost connection, is made on this one.
        for (let i = 0; i < this.pings.length; i++) this.send({ cmd: 'pingreq' });
        return;
      }
      if (packet.cmd === 'pingresp') this.pings.shift()?.();
      else if (open) this.onPacket(packet);
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (data) => parser.parse(data));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(unanswered);
      if (this.socket === socket) this.socket = null;
      if (!this.stopped) setTimeout(() => this.dial(), 20);
    });
  }
}

/**
 * Publishes numbered messages, at most `window` unacknowledged, resending after every reconnect:
 * PUBLISH with DUP until PUBACK / PUBREC, PUBREL until PUBCOMP [MQTT-4.4.0-1]. A message counts as
 * acknowledged at PUBACK (QoS 1) or PUBREC (QoS 2: the broker owns it from then on) with a success
 * code; one refused with an error code is published again later as a new message.
 */
export class ChaosPublisher extends PersistentPeer {
  readonly acknowledged = new Set<number>();
  /** When each message was acknowledged (Date.now()), to place a defect among the faults. */
  readonly acknowledgedAt = new Map<number, number>();
  /** Messages generated so far are 0 … next − 1. */
  next = 0;
  generating = true;
  refused = 0;
  private readonly retry: number[] = [];
  private readonly inflight = new Map<number, { message: number; released: boolean }>();
  private nextId = 1;

  constructor(
    clientId: string,
    version: Version,
    port: () => number,
    readonly qos: QoS,
    readonly topic: string,
    private readonly window: number,
  ) {
    super(clientId, version, port);
  }

  /** Every message generated has been acknowledged. */
  get done(): boolean {
    return !this.generating && this.inflight.size === 0 && this.retry.length === 0 && this.acknowledged.size === this.next;
  }

  protected onSession(): void {
    for (const [messageId, entry] of this.inflight) {
      if (entry.released) this.send({ cmd: 'pubrel', messageId });
      else this.publish(messageId, entry.message, true);
    }
    this.pump();
  }

  protected onPacket(packet: Packet): void {
    if (packet.cmd !== 'puback' && packet.cmd !== 'pubrec' && packet.cmd !== 'pubcomp') return;
    const id = packet.messageId!;
    const entry = this.inflight.get(id);
    if (!entry) return;
    const failed = (packet.reasonCode ?? 0) >= 0x80;
    if (packet.cmd === 'pubcomp') {
      if (entry.released) this.inflight.delete(id);
    } else if (failed) {
      this.inflight.delete(id);
      this.refused++;
      this.retry.push(entry.message);
    } else if (packet.cmd === 'puback') {
      this.inflight.delete(id);
      this.acknowledge(entry.message);
    } else {
      entry.released = true;
      this.acknowledge(entry.message);
      this.send({ cmd: 'pubrel', messageId: id });
    }
    this.pump();
  }

  private acknowledge(message: number): void {
    this.acknowledged.add(message);
    this.acknowledgedAt.set(message, Date.now());
  }

  pump(): void {
    while (this.connected && this.inflight.size < this.window && (this.retry.length > 0 || this.generating)) {
      const message = this.retry.shift() ?? this.next++;
      while (this.inflight.has(this.nextId)) this.nextId = (this.nextId % 65535) + 1;
      const id = this.nextId;
      this.nextId = (this.nextId % 65535) + 1;
      this.inflight.set(id, { message, released: false });
      this.publish(id, message, false);
    }
  }

  private publish(messageId: number, message: number, dup: boolean): void {
    this.send({ cmd: 'publish', topic: this.topic, payload: Buffer.from(String(message)), qos: this.qos, messageId, dup, retain: false });
  }
}

/**
 * Subscribes once and then only resumes its session. QoS 2 follows the specification's method A:
 * the message is delivered onwards at its first PUBLISH and its packet identifier kept until PUBREL,
 * so a PUBLISH with a held identifier is a duplicate [MQTT-4.3.3-9] — a broker that reuses such an
 * identifier for a new message loses that message here.
 */
export class ChaosSubscriber extends PersistentPeer {
  readonly counts = new Map<number, number>();
  /** When each message was delivered after its first time (Date.now()), to place a duplicate among the faults. */
  readonly againAt = new Map<number, number[]>();
  private readonly held = new Set<number>();
  private subscribed = false;

  constructor(
    clientId: string,
    version: Version,
    port: () => number,
    readonly qos: QoS,
    readonly filter: string,
  ) {
    super(clientId, version, port);
  }

  /** Subscribed and acknowledged by the broker. */
  ready = false;

  /** QoS 2 packet identifiers received and not released yet. */
  get holding(): number {
    return this.held.size;
  }

  protected onSession(sessionPresent: boolean): void {
    if (this.subscribed && sessionPresent) return;
    this.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: this.filter, qos: this.qos }] });
  }

  protected onPacket(packet: Packet): void {
    if (packet.cmd === 'suback') {
      this.subscribed = true;
      this.ready = true;
    } else if (packet.cmd === 'publish') {
      const message = Number(packet.payload.toString());
      const id = packet.messageId!;
      if (packet.qos === 2) {
        if (!this.held.has(id)) {
          this.held.add(id);
          this.count(message);
        }
        this.send({ cmd: 'pubrec', messageId: id });
      } else {
        this.count(message);
        if (packet.qos === 1) this.send({ cmd: 'puback', messageId: id });
      }
    } else if (packet.cmd === 'pubrel') {
      this.held.delete(packet.messageId!);
      this.send({ cmd: 'pubcomp', messageId: packet.messageId! });
    }
  }

  private count(message: number): void {
    const n = (this.counts.get(message) ?? 0) + 1;
    this.counts.set(message, n);
    if (n > 1) this.againAt.set(message, [...(this.againAt.get(message) ?? []), Date.now()]);
  }
}

/**
 * Ends `publisher`'s stream, waits until every message it had acknowledged reached `subscriber`
 * (at least once), and returns the messages the subscriber counted more than once.
 */
export async function deliveredTwice(publisher: ChaosPublisher, subscriber: ChaosSubscriber, ms = 30_000): Promise<number[]> {
  publisher.generating = false;
  publisher.pump();
  await until(() => publisher.done && [...publisher.acknowledged].every((m) => subscriber.counts.has(m)), 'every acknowledged message delivered', ms);
  await subscriber.roundTrip();
  return [...subscriber.counts].filter(([, n]) => n > 1).map(([m]) => m);
}
