import type { Persistence } from '../../core/model/persistence.js';
import { crc32c } from '../level-wal.js';

const PREFIX = 'cluster/qos2/';
/**
 * A receipt whose release never came (its publisher's node died between PUBREL and telling the
 * others) goes after this long: only a resend from a publisher away for longer could need it.
 */
export const RECEIPT_TTL_MS = 24 * 3600_000;

const nameOf = (clientId: string, packetId: number): string => `${PREFIX}${packetId} ${clientId}`;

/** What tells a resend of a message from a new message under the same packet identifier: its block's length and CRC-32C. */
export function fingerprint(bytes: Uint8Array, start: number, length: number): string {
  return `${length.toString(36)}.${crc32c(bytes, start, length).toString(36)}`;
}

/**
 * The QoS 2 messages this node delivered, by publisher client id and packet identifier, until the
 * publisher releases the identifier (PUBREL). A publisher whose node was killed before it made the
 * identifier durable sends the message again (DUP), wherever it reconnects; the node that routes the
 * resend tags it as a repeat, and every node holding a receipt for it skips it. Receipts are marks,
 * written in the group commit of the deliveries they stand for, so they outlive a crash exactly
 * when those deliveries do.
 */
export class Qos2Receipts {
  constructor(private readonly persistence: Persistence) {}

  /** Whether this node delivered the message with fingerprint `print` from `clientId` under `packetId`. */
  has(clientId: string, packetId: number, print: string): boolean {
    const value = this.persistence.marks.get(nameOf(clientId, packetId));
    return value !== undefined && value.slice(0, value.indexOf(' ')) === print;
  }

  /**
   * A message this node is about to deliver: false when it may be a repeat (`repeat`) and this node
   * delivered it already (it is skipped); else its receipt is written and it is delivered.
   */
  admit(clientId: string, packetId: number, repeat: boolean, print: string): boolean {
    if (repeat && this.has(clientId, packetId, print)) return false;
    this.record(clientId, packetId, print);
    return true;
  }

  /** This node delivers (or delivered) the message: kept with the changes collected now. */
  record(clientId: string, packetId: number, print: string): void {
    this.persistence.saveMark(nameOf(clientId, packetId), `${print} ${Date.now()}`);
  }

  /** The publisher released the identifier: a PUBLISH under it is a new message from now on. */
  release(clientId: string, packetId: number): void {
    const name = nameOf(clientId, packetId);
    if (this.persistence.marks.has(name)) this.persistence.saveMark(name, null);
  }

  /** Drops the receipts older than RECEIPT_TTL_MS (their release was lost); returns how many. */
  sweep(now = Date.now()): number {
    let dropped = 0;
    for (const [name, value] of this.persistence.marks) {
      if (!name.startsWith(PREFIX) || now - Number(value.slice(value.indexOf(' ') + 1)) <= RECEIPT_TTL_MS) continue;
      this.persistence.saveMark(name, null);
      dropped++;
    }
    return dropped;
  }
}
