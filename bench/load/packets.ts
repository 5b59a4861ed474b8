// Packets are encoded once with mqtt-packet and the Buffers reused: the generator's cost per
// message is a socket write of bytes it already has.

import mqttPacket from 'mqtt-packet';

/**
 * MQTT 3.1.1 everywhere: the protocol all three brokers speak. `clean: false` (CleanSession = 0)
 * asks for a persistent session, whose QoS 1/2 deliveries a broker with a store records.
 */
export function connectPacket(clientId: string, keepalive = 300, clean = true): Buffer {
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean, keepalive });
}

export function subscribePacket(messageId: number, filters: string[], qos: 0 | 1): Buffer {
  return mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: filters.map((topic) => ({ topic, qos })) });
}

export function publishPacket(topic: string, payload: Buffer, qos: 0 | 1, messageId?: number): Buffer {
  return mqttPacket.generate({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, messageId });
}

/** `n` copies of `packet` back to back: one socket write sends them all. */
export function repeated(packet: Buffer, n: number): Buffer {
  return Buffer.concat(Array.from({ length: n }, () => packet));
}

/** Writes PUBACK(id) at `at`; 4 bytes. */
export function putPuback(buf: Buffer, at: number, id: number): void {
  buf[at] = 0x40;
  buf[at + 1] = 2;
  buf[at + 2] = id >> 8;
  buf[at + 3] = id & 0xff;
}

/** A payload of `size` bytes (at least 4) whose first four bytes are `index`. */
export function indexPayload(index: number, size = 4): Buffer {
  const b = Buffer.alloc(Math.max(4, size), 0x61);
  b.writeUInt32BE(index, 0);
  return b;
}
