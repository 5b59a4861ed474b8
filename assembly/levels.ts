// The flat level trie shared by the subscription trie (trie.ts) and the retained index
// (retained.ts), plus topic splitting.
//
// Nodes are 48-byte records in a growable pool, addressed by u32 id. Literal children are
// found through one open-addressing table per trie keyed by hash(parent id, level hash)
// and confirmed by comparing parent and label bytes, so a lookup is one probe sequence
// instead of a per-node map. Literal children are also chained as siblings so a subtree can
// be walked (retained `+`/`#` matching) and a node can tell whether it is empty (pruning).
// `+` and `#` children of the subscription trie hang directly off the node: matching never
// hashes for them.

import {
  HT_DESC, POOL_DESC, bufEnsure, bufPtr, bytesEqual, hasByte, htInit, htInsert, htMask,
  htRemove, htReserve, htSlots, poolAddr, poolAlloc, poolFree, poolInit, poolLive, xalloc, xfree,
} from "./mem";

// node record (48 bytes)
// @ts-ignore: decorator
@inline export const N_PARENT: usize = 0;
// @ts-ignore: decorator
@inline export const N_FIRST: usize = 4;
// @ts-ignore: decorator
@inline export const N_NEXT: usize = 8;
// @ts-ignore: decorator
@inline export const N_PREV: usize = 12;
// @ts-ignore: decorator
@inline export const N_PLUS: usize = 16;
// @ts-ignore: decorator
@inline export const N_HASH: usize = 20;
/** u64: labels of up to 8 bytes inline (zero-padded), longer ones as a heap pointer */
// @ts-ignore: decorator
@inline export const N_LABEL: usize = 24;
// @ts-ignore: decorator
@inline export const N_LLEN: usize = 32;
// @ts-ignore: decorator
@inline export const N_KEY: usize = 36;
/** Owner's payload: subscription list (trie) or retained handle (retained index). */
// @ts-ignore: decorator
@inline export const N_VAL: usize = 40;
/** Owner's second payload: shared-group list (trie); unused by the retained index. */
// @ts-ignore: decorator
@inline export const N_VAL2: usize = 44;
// @ts-ignore: decorator
@inline export const NODE_SIZE: usize = 48;

// @ts-ignore: decorator
@inline const KIND_LITERAL: u32 = 0;
// @ts-ignore: decorator
@inline const KIND_PLUS: u32 = 1;
// @ts-ignore: decorator
@inline const KIND_HASH: u32 = 2;

// trie descriptor: node pool, child table, root id
// @ts-ignore: decorator
@inline export const TRIE_DESC: i32 = 48;
// @ts-ignore: decorator
@inline const T_HT: usize = <usize>POOL_DESC;
// @ts-ignore: decorator
@inline const T_ROOT: usize = <usize>(POOL_DESC + HT_DESC);

// @ts-ignore: decorator
@inline export function node(td: usize, id: u32): usize {
  return poolAddr(td, id, NODE_SIZE);
}

// @ts-ignore: decorator
@inline export function trieRoot(td: usize): u32 {
  return load<u32>(td, T_ROOT);
}

// @ts-ignore: decorator
@inline export function trieNodeCount(td: usize): u32 {
  return poolLive(td);
}

export function trieInit(td: usize): bool {
  if (!poolInit(td, NODE_SIZE, 1024) || !htInit(td + T_HT, 2048)) return false;
  let root = poolAlloc(td, NODE_SIZE);
  store<u32>(td, root, T_ROOT);
  return root != 0;
}

// ---- levels -------------------------------------------------------------------------
// splitLevels writes one 16-byte record per level { start, len, hash, pad } and the level's
// first 8 bytes (zero-padded) into a parallel u64 array. The level hash is a function of
// the level's bytes only (8-byte chunks from the level start, zero-padded tail, length
// folded in), however the bytes were read.

const LEVELS: usize = memory.data(8);
const HEADS: usize = memory.data(8);

// @ts-ignore: decorator
@inline export function levelStart(i: u32): u32 {
  return load<u32>(bufPtr(LEVELS) + (<usize>i << 4));
}

// @ts-ignore: decorator
@inline export function levelLen(i: u32): u32 {
  return load<u32>(bufPtr(LEVELS) + (<usize>i << 4), 4);
}

// @ts-ignore: decorator
@inline export function levelHash(i: u32): u32 {
  return load<u32>(bufPtr(LEVELS) + (<usize>i << 4), 8);
}

// @ts-ignore: decorator
@inline export function levelHead(i: u32): u64 {
  return load<u64>(bufPtr(HEADS) + (<usize>i << 3));
}

// @ts-ignore: decorator
@inline const H_SEED: u64 = 0x243f6a8885a308d3;
// @ts-ignore: decorator
@inline const H_MUL: u64 = 0x9e3779b97f4a7c15;

// @ts-ignore: decorator
@inline function hstep(h: u64, w: u64): u64 {
  h = (h ^ w) * H_MUL;
  return h ^ (h >> 29);
}

/** The low `k` bytes of `w`, k < 8. */
// @ts-ignore: decorator
@inline function lowBytes(w: u64, k: u32): u64 {
  return w & ((<u64>1 << (<u64>k << 3)) - 1);
}

// Splitting is incremental: matching asks for level i only when it gets there, so a topic
// that leaves the trie early is never scanned to its end.
let scanPtr: usize = 0;
let scanLen: u32 = 0;
let scanPos: u32 = 0;
let scanEnd: usize = 0;
let split: u32 = 0;
let scanDone = true;

/** Starts splitting [ptr, ptr+len); false when the level buffers cannot grow. */
export function splitBegin(ptr: usize, len: u32): bool {
  // at most len + 1 levels: reserving once keeps the scanner free of capacity checks
  if (!bufEnsure(LEVELS, (<usize>len + 1) << 4) || !bufEnsure(HEADS, (<usize>len + 1) << 3)) return false;
  scanPtr = ptr;
  scanLen = len;
  scanPos = 0;
  // 8-byte loads may run past the range (masked off) but never past memory
  scanEnd = <usize>memory.size() << 16;
  split = 0;
  scanDone = false;
  return true;
}

/** Records the next level; false when there is none left. */
function splitNext(): bool {
  if (scanDone) return false;
  let ptr = scanPtr;
  let len = scanLen;
  let start = scanPos;
  let i = start;
  let h = H_SEED;
  let head: u64 = 0;
  while (true) {
    let avail = len - i;
    let w: u64 = 0;
    if (ptr + i + 8 <= scanEnd) {
      w = load<u64>(ptr + i);
      if (avail < 8) w = lowBytes(w, avail);
    } else {
      for (let k: u32 = 0; k < avail && k < 8; k++) w |= <u64>load<u8>(ptr + i + k) << (<u64>k << 3);
    }
    let m = hasByte(w, 0x2f);
    if (!m && avail >= 8) {
      if (i == start) head = w;
      h = hstep(h, w);
      i += 8;
      continue;
    }
    // zero bytes are not '/', so the masked tail cannot fake a separator
    let k = m ? <u32>ctz(m) >> 3 : avail;
    w = lowBytes(w, k);
    if (k) h = hstep(h, w);
    if (i == start) head = w;
    let end = i + k;
    let levelLen = end - start;
    let r = bufPtr(LEVELS) + (<usize>split << 4);
    store<u32>(r, start);
    store<u32>(r, levelLen, 4);
    store<u32>(r, <u32>h ^ <u32>(h >> 32) ^ levelLen, 8);
    store<u64>(bufPtr(HEADS) + (<usize>split << 3), head);
    split++;
    if (end >= len) scanDone = true;
    else scanPos = end + 1;
    return true;
  }
}

/** Whether the range has a level i (splitting up to it on demand). */
// @ts-ignore: decorator
@inline export function haveLevel(i: u32): bool {
  while (i >= split) {
    if (!splitNext()) return false;
  }
  return true;
}

/** Splits the whole range: number of levels (>= 1), or -1 when buffers cannot grow. */
export function splitLevels(ptr: usize, len: u32): i32 {
  if (!splitBegin(ptr, len)) return -1;
  while (splitNext()) {}
  return <i32>split;
}

// ---- children -----------------------------------------------------------------------

// @ts-ignore: decorator
@inline function childKey(parent: u32, levelHash: u32): u32 {
  return levelHash ^ (parent * 0x9e3779b1);
}

// @ts-ignore: decorator
@inline function labelIs(n: usize, ptr: usize, lv: u32, len: u32): bool {
  if (load<u32>(n, N_LLEN) != len) return false;
  if (len <= 8) return load<u64>(n, N_LABEL) == levelHead(lv);
  return bytesEqual(load<usize>(n, N_LABEL), ptr + levelStart(lv), len);
}

/** Literal child of `parent` labelled like level `lv` (bytes at `ptr`), or 0. */
// @ts-ignore: decorator
@inline export function findChild(td: usize, parent: u32, ptr: usize, lv: u32): u32 {
  let len = levelLen(lv);
  // leaves and only children (most nodes below a wide level) skip the table: the parent
  // record is already in cache and the child record is needed anyway
  let first = load<u32>(node(td, parent), N_FIRST);
  if (!first) return 0;
  let f = node(td, first);
  if (!load<u32>(f, N_NEXT)) return labelIs(f, ptr, lv, len) ? first : 0;
  let key = childKey(parent, levelHash(lv));
  let slots = htSlots(td + T_HT);
  let mask = htMask(td + T_HT);
  let i = key & mask;
  while (true) {
    let e = slots + (<usize>i << 3);
    let id = load<u32>(e, 4);
    if (!id) return 0;
    if (load<u32>(e) == key) {
      let n = node(td, id);
      if (load<u32>(n, N_PARENT) == parent && labelIs(n, ptr, lv, len)) return id;
    }
    i = (i + 1) & mask;
  }
}

function addChild(td: usize, parent: u32, ptr: usize, lv: u32): u32 {
  let len = levelLen(lv);
  let label: usize = 0;
  if (len > 8) {
    label = xalloc(len);
    if (!label) return 0;
  }
  if (!htReserve(td + T_HT)) {
    xfree(label);
    return 0;
  }
  let id = poolAlloc(td, NODE_SIZE);
  if (!id) {
    xfree(label);
    return 0;
  }
  let key = childKey(parent, levelHash(lv));
  htInsert(td + T_HT, key, id);
  let n = node(td, id);
  let p = node(td, parent);
  let first = load<u32>(p, N_FIRST);
  store<u32>(n, parent, N_PARENT);
  store<u32>(n, first, N_NEXT);
  if (len > 8) {
    memory.copy(label, ptr + levelStart(lv), len);
    store<u64>(n, label, N_LABEL);
  } else {
    store<u64>(n, levelHead(lv), N_LABEL);
  }
  store<u32>(n, len, N_LLEN);
  store<u32>(n, key, N_KEY);
  if (first) store<u32>(node(td, first), id, N_PREV);
  store<u32>(p, id, N_FIRST);
  return id;
}

function addWildcard(td: usize, parent: u32, kind: u32): u32 {
  let id = poolAlloc(td, NODE_SIZE);
  if (!id) return 0;
  store<u32>(node(td, id), parent, N_PARENT);
  if (kind == KIND_PLUS) store<u32>(node(td, parent), id, N_PLUS);
  else store<u32>(node(td, parent), id, N_HASH);
  return id;
}

/**
 * Node for the levels last split from `ptr`, or 0 when absent (create false) or out of
 * memory (create true; nodes created on the way are removed again). With `wild`, single
 * `+`/`#` levels are the wildcard children rather than literal labels.
 */
export function trieWalk(td: usize, ptr: usize, levels: u32, create: bool, wild: bool): u32 {
  let id = trieRoot(td);
  for (let i: u32 = 0; i < levels; i++) {
    let s = ptr + levelStart(i);
    let len = levelLen(i);
    let next: u32 = 0;
    let kind = KIND_LITERAL;
    if (wild && len == 1) {
      let c = load<u8>(s);
      if (c == 0x2b) kind = KIND_PLUS;
      else if (c == 0x23) kind = KIND_HASH;
    }
    if (kind == KIND_PLUS) next = load<u32>(node(td, id), N_PLUS);
    else if (kind == KIND_HASH) next = load<u32>(node(td, id), N_HASH);
    else next = findChild(td, id, ptr, i);
    if (!next) {
      if (!create) return 0;
      next = kind == KIND_LITERAL ? addChild(td, id, ptr, i) : addWildcard(td, id, kind);
      if (!next) {
        triePrune(td, id);
        return 0;
      }
    }
    id = next;
  }
  return id;
}

/** Removes `id` and then its ancestors while they hold no payload and no children. */
export function triePrune(td: usize, id: u32): void {
  let root = trieRoot(td);
  while (id != root) {
    let n = node(td, id);
    if (
      load<u32>(n, N_FIRST) | load<u32>(n, N_PLUS) | load<u32>(n, N_HASH) |
      load<u32>(n, N_VAL) | load<u32>(n, N_VAL2)
    ) return;
    let parent = load<u32>(n, N_PARENT);
    let p = node(td, parent);
    // wildcard children are known only by the parent's fields
    if (load<u32>(p, N_PLUS) == id) store<u32>(p, 0, N_PLUS);
    else if (load<u32>(p, N_HASH) == id) store<u32>(p, 0, N_HASH);
    else {
      htRemove(td + T_HT, load<u32>(n, N_KEY), id);
      let prev = load<u32>(n, N_PREV);
      let next = load<u32>(n, N_NEXT);
      if (prev) store<u32>(node(td, prev), next, N_NEXT);
      else store<u32>(p, next, N_FIRST);
      if (next) store<u32>(node(td, next), prev, N_PREV);
      if (load<u32>(n, N_LLEN) > 8) xfree(load<usize>(n, N_LABEL));
    }
    poolFree(td, NODE_SIZE, id);
    id = parent;
  }
}

/** Pre-order successor of `id` among the literal nodes under `top` (exclusive), or 0. */
// @ts-ignore: decorator
@inline export function subtreeNext(td: usize, id: u32, top: u32): u32 {
  let first = load<u32>(node(td, id), N_FIRST);
  if (first) return first;
  while (id != top) {
    let n = node(td, id);
    let next = load<u32>(n, N_NEXT);
    if (next) return next;
    id = load<u32>(n, N_PARENT);
  }
  return 0;
}

/** The node's label starts with `$` (such first levels are hidden from `+`/`#`). */
// @ts-ignore: decorator
@inline export function labelIsDollar(td: usize, id: u32): bool {
  let n = node(td, id);
  let len = load<u32>(n, N_LLEN);
  // inline labels keep their first byte at N_LABEL itself
  return len != 0 && load<u8>(len <= 8 ? n + N_LABEL : load<usize>(n, N_LABEL)) == 0x24;
}
