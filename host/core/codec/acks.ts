import { PacketType, type ProtocolVersion } from './constants.js';
import { type Properties, writeProperties } from './properties.js';
import { wrapPacket, Writer } from './writer.js';

/** The acknowledgements of QoS 1/2 flows: the same shape both ways (§3.4–§3.7). */
export type AckType = PacketType.PUBACK | PacketType.PUBREC | PacketType.PUBREL | PacketType.PUBCOMP;

/** The fixed header byte of an acknowledgement: PUBREL has flags 0010 [MQTT-3.6.1-1]. */
export const ackHeader = (type: AckType): number => (type << 4) | (type === PacketType.PUBREL ? 2 : 0);

/** Bytes of an acknowledgement without properties: 4, or 5 when a 5.0 reason code is not Success (§3.4.2.1). */
export const ackSize = (version: ProtocolVersion, reason: number): number => (version === 5 && reason !== 0 ? 5 : 4);

/** Writes an acknowledgement without properties at `at` (ackSize bytes); returns the end. */
export function writeAck(buf: Uint8Array, at: number, type: AckType, version: ProtocolVersion, packetId: number, reason: number): number {
  const long = version === 5 && reason !== 0;
  buf[at] = ackHeader(type);
  buf[at + 1] = long ? 3 : 2;
  buf[at + 2] = packetId >> 8;
  buf[at + 3] = packetId & 0xff;
  if (!long) return at + 4;
  buf[at + 4] = reason;
  return at + 5;
}

/**
 * PUBACK, PUBREC, PUBREL or PUBCOMP. The reason code and properties exist only in 5.0 and are
 * left out when Success and empty (§3.4.2.1).
 */
export function encodeAck(type: AckType, version: ProtocolVersion, packetId: number, reason = 0, props?: Properties): Uint8Array {
  if (version === 5 && props !== undefined && Object.keys(props).length > 0) {
    return wrapPacket(ackHeader(type), writeProperties(new Writer().u16(packetId).u8(reason), props).result());
  }
  const out = new Uint8Array(ackSize(version, reason));
  writeAck(out, 0, type, version, packetId, reason);
  return out;
}
