// Reference-counted buffer arena: size-class slabs for blocks up to 1 MiB, direct heap
// blocks above, u32 handles with generations, a byte cap and stats.
//
// Handle = generation (high 10 bits) | slot index (low 22 bits), drawn in host/core/wasm/abi.ts.
// Slot 0 is never used, so a handle is never 0; the highest slot index is skipped so 0xFFFFFFFF
// stays FAIL. Released slots are reused FIFO, so a slot's generation wraps only after about
// 1024 × (free slots) releases and stale handles are caught long before.

import { ArenaStats, Handle } from "../host/core/wasm/abi";
import {
  POOL_DESC, poolAddr, poolAlloc, poolFree, poolInit, poolReserve, xalloc, xfree, xrealloc,
} from "./mem";

// @ts-ignore: decorator
@inline const SLOT_BITS: u32 = Handle.SlotBits;
// @ts-ignore: decorator
@inline const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
// @ts-ignore: decorator
@inline const GEN_MASK: u32 = (1 << (32 - SLOT_BITS)) - 1;
// @ts-ignore: decorator
@inline const MAX_SLOT: u32 = SLOT_MASK - 1;

// slot record (16 bytes). A free slot keeps the next free slot index in SL_PTR.
// @ts-ignore: decorator
@inline const SL_PTR: usize = 0;
// @ts-ignore: decorator
@inline const SL_LEN: usize = 4;
// @ts-ignore: decorator
@inline const SL_RC: usize = 8;
/** generation << 22 | owning slab id (0 = huge block straight from the heap) */
// @ts-ignore: decorator
@inline const SL_META: usize = 12;

let slots: usize = 0;
let slotCap: u32 = 0;
let slotTop: u32 = 1;
let freeHead: u32 = 0;
let freeTail: u32 = 0;
let live: u32 = 0;

// size classes: bin b holds blocks of 32 << b bytes, b = 0..15 (32 B .. 1 MiB)
// @ts-ignore: decorator
@inline const MIN_SHIFT: u32 = 5;
// @ts-ignore: decorator
@inline const BINS: u32 = 16;
// @ts-ignore: decorator
@inline const MAX_POOLED: u32 = 1 << 20;

// slab record (32 bytes)
// @ts-ignore: decorator
@inline const SB_BASE: usize = 0;
// @ts-ignore: decorator
@inline const SB_BIN: usize = 4;
/** first free block (its first word links to the next), 0 = none */
// @ts-ignore: decorator
@inline const SB_FREE: usize = 8;
// @ts-ignore: decorator
@inline const SB_NFREE: usize = 12;
/** blocks below this index have been handed out at least once; above it, never touched */
// @ts-ignore: decorator
@inline const SB_BUMP: usize = 16;
// @ts-ignore: decorator
@inline const SB_NEXT: usize = 20;
// @ts-ignore: decorator
@inline const SB_PREV: usize = 24;
// @ts-ignore: decorator
@inline const SLAB_SIZE: usize = 32;

const SLABS: usize = memory.data(POOL_DESC);

// per bin: head and tail of the list of slabs with free blocks, and the one empty slab
// kept cached (it sits at the tail so partly used slabs fill up first)
const BIN_TABLE: usize = memory.data(BINS * 16);
// @ts-ignore: decorator
@inline const BN_HEAD: usize = 0;
// @ts-ignore: decorator
@inline const BN_TAIL: usize = 4;
// @ts-ignore: decorator
@inline const BN_EMPTY: usize = 8;

// per tier (small, medium, large, huge) u64 counters, in the order of the ArenaStats record
// @ts-ignore: decorator
@inline const TIERS: u32 = ArenaStats.Tiers;
// @ts-ignore: decorator
@inline const ST_IN_USE: usize = ArenaStats.InUse << 3;
// @ts-ignore: decorator
@inline const ST_FREE: usize = ArenaStats.Free << 3;
// @ts-ignore: decorator
@inline const ST_HITS: usize = ArenaStats.Hits << 3;
// @ts-ignore: decorator
@inline const ST_MISSES: usize = ArenaStats.Misses << 3;
// @ts-ignore: decorator
@inline const ST_BYTES: usize = ArenaStats.BytesInUse << 3;
// @ts-ignore: decorator
@inline const ST_RESERVED: usize = ArenaStats.BytesReserved << 3;
// @ts-ignore: decorator
@inline const ST_FIELDS: u32 = ArenaStats.TierFields;
const TIER_STATS: usize = memory.data(TIERS * ST_FIELDS * 8);

/** The ArenaStats record the host reads (host/core/wasm/abi.ts). */
const STATS: usize = memory.data(ArenaStats.Count * 8);

let reservedTotal: u64 = 0;
let cap: u64 = 256 << 20;
let errors: u64 = 0;

// @ts-ignore: decorator
@inline function slot(i: u32): usize {
  return slots + (<usize>i << 4);
}

// @ts-ignore: decorator
@inline function slab(id: u32): usize {
  return poolAddr(SLABS, id, SLAB_SIZE);
}

// @ts-ignore: decorator
@inline function bin(b: u32): usize {
  return BIN_TABLE + (<usize>b << 4);
}

// @ts-ignore: decorator
@inline function stat(tier: u32, field: usize): usize {
  return TIER_STATS + <usize>tier * (ST_FIELDS * 8) + field;
}

// @ts-ignore: decorator
@inline function bump(tier: u32, field: usize, delta: i64): void {
  let a = stat(tier, field);
  store<i64>(a, load<i64>(a) + delta);
}

// @ts-ignore: decorator
@inline function tierOf(b: u32): u32 {
  return b <= 5 ? 0 : b <= 11 ? 1 : 2;
}

/** Small bins share 64 KiB slabs, medium 1 MiB, large 4 MiB. */
// @ts-ignore: decorator
@inline function slabBytes(tier: u32): usize {
  return tier == 0 ? 64 << 10 : tier == 1 ? 1 << 20 : 4 << 20;
}

// @ts-ignore: decorator
@inline function binOf(len: u32): u32 {
  return len <= 32 ? 0 : (32 - clz(len - 1)) - MIN_SHIFT;
}

export function arenaInit(): bool {
  slotCap = 1024;
  slots = xalloc(<usize>slotCap << 4);
  return slots != 0 && poolInit(SLABS, SLAB_SIZE, 64);
}

// ---- slots --------------------------------------------------------------------------

/** Address of the live slot named by `h`, or 0 (invalid, stale or released: counted). */
// @ts-ignore: decorator
@inline function resolve(h: u32): usize {
  let i = h & SLOT_MASK;
  if (i != 0 && i < slotTop) {
    let s = slot(i);
    if (load<u32>(s, SL_RC) != 0 && (load<u32>(s, SL_META) >> SLOT_BITS) == (h >> SLOT_BITS)) return s;
  }
  errors++;
  return 0;
}

function slotAvailable(): bool {
  if (freeHead || slotTop < slotCap) return true;
  if (slotTop > MAX_SLOT) return false;
  let ncap = min<u32>(slotCap << 1, MAX_SLOT + 1);
  let p = xrealloc(slots, <usize>ncap << 4);
  if (!p) return false;
  slots = p;
  slotCap = ncap;
  return true;
}

/** After slotAvailable. */
function slotTake(ptr: usize, len: u32, slabId: u32): u32 {
  let i = freeHead;
  let gen: u32 = 0;
  if (i) {
    let s = slot(i);
    freeHead = load<u32>(s, SL_PTR);
    if (!freeHead) freeTail = 0;
    gen = load<u32>(s, SL_META) >> SLOT_BITS;
  } else {
    i = slotTop++;
  }
  let s = slot(i);
  store<usize>(s, ptr, SL_PTR);
  store<u32>(s, len, SL_LEN);
  store<u32>(s, 1, SL_RC);
  store<u32>(s, (gen << SLOT_BITS) | slabId, SL_META);
  live++;
  return (gen << SLOT_BITS) | i;
}

function slotRetire(s: usize): void {
  let i = <u32>((s - slots) >> 4);
  let gen = ((load<u32>(s, SL_META) >> SLOT_BITS) + 1) & GEN_MASK;
  store<u32>(s, gen << SLOT_BITS, SL_META);
  store<u32>(s, 0, SL_RC);
  store<u32>(s, 0, SL_PTR);
  if (freeTail) store<u32>(slot(freeTail), i, SL_PTR);
  else freeHead = i;
  freeTail = i;
  live--;
}

// ---- slabs --------------------------------------------------------------------------

function listPush(b: u32, id: u32, atTail: bool): void {
  let bn = bin(b);
  let s = slab(id);
  if (atTail) {
    let tail = load<u32>(bn, BN_TAIL);
    store<u32>(s, tail, SB_PREV);
    store<u32>(s, 0, SB_NEXT);
    if (tail) store<u32>(slab(tail), id, SB_NEXT);
    else store<u32>(bn, id, BN_HEAD);
    store<u32>(bn, id, BN_TAIL);
  } else {
    let head = load<u32>(bn, BN_HEAD);
    store<u32>(s, 0, SB_PREV);
    store<u32>(s, head, SB_NEXT);
    if (head) store<u32>(slab(head), id, SB_PREV);
    else store<u32>(bn, id, BN_TAIL);
    store<u32>(bn, id, BN_HEAD);
  }
}

function listRemove(b: u32, id: u32): void {
  let bn = bin(b);
  let s = slab(id);
  let prev = load<u32>(s, SB_PREV);
  let next = load<u32>(s, SB_NEXT);
  if (prev) store<u32>(slab(prev), next, SB_NEXT);
  else store<u32>(bn, next, BN_HEAD);
  if (next) store<u32>(slab(next), prev, SB_PREV);
  else store<u32>(bn, prev, BN_TAIL);
}

function slabDestroy(id: u32): void {
  let s = slab(id);
  let b = load<u32>(s, SB_BIN);
  let t = tierOf(b);
  let size = slabBytes(t);
  listRemove(b, id);
  if (load<u32>(bin(b), BN_EMPTY) == id) store<u32>(bin(b), 0, BN_EMPTY);
  xfree(load<usize>(s, SB_BASE));
  bump(t, ST_FREE, -<i64>(size >> (b + MIN_SHIFT)));
  bump(t, ST_RESERVED, -<i64>size);
  reservedTotal -= size;
  poolFree(SLABS, SLAB_SIZE, id);
}

/** Returns every cached empty slab to the heap; bytes released. */
export function arenaTrim(): u64 {
  let before = reservedTotal;
  for (let b: u32 = 0; b < BINS; b++) {
    let e = load<u32>(bin(b), BN_EMPTY);
    if (e) slabDestroy(e);
  }
  return before - reservedTotal;
}

/** Whether `bytes` more can be reserved under the cap, trimming caches if that helps. */
function capAllows(bytes: u64): bool {
  if (reservedTotal + bytes <= cap) return true;
  arenaTrim();
  return reservedTotal + bytes <= cap;
}

/** Heap block of `size`, trimming cached slabs once if the heap refuses. */
function heapBlock(size: usize): usize {
  let p = xalloc(size);
  if (!p && arenaTrim()) p = xalloc(size);
  return p;
}

function slabCreate(b: u32): u32 {
  let t = tierOf(b);
  let size = slabBytes(t);
  if (!capAllows(size) || !poolReserve(SLABS, SLAB_SIZE, 1)) return 0;
  let base = heapBlock(size);
  if (!base) return 0;
  let id = poolAlloc(SLABS, SLAB_SIZE);
  let s = slab(id);
  let blocks = <u32>(size >> (b + MIN_SHIFT));
  store<usize>(s, base, SB_BASE);
  store<u32>(s, b, SB_BIN);
  store<u32>(s, blocks, SB_NFREE);
  listPush(b, id, false);
  bump(t, ST_FREE, blocks);
  bump(t, ST_RESERVED, size);
  reservedTotal += size;
  return id;
}

// ---- public operations --------------------------------------------------------------

/** Handle of a fresh block of `len` bytes with refcount 1, or 0 (cap or memory exhausted). */
export function arenaAlloc(len: u32): u32 {
  if (!slotAvailable()) return 0;
  if (len > MAX_POOLED) {
    if (!capAllows(len)) return 0;
    let p = heapBlock(len);
    if (!p) return 0;
    bump(3, ST_MISSES, 1);
    bump(3, ST_IN_USE, 1);
    bump(3, ST_BYTES, len);
    bump(3, ST_RESERVED, len);
    reservedTotal += len;
    return slotTake(p, len, 0);
  }
  let b = binOf(len);
  let t = tierOf(b);
  let bn = bin(b);
  let id = load<u32>(bn, BN_HEAD);
  if (id) {
    bump(t, ST_HITS, 1);
  } else {
    id = slabCreate(b);
    if (!id) return 0;
    bump(t, ST_MISSES, 1);
  }
  let s = slab(id);
  let p = load<usize>(s, SB_FREE);
  if (p) {
    store<usize>(s, load<usize>(p), SB_FREE);
  } else {
    let k = load<u32>(s, SB_BUMP);
    store<u32>(s, k + 1, SB_BUMP);
    p = load<usize>(s, SB_BASE) + (<usize>k << (b + MIN_SHIFT));
  }
  let nfree = load<u32>(s, SB_NFREE) - 1;
  store<u32>(s, nfree, SB_NFREE);
  if (load<u32>(bn, BN_EMPTY) == id) store<u32>(bn, 0, BN_EMPTY);
  if (!nfree) listRemove(b, id);
  bump(t, ST_IN_USE, 1);
  bump(t, ST_FREE, -1);
  bump(t, ST_BYTES, len);
  return slotTake(p, len, id);
}

function blockFree(s: usize): void {
  let p = load<usize>(s, SL_PTR);
  let len = load<u32>(s, SL_LEN);
  let id = load<u32>(s, SL_META) & SLOT_MASK;
  if (!id) {
    xfree(p);
    bump(3, ST_IN_USE, -1);
    bump(3, ST_BYTES, -<i64>len);
    bump(3, ST_RESERVED, -<i64>len);
    reservedTotal -= len;
    return;
  }
  let sb = slab(id);
  let b = load<u32>(sb, SB_BIN);
  let t = tierOf(b);
  store<usize>(p, load<usize>(sb, SB_FREE));
  store<usize>(sb, p, SB_FREE);
  let nfree = load<u32>(sb, SB_NFREE) + 1;
  store<u32>(sb, nfree, SB_NFREE);
  bump(t, ST_IN_USE, -1);
  bump(t, ST_FREE, 1);
  bump(t, ST_BYTES, -<i64>len);
  if (nfree == 1) listPush(b, id, false);
  if (nfree == <u32>(slabBytes(t) >> (b + MIN_SHIFT))) {
    let bn = bin(b);
    // keep one empty slab per bin so alloc/release at a slab boundary does not thrash
    if (load<u32>(bn, BN_EMPTY)) {
      slabDestroy(id);
    } else {
      store<u32>(bn, id, BN_EMPTY);
      listRemove(b, id);
      listPush(b, id, true);
    }
  }
}

export function arenaPtr(h: u32): i32 {
  let s = resolve(h);
  return s ? <i32>load<usize>(s, SL_PTR) : -1;
}

export function arenaLen(h: u32): i32 {
  let s = resolve(h);
  return s ? <i32>load<u32>(s, SL_LEN) : -1;
}

export function arenaRefcount(h: u32): i32 {
  let s = resolve(h);
  return s ? <i32>load<u32>(s, SL_RC) : -1;
}

export function arenaRef(h: u32): i32 {
  let s = resolve(h);
  if (!s) return -1;
  let rc = load<u32>(s, SL_RC);
  if (rc == 0x7fffffff) {
    errors++;
    return -1;
  }
  store<u32>(s, rc + 1, SL_RC);
  return <i32>(rc + 1);
}

export function arenaUnref(h: u32): i32 {
  let s = resolve(h);
  if (!s) return -1;
  let rc = load<u32>(s, SL_RC) - 1;
  store<u32>(s, rc, SL_RC);
  if (!rc) {
    blockFree(s);
    slotRetire(s);
  }
  return <i32>rc;
}

export function arenaSetCap(bytes: f64): void {
  cap = bytes <= 0 ? 0 : bytes >= 1.8e19 ? u64.MAX_VALUE : <u64>bytes;
  if (reservedTotal > cap) arenaTrim();
}

/** Next live handle whose slot index is above `after`, or 0. */
export function arenaNextLive(after: u32): u32 {
  for (let i = (after & SLOT_MASK) + 1; i < slotTop; i++) {
    let s = slot(i);
    if (load<u32>(s, SL_RC)) return (load<u32>(s, SL_META) & ~SLOT_MASK) | i;
  }
  return 0;
}

export function arenaStats(): usize {
  let bytes: u64 = 0;
  for (let t: u32 = 0; t < TIERS; t++) {
    for (let f: u32 = 0; f < ST_FIELDS; f++) {
      store<f64>(STATS + ((<usize>(t * ST_FIELDS + f)) << 3), <f64>load<u64>(stat(t, <usize>f << 3)));
    }
    bytes += load<u64>(stat(t, ST_BYTES));
  }
  store<f64>(STATS + (ArenaStats.LiveHandles << 3), <f64>live);
  store<f64>(STATS + (ArenaStats.TotalBytesInUse << 3), <f64>bytes);
  store<f64>(STATS + (ArenaStats.TotalBytesReserved << 3), <f64>reservedTotal);
  store<f64>(STATS + (ArenaStats.Cap << 3), <f64>cap);
  store<f64>(STATS + (ArenaStats.Errors << 3), <f64>errors);
  return STATS;
}

// ---- invariants (debug builds only) --------------------------------------------------

/**
 * Every count the arena keeps agrees with its slots and slabs, and every free list stays inside
 * its slab: a write into a released block (the host using a stale pointer) shows up here.
 */
export function arenaCheck(): void {
  if (ASC_NO_ASSERT) return;
  let liveSlots: u32 = 0;
  let inUse0: u32 = 0;
  let inUse1: u32 = 0;
  let inUse2: u32 = 0;
  let inUse3: u32 = 0;
  for (let i: u32 = 1; i < slotTop; i++) {
    let s = slot(i);
    if (!load<u32>(s, SL_RC)) continue;
    liveSlots++;
    let id = load<u32>(s, SL_META) & SLOT_MASK;
    if (!id) {
      inUse3++;
      continue;
    }
    let sb = slab(id);
    let b = load<u32>(sb, SB_BIN);
    let t = tierOf(b);
    if (t == 0) inUse0++;
    else if (t == 1) inUse1++;
    else inUse2++;
    let base = load<usize>(sb, SB_BASE);
    let p = load<usize>(s, SL_PTR);
    assert(p >= base && p < base + slabBytes(t) && ((p - base) & ((<usize>1 << (b + MIN_SHIFT)) - 1)) == 0, "arena: a live block outside its slab");
    assert(load<u32>(s, SL_LEN) <= <u32>1 << (b + MIN_SHIFT), "arena: a block longer than its size class");
  }
  assert(liveSlots == live, "arena: live handle count");
  assert(<u64>inUse0 == load<u64>(stat(0, ST_IN_USE)) && <u64>inUse1 == load<u64>(stat(1, ST_IN_USE)), "arena: blocks in use per tier");
  assert(<u64>inUse2 == load<u64>(stat(2, ST_IN_USE)) && <u64>inUse3 == load<u64>(stat(3, ST_IN_USE)), "arena: blocks in use per tier");
  let freeSlots: u32 = 0;
  for (let i = freeHead; i; i = load<u32>(slot(i), SL_PTR)) {
    assert(i < slotTop && !load<u32>(slot(i), SL_RC), "arena: the free slot list reaches a live slot");
    assert(++freeSlots < slotTop, "arena: the free slot list loops");
  }
  assert(freeSlots + live + 1 == slotTop, "arena: free slots and live slots do not add up");
  for (let b: u32 = 0; b < BINS; b++) {
    let blockSize = <usize>1 << (b + MIN_SHIFT);
    for (let id = load<u32>(bin(b), BN_HEAD); id; id = load<u32>(slab(id), SB_NEXT)) {
      let sb = slab(id);
      assert(load<u32>(sb, SB_BIN) == b, "arena: a slab in another size class's list");
      let base = load<usize>(sb, SB_BASE);
      let blocks = <u32>(slabBytes(tierOf(b)) >> (b + MIN_SHIFT));
      let free: u32 = blocks - load<u32>(sb, SB_BUMP);
      for (let p = load<usize>(sb, SB_FREE); p; p = load<usize>(p)) {
        assert(p >= base && p < base + slabBytes(tierOf(b)) && ((p - base) & (blockSize - 1)) == 0, "arena: a free list leaves its slab (a released block was written to)");
        assert(++free <= blocks, "arena: a free list loops");
      }
      assert(free == load<u32>(sb, SB_NFREE) && free > 0, "arena: free blocks of a slab");
    }
  }
}
