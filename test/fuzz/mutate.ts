import { rng } from '../../bench/stats.js';
import { encode, PROPERTIES, prop, type Field, type PacketModel, type Property } from '../helpers/packets.js';

/**
 * Structure-aware mutations: each breaks one thing of a valid packet sequence — a header flag or
 * type, the Remaining Length, one field's value or length prefix, a property (wrong packet, twice,
 * unknown id, lying Property Length), a varint's encoding, a string's UTF-8 — or the sequence itself
 * (a packet cut short, repeated, dropped, reordered). The rest of the bytes stay valid, so the broker
 * reads up to the broken part the way it would read a real client's.
 */

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const randomBytes = (r: Rand, n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(r, 256));

const U8_EDGES = [0, 1, 2, 3, 4, 5, 0x7f, 0x80, 0xfe, 0xff];
const U16_EDGES = [0, 1, 2, 0x7fff, 0x8000, 0xfffe, 0xffff];
const U32_EDGES = [0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
/** The Variable Byte Integer's limits (§1.5.5): the last value of each length and the first of the next. */
const VARINT_EDGES = [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455];
const VARINT_WIRES = [
  Uint8Array.of(0x80, 0x00), // non-minimal 0
  Uint8Array.of(0x81, 0x80, 0x00), // non-minimal 1
  Uint8Array.of(0xff, 0xff, 0xff, 0x7f), // 268,435,455: the largest
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f), // five bytes
  Uint8Array.of(0x80), // cut short
];
const te = new TextEncoder();
/** Strings and topics at the edges of §1.5.4 and §4.7. */
const STRINGS: Uint8Array[] = [
  '',
  '+',
  '#',
  'a/#/b',
  'a+',
  'a/b#',
  '/',
  '//',
  '$SYS/broker/x',
  '$share/g/t',
  '$share//t',
  '$share/g',
  '$share/+/t',
  'a\u0000b',
  '\uffff',
  '\ufeffbom',
  '\u0001\u007f\u009f',
  'fz0',
  'x'.repeat(300),
  '/'.repeat(300),
].map((s) => te.encode(s));
const BAD_UTF8 = [
  [0xc0, 0x80], // overlong U+0000
  [0xed, 0xa0, 0x80], // surrogate
  [0xf4, 0x90, 0x80, 0x80], // > U+10FFFF
  [0xff],
  [0xe2, 0x82], // cut short
  [0x80], // stray continuation
].map((b) => Uint8Array.from(b));

/** Every field of the packet, property values included, with the list it lives in. */
function fieldsOf(packet: PacketModel): { list: Field[]; index: number }[] {
  const out: { list: Field[]; index: number }[] = [];
  const walk = (list: Field[]): void => {
    list.forEach((f, index) => {
      out.push({ list, index });
      if (f.kind === 'props') for (const p of f.props) walk(p.value);
    });
  };
  walk(packet.fields);
  return out;
}

function mutateField(r: Rand, f: Field): Field {
  switch (f.kind) {
    case 'u8':
      return { ...f, value: r() < 0.7 ? pick(r, U8_EDGES) : int(r, 256) };
    case 'u16':
      return { ...f, value: r() < 0.7 ? pick(r, U16_EDGES) : int(r, 0x10000) };
    case 'u32':
      return { ...f, value: r() < 0.7 ? pick(r, U32_EDGES) : int(r, 0x100000000) };
    case 'varint':
      return r() < 0.6 ? { kind: 'varint', value: pick(r, VARINT_EDGES) } : { ...f, wire: pick(r, VARINT_WIRES) };
    case 'string':
    case 'binary': {
      const x = r();
      if (x < 0.3) return { ...f, declared: pick(r, [0, 1, f.bytes.length + 1, Math.max(0, f.bytes.length - 1), 0xffff]) };
      if (x < 0.55) return { ...f, bytes: pick(r, STRINGS) };
      if (x < 0.8) {
        const at = int(r, f.bytes.length + 1);
        const bad = pick(r, BAD_UTF8);
        const out = new Uint8Array(f.bytes.length + bad.length);
        out.set(f.bytes.subarray(0, at));
        out.set(bad, at);
        out.set(f.bytes.subarray(at), at + bad.length);
        return { ...f, bytes: out, declared: undefined };
      }
      return { ...f, bytes: randomBytes(r, int(r, 24)), declared: undefined };
    }
    case 'raw':
      return { kind: 'raw', bytes: r() < 0.5 ? new Uint8Array(0) : randomBytes(r, int(r, 64)) };
    case 'props':
      return mutateProps(r, f);
  }
}

/** A property of any known id (or an unknown one) with a value of its type. */
function randomProperty(r: Rand): Property {
  const known = Object.keys(PROPERTIES).map(Number);
  const id = r() < 0.85 ? pick(r, known) : pick(r, [0, 0x04, 0x10, 0x2b, 0x7f, 0x80]);
  const type = PROPERTIES[id];
  const value =
    type === 'string' || type === 'pair' ? (type === 'pair' ? (['k', 'v'] as [string, string]) : 'fz/x') : type === 'binary' ? Uint8Array.of(1, 2) : pick(r, [0, 1, 2, 0xffff, 0xffffffff]);
  return prop(id, value);
}

function mutateProps(r: Rand, f: Extract<Field, { kind: 'props' }>): Field {
  const props = [...f.props];
  const x = r();
  if (x < 0.3) props.splice(int(r, props.length + 1), 0, randomProperty(r));
  else if (x < 0.45 && props.length > 0) props.push(pick(r, props));
  else if (x < 0.55 && props.length > 0) props.splice(int(r, props.length), 1);
  else if (x < 0.7 && props.length > 0) {
    const i = int(r, props.length);
    props[i] = { ...props[i]!, id: pick(r, Object.keys(PROPERTIES).map(Number)) };
  } else {
    return { ...f, declared: pick(r, [0, 1, 2, 127, 128, 0xffff, 268_435_455]) };
  }
  return { ...f, props };
}

/** One mutation of the sequence; a packet cut short becomes its raw bytes. */
function mutateOnce(r: Rand, packets: (PacketModel | Uint8Array)[]): void {
  if (packets.length === 0) return;
  // The CONNECT gets fewer mutations than the rest, so that most cases get past it.
  const i = packets.length > 1 && r() < 0.75 ? 1 + int(r, packets.length - 1) : 0;
  const target = packets[i]!;
  if (target instanceof Uint8Array) {
    packets[i] = target.subarray(0, int(r, target.length + 1));
    return;
  }
  // fast-check reuses its values while shrinking: the mutated packet is a deep copy.
  const p: PacketModel = structuredClone(target);
  packets[i] = p;
  const x = r();
  if (x < 0.1) {
    p.header ^= 1 << int(r, 4);
  } else if (x < 0.15) {
    p.header = (int(r, 16) << 4) | (p.header & 0x0f);
  } else if (x < 0.25) {
    if (r() < 0.7) p.declared = pick(r, [0, 1, 2, 127, 128, 16_383, 16_384, 2_097_152, 268_435_455, Math.max(0, encode(p).length - 3), encode(p).length]);
    else p.lengthWire = pick(r, VARINT_WIRES);
  } else if (x < 0.75) {
    const fields = fieldsOf(p);
    if (fields.length === 0) return;
    const { list, index } = pick(r, fields);
    list[index] = mutateField(r, list[index]!);
  } else if (x < 0.82) {
    if (p.fields.length > 0) p.fields.splice(int(r, p.fields.length), 1);
  } else if (x < 0.87) {
    if (p.fields.length > 0) p.fields.splice(int(r, p.fields.length), 0, pick(r, p.fields));
  } else if (x < 0.93) {
    const bytes = encode(p);
    packets[i] = bytes.subarray(0, int(r, bytes.length));
  } else if (x < 0.96) {
    packets.splice(i, 0, p);
  } else if (packets.length > 1) {
    const j = int(r, packets.length);
    [packets[i], packets[j]] = [packets[j]!, packets[i]!];
  } else {
    p.fields.push({ kind: 'raw', bytes: randomBytes(r, 1 + int(r, 16)) });
  }
}

/** `packets` with `count` mutations chosen by `seed` (the input is left as it was). */
export function mutate(packets: PacketModel[], count: number, seed: number): (PacketModel | Uint8Array)[] {
  const r = rng(seed);
  const out: (PacketModel | Uint8Array)[] = [...packets];
  for (let n = 0; n < count; n++) mutateOnce(r, out);
  return out;
}
