// ArborMQ core: the flat export list. Its contract — signatures, the error convention (FAIL and
// core_error), codes and record layouts — is declared once in host/core/wasm/abi.ts, which
// these modules import their constants from and test/assembly/abi.test.ts holds this list to.

import { CoreError, Result } from "../host/core/wasm/abi";
import {
  bufEnsure, bufPtr, fail, getLimitPages, inBounds, lastFailure, setLimitPages, tlsfGuarded, tlsfSelfCheck,
} from "./mem";
import {
  arenaAlloc, arenaCheck, arenaInit, arenaLen, arenaNextLive, arenaPtr, arenaRef, arenaRefcount,
  arenaSetCap, arenaStats, arenaTrim, arenaUnref,
} from "./arena";
import { topicCheck, utf8Check } from "./topic";
import { memCopy, messageStore } from "./message";
import {
  clientSetOnline, trieCheck, trieCount, trieMatch, trieNodes, trieOutHeader, trieSetup, trieSubscribe,
  trieUnsubscribe,
} from "./trie";
import { retainCount, retainDelete, retainMatch, retainNodes, retainOut, retainSet, retainedSetup } from "./retained";

const SCRATCH: usize = memory.data(8);
const RECEIVE: usize = memory.data(8);

// Runs at instantiation. Failure here means the initial memory is far too small.
tlsfSelfCheck();
if (!arenaInit() || !trieSetup() || !retainedSetup() || !bufEnsure(SCRATCH, 4096) || !bufEnsure(RECEIVE, 65536)) unreachable();

// @ts-ignore: decorator
@inline function handleOr(handle: i32, error: CoreError): i32 {
  return handle == Result.Fail ? fail(error) : handle;
}

// ---- memory -------------------------------------------------------------------------

export function scratch(len: u32): i32 {
  return bufEnsure(SCRATCH, len) ? <i32>bufPtr(SCRATCH) : fail(CoreError.OutOfMemory);
}

export function receive_buffer(len: u32): i32 {
  return bufEnsure(RECEIVE, len) ? <i32>bufPtr(RECEIVE) : fail(CoreError.OutOfMemory);
}

export function core_set_memory_limit(pages: u32): void {
  setLimitPages(pages);
}

export function core_memory_limit(): u32 {
  return getLimitPages();
}

export function core_heap_guarded(): u32 {
  return tlsfGuarded() ? 1 : 0;
}

export function core_error(): u32 {
  return lastFailure();
}

export function core_check_invariants(): void {
  arenaCheck();
  trieCheck();
}

export function mem_copy(dst: usize, src: usize, len: u32): i32 {
  return memCopy(dst, src, len) ? 0 : fail(CoreError.OutOfBounds);
}

// ---- arena --------------------------------------------------------------------------

export function arena_alloc(len: u32): i32 {
  const handle = arenaAlloc(len);
  return handle ? <i32>handle : fail(CoreError.ArenaFull);
}

export function arena_ptr(handle: u32): i32 {
  return handleOr(arenaPtr(handle), CoreError.InvalidHandle);
}

export function arena_len(handle: u32): i32 {
  return handleOr(arenaLen(handle), CoreError.InvalidHandle);
}

export function arena_ref(handle: u32): i32 {
  return handleOr(arenaRef(handle), CoreError.InvalidHandle);
}

export function arena_unref(handle: u32): i32 {
  return handleOr(arenaUnref(handle), CoreError.InvalidHandle);
}

export function arena_refcount(handle: u32): i32 {
  return handleOr(arenaRefcount(handle), CoreError.InvalidHandle);
}

export function arena_set_cap(bytes: f64): void {
  arenaSetCap(bytes);
}

export function arena_trim(): f64 {
  return <f64>arenaTrim();
}

export function arena_stats(): usize {
  return arenaStats();
}

export function arena_next_live(afterSlot: u32): u32 {
  return arenaNextLive(afterSlot);
}

// ---- messages -----------------------------------------------------------------------

export function message_store(topicSrc: usize, topicLen: u32, payloadSrc: usize, payloadLen: u32): i32 {
  return messageStore(topicSrc, topicLen, payloadSrc, payloadLen);
}

// ---- validation ---------------------------------------------------------------------

export function utf8_check(ptr: usize, len: u32): u32 {
  return inBounds(ptr, len) ? utf8Check(ptr, len) : CoreError.OutOfBounds;
}

export function topic_check(ptr: usize, len: u32, isFilter: u32): u32 {
  if (!inBounds(ptr, len)) return len > 0xffff ? CoreError.TooLong : CoreError.OutOfBounds;
  return topicCheck(ptr, len, isFilter != 0);
}

// ---- subscriptions ------------------------------------------------------------------

export function trie_subscribe(client: u32, ptr: usize, len: u32, options: u32, subId: u32, group: u32): i32 {
  if (!inBounds(ptr, len)) return fail(CoreError.OutOfBounds);
  return trieSubscribe(client, ptr, len, options, subId, group);
}

export function trie_unsubscribe(client: u32, ptr: usize, len: u32, group: u32): i32 {
  if (!inBounds(ptr, len)) return fail(CoreError.OutOfBounds);
  return trieUnsubscribe(client, ptr, len, group);
}

export function client_set_online(client: u32, online: u32): i32 {
  return clientSetOnline(client, online != 0);
}

export function trie_match(ptr: usize, len: u32, publisher: u32, checkReaders: u32): i32 {
  if (!inBounds(ptr, len)) return fail(CoreError.OutOfBounds);
  return trieMatch(ptr, len, publisher, checkReaders != 0);
}

export function trie_out_header(): usize {
  return trieOutHeader();
}

export function trie_count(): u32 {
  return trieCount();
}

export function trie_node_count(): u32 {
  return trieNodes();
}

// ---- retained -----------------------------------------------------------------------

export function retain_set(ptr: usize, len: u32, handle: u32): u32 {
  if (!inBounds(ptr, len)) return <u32>fail(CoreError.OutOfBounds);
  return retainSet(ptr, len, handle);
}

export function retain_delete(ptr: usize, len: u32): u32 {
  if (!inBounds(ptr, len)) return <u32>fail(CoreError.OutOfBounds);
  return retainDelete(ptr, len);
}

export function retain_match(ptr: usize, len: u32): i32 {
  if (!inBounds(ptr, len)) return fail(CoreError.OutOfBounds);
  return retainMatch(ptr, len);
}

export function retain_out(): usize {
  return retainOut();
}

export function retain_count(): u32 {
  return retainCount();
}

export function retain_node_count(): u32 {
  return retainNodes();
}
