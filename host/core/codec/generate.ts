import { PacketType, type ProtocolVersion } from './constants.js';
import { encodeProperties, type Properties } from './properties.js';
import { Writer } from './writer.js';

/** Wraps a body into a packet: fixed header byte, Remaining Length, body. */
function packet(header: number, body: Uint8Array): Uint8Array {
  return new Writer(body.length + 5).u8(header).varint(body.length).bytes(body).result();
}

function withProperties(w: Writer, props: Properties | undefined): Writer {
  const encoded = props ? encodeProperties(props) : new Uint8Array(0);
  return w.varint(encoded.length).bytes(encoded);
}

export function connack(version: ProtocolVersion, sessionPresent: boolean, code: number, props?: Properties): Uint8Array {
  const w = new Writer().u8(sessionPresent ? 1 : 0).u8(code);
  if (version === 5) withProperties(w, props);
  return packet(PacketType.CONNACK << 4, w.result());
}

const PINGRESP = new Uint8Array([PacketType.PINGRESP << 4, 0]);
export const pingresp = (): Uint8Array => PINGRESP;

/** PUBACK, PUBREC, PUBREL or PUBCOMP; the reason code and properties exist only in 5.0 and are omitted when empty (§3.4.2.1). */
export function ack(
  type: PacketType.PUBACK | PacketType.PUBREC | PacketType.PUBREL | PacketType.PUBCOMP,
  version: ProtocolVersion,
  packetId: number,
  reason = 0,
  props?: Properties,
): Uint8Array {
  const header = (type << 4) | (type === PacketType.PUBREL ? 2 : 0);
  const hasProps = version === 5 && props !== undefined && Object.keys(props).length > 0;
  if (!hasProps && (version < 5 || reason === 0)) {
    return new Uint8Array([header, 2, packetId >> 8, packetId & 0xff]);
  }
  if (!hasProps) return new Uint8Array([header, 3, packetId >> 8, packetId & 0xff, reason]);
  return packet(header, withProperties(new Writer().u16(packetId).u8(reason), props).result());
}

/** SUBACK with one return / reason code per requested filter, in order [MQTT-3.8.4-6]. */
export function suback(version: ProtocolVersion, packetId: number, codes: number[], props?: Properties): Uint8Array {
  const w = new Writer().u16(packetId);
  if (version === 5) withProperties(w, props);
  for (const c of codes) w.u8(c);
  return packet(PacketType.SUBACK << 4, w.result());
}

/** UNSUBACK; before 5.0 it has no payload, in 5.0 one reason code per filter [MQTT-3.11.3-1]. */
export function unsuback(version: ProtocolVersion, packetId: number, codes: number[], props?: Properties): Uint8Array {
  const w = new Writer().u16(packetId);
  if (version === 5) {
    withProperties(w, props);
    for (const c of codes) w.u8(c);
  }
  return packet(PacketType.UNSUBACK << 4, w.result());
}

/** DISCONNECT from the server exists only in 5.0. */
export function disconnect(reason: number, props?: Properties): Uint8Array {
  return packet(PacketType.DISCONNECT << 4, withProperties(new Writer().u8(reason), props).result());
}

export function auth(reason: number, props?: Properties): Uint8Array {
  return packet(PacketType.AUTH << 4, withProperties(new Writer().u8(reason), props).result());
}
