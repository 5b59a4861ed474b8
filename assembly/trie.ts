// Subscription trie: filters → subscriptions, and topic → matching subscribers.
//
// A node's non-shared subscriptions form a doubly linked list (N_VAL); its shared groups
// form another (N_VAL2), each group holding its members in a list plus a round-robin
// cursor. A (node, client, group) table finds an existing subscription in O(1) for
// replacement and unsubscribe.

import { CoreError, MatchFlag, MatchHeader, MatchRecord, SubOption } from "../host/core/wasm/abi";
import {
  HT_DESC, POOL_DESC, bufEnsure, bufPtr, fail, fmix, htInit, htInsert, htMask, htRemove, htReserve,
  htSlots, poolAddr, poolAlloc, poolFree, poolInit, poolLive, poolReserve,
} from "./mem";
import {
  N_HASH, N_PLUS, N_VAL, N_VAL2, TRIE_DESC, findChild, haveLevel, node, splitBegin, splitLevels,
  trieInit, trieNodeCount, triePrune, trieRoot, trieWalk,
} from "./levels";
import { topicCheck } from "./topic";

/**
 * May `client` read the topic being matched? The host answers (its read access rules); asked only
 * for members of shared groups, and only by a trieMatch told to check readers.
 */
// @ts-ignore: decorator
@external("env", "share_member_may_read")
declare function shareMemberMayRead(client: u32): bool;

// options word (SubOption) → output record flags (MatchFlag): QoS stays, retain-as-published moves
// @ts-ignore: decorator
@inline const OPT_QOS: u32 = SubOption.QosMask;
// @ts-ignore: decorator
@inline const OPT_NO_LOCAL: u32 = SubOption.NoLocal;
// @ts-ignore: decorator
@inline const OPT_RAP: u32 = SubOption.RetainAsPublished;
// @ts-ignore: decorator
@inline const F_RAP: u32 = MatchFlag.RetainAsPublished;
// @ts-ignore: decorator
@inline const F_SHARED: u32 = MatchFlag.Shared;
// @ts-ignore: decorator
@inline const REC: usize = MatchRecord.Size;
/** a shared record's flags carry its group id from this bit on */
// @ts-ignore: decorator
@inline const F_GROUP_SHIFT: u32 = MatchFlag.GroupShift;

// subscription record (32 bytes)
// @ts-ignore: decorator
@inline const S_CLIENT: usize = 0;
// @ts-ignore: decorator
@inline const S_GROUP: usize = 4;
// @ts-ignore: decorator
@inline const S_OPTS: usize = 8;
// @ts-ignore: decorator
@inline const S_ID: usize = 12;
// @ts-ignore: decorator
@inline const S_NEXT: usize = 16;
// @ts-ignore: decorator
@inline const S_PREV: usize = 20;
// @ts-ignore: decorator
@inline const S_NODE: usize = 24;
/** group record holding this member, 0 for a non-shared subscription */
// @ts-ignore: decorator
@inline const S_GREC: usize = 28;
// @ts-ignore: decorator
@inline const SUB_SIZE: usize = 32;

// shared group record (32 bytes)
// @ts-ignore: decorator
@inline const G_ID: usize = 0;
// @ts-ignore: decorator
@inline const G_HEAD: usize = 4;
// @ts-ignore: decorator
@inline const G_COUNT: usize = 8;
/** member to try first on the next delivery */
// @ts-ignore: decorator
@inline const G_CURSOR: usize = 12;
// @ts-ignore: decorator
@inline const G_NEXT: usize = 16;
// @ts-ignore: decorator
@inline const G_PREV: usize = 20;
// @ts-ignore: decorator
@inline const GRP_SIZE: usize = 32;

const TD: usize = memory.data(TRIE_DESC);
const SUBS: usize = memory.data(POOL_DESC);
const GROUPS: usize = memory.data(POOL_DESC);
const SUB_TABLE: usize = memory.data(HT_DESC);

// Per-client arrays indexed by client id: { mark: u32, record: u32 } merges a client's
// non-shared matches into one output record (mark == epoch means "already has record"),
// so nothing is cleared between matches; `offline` bytes default to 0 = online.
const CLIENTS: usize = memory.data(8);
const OFFLINE: usize = memory.data(8);
let clientCap: u32 = 0;
let offlineCap: u32 = 0;
let epoch: u32 = 0;

// match output: MatchRecords, ids, and scratch
const OUT: usize = memory.data(8);
const OUT_IDS: usize = memory.data(8);
const PAIRS: usize = memory.data(8);
const STACK: usize = memory.data(8);
/** The MatchHeader of the last match, at a fixed address so hosts need no call */
const OUT_HEADER: usize = memory.data(8);

// @ts-ignore: decorator
@inline function sub(id: u32): usize {
  return poolAddr(SUBS, id, SUB_SIZE);
}

// @ts-ignore: decorator
@inline function grp(id: u32): usize {
  return poolAddr(GROUPS, id, GRP_SIZE);
}

// @ts-ignore: decorator
@inline function subKey(nodeId: u32, client: u32, group: u32): u32 {
  return fmix(nodeId * 0x9e3779b1 ^ fmix(client ^ (group * 0x85ebca6b)));
}

export function trieSetup(): bool {
  return trieInit(TD) && poolInit(SUBS, SUB_SIZE, 1024) && poolInit(GROUPS, GRP_SIZE, 64) &&
    htInit(SUB_TABLE, 2048) && bufEnsure(OUT, 1024) && bufEnsure(OUT_IDS, 256) &&
    bufEnsure(PAIRS, 256) && bufEnsure(STACK, 512);
}

function findSub(nodeId: u32, client: u32, group: u32): u32 {
  let key = subKey(nodeId, client, group);
  let slots = htSlots(SUB_TABLE);
  let mask = htMask(SUB_TABLE);
  let i = key & mask;
  while (true) {
    let e = slots + (<usize>i << 3);
    let id = load<u32>(e, 4);
    if (!id) return 0;
    if (load<u32>(e) == key) {
      let s = sub(id);
      if (load<u32>(s, S_NODE) == nodeId && load<u32>(s, S_CLIENT) == client && load<u32>(s, S_GROUP) == group) {
        return id;
      }
    }
    i = (i + 1) & mask;
  }
}

function ensureClients(client: u32): bool {
  if (client < clientCap) return true;
  let want = max<u64>(<u64>client + 1, <u64>clientCap << 1);
  if (want < 64) want = 64;
  if (want > 0x1fffffff) return false;
  if (!bufEnsure(CLIENTS, <usize>want << 3)) return false;
  memory.fill(bufPtr(CLIENTS) + (<usize>clientCap << 3), 0, <usize>(want - clientCap) << 3);
  clientCap = <u32>want;
  return true;
}

/** 0 when recorded, FAIL (OutOfMemory) when the per-client array cannot grow. */
export function clientSetOnline(client: u32, online: bool): i32 {
  if (client >= offlineCap) {
    if (online) return 0;
    let want = max<u64>(<u64>client + 1, <u64>offlineCap << 1);
    if (want < 64) want = 64;
    if (want > 0xffffffff || !bufEnsure(OFFLINE, <usize>want)) return fail(CoreError.OutOfMemory);
    memory.fill(bufPtr(OFFLINE) + offlineCap, 0, <usize>(want - offlineCap));
    offlineCap = <u32>want;
  }
  store<u8>(bufPtr(OFFLINE) + client, online ? 0 : 1);
  return 0;
}

// @ts-ignore: decorator
@inline function isOnline(client: u32): bool {
  return client >= offlineCap || !load<u8>(bufPtr(OFFLINE) + client);
}

/** 1 = added, 0 = options replaced, or FAIL (the topic error, or OutOfMemory). */
export function trieSubscribe(client: u32, ptr: usize, len: u32, options: u32, subId: u32, group: u32): i32 {
  let bad = topicCheck(ptr, len, true);
  if (bad) return fail(bad);
  if (!ensureClients(client)) return fail(CoreError.OutOfMemory);
  let levels = splitLevels(ptr, len);
  if (levels < 0) return fail(CoreError.OutOfMemory);
  // reserve everything that can fail first, so a failure leaves no half-made subscription
  if (!htReserve(SUB_TABLE) || !poolReserve(SUBS, SUB_SIZE, 1) || !poolReserve(GROUPS, GRP_SIZE, 1)) {
    return fail(CoreError.OutOfMemory);
  }
  let nodeId = trieWalk(TD, ptr, <u32>levels, true, true);
  if (!nodeId) return fail(CoreError.OutOfMemory);
  let existing = findSub(nodeId, client, group);
  if (existing) {
    store<u32>(sub(existing), options, S_OPTS);
    store<u32>(sub(existing), subId, S_ID);
    return 0;
  }
  let id = poolAlloc(SUBS, SUB_SIZE);
  let s = sub(id);
  store<u32>(s, client, S_CLIENT);
  store<u32>(s, group, S_GROUP);
  store<u32>(s, options, S_OPTS);
  store<u32>(s, subId, S_ID);
  store<u32>(s, nodeId, S_NODE);
  htInsert(SUB_TABLE, subKey(nodeId, client, group), id);
  let n = node(TD, nodeId);
  if (!group) {
    let head = load<u32>(n, N_VAL);
    store<u32>(s, head, S_NEXT);
    if (head) store<u32>(sub(head), id, S_PREV);
    store<u32>(n, id, N_VAL);
    return 1;
  }
  let g = load<u32>(n, N_VAL2);
  while (g && load<u32>(grp(g), G_ID) != group) g = load<u32>(grp(g), G_NEXT);
  if (!g) {
    g = poolAlloc(GROUPS, GRP_SIZE);
    let head = load<u32>(n, N_VAL2);
    store<u32>(grp(g), group, G_ID);
    store<u32>(grp(g), head, G_NEXT);
    if (head) store<u32>(grp(head), g, G_PREV);
    store<u32>(n, g, N_VAL2);
  }
  // a new member goes to the head of the list; the rotation reaches it when it wraps
  let gr = grp(g);
  let head = load<u32>(gr, G_HEAD);
  store<u32>(s, g, S_GREC);
  store<u32>(s, head, S_NEXT);
  if (head) store<u32>(sub(head), id, S_PREV);
  store<u32>(gr, id, G_HEAD);
  store<u32>(gr, load<u32>(gr, G_COUNT) + 1, G_COUNT);
  if (!load<u32>(gr, G_CURSOR)) store<u32>(gr, id, G_CURSOR);
  return 1;
}

/** 1 = removed, 0 = no such subscription, or FAIL (OutOfMemory). */
export function trieUnsubscribe(client: u32, ptr: usize, len: u32, group: u32): i32 {
  if (topicCheck(ptr, len, true)) return 0;
  let levels = splitLevels(ptr, len);
  if (levels < 0) return fail(CoreError.OutOfMemory);
  let nodeId = trieWalk(TD, ptr, <u32>levels, false, true);
  if (!nodeId) return 0;
  let id = findSub(nodeId, client, group);
  if (!id) return 0;
  let s = sub(id);
  htRemove(SUB_TABLE, subKey(nodeId, client, group), id);
  let n = node(TD, nodeId);
  let prev = load<u32>(s, S_PREV);
  let next = load<u32>(s, S_NEXT);
  let g = load<u32>(s, S_GREC);
  if (next) store<u32>(sub(next), prev, S_PREV);
  if (!g) {
    if (prev) store<u32>(sub(prev), next, S_NEXT);
    else store<u32>(n, next, N_VAL);
  } else {
    let gr = grp(g);
    if (prev) store<u32>(sub(prev), next, S_NEXT);
    else store<u32>(gr, next, G_HEAD);
    let count = load<u32>(gr, G_COUNT) - 1;
    store<u32>(gr, count, G_COUNT);
    if (load<u32>(gr, G_CURSOR) == id) store<u32>(gr, next ? next : load<u32>(gr, G_HEAD), G_CURSOR);
    if (!count) {
      let gp = load<u32>(gr, G_PREV);
      let gn = load<u32>(gr, G_NEXT);
      if (gp) store<u32>(grp(gp), gn, G_NEXT);
      else store<u32>(n, gn, N_VAL2);
      if (gn) store<u32>(grp(gn), gp, G_PREV);
      poolFree(GROUPS, GRP_SIZE, g);
    }
  }
  poolFree(SUBS, SUB_SIZE, id);
  triePrune(TD, nodeId);
  return 1;
}

export function trieCount(): u32 {
  return poolLive(SUBS);
}

export function trieNodes(): u32 {
  return trieNodeCount(TD);
}

// ---- matching -----------------------------------------------------------------------

let nrec: u32 = 0;
let npairs: u32 = 0;
let publisher: u32 = 0;
let checkReaders: bool = false;
let oom: bool = false;

// @ts-ignore: decorator
@inline function newRecord(client: u32, flags: u32): u32 {
  let r = nrec;
  if (!bufEnsure(OUT, (<usize>r + 1) * REC)) {
    oom = true;
    return 0xffffffff;
  }
  let a = bufPtr(OUT) + <usize>r * REC;
  store<u32>(a, client, MatchRecord.Client);
  store<u32>(a, flags, MatchRecord.Flags);
  store<u32>(a, 0, MatchRecord.IdCount);
  store<u32>(a, 0, MatchRecord.IdStart);
  nrec = r + 1;
  return r;
}

// @ts-ignore: decorator
@inline function addPair(rec: u32, subId: u32): void {
  if (!bufEnsure(PAIRS, (<usize>npairs + 1) << 3)) {
    oom = true;
    return;
  }
  let a = bufPtr(PAIRS) + (<usize>npairs << 3);
  store<u32>(a, rec);
  store<u32>(a, subId, 4);
  npairs++;
  let r = bufPtr(OUT) + <usize>rec * REC;
  store<u32>(r, load<u32>(r, MatchRecord.IdCount) + 1, MatchRecord.IdCount);
}

/** Outputs the subscriptions held by a matching node (most matching nodes hold none). */
// @ts-ignore: decorator
@inline function deliver(nodeId: u32): void {
  let n = node(TD, nodeId);
  if (load<u32>(n, N_VAL) | load<u32>(n, N_VAL2)) deliverFrom(n);
}

function deliverFrom(n: usize): void {
  let id = load<u32>(n, N_VAL);
  let clients = bufPtr(CLIENTS);
  while (id) {
    let s = sub(id);
    id = load<u32>(s, S_NEXT);
    let client = load<u32>(s, S_CLIENT);
    let opts = load<u32>(s, S_OPTS);
    if ((opts & OPT_NO_LOCAL) && client == publisher && publisher) continue;
    let flags = (opts & OPT_QOS) | ((opts & OPT_RAP) >> 1);
    let c = clients + (<usize>client << 3);
    let rec: u32;
    if (load<u32>(c) != epoch) {
      rec = newRecord(client, flags);
      if (oom) return;
      store<u32>(c, epoch);
      store<u32>(c, rec, 4);
    } else {
      rec = load<u32>(c, 4);
      let r = bufPtr(OUT) + <usize>rec * REC;
      let old = load<u32>(r, MatchRecord.Flags);
      let q = max(old & OPT_QOS, flags & OPT_QOS);
      store<u32>(r, q | ((old | flags) & F_RAP), MatchRecord.Flags);
    }
    let subId = load<u32>(s, S_ID);
    if (subId) addPair(rec, subId);
  }
  let g = load<u32>(n, N_VAL2);
  while (g) {
    let gr = grp(g);
    g = load<u32>(gr, G_NEXT);
    // first online member from the cursor on, else the first from the cursor on; with reader
    // checks, only among the members that may read the topic (none may: the group gets nothing)
    let start = load<u32>(gr, G_CURSOR);
    let pick: u32 = 0;
    let fallback: u32 = 0;
    let m = start;
    do {
      let client = load<u32>(sub(m), S_CLIENT);
      if (!checkReaders || shareMemberMayRead(client)) {
        if (isOnline(client)) {
          pick = m;
          break;
        }
        if (!fallback) fallback = m;
      }
      m = load<u32>(sub(m), S_NEXT);
      if (!m) m = load<u32>(gr, G_HEAD);
    } while (m != start);
    if (!pick) pick = fallback;
    if (!pick) continue;
    let s = sub(pick);
    let after = load<u32>(s, S_NEXT);
    store<u32>(gr, after ? after : load<u32>(gr, G_HEAD), G_CURSOR);
    let opts = load<u32>(s, S_OPTS);
    // the group rides in the flags' upper bits: a cluster node must know which group a pick was for
    let rec = newRecord(load<u32>(s, S_CLIENT), (opts & OPT_QOS) | ((opts & OPT_RAP) >> 1) | F_SHARED | (load<u32>(s, S_GROUP) << F_GROUP_SHIFT));
    if (oom) return;
    let subId = load<u32>(s, S_ID);
    if (subId) addPair(rec, subId);
  }
}

/** Lays the collected (record, id) pairs out contiguously per record, dropping repeats. */
function placeIds(): bool {
  if (!npairs) return true;
  if (!bufEnsure(OUT_IDS, <usize>npairs << 2)) return false;
  let out = bufPtr(OUT);
  let next: u32 = 0;
  for (let r: u32 = 0; r < nrec; r++) {
    let a = out + <usize>r * REC;
    store<u32>(a, next, MatchRecord.IdStart);
    next += load<u32>(a, MatchRecord.IdCount);
    store<u32>(a, 0, MatchRecord.IdCount);
  }
  let ids = bufPtr(OUT_IDS);
  let pairs = bufPtr(PAIRS);
  for (let k: u32 = 0; k < npairs; k++) {
    let p = pairs + (<usize>k << 3);
    let a = out + <usize>load<u32>(p) * REC;
    let subId = load<u32>(p, 4);
    let first = load<u32>(a, MatchRecord.IdStart);
    let count = load<u32>(a, MatchRecord.IdCount);
    let dup = false;
    for (let j: u32 = 0; j < count; j++) {
      if (load<u32>(ids + (<usize>(first + j) << 2)) == subId) {
        dup = true;
        break;
      }
    }
    if (dup) continue;
    store<u32>(ids + (<usize>(first + count) << 2), subId);
    store<u32>(a, count + 1, MatchRecord.IdCount);
  }
  return true;
}

/**
 * Number of output records, or FAIL (OutOfMemory) when an output area could not grow. With
 * `readers`, each shared group's pick is limited to members the host says may read the topic
 * (shareMemberMayRead).
 */
export function trieMatch(ptr: usize, len: u32, pub: u32, readers: bool): i32 {
  // the DFS keeps at most one pending `+` branch per level, and there are <= len + 1 levels
  if (!splitBegin(ptr, len) || !bufEnsure(STACK, (<usize>len + 2) << 3)) return fail(CoreError.OutOfMemory);
  if (++epoch == 0) {
    memory.fill(bufPtr(CLIENTS), 0, <usize>clientCap << 3);
    epoch = 1;
  }
  nrec = 0;
  npairs = 0;
  publisher = pub;
  checkReaders = readers;
  oom = false;
  // [MQTT-4.7.2-1]: wildcards at the first level do not match `$` topics
  let dollar = len != 0 && load<u8>(ptr) == 0x24;
  let stack = bufPtr(STACK);
  let sp: u32 = 0;
  let id = trieRoot(TD);
  let i: u32 = 0;
  while (true) {
    let n = node(TD, id);
    if (!haveLevel(i)) {
      // all levels consumed
      deliver(id);
      let h = load<u32>(n, N_HASH);
      // `a/#` also matches `a` [MQTT-4.7.1-1]
      if (h) deliver(h);
      id = 0;
    } else {
      if (i != 0 || !dollar) {
        let h = load<u32>(n, N_HASH);
        if (h) deliver(h);
        let plus = load<u32>(n, N_PLUS);
        if (plus) {
          let e = stack + (<usize>sp << 3);
          store<u32>(e, plus);
          store<u32>(e, i + 1, 4);
          sp++;
        }
      }
      id = findChild(TD, id, ptr, i);
      i++;
    }
    if (oom) return fail(CoreError.OutOfMemory);
    if (!id) {
      if (!sp) break;
      sp--;
      let e = stack + (<usize>sp << 3);
      id = load<u32>(e);
      i = load<u32>(e, 4);
    }
  }
  if (!placeIds()) return fail(CoreError.OutOfMemory);
  store<usize>(OUT_HEADER, bufPtr(OUT), MatchHeader.Records);
  store<usize>(OUT_HEADER, bufPtr(OUT_IDS), MatchHeader.Ids);
  return <i32>nrec;
}

export function trieOutHeader(): usize {
  return OUT_HEADER;
}

// ---- invariants (debug builds only) --------------------------------------------------

/**
 * The subscription table and the records agree: every entry finds its own record under its key,
 * as many entries as live subscriptions, and every shared group counts its members.
 */
export function trieCheck(): void {
  if (ASC_NO_ASSERT) return;
  let slots = htSlots(SUB_TABLE);
  let mask = htMask(SUB_TABLE);
  let entries: u32 = 0;
  for (let i: u32 = 0; i <= mask; i++) {
    let e = slots + (<usize>i << 3);
    let id = load<u32>(e, 4);
    if (!id) continue;
    entries++;
    let s = sub(id);
    let nodeId = load<u32>(s, S_NODE);
    let client = load<u32>(s, S_CLIENT);
    let group = load<u32>(s, S_GROUP);
    assert(load<u32>(e) == subKey(nodeId, client, group), "trie: a table entry under another key");
    assert(findSub(nodeId, client, group) == id, "trie: a subscription its key does not find");
    let g = load<u32>(s, S_GREC);
    assert((g != 0) == (group != 0), "trie: a shared subscription without its group, or the reverse");
    if (g) {
      let members: u32 = 0;
      for (let m = load<u32>(grp(g), G_HEAD); m; m = load<u32>(sub(m), S_NEXT)) {
        assert(load<u32>(sub(m), S_GREC) == g, "trie: a group lists another group's member");
        assert(++members <= load<u32>(grp(g), G_COUNT), "trie: a group has more members than it counts");
      }
      assert(members == load<u32>(grp(g), G_COUNT), "trie: a group has fewer members than it counts");
    }
  }
  assert(entries == poolLive(SUBS), "trie: table entries and live subscriptions differ");
}
