// Application messages in the arena, stored as [topic length u16 BE][topic][payload], and the
// byte copies the host needs around them (done here: memory.copy beats JS copyWithin for small ranges).

import { arenaAlloc, arenaPtr } from "./arena";
import { inBounds } from "./mem";
import { topicCheck } from "./topic";

// @ts-ignore: decorator
@inline export const STORE_ARENA_FULL: u32 = 100;
// @ts-ignore: decorator
@inline export const STORE_OUT_OF_BOUNDS: u32 = 101;

let lastStatus: u32 = 0;

/** Why the last messageStore returned 0: STORE_ARENA_FULL, STORE_OUT_OF_BOUNDS or a topic error code. */
export function messageStoreStatus(): u32 {
  return lastStatus;
}

export function messageStore(topicSrc: usize, topicLen: u32, payloadSrc: usize, payloadLen: u32): u32 {
  if (topicLen > 0xffff || !inBounds(topicSrc, topicLen) || !inBounds(payloadSrc, payloadLen)) {
    lastStatus = STORE_OUT_OF_BOUNDS;
    return 0;
  }
  const status = topicCheck(topicSrc, topicLen, false);
  if (status != 0) {
    lastStatus = status;
    return 0;
  }
  const handle = arenaAlloc(2 + topicLen + payloadLen);
  if (handle == 0) {
    lastStatus = STORE_ARENA_FULL;
    return 0;
  }
  const ptr = <usize>arenaPtr(handle);
  store<u8>(ptr, <u8>(topicLen >> 8));
  store<u8>(ptr + 1, <u8>topicLen);
  memory.copy(ptr + 2, topicSrc, topicLen);
  memory.copy(ptr + 2 + topicLen, payloadSrc, payloadLen);
  lastStatus = 0;
  return handle;
}

export function memCopy(dst: usize, src: usize, len: u32): bool {
  if (!inBounds(dst, len) || !inBounds(src, len)) return false;
  memory.copy(dst, src, len);
  return true;
}

