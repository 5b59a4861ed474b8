// Retained-message index: topic → arena handle, looked up by filter. Refcounts are the
// host's business; this only stores handle numbers.

import { CoreError } from "../host/core/wasm/abi";
import { bufEnsure, bufPtr, fail } from "./mem";
import {
  N_FIRST, N_NEXT, N_PARENT, N_VAL, TRIE_DESC, findChild, labelIsDollar, levelLen,
  levelStart, node, splitLevels, subtreeNext, trieInit, trieNodeCount, triePrune, trieRoot,
  trieWalk,
} from "./levels";

const TD: usize = memory.data(TRIE_DESC);
const OUT: usize = memory.data(8);
const STACK: usize = memory.data(8);
let stored: u32 = 0;

export function retainedSetup(): bool {
  return trieInit(TD) && bufEnsure(OUT, 256) && bufEnsure(STACK, 256);
}

/** Stores `handle` under the topic; previous handle or 0, or FAIL (OutOfMemory). Handle 0 deletes. */
export function retainSet(ptr: usize, len: u32, handle: u32): u32 {
  if (!handle) return retainDelete(ptr, len);
  let levels = splitLevels(ptr, len);
  if (levels < 0) return <u32>fail(CoreError.OutOfMemory);
  let id = trieWalk(TD, ptr, <u32>levels, true, false);
  if (!id) return <u32>fail(CoreError.OutOfMemory);
  let n = node(TD, id);
  let prev = load<u32>(n, N_VAL);
  store<u32>(n, handle, N_VAL);
  if (!prev) stored++;
  return prev;
}

/** Removes the topic's entry; previous handle or 0, or FAIL (OutOfMemory). */
export function retainDelete(ptr: usize, len: u32): u32 {
  let levels = splitLevels(ptr, len);
  if (levels < 0) return <u32>fail(CoreError.OutOfMemory);
  let id = trieWalk(TD, ptr, <u32>levels, false, false);
  if (!id) return 0;
  let n = node(TD, id);
  let prev = load<u32>(n, N_VAL);
  if (prev) {
    store<u32>(n, 0, N_VAL);
    stored--;
    triePrune(TD, id);
  }
  return prev;
}

export function retainCount(): u32 {
  return stored;
}

export function retainNodes(): u32 {
  return trieNodeCount(TD);
}

let nout: u32 = 0;

// @ts-ignore: decorator
@inline function emit(handle: u32): bool {
  if (!handle) return true;
  if (!bufEnsure(OUT, (<usize>nout + 1) << 2)) return false;
  store<u32>(bufPtr(OUT) + (<usize>nout << 2), handle);
  nout++;
  return true;
}

/** Emits every handle strictly below `top`, skipping `$` children when `hideDollar`. */
function emitSubtree(top: u32, hideDollar: bool): bool {
  let id = load<u32>(node(TD, top), N_FIRST);
  while (id) {
    if (hideDollar && load<u32>(node(TD, id), N_PARENT) == top && labelIsDollar(TD, id)) {
      // skip the whole `$` subtree: next sibling of a direct child of top
      id = load<u32>(node(TD, id), N_NEXT);
      continue;
    }
    if (!emit(load<u32>(node(TD, id), N_VAL))) return false;
    id = subtreeNext(TD, id, top);
  }
  return true;
}

/** Number of stored topics matching the filter (handles at retainOut), or FAIL (OutOfMemory). */
export function retainMatch(ptr: usize, len: u32): i32 {
  let levels = splitLevels(ptr, len);
  if (levels < 0) return fail(CoreError.OutOfMemory);
  let L = <u32>levels;
  // one pending entry per level: { node, level, 1 if its siblings are pending too }
  if (!bufEnsure(STACK, (<usize>L + 2) * 12)) return fail(CoreError.OutOfMemory);
  nout = 0;
  let stack = bufPtr(STACK);
  store<u32>(stack, trieRoot(TD));
  store<u32>(stack, 0, 4);
  store<u32>(stack, 0, 8);
  let sp: u32 = 1;
  while (sp) {
    sp--;
    let e = stack + <usize>sp * 12;
    let id = load<u32>(e);
    let i = load<u32>(e, 4);
    if (load<u32>(e, 8)) {
      // a `+` at level i-1 walks the children of one node: leave the next one queued
      let sib = load<u32>(node(TD, id), N_NEXT);
      if (sib) {
        store<u32>(e, sib);
        sp++;
      }
      // [MQTT-4.7.2-1]
      if (i == 1 && labelIsDollar(TD, id)) continue;
    }
    if (i == L) {
      if (!emit(load<u32>(node(TD, id), N_VAL))) return fail(CoreError.OutOfMemory);
      continue;
    }
    let s = ptr + levelStart(i);
    let l = levelLen(i);
    let c = l == 1 ? load<u8>(s) : 0;
    if (c == 0x23) {
      // `#` also matches its parent level; the root holds no message
      if (!emit(load<u32>(node(TD, id), N_VAL)) || !emitSubtree(id, i == 0)) return fail(CoreError.OutOfMemory);
      continue;
    }
    let child: u32;
    let iter: u32 = 0;
    if (c == 0x2b) {
      child = load<u32>(node(TD, id), N_FIRST);
      iter = 1;
    } else {
      child = findChild(TD, id, ptr, i);
    }
    if (child) {
      let top = stack + <usize>sp * 12;
      store<u32>(top, child);
      store<u32>(top, i + 1, 4);
      store<u32>(top, iter, 8);
      sp++;
    }
  }
  return <i32>nout;
}

export function retainOut(): usize {
  return bufPtr(OUT);
}
