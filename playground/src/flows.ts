// Groups one connection's packets into exchanges: a QoS 1 message is PUBLISH → PUBACK, a QoS 2
// message PUBLISH → PUBREC → PUBREL → PUBCOMP (in either direction), a subscription SUBSCRIBE →
// SUBACK, and so on. Each exchange keeps its steps with their timestamps.
import type { PacketDirection, PacketEvent, PacketName } from '../../host/browser/index.js';

export interface Flow {
  /** Increasing per log, for keyed rendering. */
  id: number;
  /** The packet that opened it. */
  first: PacketEvent;
  /** Every packet of the exchange, in order, the opening one included. */
  steps: PacketEvent[];
  /** The last expected packet arrived (or a failure code ended it early). */
  complete: boolean;
  /** Wall-clock time of the first step (performance.timeOrigin + at). */
  startedAt: number;
}

/** Which packet closes an exchange, given what opened it. */
const CLOSERS: Partial<Record<PacketName, PacketName>> = {
  CONNECT: 'CONNACK',
  SUBSCRIBE: 'SUBACK',
  UNSUBSCRIBE: 'UNSUBACK',
  PINGREQ: 'PINGRESP',
};

const flip = (d: PacketDirection): PacketDirection => (d === 'out' ? 'in' : 'out');

export class FlowLog {
  private nextId = 1;
  private readonly open = new Map<string, Flow>();
  private readonly flows: Flow[] = [];

  constructor(
    /** Flows kept; older ones are forgotten. */
    private readonly limit = 200,
  ) {}

  /** Adds one packet; returns the flow it started or continued. */
  add(event: PacketEvent): Flow {
    const key = this.keyOf(event);
    const existing = key === null ? undefined : this.open.get(key);
    // A resent PUBLISH (DUP) belongs to the exchange it repeats; any other PUBLISH starts a new one.
    if (existing && (event.type !== 'PUBLISH' || event.dup)) {
      existing.steps.push(event);
      if (this.closes(existing, event)) {
        existing.complete = true;
        this.open.delete(key!);
      }
      return existing;
    }
    const flow: Flow = { id: this.nextId++, first: event, steps: [event], complete: !this.expectsMore(event), startedAt: performance.timeOrigin + event.at };
    if (!flow.complete && key !== null) this.open.set(key, flow);
    this.flows.push(flow);
    if (this.flows.length > this.limit) {
      const dropped = this.flows.shift()!;
      for (const [k, f] of this.open) if (f === dropped) this.open.delete(k);
    }
    return flow;
  }

  all(): readonly Flow[] {
    return this.flows;
  }

  /**
   * The exchange a packet belongs to, by the direction its opening packet travelled and its packet
   * identifier: acknowledgements of a PUBLISH travel the other way, except PUBREL.
   */
  private keyOf(e: PacketEvent): string | null {
    switch (e.type) {
      case 'PUBLISH':
        return e.qos === 0 || e.packetId === undefined ? null : `P${e.direction}:${e.packetId}`;
      case 'PUBACK':
      case 'PUBREC':
      case 'PUBCOMP':
        return `P${flip(e.direction)}:${e.packetId}`;
      case 'PUBREL':
        return `P${e.direction}:${e.packetId}`;
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE':
        return `${e.type}:${e.packetId}`;
      case 'SUBACK':
        return `SUBSCRIBE:${e.packetId}`;
      case 'UNSUBACK':
        return `UNSUBSCRIBE:${e.packetId}`;
      case 'CONNECT':
      case 'CONNACK':
        return 'CONNECT';
      case 'PINGREQ':
      case 'PINGRESP':
        return 'PINGREQ';
      default:
        return null;
    }
  }

  private expectsMore(e: PacketEvent): boolean {
    if (e.type === 'PUBLISH') return (e.qos ?? 0) > 0;
    return CLOSERS[e.type] !== undefined;
  }

  private closes(flow: Flow, e: PacketEvent): boolean {
    if (flow.first.type !== 'PUBLISH') return e.type === CLOSERS[flow.first.type];
    if (e.type === 'PUBACK' || e.type === 'PUBCOMP') return true;
    // A PUBREC with a failure code ends a QoS 2 exchange: no PUBREL follows [MQTT-4.3.3].
    return e.type === 'PUBREC' && (e.reasonCode ?? 0) >= 0x80;
  }
}
