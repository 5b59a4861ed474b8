// A plain Node relay for the payload sweep (bench/payload.ts): not a broker, the practical limit of
// moving bytes through one Node process on this machine. It answers CONNECT, SUBSCRIBE and PINGREQ,
// PUBACKs a QoS 1 PUBLISH at once, and forwards every PUBLISH unchanged (the received bytes, by
// reference: no copy per subscriber) to the sockets subscribed to exactly its topic. No sessions, no
// wildcards, no flow control beyond the sockets' own; subscribers' PUBACKs are read and dropped.

import { createServer, type AddressInfo, type Socket } from 'node:net';
import { serve } from './probe.js';

const subscribers = new Map<string, Socket[]>();
const CONNACK = Buffer.from([0x20, 2, 0, 0]);
const PINGRESP = Buffer.from([0xd0, 0]);

/** Outgoing slices per socket for the chunk being handled: one corked burst per socket per chunk. */
const outgoing = new Map<Socket, Buffer[]>();

function queue(socket: Socket, bytes: Buffer): void {
  const list = outgoing.get(socket);
  if (list) list.push(bytes);
  else outgoing.set(socket, [bytes]);
}

function flushOutgoing(): void {
  for (const [socket, list] of outgoing) {
    if (socket.destroyed) continue;
    socket.cork();
    for (const bytes of list) socket.write(bytes);
    socket.uncork();
  }
  outgoing.clear();
}

function subscribe(socket: Socket, body: Buffer): void {
  const id = body.readUInt16BE(0);
  const granted: number[] = [];
  for (let at = 2; at < body.length; ) {
    const length = body.readUInt16BE(at);
    const filter = body.toString('utf8', at + 2, at + 2 + length);
    at += 2 + length;
    granted.push(Math.min(1, body[at++]! & 3));
    const list = subscribers.get(filter);
    if (list) list.push(socket);
    else subscribers.set(filter, [socket]);
  }
  queue(socket, Buffer.from([0x90, 2 + granted.length, id >> 8, id & 0xff, ...granted]));
}

function publish(socket: Socket, header: number, packet: Buffer, bodyAt: number): void {
  const length = packet.readUInt16BE(bodyAt);
  const topic = packet.toString('utf8', bodyAt + 2, bodyAt + 2 + length);
  if ((header & 0x06) !== 0) {
    const idAt = bodyAt + 2 + length;
    queue(socket, Buffer.from([0x40, 2, packet[idAt]!, packet[idAt + 1]!]));
  }
  for (const to of subscribers.get(topic) ?? []) queue(to, packet);
}

function unsubscribeAll(socket: Socket): void {
  for (const [filter, list] of subscribers) {
    const left = list.filter((s) => s !== socket);
    if (left.length > 0) subscribers.set(filter, left);
    else subscribers.delete(filter);
  }
}

/** The whole packet at `at` of `buf`: [header length, total length]; its total length alone if it is not all there; null if unknown yet. */
function packetAt(buf: Buffer, at: number): [number, number] | number | null {
  let remaining = 0;
  let shift = 0;
  for (let i = at + 1; i < buf.length && i < at + 5; i++) {
    remaining += (buf[i]! & 0x7f) << shift;
    shift += 7;
    if ((buf[i]! & 0x80) === 0) {
      const headerLength = i + 1 - at;
      return at + headerLength + remaining <= buf.length ? [headerLength, headerLength + remaining] : headerLength + remaining;
    }
  }
  return null;
}

const server = createServer({ noDelay: true }, (socket) => {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  /** Bytes the incomplete packet in `pending` needs: a large one is joined once, when complete. */
  let needed = 0;
  socket.on('error', () => socket.destroy());
  socket.on('close', () => unsubscribeAll(socket));
  socket.on('data', (chunk: Buffer) => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes < needed) return;
    needed = 0;
    let buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    let at = 0;
    for (;;) {
      const found = packetAt(buf, at);
      if (found === null) break;
      if (typeof found === 'number') {
        needed = found;
        break;
      }
      const [headerLength, total] = found;
      const header = buf[at]!;
      const packet = buf.subarray(at, at + total);
      switch (header >> 4) {
        case 1:
          queue(socket, CONNACK);
          break;
        case 3:
          publish(socket, header, packet, headerLength);
          break;
        case 8:
          subscribe(socket, packet.subarray(headerLength));
          break;
        case 12:
          queue(socket, PINGRESP);
          break;
        case 14:
          socket.end();
          break;
      }
      at += total;
    }
    buf = buf.subarray(at);
    pending = buf.length > 0 ? [buf] : [];
    pendingBytes = buf.length;
    flushOutgoing();
  });
});
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => resolve());
});

serve({ port: (server.address() as AddressInfo).port, pid: process.pid, info: { what: 'plain Node relay (bench/brokers/relay.ts)' } }, () => ({ topics: subscribers.size }));
