// Loads the ArborMQ wasm core (build/arbor.wasm, sources in assembly/) and wraps its flat
// export list. Runs in Node and in browsers: no Node built-ins, no Buffer.
//
// Memory can grow during any call that allocates; every accessor here re-derives its typed
// array view when the old ArrayBuffer was detached, and callers holding a Uint8Array from
// bytes()/view() must re-derive it after calling into the core.

export interface ArenaTierStats {
  inUse: number;
  free: number;
  hits: number;
  misses: number;
  bytesInUse: number;
  bytesReserved: number;
}

export interface ArenaStats {
  /** 4 tiers: small (≤ 1 KiB), medium (≤ 64 KiB), large (≤ 1 MiB), huge (> 1 MiB). */
  tiers: ArenaTierStats[];
  liveHandles: number;
  bytesInUse: number;
  bytesReserved: number;
  cap: number;
  errors: number;
}

/** Use of an invalid, stale or already released arena handle. */
export class ArenaError extends Error {
  constructor(
    message: string,
    readonly handle: number,
  ) {
    super(message);
    this.name = 'ArenaError';
  }
}

/** The core could not grow its memory (page limit reached). */
export class CoreMemoryError extends Error {
  constructor(operation: string) {
    super(`ArborMQ core: out of memory in ${operation}`);
    this.name = 'CoreMemoryError';
  }
}

/** A topic filter given to subscribe() failed validation; `code` says why. */
export class TopicFilterError extends Error {
  constructor(readonly code: TopicError) {
    super(`invalid topic filter (${topicErrorName(code)})`);
    this.name = 'TopicFilterError';
  }
}

export interface MatchResult {
  /** Number of records; a client matched by several non-shared subscriptions appears once. */
  count: number;
  client(i: number): number;
  /** Highest granted QoS among the merged subscriptions (or of the picked shared member). */
  qos(i: number): number;
  retainAsPublished(i: number): boolean;
  /** A shared-subscription delivery (one member picked per group and filter). */
  shared(i: number): boolean;
  /** The interned group of a shared record (0 for a non-shared one). */
  group(i: number): number;
  /** Nonzero subscription identifiers of the subscriptions behind record i, each once. */
  subscriptionIds(i: number): number[];
}

/** May this client (a trie client id) read the topic being matched? */
export type MemberCheck = (client: number) => boolean;

/** topic_check / utf8_check codes (assembly/topic.ts). */
export const enum TopicError {
  Ok = 0,
  Empty = 1,
  /** Ill-formed UTF-8: overlong, surrogate, > U+10FFFF, truncated [MQTT-1.5.3-1]. */
  BadUtf8 = 2,
  /** Contains U+0000 [MQTT-1.5.3-2]. */
  NullChar = 3,
  /** `+` or `#` in a topic name [MQTT-3.3.2-2]. */
  WildcardInTopic = 4,
  /** `#` followed by more levels [MQTT-4.7.1-1]. */
  HashNotLast = 5,
  /** `#` sharing its level with other characters [MQTT-4.7.1-1]. */
  HashNotAlone = 6,
  /** `+` sharing its level with other characters [MQTT-4.7.1-2]. */
  PlusNotAlone = 7,
  /** Longer than 65535 bytes. */
  TooLong = 8,
  /** The byte range lies outside wasm memory. */
  OutOfBounds = 9,
}

const TOPIC_ERROR_NAMES = [
  'ok', 'empty', 'ill-formed UTF-8', 'U+0000', 'wildcard in topic name', '# not last',
  '# not alone in its level', '+ not alone in its level', 'too long', 'range outside memory',
];

/** message_store_status codes beyond the TopicError ones. */
export const enum StoreStatus {
  ArenaFull = 100,
  OutOfBounds = 101,
}

export function topicErrorName(code: number): string {
  return TOPIC_ERROR_NAMES[code] ?? `code ${code}`;
}

export interface CoreOptions {
  /** Cap on bytes the arena reserves (slabs + huge blocks). Default 256 MiB. */
  arenaCapBytes?: number;
  /** Linear memory ceiling; allocations that could pass it fail softly. Default and max 4 GiB − 64 KiB. */
  memoryLimitBytes?: number;
}

/** Options word of a subscription (subscribe's `options`), as in the MQTT 5 options byte. */
export const SubOption = {
  qosMask: 0x3,
  noLocal: 0x4,
  retainAsPublished: 0x8,
  retainHandlingShift: 4,
} as const;

/** The wasm exports, as declared in assembly/index.ts (i32 results arrive signed). */
interface CoreExports {
  memory: WebAssembly.Memory;
  scratch(len: number): number;
  receive_buffer(len: number): number;
  message_store(topicSrc: number, topicLen: number, payloadSrc: number, payloadLen: number): number;
  message_store_status(): number;
  mem_copy(dst: number, src: number, len: number): number;
  core_set_memory_limit(pages: number): void;
  core_memory_limit(): number;
  core_heap_guarded(): number;
  arena_alloc(len: number): number;
  arena_ptr(h: number): number;
  arena_len(h: number): number;
  arena_retain(h: number): number;
  arena_release(h: number): number;
  arena_refcount(h: number): number;
  arena_set_cap(bytes: number): void;
  arena_trim(): number;
  arena_stats(): number;
  arena_next_live(afterSlot: number): number;
  utf8_check(ptr: number, len: number): number;
  topic_check(ptr: number, len: number, isFilter: number): number;
  trie_subscribe(client: number, ptr: number, len: number, options: number, subId: number, group: number): number;
  trie_unsubscribe(client: number, ptr: number, len: number, group: number): number;
  client_set_online(client: number, online: number): number;
  trie_match(ptr: number, len: number, publisher: number, checkReaders: number): number;
  trie_out_records(): number;
  trie_out_ids(): number;
  trie_out_header(): number;
  trie_count(): number;
  trie_node_count(): number;
  retain_set(ptr: number, len: number, handle: number): number;
  retain_delete(ptr: number, len: number): number;
  retain_match(ptr: number, len: number): number;
  retain_out(): number;
  retain_count(): number;
  retain_node_count(): number;
}

const SLOT_MASK = 0x3fffff;
const STATS_TIER_FIELDS = 6;
const TIERS = 4;

/** Decodes an AssemblyScript string (UTF-16, byte length in the word before it). */
function readAsString(memory: WebAssembly.Memory | undefined, ptr: number): string {
  if (!memory || !ptr) return '';
  const buf = memory.buffer;
  const p = ptr >>> 0;
  if (p < 4 || p > buf.byteLength) return '';
  const bytes = new DataView(buf).getUint32(p - 4, true);
  const units = new Uint16Array(buf, p, Math.min(bytes, buf.byteLength - p) >>> 1);
  let s = '';
  for (let i = 0; i < units.length; i += 4096) s += String.fromCharCode(...units.subarray(i, i + 4096));
  return s;
}

class MatchView implements MatchResult {
  count = 0;
  private rec = 0;
  private ids = 0;

  constructor(private readonly core: Core) {}

  /** Points the view at the output of the match that just ran. */
  reset(count: number, recordsPtr: number, idsPtr: number): void {
    this.count = count;
    this.rec = recordsPtr >>> 2;
    this.ids = idsPtr >>> 2;
  }

  client(i: number): number {
    return this.core.u32()[this.rec + i * 4];
  }

  qos(i: number): number {
    return this.core.u32()[this.rec + i * 4 + 1] & 3;
  }

  retainAsPublished(i: number): boolean {
    return (this.core.u32()[this.rec + i * 4 + 1] & 4) !== 0;
  }

  shared(i: number): boolean {
    return (this.core.u32()[this.rec + i * 4 + 1] & 8) !== 0;
  }

  group(i: number): number {
    return this.core.u32()[this.rec + i * 4 + 1]! >>> 8;
  }

  subscriptionIds(i: number): number[] {
    const u32 = this.core.u32();
    const n = u32[this.rec + i * 4 + 2];
    if (n === 0) return [];
    const start = this.ids + u32[this.rec + i * 4 + 3];
    return Array.from(u32.subarray(start, start + n));
  }
}

export class Core {
  readonly memory: WebAssembly.Memory;
  private readonly ex: CoreExports;
  private u8view: Uint8Array;
  private u32view: Uint32Array;
  private f64view: Float64Array;
  private readonly matchView: MatchView;
  /** The check the running match asks about shared-group members (env.share_member_may_read). */
  private shareMemberCheck: MemberCheck | null = null;
  /** u32 index of { records ptr, ids ptr } that trie_match updates */
  private readonly outHeader: number;

  private constructor(exports: CoreExports) {
    this.ex = exports;
    this.memory = exports.memory;
    this.u8view = new Uint8Array(this.memory.buffer);
    this.u32view = new Uint32Array(this.memory.buffer);
    this.f64view = new Float64Array(this.memory.buffer);
    this.matchView = new MatchView(this);
    this.outHeader = exports.trie_out_header() >>> 2;
  }

  /** Compiles (unless given a Module) and instantiates a fresh core. */
  static async load(source: BufferSource | WebAssembly.Module, options: CoreOptions = {}): Promise<Core> {
    const module = source instanceof WebAssembly.Module ? source : await WebAssembly.compile(source);
    let memory: WebAssembly.Memory | undefined;
    let core: Core | undefined;
    const imports = {
      env: {
        share_member_may_read: (client: number): number => (core!.shareMemberCheck!(client >>> 0) ? 1 : 0),
        abort(message: number, file: number, line: number, column: number): never {
          const text = readAsString(memory, message) || 'abort';
          const where = readAsString(memory, file);
          throw new Error(`ArborMQ core: ${text}${where ? ` (${where}:${line}:${column})` : ''}`);
        },
      },
    };
    const instance = await WebAssembly.instantiate(module, imports);
    const exports = instance.exports as unknown as CoreExports;
    memory = exports.memory;
    core = new Core(exports);
    if (options.memoryLimitBytes !== undefined) {
      exports.core_set_memory_limit(Math.max(0, Math.min(65535, Math.floor(options.memoryLimitBytes / 65536))));
    }
    if (options.arenaCapBytes !== undefined) core.setArenaCap(options.arenaCapBytes);
    return core;
  }

  // A whole-memory view is never empty, so length 0 means memory.grow detached its buffer.
  // (Reading memory.buffer costs far more than a length check on the hot path.)

  /** Byte view over the whole memory; re-derived when memory grew (old buffer detached). */
  bytes(): Uint8Array {
    if (this.u8view.length === 0) this.u8view = new Uint8Array(this.memory.buffer);
    return this.u8view;
  }

  /** bytes() as a function value, one for all callers (a framer's refresh callback). */
  readonly refreshBytes = (): Uint8Array => this.bytes();

  /** @internal u32 view over the whole memory, re-derived like bytes(). */
  u32(): Uint32Array {
    if (this.u32view.length === 0) this.u32view = new Uint32Array(this.memory.buffer);
    return this.u32view;
  }

  private f64(): Float64Array {
    if (this.f64view.length === 0) this.f64view = new Float64Array(this.memory.buffer);
    return this.f64view;
  }

  /**
   * Address of `bytes` inside wasm memory: the view's own offset when it already is a view
   * of this memory (no copy), else a copy in the scratch area (valid until the next copy).
   */
  place(bytes: Uint8Array): number {
    if (bytes.buffer === this.bytes().buffer) return bytes.byteOffset;
    const ptr = this.ex.scratch(bytes.length) >>> 0;
    if (ptr === 0) throw new CoreMemoryError('scratch');
    this.bytes().set(bytes, ptr);
    return ptr;
  }

  /**
   * Address of the receive staging area, at least `len` bytes: where incoming socket bytes are
   * copied so PUBLISH bodies move into arena blocks by copyWithin. Apart from the scratch area.
   */
  receiveBuffer(len: number): number {
    const ptr = this.ex.receive_buffer(len) >>> 0;
    if (ptr === 0) throw new CoreMemoryError('receive buffer');
    return ptr;
  }

  /**
   * Validates the topic name at `topicSrc` and stores [topic length][topic][payload] in a new
   * block (refcount 1). Returns its handle, or 0: then storeStatus() says why.
   */
  storeMessage(topicSrc: number, topicLen: number, payloadSrc: number, payloadLen: number): number {
    return this.ex.message_store(topicSrc, topicLen, payloadSrc, payloadLen) >>> 0;
  }

  /** Why the last storeMessage returned 0: a TopicError, or StoreStatus.ArenaFull / OutOfBounds. */
  storeStatus(): number {
    return this.ex.message_store_status();
  }

  /** memmove inside wasm memory (cheaper than copyWithin for the small ranges of message traffic). */
  copy(dst: number, src: number, len: number): void {
    if (this.ex.mem_copy(dst, src, len) === 0) throw new RangeError(`copy of ${len} bytes outside wasm memory`);
  }

  /** Whether every heap growth is checked before it happens (see assembly/mem.ts); false
   *  means the AssemblyScript runtime changed and only a conservative bound applies. */
  heapGuarded(): boolean {
    return this.ex.core_heap_guarded() === 1;
  }

  /** Linear memory ceiling in bytes (CoreOptions.memoryLimitBytes). */
  memoryLimit(): number {
    return this.ex.core_memory_limit() * 65536;
  }

  // ---- arena ----

  /** Handle of a new block (refcount 1), or 0 when the cap (or memory) is reached. */
  alloc(length: number): number {
    if (!(length >= 0 && length <= 0xffffffff)) return 0;
    return this.ex.arena_alloc(length) >>> 0;
  }

  private invalid(handle: number, operation: string): ArenaError {
    const h = handle >>> 0;
    return new ArenaError(`${operation}: invalid, stale or released arena handle 0x${h.toString(16)}`, h);
  }

  ptr(handle: number): number {
    const p = this.ex.arena_ptr(handle);
    if (p === -1) throw this.invalid(handle, 'ptr');
    return p >>> 0;
  }

  length(handle: number): number {
    const n = this.ex.arena_len(handle);
    if (n === -1) throw this.invalid(handle, 'length');
    return n >>> 0;
  }

  /** The block's bytes as a subarray of bytes(); re-derive after calls that may grow memory. */
  view(handle: number): Uint8Array {
    const p = this.ex.arena_ptr(handle);
    if (p === -1) throw this.invalid(handle, 'view');
    const start = p >>> 0;
    return this.bytes().subarray(start, start + (this.ex.arena_len(handle) >>> 0));
  }

  retain(handle: number): number {
    const n = this.ex.arena_retain(handle);
    if (n === -1) throw this.invalid(handle, 'retain');
    return n;
  }

  release(handle: number): number {
    const n = this.ex.arena_release(handle);
    if (n === -1) throw this.invalid(handle, 'release');
    return n;
  }

  refcount(handle: number): number {
    const n = this.ex.arena_refcount(handle);
    if (n === -1) throw this.invalid(handle, 'refcount');
    return n;
  }

  arenaStats(): ArenaStats {
    const base = this.ex.arena_stats() >>> 3;
    const f = this.f64();
    const tiers: ArenaTierStats[] = [];
    for (let t = 0; t < TIERS; t++) {
      const o = base + t * STATS_TIER_FIELDS;
      tiers.push({
        inUse: f[o],
        free: f[o + 1],
        hits: f[o + 2],
        misses: f[o + 3],
        bytesInUse: f[o + 4],
        bytesReserved: f[o + 5],
      });
    }
    const o = base + TIERS * STATS_TIER_FIELDS;
    return { tiers, liveHandles: f[o], bytesInUse: f[o + 1], bytesReserved: f[o + 2], cap: f[o + 3], errors: f[o + 4] };
  }

  setArenaCap(bytes: number): void {
    this.ex.arena_set_cap(bytes);
  }

  /** Returns cached empty slabs to the heap; bytes released. */
  arenaTrim(): number {
    return this.ex.arena_trim();
  }

  liveHandles(): number[] {
    const out: number[] = [];
    for (let h = this.ex.arena_next_live(0) >>> 0; h !== 0; h = this.ex.arena_next_live(h & SLOT_MASK) >>> 0) out.push(h);
    return out;
  }

  // ---- validation ----

  /** 0 when well-formed UTF-8 without U+0000, else TopicError.BadUtf8 or TopicError.NullChar. */
  utf8Check(bytes: Uint8Array): number {
    return this.ex.utf8_check(this.place(bytes), bytes.length);
  }

  topicCheck(ptr: number, len: number, isFilter: boolean): TopicError {
    return this.ex.topic_check(ptr, len, isFilter ? 1 : 0);
  }

  topicCheckBytes(bytes: Uint8Array, isFilter: boolean): TopicError {
    return this.ex.topic_check(this.place(bytes), bytes.length, isFilter ? 1 : 0);
  }

  // ---- subscriptions ----

  /**
   * Adds (client, filter, group) or replaces its options. `filter` excludes any
   * `$share/{name}/` prefix; `group` is the interned share name, 0 when not shared.
   * True when new. Throws TopicFilterError for an invalid filter.
   */
  subscribe(client: number, filter: Uint8Array, options: number, subscriptionId: number, group: number): boolean {
    const r = this.ex.trie_subscribe(client, this.place(filter), filter.length, options, subscriptionId, group);
    if (r >= 0) return r === 1;
    if (r === -100) throw new CoreMemoryError('subscribe');
    throw new TopicFilterError(-r as TopicError);
  }

  unsubscribe(client: number, filter: Uint8Array, group: number): boolean {
    const r = this.ex.trie_unsubscribe(client, this.place(filter), filter.length, group);
    if (r < 0) throw new CoreMemoryError('unsubscribe');
    return r === 1;
  }

  setClientOnline(client: number, online: boolean): void {
    if (this.ex.client_set_online(client, online ? 1 : 0) < 0) throw new CoreMemoryError('setClientOnline');
  }

  /**
   * The returned object is reused: valid until the next match call. With `mayRead`, a shared group
   * picks only among members for which it returns true (called during the match: it must not call
   * into the core).
   */
  match(topicPtr: number, topicLen: number, publisher: number, mayRead?: MemberCheck): MatchResult {
    this.shareMemberCheck = mayRead ?? null;
    const n = this.ex.trie_match(topicPtr, topicLen, publisher, mayRead ? 1 : 0);
    this.shareMemberCheck = null;
    if (n < 0) throw new CoreMemoryError('match');
    const u32 = this.u32();
    this.matchView.reset(n, u32[this.outHeader], u32[this.outHeader + 1]);
    return this.matchView;
  }

  /** match() for topic bytes not yet in wasm memory (copied to scratch unless already there). */
  matchBytes(topic: Uint8Array, publisher: number, mayRead?: MemberCheck): MatchResult {
    return this.match(this.place(topic), topic.length, publisher, mayRead);
  }

  subscriptionCount(): number {
    return this.ex.trie_count() >>> 0;
  }

  /** Trie nodes including the root (for tests of pruning). */
  trieNodeCount(): number {
    return this.ex.trie_node_count() >>> 0;
  }

  // ---- retained ----

  private retainResult(r: number, operation: string): number {
    const h = r >>> 0;
    if (h === 0xffffffff) throw new CoreMemoryError(operation);
    return h;
  }

  retainSet(topic: Uint8Array, handle: number): number {
    return this.retainResult(this.ex.retain_set(this.place(topic), topic.length, handle), 'retainSet');
  }

  retainSetAt(topicPtr: number, topicLen: number, handle: number): number {
    return this.retainResult(this.ex.retain_set(topicPtr, topicLen, handle), 'retainSet');
  }

  retainDelete(topic: Uint8Array): number {
    return this.retainResult(this.ex.retain_delete(this.place(topic), topic.length), 'retainDelete');
  }

  retainDeleteAt(topicPtr: number, topicLen: number): number {
    return this.retainResult(this.ex.retain_delete(topicPtr, topicLen), 'retainDelete');
  }

  retainMatch(filter: Uint8Array): number[] {
    const n = this.ex.retain_match(this.place(filter), filter.length);
    if (n < 0) throw new CoreMemoryError('retainMatch');
    const start = this.ex.retain_out() >>> 2;
    return Array.from(this.u32().subarray(start, start + n));
  }

  retainCount(): number {
    return this.ex.retain_count() >>> 0;
  }

  /** Retained-index nodes including the root (for tests of pruning). */
  retainNodeCount(): number {
    return this.ex.retain_node_count() >>> 0;
  }
}
