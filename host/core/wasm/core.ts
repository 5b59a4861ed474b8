// Loads the ArborMQ wasm core (build/arbor.wasm, sources in assembly/) and wraps its flat export
// list, declared in ./abi.ts. Runs in Node and in browsers: no Node built-ins, no Buffer.
//
// Memory can grow during any call that allocates; every accessor here re-derives its typed
// array view when the old ArrayBuffer was detached, and callers holding a Uint8Array from
// bytes()/view() must re-derive it after calling into the core.

import { ArenaStats as Stat, CoreError, type CoreExports, type CoreImports, Handle, MatchFlag, MatchHeader, MatchRecord, MessageBlock, Result } from './abi.js';

export { CoreError } from './abi.js';

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
  constructor(readonly code: CoreError) {
    super(`invalid topic filter (${coreErrorName(code)})`);
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

const CORE_ERROR_NAMES = [
  'ok', 'empty', 'ill-formed UTF-8', 'U+0000', 'wildcard in topic name', '# not last', '# not alone in its level',
  '+ not alone in its level', 'too long', 'range outside memory', 'arena full', 'out of memory', 'invalid handle',
];

export function coreErrorName(code: number): string {
  return CORE_ERROR_NAMES[code] ?? `code ${code}`;
}

export interface CoreOptions {
  /** Cap on bytes the arena reserves (slabs + huge blocks). Default 256 MiB. */
  arenaCapBytes?: number;
  /** Linear memory ceiling; allocations that could pass it fail softly. Default and max 4 GiB − 64 KiB. */
  memoryLimitBytes?: number;
}

const RECORD_WORDS = MatchRecord.Size >> 2;

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
  /** u32 index of the first record and of the identifier array. */
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
    return this.core.u32()[this.rec + i * RECORD_WORDS + (MatchRecord.Client >> 2)]!;
  }

  private flags(i: number): number {
    return this.core.u32()[this.rec + i * RECORD_WORDS + (MatchRecord.Flags >> 2)]!;
  }

  qos(i: number): number {
    return this.flags(i) & MatchFlag.QosMask;
  }

  retainAsPublished(i: number): boolean {
    return (this.flags(i) & MatchFlag.RetainAsPublished) !== 0;
  }

  shared(i: number): boolean {
    return (this.flags(i) & MatchFlag.Shared) !== 0;
  }

  group(i: number): number {
    return this.flags(i) >>> MatchFlag.GroupShift;
  }

  subscriptionIds(i: number): number[] {
    const u32 = this.core.u32();
    const at = this.rec + i * RECORD_WORDS;
    const n = u32[at + (MatchRecord.IdCount >> 2)]!;
    if (n === 0) return [];
    const start = this.ids + u32[at + (MatchRecord.IdStart >> 2)]!;
    return Array.from(u32.subarray(start, start + n));
  }
}

/**
 * The wasm core of one broker: the arena, the subscription trie and the retained index. Each
 * method is one export; a FAIL result becomes 0 (no handle) where the caller expects that, and
 * an exception otherwise.
 */
export class Core {
  readonly memory: WebAssembly.Memory;
  private readonly ex: CoreExports;
  private u8view: Uint8Array;
  private u32view: Uint32Array;
  private f64view: Float64Array;
  private readonly matchView: MatchView;
  /** The check the running match asks about shared-group members (env.share_member_may_read). */
  private shareMemberCheck: MemberCheck | null = null;
  /** u32 index of the MatchHeader trie_match updates. */
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
    const env: CoreImports = {
      share_member_may_read: (client) => (core!.shareMemberCheck!(client >>> 0) ? 1 : 0),
      abort(message, file, line, column): never {
        const text = readAsString(memory, message) || 'abort';
        const where = readAsString(memory, file);
        throw new Error(`ArborMQ core: ${text}${where ? ` (${where}:${line}:${column})` : ''}`);
      },
    };
    const instance = await WebAssembly.instantiate(module, { env: env as unknown as WebAssembly.ModuleImports });
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

  /** Why the last export that returned FAIL failed. */
  error(): CoreError {
    return this.ex.core_error();
  }

  /** The exception for an export that failed in `operation`. */
  private failure(operation: string, handle = 0): Error {
    const code = this.error();
    if (code === CoreError.InvalidHandle) {
      const h = handle >>> 0;
      return new ArenaError(`${operation}: invalid, stale or released arena handle 0x${h.toString(16)}`, h);
    }
    if (code === CoreError.OutOfBounds) return new RangeError(`${operation}: a byte range outside wasm memory`);
    if (code <= CoreError.TooLong) return new TopicFilterError(code);
    return new CoreMemoryError(operation);
  }

  /**
   * Address of `bytes` inside wasm memory: the view's own offset when it already is a view
   * of this memory (no copy), else a copy in the scratch area (valid until the next copy).
   */
  place(bytes: Uint8Array): number {
    if (bytes.buffer === this.bytes().buffer) return bytes.byteOffset;
    const ptr = this.scratch(bytes.length);
    this.bytes().set(bytes, ptr);
    return ptr;
  }

  /** The scratch area, at least `len` bytes: valid until the next call that uses it. */
  scratch(len: number): number {
    const ptr = this.ex.scratch(len);
    if (ptr === Result.Fail) throw new CoreMemoryError('scratch');
    return ptr >>> 0;
  }

  /**
   * Address of the receive staging area, at least `len` bytes: where incoming socket bytes are
   * copied so PUBLISH bodies move into arena blocks by copyWithin. Apart from the scratch area.
   */
  receiveBuffer(len: number): number {
    const ptr = this.ex.receive_buffer(len);
    if (ptr === Result.Fail) throw new CoreMemoryError('receive buffer');
    return ptr >>> 0;
  }

  /**
   * Validates the topic name at `topicSrc` and stores a message block (refcount 1). Returns its
   * handle, or 0: then error() says why (a topic error, ArenaFull or OutOfBounds).
   */
  storeMessage(topicSrc: number, topicLen: number, payloadSrc: number, payloadLen: number): number {
    const handle = this.ex.message_store(topicSrc, topicLen, payloadSrc, payloadLen);
    return handle === Result.Fail ? 0 : handle >>> 0;
  }

  /** memmove inside wasm memory (cheaper than copyWithin for the small ranges of message traffic). */
  copy(dst: number, src: number, len: number): void {
    if (this.ex.mem_copy(dst, src, len) === Result.Fail) throw this.failure(`copy of ${len} bytes`);
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

  /** Debug builds abort (an Error from this call) at the first broken invariant of the arena or the trie; release builds do nothing. */
  checkInvariants(): void {
    this.ex.core_check_invariants();
  }

  // ---- arena ----

  /** Handle of a new block (refcount 1), or 0 when the cap (or memory) is reached. */
  alloc(length: number): number {
    if (!(length >= 0 && length <= 0xffffffff)) return 0;
    const handle = this.ex.arena_alloc(length);
    return handle === Result.Fail ? 0 : handle >>> 0;
  }

  ptr(handle: number): number {
    const p = this.ex.arena_ptr(handle);
    if (p === Result.Fail) throw this.failure('ptr', handle);
    return p >>> 0;
  }

  length(handle: number): number {
    const n = this.ex.arena_len(handle);
    if (n === Result.Fail) throw this.failure('length', handle);
    return n >>> 0;
  }

  /** The block's bytes as a subarray of bytes(); re-derive after calls that may grow memory. */
  view(handle: number): Uint8Array {
    const start = this.ptr(handle);
    return this.bytes().subarray(start, start + this.length(handle));
  }

  /** One more reference to the block: the new count. */
  ref(handle: number): number {
    const n = this.ex.arena_ref(handle);
    if (n === Result.Fail) throw this.failure('ref', handle);
    return n;
  }

  /** One reference less: what remains (0: the block is free and the handle dead). */
  unref(handle: number): number {
    const n = this.ex.arena_unref(handle);
    if (n === Result.Fail) throw this.failure('unref', handle);
    return n;
  }

  refcount(handle: number): number {
    const n = this.ex.arena_refcount(handle);
    if (n === Result.Fail) throw this.failure('refcount', handle);
    return n;
  }

  arenaStats(): ArenaStats {
    const base = this.ex.arena_stats() >>> 3;
    const f = this.f64();
    const tiers: ArenaTierStats[] = [];
    for (let t = 0; t < Stat.Tiers; t++) {
      const o = base + t * Stat.TierFields;
      tiers.push({
        inUse: f[o + Stat.InUse]!,
        free: f[o + Stat.Free]!,
        hits: f[o + Stat.Hits]!,
        misses: f[o + Stat.Misses]!,
        bytesInUse: f[o + Stat.BytesInUse]!,
        bytesReserved: f[o + Stat.BytesReserved]!,
      });
    }
    return {
      tiers,
      liveHandles: f[base + Stat.LiveHandles]!,
      bytesInUse: f[base + Stat.TotalBytesInUse]!,
      bytesReserved: f[base + Stat.TotalBytesReserved]!,
      cap: f[base + Stat.Cap]!,
      errors: f[base + Stat.Errors]!,
    };
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
    for (let h = this.ex.arena_next_live(0) >>> 0; h !== 0; h = this.ex.arena_next_live(h & Handle.SlotMask) >>> 0) out.push(h);
    return out;
  }

  /** Address of the topic bytes in the message block `handle`. */
  topicPtr(handle: number): number {
    return this.ptr(handle) + MessageBlock.Topic;
  }

  // ---- validation ----

  /** Ok when well-formed UTF-8 without U+0000, else BadUtf8 or NullChar. */
  utf8Check(bytes: Uint8Array): CoreError {
    return this.ex.utf8_check(this.place(bytes), bytes.length);
  }

  topicCheck(ptr: number, len: number, isFilter: boolean): CoreError {
    return this.ex.topic_check(ptr, len, isFilter ? 1 : 0);
  }

  topicCheckBytes(bytes: Uint8Array, isFilter: boolean): CoreError {
    return this.ex.topic_check(this.place(bytes), bytes.length, isFilter ? 1 : 0);
  }

  // ---- subscriptions ----

  /**
   * Adds (client, filter, group) or replaces its options (a SubOption word). `filter` excludes any
   * `$share/{name}/` prefix; `group` is the interned share name, 0 when not shared. True when new.
   * Throws TopicFilterError for an invalid filter.
   */
  subscribe(client: number, filter: Uint8Array, options: number, subscriptionId: number, group: number): boolean {
    const r = this.ex.trie_subscribe(client, this.place(filter), filter.length, options, subscriptionId, group);
    if (r === Result.Fail) throw this.failure('subscribe');
    return r === 1;
  }

  unsubscribe(client: number, filter: Uint8Array, group: number): boolean {
    const r = this.ex.trie_unsubscribe(client, this.place(filter), filter.length, group);
    if (r === Result.Fail) throw this.failure('unsubscribe');
    return r === 1;
  }

  setClientOnline(client: number, online: boolean): void {
    if (this.ex.client_set_online(client, online ? 1 : 0) === Result.Fail) throw this.failure('setClientOnline');
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
    if (n === Result.Fail) throw this.failure('match');
    const u32 = this.u32();
    this.matchView.reset(n, u32[this.outHeader + (MatchHeader.Records >> 2)]!, u32[this.outHeader + (MatchHeader.Ids >> 2)]!);
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

  private previous(r: number, operation: string): number {
    if (r === Result.Fail) throw this.failure(operation);
    return r >>> 0;
  }

  retainSet(topic: Uint8Array, handle: number): number {
    return this.previous(this.ex.retain_set(this.place(topic), topic.length, handle), 'retainSet');
  }

  retainSetAt(topicPtr: number, topicLen: number, handle: number): number {
    return this.previous(this.ex.retain_set(topicPtr, topicLen, handle), 'retainSet');
  }

  retainDelete(topic: Uint8Array): number {
    return this.previous(this.ex.retain_delete(this.place(topic), topic.length), 'retainDelete');
  }

  retainDeleteAt(topicPtr: number, topicLen: number): number {
    return this.previous(this.ex.retain_delete(topicPtr, topicLen), 'retainDelete');
  }

  retainMatch(filter: Uint8Array): number[] {
    const n = this.ex.retain_match(this.place(filter), filter.length);
    if (n === Result.Fail) throw this.failure('retainMatch');
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
