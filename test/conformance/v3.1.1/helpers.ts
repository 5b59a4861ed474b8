/**
 * Shared helpers of the MQTT 3.1.1 conformance suite: raw byte building, a byte-exact view of
 * what the broker sends (Tap), and a small 3.1.1 peer over RawClient.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import type mqttPacket from 'mqtt-packet';
import type { IConnackPacket, IPublishPacket, ISubackPacket, Packet } from 'mqtt-packet';
import type { ServerOptions } from '../../../host/node/server.js';
import { connectBytes, delay, startBroker, type RawClient, type TestBroker } from '../../helpers/broker.js';
import { FrameSplitter, type Frame } from '../frames.js';

export type { Frame } from '../frames.js';

/** Packet type numbers (§2.2.1). */
export const T = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

const enc = new TextEncoder();

/** A string field given as text, or as raw bytes (which may be ill-formed UTF-8 on purpose). */
export type Bytes = string | Uint8Array | readonly number[];

/** Bytes of a string or byte list. */
export function bytes(s: Bytes): Buffer {
  if (typeof s === 'string') return Buffer.from(enc.encode(s));
  return Buffer.from(s as Uint8Array);
}

/** A length-prefixed field (§1.5.3): two-byte big-endian length, then the bytes as given. */
export function str(s: Bytes): Buffer {
  const b = bytes(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

export const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

/** Remaining Length encoding (§2.2.3). */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** A whole packet: fixed header byte, Remaining Length, then the body parts. */
export function packet(header: number, ...parts: (Buffer | Uint8Array | number[])[]): Buffer {
  const body = Buffer.concat(parts.map((p) => Buffer.from(p as Uint8Array)));
  return Buffer.concat([Buffer.from([header]), varint(body.length), body]);
}

export interface PublishOptions {
  qos?: 0 | 1 | 2 | 3;
  id?: number;
  dup?: boolean;
  retain?: boolean;
}

/** PUBLISH with any topic bytes (also ill-formed ones) and flags as given. */
export function publishBytes(topic: Bytes, payload: string | Uint8Array = '', o: PublishOptions = {}): Buffer {
  const qos = o.qos ?? 0;
  const header = 0x30 | (o.dup ? 0x08 : 0) | (qos << 1) | (o.retain ? 1 : 0);
  const parts: Buffer[] = [str(topic)];
  if (qos > 0) parts.push(u16(o.id ?? 1));
  parts.push(bytes(payload));
  return packet(header, ...parts);
}

/** SUBSCRIBE with raw filter bytes and raw requested-QoS bytes. */
export function subscribeBytes(id: number, ...subs: [Bytes, number][]): Buffer {
  return packet(0x82, u16(id), ...subs.flatMap(([f, q]) => [str(f), Buffer.from([q])]));
}

export function unsubscribeBytes(id: number, ...filters: Bytes[]): Buffer {
  return packet(0xa2, u16(id), ...filters.map((f) => str(f)));
}

export interface ConnectFields {
  clientId?: Bytes;
  clean?: boolean;
  keepAlive?: number;
  will?: { topic: Bytes; payload?: string | Uint8Array; qos?: number; retain?: boolean };
  username?: Bytes;
  password?: string | Uint8Array;
  /** Overrides the computed connect flags byte. */
  flags?: number;
  protocolName?: Bytes;
  level?: number;
  /** Bytes appended after the payload. */
  trailing?: readonly number[];
}

/** A 3.1.1 CONNECT built field by field, so that any field can be wrong. */
export function connectPacket(c: ConnectFields = {}): Buffer {
  let flags = 0;
  if (c.clean ?? true) flags |= 0x02;
  if (c.will) flags |= 0x04 | ((c.will.qos ?? 0) << 3) | (c.will.retain ? 0x20 : 0);
  if (c.password !== undefined) flags |= 0x40;
  if (c.username !== undefined) flags |= 0x80;
  const parts: Buffer[] = [
    str(c.protocolName ?? 'MQTT'),
    Buffer.from([c.level ?? 4, c.flags ?? flags]),
    u16(c.keepAlive ?? 60),
    str(c.clientId ?? `c${Math.random().toString(36).slice(2, 12)}`),
  ];
  if (c.will) parts.push(str(c.will.topic), str(c.will.payload ?? ''));
  if (c.username !== undefined) parts.push(str(c.username));
  if (c.password !== undefined) parts.push(str(c.password));
  if (c.trailing) parts.push(bytes(c.trailing));
  return packet(0x10, ...parts);
}

/** Splits everything the broker sends on a socket into frames, byte-exact (flags, ids, lengths). */
export class Tap {
  readonly frames: Frame[] = [];
  /** Called with each frame as it arrives (before it is stored). */
  onFrame: ((f: Frame) => void) | null = null;
  /** Stores frames in `frames`; turn off for long streams. */
  keep = true;
  private readonly splitter = new FrameSplitter();

  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => this.push(d));
  }

  private push(d: Buffer): void {
    for (const frame of this.splitter.push(d)) {
      this.onFrame?.(frame);
      if (this.keep) this.frames.push(frame);
    }
  }

  of(type: number): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }
}

/** A 3.1.1 connection over RawClient with a byte tap, for conversations packet by packet. */
export class Peer {
  private nextId = 1;

  private constructor(
    readonly raw: RawClient,
    readonly tap: Tap,
  ) {}

  /** A TCP connection with nothing sent yet. */
  static async open(b: TestBroker): Promise<Peer> {
    const raw = (await b.raw()).version(4);
    return new Peer(raw, new Tap(raw.socket));
  }

  /** CONNECT (3.1.1) and its CONNACK; fails unless the return code is 0. */
  static async connect(b: TestBroker, options: Partial<mqttPacket.IConnectPacket> = {}): Promise<Peer & { connack: IConnackPacket }> {
    const p = await Peer.open(b);
    p.send(connectBytes({ protocolVersion: 4, ...options }));
    const connack = await p.next<IConnackPacket>('connack');
    assert.equal(connack.returnCode, 0, 'CONNECT accepted');
    return Object.assign(p, { connack });
  }

  send(data: Uint8Array | number[]): void {
    this.raw.send(data);
  }

  sendPacket(p: mqttPacket.Packet): void {
    this.raw.sendPacket(p, 4);
  }

  /**
   * The next packet of `cmd` (already received or arriving within `ms`). Unlike RawClient.next it
   * leaves no timer behind, so a test file ends as soon as its last test does.
   */
  next<P extends Packet = Packet>(cmd: Packet['cmd'], ms = 2000): Promise<P> {
    const raw = this.raw;
    const socket = raw.socket;
    const take = (): P | undefined => {
      const i = raw.packets.findIndex((p) => p.cmd === cmd);
      return i >= 0 ? (raw.packets.splice(i, 1)[0] as P) : undefined;
    };
    const got = (): string => raw.packets.map((p) => p.cmd).join(',');
    const found = take();
    if (found) return Promise.resolve(found);
    if (socket.destroyed) return Promise.reject(new Error(`connection closed before ${cmd}; got ${got()}`));
    return new Promise<P>((resolve, reject) => {
      const finish = (error: Error | null, p?: P): void => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        if (error) reject(error);
        else resolve(p!);
      };
      // RawClient's own 'data' listener was added first, so its parser has already run.
      const onData = (): void => {
        const p = take();
        if (p) finish(null, p);
      };
      const onClose = (): void => {
        const p = take();
        if (p) finish(null, p);
        else finish(new Error(`connection closed before ${cmd}; got ${got()}`));
      };
      const timer = setTimeout(() => finish(new Error(`no ${cmd} within ${ms} ms; got ${got()}`)), ms);
      socket.on('data', onData);
      socket.on('close', onClose);
    });
  }

  /** SUBSCRIBE and wait for its SUBACK; returns the return codes. */
  async subscribe(filter: string | [string, number][], qos = 0): Promise<number[]> {
    const subs = typeof filter === 'string' ? [[filter, qos] as [string, number]] : filter;
    const messageId = this.nextId++;
    this.sendPacket({ cmd: 'subscribe', messageId, subscriptions: subs.map(([topic, q]) => ({ topic, qos: q as 0 | 1 | 2 })) });
    const ack = await this.next<ISubackPacket>('suback');
    assert.equal(ack.messageId, messageId);
    return ack.granted as number[];
  }

  async unsubscribe(...filters: string[]): Promise<void> {
    const messageId = this.nextId++;
    this.sendPacket({ cmd: 'unsubscribe', messageId, unsubscriptions: filters });
    const ack = await this.next('unsuback');
    assert.equal((ack as { messageId: number }).messageId, messageId);
  }

  publish(topic: string, payload: string | Buffer = '', o: PublishOptions = {}): void {
    this.send(publishBytes(topic, typeof payload === 'string' ? payload : new Uint8Array(payload), o));
  }

  /** The next PUBLISH the broker sends. */
  message(ms = 2000): Promise<IPublishPacket> {
    return this.next<IPublishPacket>('publish', ms);
  }

  /** Asserts no packet of `cmd` arrives within `ms` (counting those already received). */
  async expectNo(cmd: Packet['cmd'], ms = 200): Promise<void> {
    await delay(ms);
    assert.deepEqual(
      this.raw.packets.filter((p) => p.cmd === cmd).map((p) => p.cmd),
      [],
      `no ${cmd} expected`,
    );
  }

  /** Resolves when the broker has closed the connection; fails after `ms` (leaving no timer behind). */
  expectClosed(ms = 2000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
      void this.raw.closed.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Asserts the connection is still open after `ms`. */
  async expectOpen(ms = 200): Promise<void> {
    await delay(ms);
    assert.equal(this.raw.socket.destroyed || this.raw.socket.readableEnded, false, 'connection still open');
  }

  /** Sends DISCONNECT and waits until the broker closed the socket. */
  async disconnect(): Promise<void> {
    this.send([0xe0, 0]);
    await this.expectClosed();
  }

  /** Drops the TCP connection without DISCONNECT and lets the broker notice. */
  async drop(): Promise<void> {
    this.raw.destroy();
    await delay(30);
  }

  /**
   * Acknowledges every PUBLISH from now on as a well-behaved client would (PUBACK, PUBREC, and
   * PUBCOMP for each PUBREL), in arrival order; returns the list the received PUBLISH frames go to.
   */
  autoAck(): Frame[] {
    const seen: Frame[] = [];
    this.tap.onFrame = (f) => {
      if (f.type === T.PUBLISH) {
        seen.push(f);
        const qos = (f.flags >> 1) & 3;
        if (qos === 0) return;
        const id = f.body.readUInt16BE(2 + f.body.readUInt16BE(0));
        this.send([qos === 1 ? 0x40 : 0x50, 2, id >> 8, id & 0xff]);
      } else if (f.type === T.PUBREL) {
        this.send([0x70, 2, f.body[0]!, f.body[1]!]);
      }
    };
    return seen;
  }

  get closed(): boolean {
    return this.raw.socket.destroyed || this.raw.socket.readableEnded;
  }
}

/** Runs `fn` against a broker of its own (for tests that run concurrently); closes it and checks the arena after. */
export async function withBroker<R>(options: ServerOptions, fn: (b: TestBroker) => Promise<R>): Promise<R> {
  const b = await startBroker(options);
  let result: R;
  try {
    result = await fn(b);
  } catch (error) {
    await b.close().catch(() => undefined);
    throw error;
  }
  await b.close();
  return result;
}

/** A 3.1.1 connection subscribed to `filter` at QoS 2 (or `qos`). */
export async function watch(b: TestBroker, filter: string, qos = 2): Promise<Peer> {
  const w = await Peer.connect(b);
  await w.subscribe(filter, qos);
  return w;
}

/** The next `n` messages an MQTT.js client receives from now on; fails after `ms` (leaving no timer behind). */
export function messages(client: MqttClient, n: number, ms = 3000): Promise<{ topic: string; payload: Buffer; packet: IPublishPacket }[]> {
  return new Promise((resolve, reject) => {
    const got: { topic: string; payload: Buffer; packet: IPublishPacket }[] = [];
    const timer = setTimeout(() => {
      client.removeListener('message', on);
      reject(new Error(`expected ${n} messages, got ${got.length}`));
    }, ms);
    const on = (topic: string, payload: Buffer, packet: IPublishPacket): void => {
      got.push({ topic, payload, packet });
      if (got.length < n) return;
      clearTimeout(timer);
      client.removeListener('message', on);
      resolve(got);
    };
    client.on('message', on);
  });
}

/** Topic bytes of a PUBLISH frame. */
export function frameTopic(f: Frame): Buffer {
  return f.body.subarray(2, 2 + f.body.readUInt16BE(0));
}

/** Payload of a PUBLISH frame. */
export function framePayload(f: Frame): Buffer {
  const qos = (f.flags >> 1) & 3;
  return f.body.subarray(2 + f.body.readUInt16BE(0) + (qos > 0 ? 2 : 0));
}

/** Waits until `done()` holds, checking every few milliseconds; fails after `ms`. */
export async function until(done: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}
