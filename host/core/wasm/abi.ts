// The contract between build/arbor.wasm and its hosts, written once. assembly/ imports the
// constants and layouts below (this file compiles as AssemblyScript too, so it holds only const
// enums, comments and the CoreExports declaration), host/core/wasm/core.ts reads memory by them,
// and test/assembly/abi.test.ts checks CoreExports against the exports of the built module.
//
// One error convention: an export that can fail returns FAIL (-1 as JavaScript sees the i32; never
// a valid handle, pointer, length or count) and `core_error()` tells why (a CoreError). Every other
// result is the value itself. Memory may grow during any call that allocates: views of it must be
// re-derived afterwards.

/** What an export that failed returns. */
export const enum Result {
  Fail = -1,
}

/**
 * Why an export failed (`core_error()`), and the answers of `topic_check` / `utf8_check`. Codes 1–9
 * are the topic rules (MQTT §1.5.4, §4.7).
 */
export const enum CoreError {
  Ok = 0,
  Empty = 1,
  /** Ill-formed UTF-8: overlong, surrogate, > U+10FFFF, truncated [MQTT-1.5.4-1]. */
  BadUtf8 = 2,
  /** Contains U+0000 [MQTT-1.5.4-2]. */
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
  /** A byte range that lies outside wasm memory. */
  OutOfBounds = 9,
  /** The arena reached its cap (arena_set_cap) or memory its limit: a transient condition. */
  ArenaFull = 10,
  /** A structure could not grow (memory limit reached). */
  OutOfMemory = 11,
  /** An arena handle that is invalid, stale or already released (counted in the stats). */
  InvalidHandle = 12,
}

// ╒══════════════════ Arena handle (u32) ══════════════════════════╕
//    3                   2                   1
//  1 0 9 8 7 6 5 4 3 2 1 0 9 8 7 6 5 4 3 2 1 0 9 8 7 6 5 4 3 2 1 0  bits
// ├─┴─┴─┴─┴─┴─┴─┴─┴─┴─┼─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┤
// │    generation     │                 slot index                  │
// └───────────────────┴─────────────────────────────────────────────┘
// Slot 0 is never used (a handle is never 0) and the highest index never handed out (never FAIL).
// A released slot's generation moves on, so a stale handle is refused instead of reaching the
// block's next owner.

/** Parts of an arena handle. */
export const enum Handle {
  SlotBits = 22,
  SlotMask = 0x3fffff,
}

// ╒══════════ Message block (message_store), big-endian length ════╕
//  0       1       2
// ├───────┴───────┼───────────────────────────┬───────────────────┤
// │ topic length  │ topic (UTF-8, validated)   │ payload           │
// └───────────────┴───────────────────────────┴───────────────────┘

/** Offsets in a message's arena block. */
export const enum MessageBlock {
  TopicLength = 0,
  Topic = 2,
}

// ╒══════════ Subscription options (trie_subscribe `options`) ═════╕
//  7 6 5 4 3 2 1 0  bits — the MQTT 5.0 subscription options byte (§3.8.3.1)
// ├─┴─┼─┴─┼─┼─┼─┴─┤
// │ 0 │ RH│R│N│ QoS│   RH: retain handling, R: retain as published, N: no local
// └───┴───┴─┴─┴───┘

export const enum SubOption {
  QosMask = 0x3,
  NoLocal = 0x4,
  RetainAsPublished = 0x8,
  RetainHandlingShift = 4,
}

// ╒══════════════ Match record (trie_match output), 16 bytes ══════╕
//    3                   2                   1
//  1 0 9 8 7 6 5 4 3 2 1 0 9 8 7 6 5 4 3 2 1 0 9 8 7 6 5 4 3 2 1 0  bits
// ├───────────────────────────────────────────────────────────────┤
// │                            client                             │ +0
// ├───────────────────────────────────────────────┬───────┬─┬─┬───┤
// │                     group                     │   0   │S│R│QoS│ +4  flags
// ├───────────────────────────────────────────────┴───────┴─┴─┴───┤
// │              number of subscription identifiers               │ +8
// ├───────────────────────────────────────────────────────────────┤
// │        index of the first one in the identifier array         │ +12
// └───────────────────────────────────────────────────────────────┘
// S: a shared subscription's pick, R: retain as published, QoS: the highest granted; group
// (bits 8-31, 0 unless S): which share group the pick was for — a cluster node forwards it by name.
// A client matched by several non-shared subscriptions gets one record; its identifiers are
// listed once each in the u32 array `trie_out_header` points at.

export const enum MatchRecord {
  Client = 0,
  Flags = 4,
  IdCount = 8,
  IdStart = 12,
  Size = 16,
}

export const enum MatchFlag {
  QosMask = 0x3,
  RetainAsPublished = 0x4,
  Shared = 0x8,
  GroupShift = 8,
}

// ╒══════════ Match output header (trie_out_header), fixed address ╕
// ├───────────────────────────────────────────────────────────────┤
// │                  address of the first record                  │ +0
// ├───────────────────────────────────────────────────────────────┤
// │          address of the subscription identifier array         │ +4
// └───────────────────────────────────────────────────────────────┘
// Set by every trie_match, so reading the output costs the host no call.

export const enum MatchHeader {
  Records = 0,
  Ids = 4,
}

// ╒══════════════ Arena statistics (arena_stats), f64 each ════════╕
// ├───────────────┬───────────────┬───────────────┬───────────────┤
// │  tier small   │  tier medium  │  tier large   │  tier huge    │  4 × 6 f64:
// ├───────────────┴───────────────┴───────────────┴───────────────┤  inUse, free, hits, misses,
// │ liveHandles │ bytesInUse │ bytesReserved │ cap │ errors        │  bytesInUse, bytesReserved
// └───────────────────────────────────────────────────────────────┘
// Tiers: small ≤ 1 KiB, medium ≤ 64 KiB, large ≤ 1 MiB, huge > 1 MiB (straight from the heap).

export const enum ArenaStats {
  Tiers = 4,
  TierFields = 6,
  InUse = 0,
  Free = 1,
  Hits = 2,
  Misses = 3,
  BytesInUse = 4,
  BytesReserved = 5,
  /** Index (in f64) of liveHandles; the totals follow in this order. */
  LiveHandles = 24,
  TotalBytesInUse = 25,
  TotalBytesReserved = 26,
  Cap = 27,
  Errors = 28,
  Count = 29,
}

/**
 * The exports of build/arbor.wasm (assembly/index.ts). Parameters and results are i32 unless the
 * comment says f64; pointers and lengths address this module's memory. test/assembly/abi.test.ts
 * compares this list, with each function's parameter count, to the built module.
 */
export interface CoreExports {
  memory: WebAssembly.Memory;

  // ---- memory ----
  /** A scratch area of at least `len` bytes (it moves when it grows): its address, or FAIL. */
  scratch(len: number): number;
  /** The receive staging area, apart from scratch, of at least `len` bytes: its address, or FAIL. */
  receive_buffer(len: number): number;
  /** Caps linear memory at `pages` × 64 KiB (≤ 65535): allocations that could pass it fail. */
  core_set_memory_limit(pages: number): void;
  core_memory_limit(): number;
  /** 1 when every heap growth is checked before it happens (see assembly/mem.ts), 0 in the conservative fallback. */
  core_heap_guarded(): number;
  /** Why the last export that returned FAIL failed: a CoreError. */
  core_error(): number;
  /** Debug builds: walks the arena and the trie and aborts at the first broken invariant. Release builds: nothing. */
  core_check_invariants(): void;
  /** memmove inside wasm memory: 0, or FAIL when a range lies outside it. */
  mem_copy(dst: number, src: number, len: number): number;

  // ---- arena (reference-counted blocks) ----
  /** A new block of `len` bytes with one reference: its handle, or FAIL (ArenaFull). */
  arena_alloc(len: number): number;
  /** The block's address, or FAIL (InvalidHandle). */
  arena_ptr(handle: number): number;
  /** The block's requested length, or FAIL (InvalidHandle). */
  arena_len(handle: number): number;
  /** One more reference: the new count, or FAIL (InvalidHandle). */
  arena_ref(handle: number): number;
  /** One reference less: the count left (0: the block is free, the handle dead), or FAIL (InvalidHandle). */
  arena_unref(handle: number): number;
  arena_refcount(handle: number): number;
  /** Caps the bytes the arena reserves (`bytes`: f64); cached empty slabs go if over it. */
  arena_set_cap(bytes: number): void;
  /** Returns cached empty slabs to the heap: the bytes released (f64). */
  arena_trim(): number;
  /** The address of the ArenaStats record, refreshed by this call. */
  arena_stats(): number;
  /** The first live handle whose slot index is above `afterSlot`, or 0 when none. */
  arena_next_live(afterSlot: number): number;

  // ---- messages ----
  /** Validates the topic name and stores a MessageBlock: its handle, or FAIL (a topic CoreError, ArenaFull, OutOfBounds). */
  message_store(topicSrc: number, topicLen: number, payloadSrc: number, payloadLen: number): number;

  // ---- validation ----
  /** Ok, BadUtf8, NullChar or OutOfBounds. */
  utf8_check(ptr: number, len: number): number;
  /** Ok or the CoreError of a topic name (`isFilter` 0) or filter (1). */
  topic_check(ptr: number, len: number, isFilter: number): number;

  // ---- subscriptions ----
  /** Adds (client, filter, group) or replaces its options: 1 added, 0 replaced, or FAIL (a topic CoreError, OutOfMemory, OutOfBounds). */
  trie_subscribe(client: number, ptr: number, len: number, options: number, subId: number, group: number): number;
  /** Removes (client, filter, group) and prunes: 1 removed, 0 not found, or FAIL (OutOfMemory, OutOfBounds). */
  trie_unsubscribe(client: number, ptr: number, len: number, group: number): number;
  /** Marks a client online (1, the default) or offline for shared-subscription picks: 0, or FAIL (OutOfMemory). */
  client_set_online(client: number, online: number): number;
  /**
   * Matches a topic name: the number of MatchRecords, or FAIL (OutOfMemory, OutOfBounds). With
   * `checkReaders` 1 a shared group picks only among members the import share_member_may_read allows.
   */
  trie_match(ptr: number, len: number, publisher: number, checkReaders: number): number;
  /** The fixed address of the MatchHeader. */
  trie_out_header(): number;
  trie_count(): number;
  /** Trie nodes, the root included (shows pruning). */
  trie_node_count(): number;

  // ---- retained messages ----
  /** Stores `handle` under the topic: the previous handle or 0, or FAIL (OutOfMemory, OutOfBounds). */
  retain_set(ptr: number, len: number, handle: number): number;
  /** Deletes the topic's entry and prunes: the previous handle or 0, or FAIL (OutOfMemory, OutOfBounds). */
  retain_delete(ptr: number, len: number): number;
  /** The number of stored topics the filter matches (their handles at retain_out), or FAIL. */
  retain_match(ptr: number, len: number): number;
  /** Address of the u32 handles the last retain_match found. */
  retain_out(): number;
  retain_count(): number;
  retain_node_count(): number;
}

/** The imports build/arbor.wasm needs (module "env"). */
export interface CoreImports {
  /** May this client read the topic being matched? Asked by trie_match with checkReaders, for shared-group members. */
  share_member_may_read(client: number): number;
  /** AssemblyScript's abort: a failed assertion or an unreachable state (message and file are AssemblyScript strings). */
  abort(message: number, file: number, line: number, column: number): void;
}
