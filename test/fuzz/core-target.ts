import fc from 'fast-check';
import { ArenaError, type Core } from '../../host/core/wasm/core.js';
import { refMatch } from '../helpers/reference.js';

/**
 * The wasm core's exports on their own, against plain models: topic validation against the rules of
 * §1.5.4 and §4.7, the subscription trie against brute-force matching, the arena against a table of
 * handles, reference counts and contents. Each is a fast-check property over command sequences.
 */

// ---- topic validation ---------------------------------------------------------------------

/** Length of the well-formed UTF-8 character at `i` (Unicode Table 3-7), or 0. */
function charLength(b: Uint8Array, i: number): number {
  const x = b[i]!;
  if (x < 0x80) return 1;
  const ranges: [number, number][][] = [
    [[0xc2, 0xdf]],
    [[0xe0, 0xe0], [0xa0, 0xbf]],
    [[0xe1, 0xec], [0x80, 0xbf]],
    [[0xed, 0xed], [0x80, 0x9f]],
    [[0xee, 0xef], [0x80, 0xbf]],
    [[0xf0, 0xf0], [0x90, 0xbf], [0x80, 0xbf]],
    [[0xf1, 0xf3], [0x80, 0xbf], [0x80, 0xbf]],
    [[0xf4, 0xf4], [0x80, 0x8f], [0x80, 0xbf]],
  ];
  const row = ranges.find(([[lo, hi]]) => x >= lo! && x <= hi!);
  if (!row) return 0;
  const n = x < 0xe0 ? 2 : x < 0xf0 ? 3 : 4;
  if (i + n > b.length) return 0;
  for (let k = 1; k < n; k++) {
    const [lo, hi] = row[k] ?? [0x80, 0xbf];
    if (b[i + k]! < lo || b[i + k]! > hi) return 0;
  }
  return n;
}

/**
 * The TopicError code the rules give: empty (1), too long (8); else the first encoding error by
 * position — ill-formed UTF-8 (2) [MQTT-1.5.4-1] or U+0000 (3) [MQTT-1.5.4-2] — which makes the packet
 * malformed; else the first wildcard error: any wildcard in a name (4) [MQTT-3.3.2-2], `#` not last
 * (5) or not alone in its level (6) [MQTT-4.7.1-1], `+` not alone (7) [MQTT-4.7.1-2].
 */
export function topicOracle(b: Uint8Array, isFilter: boolean): number {
  if (b.length === 0) return 1;
  if (b.length > 0xffff) return 8;
  for (let i = 0; i < b.length; ) {
    if (b[i] === 0) return 3;
    const n = charLength(b, i);
    if (n === 0) return 2;
    i += n;
  }
  const levels = new TextDecoder().decode(b).split('/');
  for (const [i, level] of levels.entries()) {
    for (const c of level) {
      if (c !== '+' && c !== '#') continue;
      if (!isFilter) return 4;
      if (level !== c) return c === '+' ? 7 : 6;
      if (c === '#' && i !== levels.length - 1) return 5;
    }
  }
  return 0;
}

const te = new TextEncoder();
const topicChars = fc.constantFrom('a', 'b', '/', '/', '+', '#', '$', 'é', '\u{1f600}', '\u0000', ' ');
const badBytes = fc.constantFrom([0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff], [0xe2, 0x82], [0x80], [0xf0, 0x80, 0x80, 0x80]);
export const topicBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: fc.array(topicChars, { maxLength: 16 }).map((cs) => te.encode(cs.join(''))) },
  { weight: 2, arbitrary: fc.tuple(fc.array(topicChars, { maxLength: 8 }), badBytes, fc.array(topicChars, { maxLength: 8 })).map(([a, bad, c]) => Uint8Array.from([...te.encode(a.join('')), ...bad, ...te.encode(c.join(''))])) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom(0xffff, 0x10000).map((n) => new Uint8Array(n).fill(0x61)) },
);

export const topicProperty = (core: Core): fc.IPropertyWithHooks<[Uint8Array, boolean]> =>
  fc.property(topicBytes, fc.boolean(), (bytes, isFilter) => {
    const got = core.topicCheckBytes(bytes, isFilter);
    const want = topicOracle(bytes, isFilter);
    if (got !== want) throw new Error(`topic_check(${JSON.stringify([...bytes.subarray(0, 32)])}, filter ${isFilter}) = ${got}, the rules say ${want}`);
  });

/**
 * One core for run after run while each leaves it as it found it (no subscriptions, every client
 * online, the arena empty); a fresh one after a run that did not (it failed). Instantiating costs ~5 ms.
 */
export class CoreSupply {
  private core: Core | null = null;
  private clean = false;

  constructor(private readonly load: () => Promise<Core>) {}

  async take(): Promise<Core> {
    if (this.core === null || !this.clean) this.core = await this.load();
    this.clean = false;
    return this.core;
  }

  /** The run left the core as it found it. */
  giveBack(): void {
    this.clean = true;
  }
}

// ---- trie -----------------------------------------------------------------------------------

const WORDS = ['a', 'b', '', '$x'];
const level = fc.constantFrom(...WORDS);
const topicName = fc.array(level, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('/') || 'a');
const filter = fc
  .tuple(fc.array(fc.oneof(level, fc.constant('+')), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([ls, hash]) => (hash ? [...ls.slice(0, -1), '#'] : ls).join('/') || 'a');

type TrieCommand =
  | { op: 'sub'; client: number; filter: string; qos: number; noLocal: boolean; rap: boolean; subId: number; group: number }
  | { op: 'unsub'; client: number; filter: string; group: number }
  | { op: 'online'; client: number; online: boolean }
  | { op: 'match'; topic: string; publisher: number };

const client = fc.integer({ min: 1, max: 5 });
const trieCommand: fc.Arbitrary<TrieCommand> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('sub' as const), client, filter, qos: fc.integer({ min: 0, max: 2 }), noLocal: fc.boolean(), rap: fc.boolean(), subId: fc.integer({ min: 0, max: 3 }), group: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('unsub' as const), client, filter, group: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('online' as const), client, online: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('match' as const), topic: topicName, publisher: fc.integer({ min: 0, max: 5 }) }) },
);

interface ModelSub {
  client: number;
  filter: string;
  group: number;
  qos: number;
  noLocal: boolean;
  rap: boolean;
  subId: number;
}

interface Rec {
  client: number;
  qos: number;
  rap: boolean;
  ids: string;
}

const idsKey = (ids: Iterable<number>): string => [...new Set(ids)].filter((i) => i !== 0).sort((a, b) => a - b).join(',');

/** What the rules say a match must return: one merged record per non-shared subscriber, one member per matching shared group and filter. */
function expectedMatch(subs: Map<string, ModelSub>, offline: Set<number>, topic: string, publisher: number): { plain: Rec[]; groups: ModelSub[][] } {
  const plain = new Map<number, { qos: number; rap: boolean; ids: number[] }>();
  const groups = new Map<string, ModelSub[]>();
  for (const s of subs.values()) {
    if (!refMatch(s.filter, topic)) continue;
    if (s.group !== 0) {
      const key = `${s.group}|${s.filter}`;
      (groups.get(key) ?? groups.set(key, []).get(key)!).push(s);
      continue;
    }
    if (s.noLocal && publisher !== 0 && s.client === publisher) continue;
    const r = plain.get(s.client) ?? { qos: 0, rap: false, ids: [] };
    r.qos = Math.max(r.qos, s.qos);
    r.rap ||= s.rap;
    r.ids.push(s.subId);
    plain.set(s.client, r);
  }
  const recs = [...plain].map(([c, r]) => ({ client: c, qos: r.qos, rap: r.rap, ids: idsKey(r.ids) })).sort((a, b) => a.client - b.client);
  return { plain: recs, groups: [...groups.values()].map((members) => (members.some((m) => !offline.has(m.client)) ? members.filter((m) => !offline.has(m.client)) : members)) };
}

/** Can each shared record be the pick of a different group, from the members it may pick? */
function assignable(records: Rec[], groups: ModelSub[][]): boolean {
  if (records.length !== groups.length) return false;
  const used = new Array<boolean>(groups.length).fill(false);
  const fits = (r: Rec, g: ModelSub[]): boolean => g.some((m) => m.client === r.client && m.qos === r.qos && m.rap === r.rap && idsKey([m.subId]) === r.ids);
  const place = (i: number): boolean => {
    if (i === records.length) return true;
    for (let j = 0; j < groups.length; j++) {
      if (used[j] || !fits(records[i]!, groups[j]!)) continue;
      used[j] = true;
      if (place(i + 1)) return true;
      used[j] = false;
    }
    return false;
  };
  return place(0);
}

export const trieProperty = (cores: CoreSupply): fc.IAsyncPropertyWithHooks<[TrieCommand[]]> =>
  fc.asyncProperty(fc.array(trieCommand, { maxLength: 40 }), async (commands) => {
    const core = await cores.take();
    const subs = new Map<string, ModelSub>();
    const offline = new Set<number>();
    const key = (c: number, f: string, g: number): string => `${c}|${g}|${f}`;
    for (const cmd of commands) {
      if (cmd.op === 'sub') {
        const options = cmd.qos | (cmd.noLocal ? 4 : 0) | (cmd.rap ? 8 : 0);
        core.subscribe(cmd.client, te.encode(cmd.filter), options, cmd.subId, cmd.group);
        subs.set(key(cmd.client, cmd.filter, cmd.group), { ...cmd });
      } else if (cmd.op === 'unsub') {
        const removed = core.unsubscribe(cmd.client, te.encode(cmd.filter), cmd.group);
        if (removed !== subs.delete(key(cmd.client, cmd.filter, cmd.group))) throw new Error(`unsubscribe ${JSON.stringify(cmd)} returned ${removed}`);
      } else if (cmd.op === 'online') {
        core.setClientOnline(cmd.client, cmd.online);
        if (cmd.online) offline.delete(cmd.client);
        else offline.add(cmd.client);
      } else {
        const m = core.matchBytes(te.encode(cmd.topic), cmd.publisher);
        const plain: Rec[] = [];
        const shared: Rec[] = [];
        for (let i = 0; i < m.count; i++) {
          (m.shared(i) ? shared : plain).push({ client: m.client(i), qos: m.qos(i), rap: m.retainAsPublished(i), ids: idsKey(m.subscriptionIds(i)) });
        }
        plain.sort((a, b) => a.client - b.client);
        const want = expectedMatch(subs, offline, cmd.topic, cmd.publisher);
        if (JSON.stringify(plain) !== JSON.stringify(want.plain)) throw new Error(`match ${JSON.stringify(cmd)}: ${JSON.stringify(plain)}, the oracle says ${JSON.stringify(want.plain)}`);
        if (!assignable(shared, want.groups)) throw new Error(`match ${JSON.stringify(cmd)}: shared picks ${JSON.stringify(shared)} are not one per group from ${JSON.stringify(want.groups)}`);
      }
      if (core.subscriptionCount() !== subs.size) throw new Error(`${core.subscriptionCount()} subscriptions, the model has ${subs.size}`);
    }
    for (const s of subs.values()) core.unsubscribe(s.client, te.encode(s.filter), s.group);
    if (core.trieNodeCount() !== 1) throw new Error(`${core.trieNodeCount()} trie nodes left after every subscription was removed`);
    for (const c of offline) core.setClientOnline(c, true);
    cores.giveBack();
  });

// ---- arena ----------------------------------------------------------------------------------

type ArenaCommand = { op: 'alloc'; length: number } | { op: 'ref' | 'unref' | 'misuse' | 'check'; pick: number };

const KiB = 1024;
const arenaCommand: fc.Arbitrary<ArenaCommand> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .oneof(
        { weight: 2, arbitrary: fc.constantFrom(0, 1, 16, 17, KiB, KiB + 1, 64 * KiB, 64 * KiB + 1, 1024 * KiB, 1024 * KiB + 1) },
        { weight: 3, arbitrary: fc.integer({ min: 0, max: 4 * KiB }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 * 1024 * KiB }) },
      )
      .map((length) => ({ op: 'alloc' as const, length })),
  },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ op: 'ref' as const, pick })) },
  { weight: 4, arbitrary: fc.nat().map((pick) => ({ op: 'unref' as const, pick })) },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ op: 'misuse' as const, pick })) },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ op: 'check' as const, pick })) },
);

interface Block {
  handle: number;
  length: number;
  refs: number;
  seed: number;
}

/** Blocks are filled with their own byte; checked at both ends and every 251st byte between (blocks run to MiBs). */
const fill = (v: Uint8Array, seed: number): void => {
  v.fill(seed & 0xff);
};
const intact = (v: Uint8Array, seed: number): boolean => {
  for (let i = 0; i < v.length; i += 251) if (v[i] !== (seed & 0xff)) return false;
  return v.length === 0 || v[v.length - 1] === (seed & 0xff);
};

/**
 * Arena alloc / ref / unref sequences under a small cap: counts and contents always agree with
 * the model, a released handle stays dead (an ArenaError, counted), nothing is left once all is
 * released, and a refused allocation succeeds once space is back.
 */
export const arenaProperty = (cores: CoreSupply): fc.IAsyncPropertyWithHooks<[ArenaCommand[]]> =>
  fc.asyncProperty(fc.array(arenaCommand, { maxLength: 60 }), async (commands) => {
    const core = await cores.take();
    const cap = 8 * 1024 * KiB;
    core.setArenaCap(cap);
    const live: Block[] = [];
    const dead: number[] = [];
    let misuses = 0;
    let refused = 0;
    let seed = 0;
    const errors0 = core.arenaStats().errors;
    for (const cmd of commands) {
      if (cmd.op === 'alloc') {
        const handle = core.alloc(cmd.length);
        if (handle === 0) {
          refused = Math.max(refused, cmd.length);
          continue;
        }
        if (core.length(handle) !== cmd.length || core.refcount(handle) !== 1) throw new Error(`alloc(${cmd.length}) gave length ${core.length(handle)}, refcount ${core.refcount(handle)}`);
        const block = { handle, length: cmd.length, refs: 1, seed: seed++ };
        fill(core.view(handle), block.seed);
        live.push(block);
      } else if (cmd.op === 'misuse') {
        if (dead.length === 0) continue;
        const h = dead[cmd.pick % dead.length]!;
        let threw = false;
        try {
          core.unref(h);
        } catch (error) {
          threw = error instanceof ArenaError;
        }
        if (!threw) throw new Error(`unref of the dead handle 0x${h.toString(16)} did not fail`);
        misuses++;
      } else if (live.length > 0) {
        const i = cmd.pick % live.length;
        const b = live[i]!;
        if (cmd.op === 'ref') {
          if (core.ref(b.handle) !== ++b.refs) throw new Error('ref returned the wrong count');
        } else if (cmd.op === 'unref') {
          if (core.unref(b.handle) !== --b.refs) throw new Error('unref returned the wrong count');
          if (b.refs === 0) {
            live.splice(i, 1);
            dead.push(b.handle);
          }
        } else if (!intact(core.view(b.handle), b.seed)) {
          throw new Error(`block of ${b.length} bytes was overwritten`);
        }
      }
      const s = core.arenaStats();
      if (s.liveHandles !== live.length || s.bytesInUse !== live.reduce((n, b) => n + b.length, 0)) {
        throw new Error(`arena says ${s.liveHandles} blocks / ${s.bytesInUse} bytes, the model ${live.length} / ${live.reduce((n, b) => n + b.length, 0)}`);
      }
      if (s.bytesReserved > cap) throw new Error(`${s.bytesReserved} bytes reserved over the cap of ${cap}`);
    }
    for (const b of live) if (!intact(core.view(b.handle), b.seed)) throw new Error(`block of ${b.length} bytes was overwritten`);
    for (const b of live) while (b.refs-- > 0) core.unref(b.handle);
    const s = core.arenaStats();
    if (s.liveHandles !== 0 || s.bytesInUse !== 0) throw new Error(`${s.liveHandles} blocks left after every reference was released`);
    if (s.errors !== errors0 + misuses) throw new Error(`${s.errors - errors0} arena errors counted for ${misuses} misuses`);
    if (refused > 0) {
      core.arenaTrim();
      const h = core.alloc(refused);
      if (h === 0) throw new Error(`alloc(${refused}) still refused with the arena empty`);
      core.unref(h);
    }
    cores.giveBack();
  });
