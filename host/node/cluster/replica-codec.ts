import type { StoredDelivery, StoredMessage, StoredSession, StoredWill } from '../../core/model/store.js';
import { FrameType, FrameWriter, LinkProtocolError, type FrameReader } from './frame.js';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * What one Replicate frame carries: the changes of one group commit to the sessions a buddy keeps,
 * as the owner's store records them (docs/PERSISTENCE.md), so the buddy's store holds the same.
 */
export interface ReplicaChanges {
  /** Sequence number of the frame on its owner→buddy stream (acknowledged cumulatively). */
  seq: number;
  /** Sessions whose records the buddy drops before applying the rest: a snapshot of them follows, or it no longer keeps them. */
  clear: string[];
  sessions: Map<string, StoredSession | null>;
  /** Keyed by message id; bodies shared by several deliveries. */
  messages: Map<string, StoredMessage | null>;
  /** A delivery, or `null` with its client id and seq when it is gone. */
  deliveries: (StoredDelivery | { clientId: string; seq: number; gone: true })[];
  /** Keyed `${clientId}\0${packetId}`, as in StoreBatch. */
  incomingQos2: Map<string, true | null>;
}

export const emptyChanges = (seq: number): ReplicaChanges => ({
  seq,
  clear: [],
  sessions: new Map(),
  messages: new Map(),
  deliveries: [],
  incomingQos2: new Map(),
});

const D_RETAIN = 1;
const D_RELEASED = 2;
const D_BODY = 4;
const D_SUBSCRIPTION_IDS = 8;
const D_GONE = 16;

export function encodeChanges(c: ReplicaChanges): Buffer {
  const w = new FrameWriter(FrameType.Replicate, 1024).uint(c.seq);
  w.u32(c.clear.length);
  for (const id of c.clear) w.string(id);
  w.u32(c.sessions.size);
  for (const [id, s] of c.sessions) {
    w.string(id);
    if (s === null) {
      w.u8(0);
      continue;
    }
    const { will, ...rest } = s;
    w.u8(1).json(rest);
    if (will === null) w.u8(0);
    else writeMessage(w.u8(1), will).json({ delaySeconds: will.delaySeconds, messageExpiryInterval: will.messageExpiryInterval ?? null });
  }
  w.u32(c.messages.size);
  for (const [id, m] of c.messages) {
    w.string(id);
    if (m === null) w.u8(0);
    else writeMessage(w.u8(1), m);
  }
  w.u32(c.deliveries.length);
  // A commit's deliveries are mostly one session's, their bodies of few topics: an id or a topic
  // like the last one is copied, not encoded again.
  const ids = new Utf8Cache();
  const topics = new Utf8Cache();
  for (const d of c.deliveries) {
    w.bytes(ids.encode(d.clientId)).uint(d.seq);
    if ('gone' in d) {
      w.u8(D_GONE);
      continue;
    }
    const flags = (d.retain ? D_RETAIN : 0) | (d.released ? D_RELEASED : 0) | (d.message ? D_BODY : 0) | (d.subscriptionIds ? D_SUBSCRIPTION_IDS : 0);
    w.u8(flags).string(d.messageId).u8(d.qos).u32(d.packetId);
    if (d.subscriptionIds) {
      w.u32(d.subscriptionIds.length);
      for (const id of d.subscriptionIds) w.u32(id);
    }
    if (d.message) writeMessage(w, d.message, topics);
  }
  w.u32(c.incomingQos2.size);
  for (const [key, v] of c.incomingQos2) w.string(key).u8(v ? 1 : 0);
  return w.finish();
}

export function decodeChanges(r: FrameReader): ReplicaChanges {
  const c = emptyChanges(r.uint());
  for (let n = r.u32(); n > 0; n--) c.clear.push(r.string());
  for (let n = r.u32(); n > 0; n--) {
    const id = r.string();
    if (r.u8() === 0) {
      c.sessions.set(id, null);
      continue;
    }
    const s = r.json<Omit<StoredSession, 'will'>>();
    let will: StoredWill | null = null;
    if (r.u8() === 1) {
      const m = readMessage(r);
      const extra = r.json<{ delaySeconds: number; messageExpiryInterval: number | null }>();
      will = { ...m, delaySeconds: extra.delaySeconds, messageExpiryInterval: extra.messageExpiryInterval ?? undefined };
    }
    c.sessions.set(id, { ...s, will });
  }
  for (let n = r.u32(); n > 0; n--) {
    const id = r.string();
    c.messages.set(id, r.u8() === 0 ? null : readMessage(r));
  }
  const ids = new Utf8Cache();
  const topics = new Utf8Cache();
  for (let n = r.u32(); n > 0; n--) {
    const clientId = ids.decode(r.bytes());
    const seq = r.uint();
    const flags = r.u8();
    if (flags & D_GONE) {
      c.deliveries.push({ clientId, seq, gone: true });
      continue;
    }
    const messageId = r.string();
    const qos = r.u8() as StoredDelivery['qos'];
    const packetId = r.u32();
    let subscriptionIds: number[] | null = null;
    if (flags & D_SUBSCRIPTION_IDS) {
      subscriptionIds = [];
      for (let k = r.u32(); k > 0; k--) subscriptionIds.push(r.u32());
    }
    const d: StoredDelivery = { clientId, seq, messageId, qos, retain: (flags & D_RETAIN) !== 0, subscriptionIds, packetId, released: (flags & D_RELEASED) !== 0 };
    if (flags & D_BODY) d.message = readMessage(r, topics);
    c.deliveries.push(d);
  }
  for (let n = r.u32(); n > 0; n--) {
    const key = r.string();
    c.incomingQos2.set(key, r.u8() === 1 ? true : null);
  }
  return c;
}

function writeMessage(w: FrameWriter, m: StoredMessage, topics?: Utf8Cache): FrameWriter {
  if (topics) w.bytes(topics.encode(m.topic));
  else w.string(m.topic);
  w.bytes(m.payload).u8(m.qos).u8(m.retain ? 1 : 0).uint(m.expiresAt);
  if (m.forward) w.u8(1).bytes(m.forward);
  else w.u8(0);
  return w;
}

function readMessage(r: FrameReader, topics?: Utf8Cache): StoredMessage {
  const topic = topics ? topics.decode(r.bytes()) : r.string();
  // Copied: the frame's buffer is not kept.
  const payload = new Uint8Array(r.bytes());
  const qos = r.u8() as StoredMessage['qos'];
  const retain = r.u8() === 1;
  const expiresAt = r.uint();
  const forward = r.u8() === 1 ? new Uint8Array(r.bytes()) : null;
  return { topic, payload, qos, retain, forward, expiresAt };
}

/** The last string encoded or decoded, and its UTF-8 bytes. */
class Utf8Cache {
  private text = '';
  private utf8: Uint8Array = new Uint8Array(0);

  encode(text: string): Uint8Array {
    if (text !== this.text) this.utf8 = utf8.encode((this.text = text));
    return this.utf8;
  }

  decode(bytes: Buffer): string {
    if (bytes.equals(this.utf8)) return this.text;
    try {
      this.text = utf8Decoder.decode(bytes);
    } catch {
      throw new LinkProtocolError('a replication frame has a string that is not UTF-8');
    }
    this.utf8 = bytes;
    return this.text;
  }
}
