// UTF-8 and topic name / topic filter validation (MQTT 3.1.1 §1.5.3, §4.7; 5.0 §1.5.4, §4.7).
// The codes are CoreError values (host/core/wasm/abi.ts, shared with the host).

import { CoreError } from "../host/core/wasm/abi";
import { HIGHS, hasByte, zeroBytes } from "./mem";

/**
 * Length (2..4) of the well-formed multi-byte character starting at ptr + i, or 0 when it is
 * ill-formed (RFC 3629): overlong, surrogate, > U+10FFFF, truncated, stray continuation.
 */
function multiByteChar(ptr: usize, i: usize, len: usize): usize {
  let b = <u32>load<u8>(ptr + i);
  // C0/C1 can only start overlong 2-byte forms; F5..FF start code points > U+10FFFF
  if (b < 0xc2 || b > 0xf4) return 0;
  let n: usize = b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
  if (i + n > len) return 0;
  // the second byte's range is where overlongs (E0, F0), surrogates (ED) and
  // > U+10FFFF (F4) are excluded
  let c1 = <u32>load<u8>(ptr + i + 1);
  let lo: u32 = 0x80;
  let hi: u32 = 0xbf;
  if (b == 0xe0) lo = 0xa0;
  else if (b == 0xed) hi = 0x9f;
  else if (b == 0xf0) lo = 0x90;
  else if (b == 0xf4) hi = 0x8f;
  if (c1 < lo || c1 > hi) return 0;
  for (let k: usize = 2; k < n; k++) {
    if ((<u32>load<u8>(ptr + i + k) & 0xc0) != 0x80) return 0;
  }
  return n;
}

/** 0, CoreError.BadUtf8 [MQTT-1.5.3-1] or CoreError.NullChar (U+0000, [MQTT-1.5.3-2]). */
export function utf8Check(ptr: usize, len: usize): u32 {
  let i: usize = 0;
  while (i < len) {
    // topics are nearly always ASCII: skip 8 bytes at a time when none is high or NUL
    if (i + 8 <= len) {
      let w = load<u64>(ptr + i);
      if (!((w | zeroBytes(w)) & HIGHS)) {
        i += 8;
        continue;
      }
    }
    let b = load<u8>(ptr + i);
    if (b < 0x80) {
      if (!b) return CoreError.NullChar;
      i++;
    } else {
      let n = multiByteChar(ptr, i, len);
      if (!n) return CoreError.BadUtf8;
      i += n;
    }
  }
  return CoreError.Ok;
}

/** The error for the wildcard `c` at `i`, or 0 when a filter may have it there. */
function wildcardError(ptr: usize, len: usize, i: usize, c: u32, isFilter: bool): u32 {
  // [MQTT-3.3.2-2]: topic names carry no wildcards
  if (!isFilter) return CoreError.WildcardInTopic;
  let startsLevel = i == 0 || load<u8>(ptr + i - 1) == 0x2f;
  let endsLevel = i + 1 == len || load<u8>(ptr + i + 1) == 0x2f;
  // [MQTT-4.7.1-2]
  if (c == 0x2b) return startsLevel && endsLevel ? CoreError.Ok : CoreError.PlusNotAlone;
  // [MQTT-4.7.1-1]
  if (!startsLevel || !endsLevel) return CoreError.HashNotAlone;
  return i + 1 == len ? CoreError.Ok : CoreError.HashNotLast;
}

/**
 * 0 or a TOPIC_* error for a topic name (isFilter false) or filter (true). Encoding errors
 * win over wildcard errors: they make the whole packet malformed.
 */
export function topicCheck(ptr: usize, len: usize, isFilter: bool): u32 {
  if (!len) return CoreError.Empty;
  if (len > 0xffff) return CoreError.TooLong;
  // one pass: 8 plain ASCII bytes (no high bit, NUL, `+` or `#`) at a time, otherwise one
  // character at a time
  let i: usize = 0;
  while (i < len) {
    if (i + 8 <= len) {
      let w = load<u64>(ptr + i);
      if (!((w & HIGHS) | zeroBytes(w) | hasByte(w, 0x2b) | hasByte(w, 0x23))) {
        i += 8;
        continue;
      }
    }
    let b = <u32>load<u8>(ptr + i);
    if (b >= 0x80) {
      let n = multiByteChar(ptr, i, len);
      if (!n) return CoreError.BadUtf8;
      i += n;
      continue;
    }
    if (!b) return CoreError.NullChar;
    if (b == 0x2b || b == 0x23) {
      let e = wildcardError(ptr, len, i, b, isFilter);
      if (e) {
        let u = utf8Check(ptr + i, len - i);
        return u ? u : e;
      }
    }
    i++;
  }
  return CoreError.Ok;
}
