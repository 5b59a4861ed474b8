// Watching the MQTT packets on one client connection, in both directions, without touching the
// client or the broker: a ClientLink wrapper that frames a copy of the byte stream and reports each
// packet's type and identifying fields. Used by `broker.connect({ onPacket })` and usable on any
// link (the WebSocketLink to a remote broker too).
import type { ClientLink, ClientLinkEvents } from '../client/link.js';
import { MAX_REMAINING_LENGTH, PacketType } from '../core/codec/constants.js';
import { Framer } from '../core/codec/frame.js';

export type PacketName =
  | 'CONNECT'
  | 'CONNACK'
  | 'PUBLISH'
  | 'PUBACK'
  | 'PUBREC'
  | 'PUBREL'
  | 'PUBCOMP'
  | 'SUBSCRIBE'
  | 'SUBACK'
  | 'UNSUBSCRIBE'
  | 'UNSUBACK'
  | 'PINGREQ'
  | 'PINGRESP'
  | 'DISCONNECT'
  | 'AUTH';

const NAMES: readonly (PacketName | undefined)[] = [
  undefined,
  'CONNECT',
  'CONNACK',
  'PUBLISH',
  'PUBACK',
  'PUBREC',
  'PUBREL',
  'PUBCOMP',
  'SUBSCRIBE',
  'SUBACK',
  'UNSUBSCRIBE',
  'UNSUBACK',
  'PINGREQ',
  'PINGRESP',
  'DISCONNECT',
  'AUTH',
];

/** Seen from the client: `out` goes to the broker, `in` comes from it. */
export type PacketDirection = 'out' | 'in';

/** One packet that crossed the link. Fields beyond the first four are present where the packet type has them. */
export interface PacketEvent {
  direction: PacketDirection;
  type: PacketName;
  /** `performance.now()` when the packet crossed (whole packets only: the moment its last byte did). */
  at: number;
  /** The whole packet, fixed header included. */
  size: number;
  /** PUBLISH with QoS > 0, the acknowledgements, SUBSCRIBE / SUBACK, UNSUBSCRIBE / UNSUBACK. */
  packetId?: number;
  /** PUBLISH. */
  qos?: 0 | 1 | 2;
  retain?: boolean;
  dup?: boolean;
  /** PUBLISH (empty when a 5.0 topic alias stands for it). */
  topic?: string;
  /** CONNACK, PUBACK / PUBREC / PUBREL / PUBCOMP (0 when the packet omits it), DISCONNECT, AUTH. */
  reasonCode?: number;
  /** SUBACK / UNSUBACK (5.0): one per filter. */
  reasonCodes?: number[];
  /** CONNECT: the protocol level (4 = 3.1.1, 5 = 5.0). */
  protocolVersion?: number;
  /** CONNACK. */
  sessionPresent?: boolean;
}

export type PacketObserver = (event: PacketEvent) => void;

const utf8 = new TextDecoder();

/**
 * Wraps `link` so that `observer` hears of every whole packet sent or received, in the order they
 * crossed: a received packet is reported before the client acts on it, so an acknowledgement it
 * provokes is always reported after it. The observer cannot disturb the connection: what it throws
 * goes to `reportError` (the page's error event and console), and a stream the tap cannot frame
 * only stops the reports.
 */
export function tapLink(link: ClientLink, observer: PacketObserver): ClientLink {
  const tap = new Tap(observer);
  return {
    get bufferedAmount() {
      return link.bufferedAmount;
    },
    send(bytes: Uint8Array): void {
      tap.push('out', bytes);
      link.send(bytes);
    },
    close(): void {
      link.close();
    },
    attach(events: ClientLinkEvents): void {
      link.attach({
        data(chunk) {
          tap.push('in', chunk);
          events.data(chunk);
        },
        close(error) {
          events.close(error);
        },
      });
    },
  };
}

/** The framing state of both directions, and what the CONNECT said about the protocol version. */
class Tap {
  private readonly framers = { out: new Framer(MAX_REMAINING_LENGTH + 5), in: new Framer(MAX_REMAINING_LENGTH + 5) };
  private readonly broken = { out: false, in: false };
  /** SUBACK / UNSUBACK carry properties only in 5.0: learnt from the CONNECT going out. */
  private version = 4;

  constructor(private readonly observer: PacketObserver) {}

  push(direction: PacketDirection, bytes: Uint8Array): void {
    if (this.broken[direction]) return;
    try {
      this.framers[direction].push(bytes, 0, bytes.length, {
        onPacket: (header, buf, start, end) => {
          const event = describe(direction, header, buf, start, end, this.version);
          if (!event) throw new Error('reserved packet type 0');
          this.report(event);
          return true;
        },
      });
    } catch {
      // Not MQTT (or over the size limit): the client will say so and close; the tap just goes quiet.
      this.broken[direction] = true;
    }
  }

  private report(event: PacketEvent): void {
    if (event.type === 'CONNECT' && event.protocolVersion !== undefined) this.version = event.protocolVersion;
    try {
      this.observer(event);
    } catch (error) {
      report(error);
    }
  }
}

/** The fixed header and the identifying fields of one whole packet `buf[start, end)` (body only); null for type 0 (reserved). */
function describe(direction: PacketDirection, header: number, buf: Uint8Array, start: number, end: number, version: number): PacketEvent | null {
  const kind = header >> 4;
  const type = NAMES[kind];
  if (!type) return null;
  const length = end - start;
  const event: PacketEvent = { direction, type, at: performance.now(), size: 1 + varintSize(length) + length };
  const u16 = (at: number): number | undefined => (at + 2 <= end ? (buf[at]! << 8) | buf[at + 1]! : undefined);
  switch (kind) {
    case PacketType.CONNECT: {
      const nameLength = u16(start);
      if (nameLength !== undefined && start + 2 + nameLength < end) event.protocolVersion = buf[start + 2 + nameLength];
      break;
    }
    case PacketType.CONNACK:
      if (length >= 2) {
        event.sessionPresent = (buf[start]! & 1) === 1;
        event.reasonCode = buf[start + 1];
      }
      break;
    case PacketType.PUBLISH: {
      const qos = ((header >> 1) & 3) as 0 | 1 | 2;
      event.qos = qos;
      event.retain = (header & 1) === 1;
      event.dup = (header & 8) === 8;
      const topicLength = u16(start);
      if (topicLength === undefined || start + 2 + topicLength > end) break;
      event.topic = utf8.decode(buf.subarray(start + 2, start + 2 + topicLength));
      if (qos > 0) event.packetId = u16(start + 2 + topicLength);
      break;
    }
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      event.packetId = u16(start);
      // A 5.0 acknowledgement of two bytes means Success [MQTT-3.4.2.1].
      event.reasonCode = length > 2 ? buf[start + 2] : 0;
      break;
    case PacketType.SUBSCRIBE:
    case PacketType.UNSUBSCRIBE:
      event.packetId = u16(start);
      break;
    case PacketType.SUBACK:
    case PacketType.UNSUBACK: {
      event.packetId = u16(start);
      let at = start + 2;
      if (version === 5) {
        const props = readVarint(buf, at, end);
        if (!props) break;
        at = props.next + props.value;
      }
      // A 3.1.1 UNSUBACK has no payload: no reason codes to report.
      if (at < end) event.reasonCodes = Array.from(buf.subarray(at, end));
      break;
    }
    case PacketType.DISCONNECT:
    case PacketType.AUTH:
      event.reasonCode = length >= 1 ? buf[start] : 0;
      break;
  }
  return event;
}

/** An observer's error, reported like an uncaught one without unwinding the connection's stack. */
function report(error: unknown): void {
  if (typeof globalThis.reportError === 'function') {
    globalThis.reportError(error);
    return;
  }
  queueMicrotask(() => {
    throw error;
  });
}

function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

function readVarint(buf: Uint8Array, at: number, end: number): { value: number; next: number } | null {
  let value = 0;
  for (let shift = 0; shift < 28 && at < end; shift += 7) {
    const byte = buf[at++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next: at };
  }
  return null;
}
