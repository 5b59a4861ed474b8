// ArborMQ core: the flat export list. Every export takes and returns plain numbers; byte
// ranges are (ptr, len) into this module's memory. Memory may grow during any call that can
// allocate, so hosts re-derive their views afterwards.

import { bufEnsure, bufPtr, getLimitPages, inBounds, setLimitPages, tlsfGuarded, tlsfSelfCheck } from "./mem";
import {
  arenaAlloc, arenaInit, arenaLen, arenaNextLive, arenaPtr, arenaRefcount, arenaRelease,
  arenaRetain, arenaSetCap, arenaStats, arenaTrim,
} from "./arena";
import { TOPIC_OUT_OF_BOUNDS, TOPIC_TOO_LONG, topicCheck, utf8Check } from "./topic";
import { memCopy, messageStore, messageStoreStatus } from "./message";
import {
  clientSetOnline, trieCount, trieMatch, trieNodes, trieOutHeader, trieOutIds, trieOutRecords,
  trieSetup, trieSubscribe, trieUnsubscribe,
} from "./trie";
import {
  RETAIN_ERROR, retainCount, retainDelete, retainMatch, retainNodes, retainOut, retainSet,
  retainedSetup,
} from "./retained";

const SCRATCH: usize = memory.data(8);
const RECEIVE: usize = memory.data(8);

// Runs at instantiation. Failure here means the initial memory is far too small.
tlsfSelfCheck();
if (!arenaInit() || !trieSetup() || !retainedSetup() || !bufEnsure(SCRATCH, 4096) || !bufEnsure(RECEIVE, 65536)) unreachable();

// ---- memory -------------------------------------------------------------------------

/** Pointer to a scratch area of at least `len` bytes (moves when it grows), or 0 if memory is exhausted. */
export function scratch(len: u32): usize {
  return bufEnsure(SCRATCH, len) ? bufPtr(SCRATCH) : 0;
}

/** Pointer to the receive staging area of at least `len` bytes (moves when it grows; apart from scratch), or 0 if memory is exhausted. */
export function receive_buffer(len: u32): usize {
  return bufEnsure(RECEIVE, len) ? bufPtr(RECEIVE) : 0;
}

/** Caps linear memory at `pages` × 64 KiB (≤ 65535); allocations that could grow past it fail softly. */
export function core_set_memory_limit(pages: u32): void {
  setLimitPages(pages);
}

/** Current memory page limit. */
export function core_memory_limit(): u32 {
  return getLimitPages();
}

/** 1 when heap growth is fully guarded (the TLSF mirror passed its start-up self-check), 0 in the conservative fallback. */
export function core_heap_guarded(): u32 {
  return tlsfGuarded() ? 1 : 0;
}

// ---- arena --------------------------------------------------------------------------

/** New block of `len` bytes with refcount 1: its handle (never 0), or 0 when the cap or memory is exhausted. */
export function arena_alloc(len: u32): u32 {
  return arenaAlloc(len);
}

/** Address of the block, or -1 for an invalid/stale/released handle (counted as an error). */
export function arena_ptr(handle: u32): i32 {
  return arenaPtr(handle);
}

/** Requested length of the block, or -1 for an invalid handle (counted). */
export function arena_len(handle: u32): i32 {
  return arenaLen(handle);
}

/** Refcount + 1, returns the new count, or -1 for an invalid handle (counted). */
export function arena_retain(handle: u32): i32 {
  return arenaRetain(handle);
}

/** Refcount − 1, returns what remains (0 = block freed, handle dead), or -1 for an invalid handle (counted). */
export function arena_release(handle: u32): i32 {
  return arenaRelease(handle);
}

/** Current refcount, or -1 for an invalid handle (counted). */
export function arena_refcount(handle: u32): i32 {
  return arenaRefcount(handle);
}

/** Sets the cap on bytes reserved (slabs + huge blocks); cached empty slabs are dropped if over it. */
export function arena_set_cap(bytes: f64): void {
  arenaSetCap(bytes);
}

/** Returns cached empty slabs to the heap; the number of bytes released. */
export function arena_trim(): f64 {
  return <f64>arenaTrim();
}

/** Pointer to 29 f64: per tier (small, medium, large, huge) {inUse, free, hits, misses, bytesInUse, bytesReserved}, then liveHandles, bytesInUse, bytesReserved, cap, errors. */
export function arena_stats(): usize {
  return arenaStats();
}

/** First live handle whose slot index (handle & 0x3fffff) is greater than `afterSlot`, or 0 when none. */
export function arena_next_live(afterSlot: u32): u32 {
  return arenaNextLive(afterSlot);
}

// ---- messages -----------------------------------------------------------------------

/** Validates the topic name, then stores [topic length][topic][payload] in a new block: its handle, or 0 (see message_store_status). */
export function message_store(topicSrc: usize, topicLen: u32, payloadSrc: usize, payloadLen: u32): u32 {
  return messageStore(topicSrc, topicLen, payloadSrc, payloadLen);
}

/** Why the last message_store returned 0: a TopicError code, 100 = arena full, 101 = range outside memory. */
export function message_store_status(): u32 {
  return messageStoreStatus();
}

/** Copies `len` bytes from `src` to `dst` (ranges may overlap); 0 if either lies outside memory. */
export function mem_copy(dst: usize, src: usize, len: u32): u32 {
  return memCopy(dst, src, len) ? 1 : 0;
}

// ---- validation ---------------------------------------------------------------------

/** 0 = well-formed UTF-8 without U+0000; 2 = ill-formed; 3 = contains U+0000; 9 = range outside memory. */
export function utf8_check(ptr: usize, len: u32): u32 {
  return inBounds(ptr, len) ? utf8Check(ptr, len) : TOPIC_OUT_OF_BOUNDS;
}

/** 0 or a TopicError code (see host/core/wasm.ts) for a topic name (isFilter 0) or filter (1). */
export function topic_check(ptr: usize, len: u32, isFilter: u32): u32 {
  if (!inBounds(ptr, len)) return len > 0xffff ? TOPIC_TOO_LONG : TOPIC_OUT_OF_BOUNDS;
  return topicCheck(ptr, len, isFilter != 0);
}

// ---- subscriptions ------------------------------------------------------------------

/** Adds or replaces (client, filter, group): 1 = added, 0 = replaced, -code = invalid filter, -100 = out of memory. */
export function trie_subscribe(client: u32, ptr: usize, len: u32, options: u32, subId: u32, group: u32): i32 {
  if (!inBounds(ptr, len)) return -<i32>TOPIC_OUT_OF_BOUNDS;
  return trieSubscribe(client, ptr, len, options, subId, group);
}

/** Removes (client, filter, group) and prunes empty nodes: 1 = removed, 0 = not found. */
export function trie_unsubscribe(client: u32, ptr: usize, len: u32, group: u32): i32 {
  if (!inBounds(ptr, len)) return 0;
  return trieUnsubscribe(client, ptr, len, group);
}

/** Marks a client online (1, default) or offline (0) for shared-subscription picks; 0 or -100. */
export function client_set_online(client: u32, online: u32): i32 {
  return clientSetOnline(client, online != 0);
}

/**
 * Matches a topic name: number of records at trie_out_records (4 u32 each), or -1 (out of memory / range).
 * checkReaders 1: a shared group picks only among members the import env.share_member_may_read(client) allows.
 */
export function trie_match(ptr: usize, len: u32, publisher: u32, checkReaders: u32): i32 {
  if (!inBounds(ptr, len)) return -1;
  return trieMatch(ptr, len, publisher, checkReaders != 0);
}

/** Records of the last trie_match: {client, flags (0-1 qos, 2 retainAsPublished, 3 shared, 8-31 the group of a shared one), idCount, idStart}. */
export function trie_out_records(): usize {
  return trieOutRecords();
}

/** Subscription identifiers of the last trie_match (u32), indexed by the records' idStart. */
export function trie_out_ids(): usize {
  return trieOutIds();
}

/** Fixed address of two u32 that each trie_match sets: trie_out_records(), trie_out_ids(). */
export function trie_out_header(): usize {
  return trieOutHeader();
}

/** Number of subscriptions (shared members included). */
export function trie_count(): u32 {
  return trieCount();
}

/** Number of trie nodes including the root (shows pruning). */
export function trie_node_count(): u32 {
  return trieNodes();
}

// ---- retained -----------------------------------------------------------------------

/** Stores `handle` (0 = delete) under the topic: previous handle or 0; 0xFFFFFFFF (-1) when out of memory. */
export function retain_set(ptr: usize, len: u32, handle: u32): u32 {
  if (!inBounds(ptr, len)) return RETAIN_ERROR;
  return retainSet(ptr, len, handle);
}

/** Deletes the topic's entry and prunes: previous handle or 0; 0xFFFFFFFF (-1) when out of memory. */
export function retain_delete(ptr: usize, len: u32): u32 {
  if (!inBounds(ptr, len)) return RETAIN_ERROR;
  return retainDelete(ptr, len);
}

/** Number of stored topics the filter matches (handles at retain_out), or -1 (out of memory / range). */
export function retain_match(ptr: usize, len: u32): i32 {
  if (!inBounds(ptr, len)) return -1;
  return retainMatch(ptr, len);
}

/** Handles (u32) found by the last retain_match. */
export function retain_out(): usize {
  return retainOut();
}

/** Number of stored retained topics. */
export function retain_count(): u32 {
  return retainCount();
}

/** Number of retained-index nodes including the root (shows pruning). */
export function retain_node_count(): u32 {
  return retainNodes();
}

