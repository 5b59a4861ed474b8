import fc from 'fast-check';
import { mutate } from './mutate.js';
import {
  ack,
  bare,
  concat,
  connect,
  encode,
  prop,
  publish,
  subscribe,
  unsubscribe,
  type PacketModel,
  type Property,
  type Version,
} from '../helpers/packets.js';
import { T } from '../helpers/wire.js';

/**
 * fast-check generators of fuzz cases: a client's byte stream — a valid CONNECT and valid packets of
 * every type, then structure-aware mutations of some of them (see mutate.ts), or plain random bytes —
 * cut into chunks at random points. Everything derives from fast-check's seed, so a run repeats.
 */

/** Client identifiers the fuzzer's sessions share: few, so takeovers and resumed sessions happen. */
export const FUZZ_CLIENT_IDS = ['fz0', 'fz1', 'fz2', 'fz3', ''];
const TOPICS = ['fz/a', 'fz/a/b', 'fz/b/c', 'fz', '$fz/x', 'fz/é/ü', 'fz//', '/fz', 'fz/' + 'l/'.repeat(40) + 'x'];
const FILTERS = ['fz/#', '#', '+/+', 'fz/+/c', '$share/g/fz/#', '$share/h/+/a', '$SYS/#', 'fz/a', '+', '$fz/#', 'fz/a/b'];

const version: fc.Arbitrary<Version> = fc.constantFrom(3, 4, 5, 5);
const packetId = fc.oneof(fc.constantFrom(1, 2, 3, 0xffff), fc.integer({ min: 1, max: 0xffff }));
const payload = fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 48 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 2000, maxLength: 4000 }) });
const shortText = fc.string({ maxLength: 12 });

const userProperty = fc.tuple(shortText, shortText).map(([k, v]) => prop(0x26, [k, v]));

/** Properties a client may send in PUBLISH (and, with Will Delay, in a will). */
const publishProps: fc.Arbitrary<Property[]> = fc.array(
  fc.oneof(
    fc.constantFrom(0, 1).map((v) => prop(0x01, v)),
    fc.integer({ min: 0, max: 0xffffffff }).map((v) => prop(0x02, v)),
    shortText.map((v) => prop(0x03, v)),
    fc.constantFrom('fz/reply', 'fz/r/1').map((v) => prop(0x08, v)),
    fc.uint8Array({ maxLength: 16 }).map((v) => prop(0x09, v)),
    fc.integer({ min: 1, max: 8 }).map((v) => prop(0x23, v)),
    userProperty,
  ),
  { maxLength: 4 },
);

const connectProps: fc.Arbitrary<Property[]> = fc.array(
  fc.oneof(
    fc.constantFrom(0, 1, 60, 0xffffffff).map((v) => prop(0x11, v)),
    fc.integer({ min: 1, max: 0xffff }).map((v) => prop(0x21, v)),
    fc.constantFrom(0, 1, 5, 0xffff).map((v) => prop(0x22, v)),
    fc.constantFrom(20, 128, 100_000, 0xffffffff).map((v) => prop(0x27, v)),
    fc.constantFrom(0, 1).map((v) => prop(0x17, v)),
    fc.constantFrom(0, 1).map((v) => prop(0x19, v)),
    userProperty,
  ),
  { maxLength: 4 },
);

function connectArb(v: Version): fc.Arbitrary<PacketModel> {
  return fc
    .record({
      clientId: fc.constantFrom(...FUZZ_CLIENT_IDS),
      clean: fc.boolean(),
      keepAlive: fc.constantFrom(0, 1, 30, 60, 0xffff),
      will: fc.option(
        fc.record({
          topic: fc.constantFrom(...TOPICS),
          payload: fc.uint8Array({ maxLength: 16 }),
          qos: fc.constantFrom(0, 1, 2),
          retain: fc.boolean(),
          props: fc.tuple(publishProps, fc.option(fc.constantFrom(0, 1, 60).map((d) => prop(0x18, d)), { nil: undefined })).map(([p, d]) =>
            d ? [...p.filter((x) => x.id !== 0x23), d] : p.filter((x) => x.id !== 0x23),
          ),
        }),
        { nil: undefined },
      ),
      username: fc.option(fc.constantFrom('fuzz', 'u'), { nil: undefined }),
      password: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: undefined }),
      props: connectProps,
    })
    .map((c) => connect({ version: v, ...c }));
}

function publishArb(v: Version): fc.Arbitrary<PacketModel> {
  return fc
    .record({
      topic: fc.constantFrom(...TOPICS),
      qos: fc.constantFrom(0, 1, 2),
      retain: fc.boolean(),
      dup: fc.boolean(),
      packetId,
      payload,
      props: publishProps,
    })
    .map((p) => publish(v, p));
}

function subscribeArb(v: Version): fc.Arbitrary<PacketModel> {
  const options = v === 5 ? fc.integer({ min: 0, max: 0x2f }).filter((o) => (o & 3) !== 3 && o >> 4 !== 3) : fc.constantFrom(0, 1, 2);
  const subs = fc.array(fc.record({ filter: fc.constantFrom(...FILTERS), options }), { minLength: 1, maxLength: 4 });
  const props = fc.array(fc.oneof(fc.integer({ min: 1, max: 268_435_455 }).map((id) => prop(0x0b, id)), userProperty), { maxLength: 2 });
  return fc.tuple(packetId, subs, props).map(([id, s, p]) => subscribe(v, id, s, p.filter((x, i) => x.id !== 0x0b || p.findIndex((y) => y.id === 0x0b) === i)));
}

function unsubscribeArb(v: Version): fc.Arbitrary<PacketModel> {
  return fc
    .tuple(packetId, fc.array(fc.constantFrom(...FILTERS), { minLength: 1, maxLength: 3 }), fc.array(userProperty, { maxLength: 1 }))
    .map(([id, filters, p]) => unsubscribe(v, id, filters, p));
}

function ackArb(v: Version): fc.Arbitrary<PacketModel> {
  const reasonProps = fc.option(fc.tuple(fc.constantFrom(0, 0x10, 0x80, 0x92), fc.array(fc.oneof(shortText.map((s) => prop(0x1f, s)), userProperty), { maxLength: 2 })), { nil: undefined });
  return fc
    .tuple(fc.constantFrom(T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP), packetId, reasonProps)
    .map(([type, id, rp]) => ack(v, type, id, rp?.[0], rp?.[1]));
}

function controlArb(v: Version): fc.Arbitrary<PacketModel> {
  const reasonProps = fc.tuple(fc.constantFrom(0, 4, 0x18, 0x19, 0x80), fc.array(fc.oneof(fc.constantFrom(0, 10, 0xffffffff).map((s) => prop(0x11, s)), shortText.map((s) => prop(0x1f, s)), fc.constantFrom('SCRAM-SHA-256').map((m) => prop(0x15, m))), { maxLength: 2 }));
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(bare(0xc0, v)) },
    { weight: 1, arbitrary: fc.option(reasonProps, { nil: undefined }).map((rp) => bare(0xe0, v, rp?.[0], rp?.[1])) },
    { weight: 1, arbitrary: fc.option(reasonProps, { nil: undefined }).map((rp) => bare(0xf0, v, rp?.[0], rp?.[1])) },
    // Packets only a server sends, and reserved type 0: a client sending them is malformed.
    { weight: 1, arbitrary: fc.constantFrom(0x20, 0x90, 0xb0, 0xd0, 0x00).map((h) => ({ header: h, fields: h === 0x20 ? [{ kind: 'u8', value: 0 }, { kind: 'u8', value: 0 }] : [] }) as PacketModel) },
  );
}

/** One packet of any type a client might send after CONNECT, mostly PUBLISH and SUBSCRIBE. */
function afterConnect(v: Version): fc.Arbitrary<PacketModel> {
  return fc.oneof(
    { weight: 5, arbitrary: publishArb(v) },
    { weight: 3, arbitrary: subscribeArb(v) },
    { weight: 1, arbitrary: unsubscribeArb(v) },
    { weight: 2, arbitrary: ackArb(v) },
    { weight: 2, arbitrary: controlArb(v) },
    { weight: 1, arbitrary: connectArb(v) },
  );
}

/** A fuzz case: the bytes a client sends, in the chunks they arrive in. */
export interface FuzzCase {
  kind: 'mutated' | 'random' | 'connect+random';
  version: Version;
  chunks: Uint8Array[];
}

/** Cuts `bytes` at `cuts` (fractions in [0, 1)). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].filter((p) => p > 0 && p < bytes.length).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  out.push(bytes.subarray(at));
  return out;
}

const cuts = fc.oneof({ weight: 3, arbitrary: fc.constant([] as number[]) }, { weight: 2, arbitrary: fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { maxLength: 6 }) });

const mutated: fc.Arbitrary<FuzzCase> = version.chain((v) =>
  fc
    .record({
      connect: connectArb(v),
      rest: fc.array(afterConnect(v), { maxLength: 6 }),
      mutations: fc.integer({ min: 0, max: 4 }),
      seed: fc.integer(),
      cuts,
    })
    .map(({ connect: c, rest, mutations, seed, cuts: at }) => {
      const packets = mutate([c, ...rest], mutations, seed);
      return { kind: 'mutated' as const, version: v, chunks: split(concat(packets.map((p) => (p instanceof Uint8Array ? p : encode(p)))), at) };
    }),
);

const random: fc.Arbitrary<FuzzCase> = fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 300 }), cuts).map(([bytes, at]) => ({ kind: 'random' as const, version: 4 as Version, chunks: split(bytes, at) }));

/** A valid CONNECT then random bytes: random input past the first gate. */
const connectThenRandom: fc.Arbitrary<FuzzCase> = version.chain((v) =>
  fc.tuple(connectArb(v), fc.uint8Array({ minLength: 1, maxLength: 300 }), cuts).map(([c, bytes, at]) => ({
    kind: 'connect+random' as const,
    version: v,
    chunks: split(concat([encode(c), bytes]), at),
  })),
);

export const fuzzCase: fc.Arbitrary<FuzzCase> = fc.oneof({ weight: 8, arbitrary: mutated }, { weight: 1, arbitrary: random }, { weight: 1, arbitrary: connectThenRandom });

/** Valid and mutated packets, for the codec on its own. */
export const codecInput: fc.Arbitrary<{ version: Version; chunks: Uint8Array[] }> = version.chain((v) =>
  fc
    .record({ packets: fc.array(fc.oneof(afterConnect(v), connectArb(v)), { minLength: 1, maxLength: 4 }), mutations: fc.integer({ min: 0, max: 3 }), seed: fc.integer(), cuts })
    .map(({ packets, mutations, seed, cuts: at }) => ({
      version: v,
      chunks: split(concat(mutate(packets, mutations, seed).map((p) => (p instanceof Uint8Array ? p : encode(p)))), at),
    })),
);
