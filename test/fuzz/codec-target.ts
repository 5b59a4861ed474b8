import { Framer } from '../../host/core/codec/frame.js';
import { parseControl, UnsupportedVersion } from '../../host/core/codec/parse.js';
import { parsePublish } from '../../host/core/codec/publish.js';
import { ProtocolError } from '../../host/core/codec/errors.js';
import type { Version } from '../helpers/packets.js';

/**
 * The framer and the parsers on their own: any bytes, cut anywhere, must frame into the same packets
 * as when they arrive in one piece (up to the same error), and every packet must parse or be refused
 * with a ProtocolError — never anything else thrown.
 */

const MAX_PACKET = 1 << 20;

interface Framed {
  packets: [number, Uint8Array][];
  /** The reason code framing stopped with, or null. */
  error: number | null;
}

function frame(chunks: Uint8Array[]): Framed {
  const framer = new Framer(MAX_PACKET);
  const packets: [number, Uint8Array][] = [];
  try {
    for (const c of chunks) framer.push(c, 0, c.length, { onPacket: (header, buf, start, end) => (packets.push([header, buf.slice(start, end)]), true) });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { packets, error: error.reason };
  }
  return { packets, error: null };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** What the codec did wrong with these bytes, or null. */
export function checkCodec(version: Version, chunks: Uint8Array[]): string | null {
  const whole = frame([Uint8Array.from(chunks.flatMap((c) => [...c]))]);
  const split = frame(chunks);
  if (whole.error !== split.error || whole.packets.length !== split.packets.length) {
    return `framing in ${chunks.length} chunks gave ${split.packets.length} packets (error ${split.error}), in one ${whole.packets.length} (error ${whole.error})`;
  }
  for (let i = 0; i < whole.packets.length; i++) {
    const [h1, b1] = whole.packets[i]!;
    const [h2, b2] = split.packets[i]!;
    if (h1 !== h2 || !equalBytes(b1, b2)) return `packet ${i} differs when the bytes arrive in ${chunks.length} chunks`;
  }
  for (const [i, [header, body]] of whole.packets.entries()) {
    try {
      // The first packet is read as the broker reads a CONNECT: before the version is known.
      if (header >> 4 === 3) parsePublish(header, body, 0, body.length, version);
      else parseControl(header, body, 0, body.length, i === 0 ? 0 : version);
    } catch (error) {
      if (error instanceof ProtocolError || error instanceof UnsupportedVersion) continue;
      return `packet ${i} (type ${header >> 4}) threw ${(error as Error).stack ?? String(error)}`;
    }
  }
  return null;
}
