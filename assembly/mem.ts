// Raw-memory plumbing shared by every module: checked heap calls, growable buffers,
// fixed-size record pools, open-addressing hash tables and a few bit tricks.
//
// TLSF (the `minimal` runtime's allocator) executes `unreachable` when memory.grow fails,
// which would trap the whole instance. Every request therefore goes through
// `heapMakeRoom`, which grows memory itself, softly, within the configured page limit.

import { ROOT } from "rt/tlsf";
import { Result } from "../host/core/wasm/abi";

// TLSF's largest payload (BLOCK_MAXSIZE in ~lib/rt/common); larger requests abort.
// @ts-ignore: decorator
@inline const TLSF_MAX: usize = (1 << 30) - 4;

// Must not exceed asconfig's maximumMemory: TLSF computes `pages << 16` in 32 bits, so a
// full 65536-page (4 GiB) memory would wrap to 0 and corrupt its block list.
let limitPages: u32 = 65535;

export function setLimitPages(pages: u32): void {
  limitPages = pages > 65535 ? 65535 : pages;
}

export function getLimitPages(): u32 {
  return limitPages;
}

// ---- the error convention (host/core/wasm/abi.ts) -----------------------------------

let lastError: u32 = 0;

/** Records why an export fails (a CoreError) and returns FAIL for it to return. */
export function fail(code: u32): i32 {
  lastError = code;
  return Result.Fail;
}

/** The CoreError of the last failure. */
export function lastFailure(): u32 {
  return lastError;
}

// ---- making sure TLSF never has to grow memory itself -------------------------------
// TLSF grows memory on a miss (doubling it, past any limit of ours) and executes
// `unreachable` when memory.grow fails. So before every heap request we check that a
// fitting free block exists, and if not we grow memory ourselves (within the limit,
// failing softly) and hand the new pages to TLSF exactly as its own addMemory would: the
// old zero-size tail block becomes a block spanning the new pages, a new tail goes at the
// end, and freeing the spanning block merges it into the free lists.
//
// This mirrors ~lib/rt/tlsf of AssemblyScript 0.28 (16-byte alignment, 16 second-level
// classes, 23 first-level classes, 4-byte block header, tail pointer after the heads).
// tlsfSelfCheck() verifies the mirror at start-up; if anything disagrees we fall back to a
// conservative bound and let TLSF grow memory itself.

// @ts-ignore: decorator
@inline const TLSF_TAIL: usize = ((4 + 23 * 4 + 15) & ~15) + 23 * 16 * 4; // ROOT offset of the tail pointer
// @ts-ignore: decorator
@inline const LEFTFREE: usize = 2;

let tlsfMirrorOk = false;

/** Whether the TLSF mirror passed its self-check (else only the conservative bound applies). */
export function tlsfGuarded(): bool {
  return tlsfMirrorOk;
}

/** TLSF's free lists hold a block that fits `size` (mapping_search over the bitmaps). */
function tlsfHasFit(size: usize): bool {
  let root = changetype<usize>(ROOT);
  if (!root || !tlsfMirrorOk) return false;
  let payload: u32 = size <= 12 ? 12 : ((<u32>size + 19) & ~15) - 4;
  let fl: u32;
  let sl: u32;
  if (payload < 256) {
    fl = 0;
    sl = payload >> 4;
  } else {
    let req = payload < <u32>(TLSF_MAX >> 1) ? payload + (1 << (27 - clz(payload))) - 1 : payload;
    fl = 31 - clz(req);
    sl = (req >> (fl - 4)) ^ 16;
    fl -= 7;
  }
  if (load<u32>(root + 4 + (<usize>fl << 2)) & (<u32>0xffffffff << sl)) return true;
  return (load<u32>(root) & (<u32>0xffffffff << (fl + 1))) != 0;
}

/** TLSF's tail block sits where it would after TLSF's own growth: at the end of memory. */
function tlsfTailAtEnd(): bool {
  let root = changetype<usize>(ROOT);
  let tail = load<usize>(root + TLSF_TAIL);
  return tail == (<usize>memory.size() << 16) - 4 && (load<usize>(tail) & ~LEFTFREE) == 0;
}

/** Grows memory by `pages` and gives them to TLSF; false (nothing changed) if refused. */
function tlsfGrow(pages: i32): bool {
  if (!tlsfTailAtEnd()) return false;
  let before = memory.size();
  if (memory.grow(pages) < 0) return false;
  let root = changetype<usize>(ROOT);
  let tail = load<usize>(root + TLSF_TAIL);
  let newTail = (<usize>(before + pages) << 16) - 4;
  store<usize>(newTail, 0);
  store<usize>(tail, (newTail - tail - 4) | (load<usize>(tail) & LEFTFREE));
  store<usize>(root + TLSF_TAIL, newTail);
  heap.free(tail + 4);
  return true;
}

/** Call once at start-up, before anything else allocates. */
export function tlsfSelfCheck(): void {
  tlsfMirrorOk = true;
  let a = heap.alloc(3000);
  let b = heap.alloc(16); // keeps `a` from merging with the free space after it
  heap.free(a);
  let mem = <usize>memory.size() << 16;
  tlsfMirrorOk = tlsfHasFit(3000) && tlsfHasFit(2900) && !tlsfHasFit(mem) && tlsfTailAtEnd();
  heap.free(b);
  // one page through the graft: the new pages must end up in the free block before the
  // tail (found through its back pointer), the tail tagged LEFTFREE
  if (tlsfMirrorOk && tlsfGrow(1)) {
    let tail = load<usize>(changetype<usize>(ROOT) + TLSF_TAIL);
    let left = load<usize>(tail - 4);
    let info = load<usize>(left);
    tlsfMirrorOk = tlsfTailAtEnd() && load<usize>(tail) == LEFTFREE && (info & 1) != 0 &&
      left + 4 + (info & ~<usize>3) == tail && (info & ~<usize>3) >= 0xfffc;
  } else {
    tlsfMirrorOk = false;
  }
}

/**
 * Ensures TLSF can serve `size` bytes without growing memory itself, growing memory (by up
 * to doubling, never past the limit) when needed. False when that is impossible.
 */
export function heapMakeRoom(size: usize): bool {
  if (size > TLSF_MAX) return false;
  if (tlsfHasFit(size)) return true;
  // rounding up to the next free-list class (< size/16), block headers, whole pages
  let need = <u32>((<u64>size + (<u64>size >> 4) + 64 + 0xffff) >> 16);
  let before = <u32>memory.size();
  if (<u64>before + need > <u64>limitPages) return false;
  if (!tlsfMirrorOk) return true; // TLSF grows by itself; the engine's maximum is all we know
  let want = max(need, min(before, limitPages - before));
  if (!tlsfGrow(want) && (want == need || !tlsfGrow(need))) return false;
  return tlsfHasFit(size);
}

export function xalloc(size: usize): usize {
  return heapMakeRoom(size) ? heap.alloc(size) : 0;
}

/** Like heap.realloc but returns 0 (old block intact) instead of trapping. `ptr` must be live. */
export function xrealloc(ptr: usize, size: usize): usize {
  return heapMakeRoom(size) ? heap.realloc(ptr, size) : 0;
}

// @ts-ignore: decorator
@inline export function xfree(ptr: usize): void {
  if (ptr) heap.free(ptr);
}

/** Range lies inside linear memory, so loads over it cannot trap. */
// @ts-ignore: decorator
@inline export function inBounds(ptr: usize, len: usize): bool {
  return <u64>ptr + <u64>len <= (<u64>memory.size() << 16);
}

// ---- growable byte buffers: descriptor = { ptr: u32, cap: u32 } ----------------------

// @ts-ignore: decorator
@inline export function bufPtr(B: usize): usize {
  return load<usize>(B);
}

/** Ensures capacity for `need` bytes; contents are kept. False when memory is exhausted. */
// @ts-ignore: decorator
@inline export function bufEnsure(B: usize, need: usize): bool {
  return need <= load<usize>(B, 4) || bufGrow(B, need);
}

function bufGrow(B: usize, need: usize): bool {
  let p = load<usize>(B);
  let want = max<u64>(max<u64>(<u64>need, <u64>load<usize>(B, 4) << 1), 64);
  if (want > <u64>TLSF_MAX) want = <u64>need;
  let got = <usize>want;
  let np = p ? xrealloc(p, got) : xalloc(got);
  if (!np && got != need) {
    got = need;
    np = p ? xrealloc(p, got) : xalloc(got);
  }
  if (!np) return false;
  store<usize>(B, np);
  store<usize>(B, got, 4);
  return true;
}

// ---- record pools: descriptor = { base, cap, top, freeHead, live, raw } -------------
// Records are addressed by u32 id (id 0 is never handed out, so 0 can mean "none").
// A free record keeps the next free id in its first word. The base moves when the pool
// grows, so callers keep ids, never addresses, across anything that may allocate. The base
// is cache-line aligned (TLSF only guarantees 16 bytes) so records of 32 bytes never
// straddle two lines and 48-byte ones at most every other time.

// @ts-ignore: decorator
@inline export const POOL_DESC: i32 = 24;
// @ts-ignore: decorator
@inline const LINE: usize = 64;

// @ts-ignore: decorator
@inline export function poolAddr(P: usize, id: u32, recSize: usize): usize {
  return load<usize>(P) + <usize>id * recSize;
}

// @ts-ignore: decorator
@inline export function poolLive(P: usize): u32 {
  return load<u32>(P, 16);
}

/** Moves the pool to a fresh aligned block of `cap` records; false leaves it untouched. */
function poolResize(P: usize, recSize: usize, cap: u64): bool {
  let bytes = cap * <u64>recSize + (LINE - 16);
  if (bytes > 0xffffffff) return false;
  let raw = xalloc(<usize>bytes);
  if (!raw) return false;
  let base = (raw + LINE - 1) & ~(LINE - 1);
  let old = load<usize>(P, 20);
  if (old) {
    memory.copy(base, load<usize>(P), <usize>load<u32>(P, 8) * recSize);
    heap.free(old);
  }
  store<usize>(P, base);
  store<u32>(P, <u32>cap, 4);
  store<usize>(P, raw, 20);
  return true;
}

export function poolInit(P: usize, recSize: usize, cap: u32): bool {
  store<u32>(P, 1, 8);
  store<u32>(P, 0, 12);
  store<u32>(P, 0, 16);
  store<usize>(P, 0, 20);
  return poolResize(P, recSize, cap);
}

/** Guarantees that the next `n` poolAlloc calls succeed. */
export function poolReserve(P: usize, recSize: usize, n: u32): bool {
  let cap = load<u32>(P, 4);
  let top = load<u32>(P, 8);
  // free-list records count too, but walking the list is not worth it for the rare grow
  if (<u64>top + n <= <u64>cap) return true;
  let want = <u64>cap << 1;
  if (want < <u64>top + n) want = <u64>top + n;
  if (want > 0xfffffff0) return false;
  return poolResize(P, recSize, want);
}

/** Zeroed record id, or 0 when memory is exhausted. */
export function poolAlloc(P: usize, recSize: usize): u32 {
  let id = load<u32>(P, 12);
  if (id) {
    store<u32>(P, load<u32>(poolAddr(P, id, recSize)), 12);
  } else {
    if (!poolReserve(P, recSize, 1)) return 0;
    id = load<u32>(P, 8);
    store<u32>(P, id + 1, 8);
  }
  store<u32>(P, load<u32>(P, 16) + 1, 16);
  memory.fill(poolAddr(P, id, recSize), 0, recSize);
  return id;
}

export function poolFree(P: usize, recSize: usize, id: u32): void {
  store<u32>(poolAddr(P, id, recSize), load<u32>(P, 12));
  store<u32>(P, id, 12);
  store<u32>(P, load<u32>(P, 16) - 1, 16);
}

// ---- open-addressing hash tables: descriptor = { slots, mask, count } ---------------
// Linear probing over 8-byte entries { key: u32, id: u32 }, id 0 = empty. The table
// stores only a 32-bit key and an id; the caller probes and confirms a hit against its
// own record, so one table implementation serves every kind of key. Deletion shifts
// entries back (no tombstones), so probe chains stay short under churn.

// @ts-ignore: decorator
@inline export const HT_DESC: i32 = 12;

// @ts-ignore: decorator
@inline export function htSlots(T: usize): usize {
  return load<usize>(T);
}

// @ts-ignore: decorator
@inline export function htMask(T: usize): u32 {
  return load<u32>(T, 4);
}

export function htInit(T: usize, cap: u32): bool {
  let slots = xalloc(<usize>cap << 3);
  if (!slots) return false;
  memory.fill(slots, 0, <usize>cap << 3);
  store<usize>(T, slots);
  store<u32>(T, cap - 1, 4);
  store<u32>(T, 0, 8);
  return true;
}

/** Guarantees that the next htInsert does not need memory (load factor stays <= 1/2). */
export function htReserve(T: usize): bool {
  let cap = load<u32>(T, 4) + 1;
  let count = load<u32>(T, 8);
  if ((count + 1) << 1 <= cap) return true;
  if (cap >= 0x10000000) return false;
  let ncap = cap << 1;
  let nslots = xalloc(<usize>ncap << 3);
  if (!nslots) return false;
  memory.fill(nslots, 0, <usize>ncap << 3);
  let old = load<usize>(T);
  let nmask = ncap - 1;
  for (let i: u32 = 0; i < cap; i++) {
    let e = old + (<usize>i << 3);
    let id = load<u32>(e, 4);
    if (!id) continue;
    let key = load<u32>(e);
    let j = key & nmask;
    while (load<u32>(nslots + (<usize>j << 3), 4)) j = (j + 1) & nmask;
    store<u64>(nslots + (<usize>j << 3), load<u64>(e));
  }
  heap.free(old);
  store<usize>(T, nslots);
  store<u32>(T, nmask, 4);
  return true;
}

/** Inserts after a successful htReserve; duplicates are the caller's business. */
export function htInsert(T: usize, key: u32, id: u32): void {
  let slots = load<usize>(T);
  let mask = load<u32>(T, 4);
  let i = key & mask;
  while (load<u32>(slots + (<usize>i << 3), 4)) i = (i + 1) & mask;
  let e = slots + (<usize>i << 3);
  store<u32>(e, key);
  store<u32>(e, id, 4);
  store<u32>(T, load<u32>(T, 8) + 1, 8);
}

/** Removes the entry (key, id) if present. */
export function htRemove(T: usize, key: u32, id: u32): void {
  let slots = load<usize>(T);
  let mask = load<u32>(T, 4);
  let i = key & mask;
  while (true) {
    let cur = load<u32>(slots + (<usize>i << 3), 4);
    if (!cur) return;
    if (cur == id) break;
    i = (i + 1) & mask;
  }
  // backward-shift: pull later entries of the cluster into the hole when their home
  // slot does not lie cyclically in (hole, j]
  let j = i;
  while (true) {
    j = (j + 1) & mask;
    let e = slots + (<usize>j << 3);
    if (!load<u32>(e, 4)) break;
    let home = load<u32>(e) & mask;
    let stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      store<u64>(slots + (<usize>i << 3), load<u64>(e));
      i = j;
    }
  }
  store<u64>(slots + (<usize>i << 3), 0);
  store<u32>(T, load<u32>(T, 8) - 1, 8);
}

// ---- hashing & bit tricks -----------------------------------------------------------

// @ts-ignore: decorator
@inline export function fmix(h: u32): u32 {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

// @ts-ignore: decorator
@inline export const ONES: u64 = 0x0101010101010101;
// @ts-ignore: decorator
@inline export const HIGHS: u64 = 0x8080808080808080;

/** Nonzero iff some byte of `w` is zero; the lowest flagged byte is the first zero byte. */
// @ts-ignore: decorator
@inline export function zeroBytes(w: u64): u64 {
  return (w - ONES) & ~w & HIGHS;
}

// @ts-ignore: decorator
@inline export function hasByte(w: u64, c: u64): u64 {
  return zeroBytes(w ^ (c * ONES));
}

/** Byte-wise equality of two ranges of the same length. */
// @ts-ignore: decorator
@inline export function bytesEqual(a: usize, b: usize, n: usize): bool {
  while (n >= 8) {
    if (load<u64>(a) != load<u64>(b)) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  while (n) {
    if (load<u8>(a) != load<u8>(b)) return false;
    a++;
    b++;
    n--;
  }
  return true;
}
