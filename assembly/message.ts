// Application messages in the arena, stored as a MessageBlock (host/core/wasm/abi.ts), and the
// byte copies the host needs around them (done here: memory.copy beats JS copyWithin for small ranges).

import { CoreError, MessageBlock } from "../host/core/wasm/abi";
import { arenaAlloc, arenaPtr } from "./arena";
import { fail, inBounds } from "./mem";
import { topicCheck } from "./topic";

/** Validates the topic name and stores [topic length][topic][payload]: the handle, or FAIL. */
export function messageStore(topicSrc: usize, topicLen: u32, payloadSrc: usize, payloadLen: u32): i32 {
  if (topicLen > 0xffff || !inBounds(topicSrc, topicLen) || !inBounds(payloadSrc, payloadLen)) return fail(CoreError.OutOfBounds);
  const status = topicCheck(topicSrc, topicLen, false);
  if (status != CoreError.Ok) return fail(status);
  const handle = arenaAlloc(MessageBlock.Topic + topicLen + payloadLen);
  if (handle == 0) return fail(CoreError.ArenaFull);
  const ptr = <usize>arenaPtr(handle);
  store<u8>(ptr + MessageBlock.TopicLength, <u8>(topicLen >> 8));
  store<u8>(ptr + MessageBlock.TopicLength + 1, <u8>topicLen);
  memory.copy(ptr + MessageBlock.Topic, topicSrc, topicLen);
  memory.copy(ptr + MessageBlock.Topic + topicLen, payloadSrc, payloadLen);
  return <i32>handle;
}

export function memCopy(dst: usize, src: usize, len: u32): bool {
  if (!inBounds(dst, len) || !inBounds(src, len)) return false;
  memory.copy(dst, src, len);
  return true;
}
