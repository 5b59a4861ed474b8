// A load-generator connection: raw TCP, packets split by walking fixed headers and Remaining
// Length only. Scenario code sees PUBLISH and PUBACK as offsets into the received chunk (or, for a
// packet that spanned reads, into the buffer it was assembled in), valid during the call only.

import { connect, type Socket } from 'node:net';
import { PacketType as Type } from '../../host/core/codec/constants.js';
import { connectPacket, subscribePacket } from './packets.js';

const READ_BUFFER = Buffer.alloc(256 * 1024);
const PINGREQ = Buffer.from([0xc0, 0]);

/** The length of the packet at buf[at..] (fixed header included), or 0 while its fixed header is incomplete before `len`. */
function packetLength(buf: Uint8Array, at: number, len: number): number {
  let remaining = 0;
  let mult = 1;
  // A 5th Remaining Length byte would be malformed; brokers do not send it.
  for (let i = at + 1; i < len && i < at + 5; i++) {
    const b = buf[i]!;
    remaining += (b & 0x7f) * mult;
    mult *= 128;
    if (b < 0x80) return i + 1 - at + remaining;
  }
  return 0;
}

export type PublishHandler = (buf: Buffer, start: number, end: number, flags: number) => void;

export class BenchConn {
  /** Called for each PUBLISH: buf[start..end) is the variable header + payload. */
  onPublish: PublishHandler = () => undefined;
  onPuback: (id: number) => void = () => undefined;
  /** After every received chunk: the moment to send batched acknowledgements. */
  onChunkEnd: () => void = () => undefined;
  /** Set when the socket closed without us asking. */
  lost: string | null = null;
  /** PINGRESPs received. */
  pingresps = 0;
  /**
   * A packet spanning reads, given room for its whole size once its fixed header is read, and how
   * much of it has arrived: each later read copies its part straight to its place, and packets wholly
   * within one read are handled in the read buffer, uncopied (a 1 MiB PUBLISH costs one copy, not a
   * copy of every read it spans and a join of them all).
   */
  private partial: Buffer | null = null;
  private filled = 0;
  /**
   * Where `partial` is assembled, kept from packet to packet: handlers read a packet during the call
   * only (as they do the shared read buffer), so one buffer per connection serves all, with no
   * allocation — and no page faults on fresh memory — per large packet.
   */
  private assembly: Buffer | null = null;
  /** The first bytes of a packet whose Remaining Length was cut by the end of a read (at most 4). */
  private head: Buffer | null = null;
  private closing = false;
  private connack: ((code: number) => void) | null = null;
  private subacks = 0;
  private subackFailures = 0;
  private subackWake: (() => void) | null = null;

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('error', (err) => {
      this.lost ??= err.message;
    });
    socket.on('close', () => {
      if (!this.closing) this.lost ??= 'closed by the broker';
      this.connack?.(-1);
      this.subackWake?.();
    });
  }

  /**
   * Opens a TCP connection whose reads land in one shared buffer (net `onread`): no Buffer and no
   * stream event per read, which matters when a broker sends one small segment per message.
   */
  static open(port: number, timeoutMs: number, localAddress?: string): Promise<BenchConn> {
    return new Promise((resolve, reject) => {
      let conn: BenchConn | null = null;
      const socket = connect({
        port,
        host: '127.0.0.1',
        ...(localAddress ? { localAddress } : {}),
        onread: {
          buffer: READ_BUFFER,
          callback: (n: number, buf: Uint8Array) => {
            conn?.onData(buf as Buffer, n);
            return true;
          },
        },
      });
      conn = new BenchConn(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`TCP connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(conn);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  private onData(chunk: Buffer, n: number): void {
    let pos = 0;
    if (this.head !== null) {
      // The few bytes of a fixed header cut short by the last read, and this read's first ones.
      const joined = Buffer.concat([this.head, chunk.subarray(0, Math.min(n, 4))]);
      const total = packetLength(joined, 0, joined.length);
      if (total === 0) {
        this.head = Buffer.from(joined);
        this.onChunkEnd();
        return;
      }
      this.partial = this.assemble(total);
      this.head.copy(this.partial, 0);
      this.filled = this.head.length;
      this.head = null;
    }
    const partial = this.partial;
    if (partial !== null) {
      pos = Math.min(n, partial.length - this.filled);
      chunk.copy(partial, this.filled, 0, pos);
      this.filled += pos;
      if (this.filled < partial.length) {
        this.onChunkEnd();
        return;
      }
      this.partial = null;
      this.dispatchPacket(partial, 0, partial.length);
    }
    for (;;) {
      const total = packetLength(chunk, pos, n);
      if (total === 0 || pos + total > n) break;
      this.dispatchPacket(chunk, pos, pos + total);
      pos += total;
    }
    if (pos < n) {
      // Copies: the read buffer is shared and reused by the next read.
      const total = packetLength(chunk, pos, n);
      if (total === 0) {
        this.head = Buffer.from(chunk.subarray(pos, n));
      } else {
        this.partial = this.assemble(total);
        this.filled = chunk.copy(this.partial, 0, pos, n);
      }
    }
    this.onChunkEnd();
  }

  /** Room for a packet of `total` bytes spanning reads: the connection's one assembly buffer, grown when too small. */
  private assemble(total: number): Buffer {
    if (this.assembly === null || this.assembly.length < total) this.assembly = Buffer.allocUnsafeSlow(total);
    return this.assembly.subarray(0, total);
  }

  /** The whole packet buf[at..end). */
  private dispatchPacket(buf: Buffer, at: number, end: number): void {
    let body = at + 1;
    while (buf[body++]! >= 0x80);
    this.dispatch(buf[at]!, buf, body, end);
  }

  private dispatch(first: number, buf: Buffer, start: number, end: number): void {
    switch (first >> 4) {
      case Type.PUBLISH:
        this.onPublish(buf, start, end, first & 0x0f);
        break;
      case Type.PUBACK:
        this.onPuback((buf[start]! << 8) | buf[start + 1]!);
        break;
      case Type.PINGRESP:
        this.pingresps++;
        break;
      case Type.CONNACK:
        this.connack?.(buf[start + 1]!);
        break;
      case Type.SUBACK:
        for (let i = start + 2; i < end; i++) if (buf[i] === 0x80) this.subackFailures++;
        this.subacks++;
        this.subackWake?.();
        break;
    }
  }

  write(buf: Buffer): void {
    this.socket.write(buf);
  }

  /**
   * Writes `packets` in order as one writev, uncopied. Joining them first (Buffer.concat) copied
   * every byte into fresh memory, and how many a write joins depends on how the broker batches its
   * PUBACKs: at 64 KiB that copy was half the generator's CPU, and more per message with a broker
   * that acknowledges in batches than with one that acknowledges one PUBLISH per segment.
   */
  writeAll(packets: Buffer[]): void {
    if (packets.length === 1) {
      this.socket.write(packets[0]!);
      return;
    }
    this.socket.cork();
    for (const packet of packets) this.socket.write(packet);
    this.socket.uncork();
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  /** PINGREQ (keep alive). */
  ping(): void {
    this.socket.write(PINGREQ);
  }

  /** MQTT CONNECT and wait for CONNACK 0; `clean: false` asks for a persistent session (CleanSession = 0). */
  handshake(clientId: string, timeoutMs: number, clean = true, keepAlive = 300): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(`no CONNACK within ${timeoutMs} ms`), timeoutMs);
      const fail = (why: string): void => {
        clearTimeout(timer);
        this.connack = null;
        reject(new Error(why));
      };
      this.connack = (code) => {
        clearTimeout(timer);
        this.connack = null;
        if (code === 0) resolve();
        else fail(code < 0 ? `connection closed before CONNACK (${this.lost})` : `CONNACK refused with code ${code}`);
      };
      this.socket.write(connectPacket(clientId, keepAlive, clean));
    });
  }

  /** Subscribes to `filters`, `perPacket` per SUBSCRIBE, and waits for every SUBACK. */
  async subscribe(filters: string[], qos: 0 | 1, timeoutMs: number, perPacket = 50): Promise<void> {
    const packets: Buffer[] = [];
    for (let i = 0; i < filters.length; i += perPacket) packets.push(subscribePacket(packets.length + 1, filters.slice(i, i + perPacket), qos));
    const target = this.subacks + packets.length;
    this.socket.write(Buffer.concat(packets));
    const deadline = performance.now() + timeoutMs;
    while (this.subacks < target) {
      if (this.lost) throw new Error(`connection lost while subscribing: ${this.lost}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`SUBACK: got ${this.subacks} of ${target} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.subackWake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.subackWake = null;
    }
    if (this.subackFailures > 0) throw new Error(`${this.subackFailures} subscriptions refused (SUBACK 0x80)`);
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }
}

export async function connectClient(port: number, clientId: string, timeoutMs = 10_000, clean = true): Promise<BenchConn> {
  const conn = await BenchConn.open(port, timeoutMs);
  try {
    await conn.handshake(clientId, timeoutMs, clean);
  } catch (error) {
    conn.close();
    throw error;
  }
  return conn;
}

/** Connects `n` clients named `${prefix}-${i}`, all at once (`clean: false`: persistent sessions). */
export function connectMany(port: number, prefix: string, n: number, timeoutMs = 10_000, clean = true): Promise<BenchConn[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => connectClient(port, `${prefix}-${i}`, timeoutMs, clean)));
}

export function closeAll(conns: Iterable<BenchConn>): void {
  for (const c of conns) c.close();
}

/** The first connection the broker closed on us, for failure reports. */
export function firstLost(conns: Iterable<BenchConn>): string | null {
  let n = 0;
  let first: string | null = null;
  for (const c of conns) {
    if (c.lost) {
      n++;
      first ??= c.lost;
    }
  }
  return first ? `${n} connection(s) lost: ${first}` : null;
}
