/**
 * Shared helpers of the MQTT 3.1.1 conformance suite: raw byte building (on test/helpers/wire.ts)
 * and the shared raw peer with this suite's vocabulary.
 */
import assert from 'node:assert/strict';
import type mqttPacket from 'mqtt-packet';
import type { IConnackPacket, IPublishPacket, ISubackPacket, Packet } from 'mqtt-packet';
import type { ServerOptions } from '../../../host/node/server.js';
import { type ServerTestBroker, startBroker, type TestBroker } from '../../helpers/broker.js';
import { connectBytes, Peer as RawPeer } from '../../helpers/peer.js';
import { bytes, type Frame, packet, type Part, str, T, u16 } from '../../helpers/wire.js';

export type { Frame } from '../../helpers/wire.js';
export { bytes, packet, str, T, u16, varint } from '../../helpers/wire.js';
export { pace, until } from '../../helpers/wait.js';

/** A string field given as text, or as raw bytes (which may be ill-formed UTF-8 on purpose). */
export type Bytes = string | Part;

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

/** A 3.1.1 client: the shared raw peer, speaking through mqtt-packet where a test needs no odd bytes. */
export class Peer extends RawPeer {
  private packetIds = 1;

  /** A connection with nothing sent yet. */
  static async open(b: TestBroker): Promise<Peer> {
    return (await b.raw(Peer)).version(4);
  }

  /** CONNECT (3.1.1) and its CONNACK; fails unless the return code is 0. */
  static async connect(b: TestBroker, options: Partial<mqttPacket.IConnectPacket> = {}): Promise<Peer & { connack: IConnackPacket }> {
    const p = await Peer.open(b);
    p.send(connectBytes({ protocolVersion: 4, ...options }));
    const connack = await p.next<IConnackPacket>('connack');
    assert.equal(connack.returnCode, 0, 'CONNECT accepted');
    return Object.assign(p, { connack });
  }

  /** SUBSCRIBE and wait for its SUBACK; returns the return codes. */
  async subscribe(filter: string | [string, number][], qos = 0): Promise<number[]> {
    const subs = typeof filter === 'string' ? [[filter, qos] as [string, number]] : filter;
    const messageId = this.packetIds++;
    this.sendPacket({ cmd: 'subscribe', messageId, subscriptions: subs.map(([topic, q]) => ({ topic, qos: q as 0 | 1 | 2 })) });
    const ack = await this.next<ISubackPacket>('suback');
    assert.equal(ack.messageId, messageId);
    return ack.granted as number[];
  }

  async unsubscribe(...filters: string[]): Promise<void> {
    const messageId = this.packetIds++;
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

  /** Asserts no packet of `cmd` came before the answer to a PINGREQ sent now. */
  async expectNo(cmd: Packet['cmd']): Promise<void> {
    await this.roundTrip();
    assert.deepEqual(this.packets.filter((p) => p.cmd === cmd).map((p) => p.cmd), [], `no ${cmd} expected`);
  }

  /** Sends DISCONNECT and waits until the broker closed the connection. */
  async disconnect(): Promise<void> {
    this.send([0xe0, 0]);
    await this.expectClosed();
    await this.released();
  }

  /**
   * Acknowledges every PUBLISH from now on as a well-behaved client would (PUBACK, PUBREC, and
   * PUBCOMP for each PUBREL), in arrival order; returns the list the received PUBLISH frames go to.
   */
  autoAck(): Frame[] {
    const seen: Frame[] = [];
    this.onFrame = (f) => {
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
}

/** Runs `fn` against a broker of its own (for tests that run concurrently); closes it and checks the arena after. */
export async function withBroker<R>(options: ServerOptions, fn: (b: ServerTestBroker) => Promise<R>): Promise<R> {
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

/** Topic bytes of a PUBLISH frame. */
export function frameTopic(f: Frame): Buffer {
  return f.body.subarray(2, 2 + f.body.readUInt16BE(0));
}

/** Payload of a PUBLISH frame. */
export function framePayload(f: Frame): Buffer {
  const qos = (f.flags >> 1) & 3;
  return f.body.subarray(2 + f.body.readUInt16BE(0) + (qos > 0 ? 2 : 0));
}
