import { PacketType, type ProtocolVersion } from './constants.js';
import { type Properties, writeProperties } from './properties.js';
import { wrapPacket, Writer } from './writer.js';

// The server → client control packets other than PUBLISH (publish.ts) and the acknowledgements (acks.ts).

/** The 3.1 and 3.1.1 CONNACKs, by Session Present and return code (0–5): built once, every CONNECT answers one. */
const CONNACK_311 = [0, 1].map((present) => Array.from({ length: 6 }, (_, code) => new Uint8Array([PacketType.CONNACK << 4, 2, present, code])));

export function connack(version: ProtocolVersion, sessionPresent: boolean, code: number, props?: Properties): Uint8Array {
  if (version !== 5) return CONNACK_311[sessionPresent ? 1 : 0]![code]!;
  const w = new Writer().u8(sessionPresent ? 1 : 0).u8(code);
  writeProperties(w, props);
  return wrapPacket(PacketType.CONNACK << 4, w.result());
}

const PINGRESP = new Uint8Array([PacketType.PINGRESP << 4, 0]);
export const pingresp = (): Uint8Array => PINGRESP;

/** SUBACK with one return / reason code per requested filter, in order [MQTT-3.8.4-6]. */
export function suback(version: ProtocolVersion, packetId: number, codes: number[], props?: Properties): Uint8Array {
  const w = new Writer().u16(packetId);
  if (version === 5) writeProperties(w, props);
  for (const c of codes) w.u8(c);
  return wrapPacket(PacketType.SUBACK << 4, w.result());
}

/** UNSUBACK; before 5.0 it has no payload, in 5.0 one reason code per filter [MQTT-3.11.3-1]. */
export function unsuback(version: ProtocolVersion, packetId: number, codes: number[], props?: Properties): Uint8Array {
  const w = new Writer().u16(packetId);
  if (version === 5) {
    writeProperties(w, props);
    for (const c of codes) w.u8(c);
  }
  return wrapPacket(PacketType.UNSUBACK << 4, w.result());
}

/** DISCONNECT from the server exists only in 5.0. */
export function disconnect(reason: number, props?: Properties): Uint8Array {
  return wrapPacket(PacketType.DISCONNECT << 4, writeProperties(new Writer().u8(reason), props).result());
}

export function auth(reason: number, props?: Properties): Uint8Array {
  return wrapPacket(PacketType.AUTH << 4, writeProperties(new Writer().u8(reason), props).result());
}
