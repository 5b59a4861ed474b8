// Core micro-benchmarks, in their own process (started with --expose-gc): the wasm trie against
// the plain-JS trie on the same filters and topics, arena blocks against Buffer.allocUnsafe, and
// the memory each trie takes. Prints one JSON object on stdout.

import { PerformanceObserver } from 'node:perf_hooks';
import { loadNodeCore } from '../host/node/load-core.js';
import { coreFilters, coreTopics } from './core-data.js';
import { JsTrie } from './js-trie.js';

const quick = process.argv.includes('--quick');
const SIZES = quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
const TOPICS = 10_000;
const LOOKUPS = quick ? 200_000 : 1_000_000;
const ALLOCS = quick ? 1_000_000 : 5_000_000;
/** Client ids: up to 50,000 clients share the filters (several filters each at large sizes). */
const clientOf = (i: number, n: number): number => (i % Math.min(n, 50_000)) + 1;

const collect = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);
const heapUsed = (): number => {
  collect();
  collect();
  return process.memoryUsage().heapUsed;
};
const nsSince = (t0: bigint): number => Number(process.hrtime.bigint() - t0);
const enc = new TextEncoder();

let gcEvents = 0;
new PerformanceObserver((list) => {
  gcEvents += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });
const settleGc = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

export interface TrieRow {
  filters: number;
  avgMatches: number;
  wasmNsPerLookup: number;
  jsNsPerLookup: number;
  wasmSubscribeNs: number;
  jsSubscribeNs: number;
  wasmMemoryBytes: number;
  jsHeapBytes: number;
  /** Topics (of the first 2,000) where the two tries disagreed on the number of clients. */
  disagreements: number;
}

async function trieRow(n: number): Promise<TrieRow> {
  const filters = coreFilters(n);
  const topics = coreTopics(TOPICS, filters);

  // wasm: a fresh core, so the memory growth is this trie's (the arena and scratch are there already).
  const core = await loadNodeCore();
  const memBefore = core.memory.buffer.byteLength;
  const scratch = new Uint8Array(1024);
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < filters.length; i++) {
    const { written } = enc.encodeInto(filters[i]!, scratch);
    core.subscribe(clientOf(i, n), scratch.subarray(0, written), 1, 0, 0);
  }
  const wasmSubscribeNs = nsSince(t0) / filters.length;
  const wasmMemoryBytes = core.memory.buffer.byteLength - memBefore;

  // The topics' bytes in one arena block: match() reads them in place, as the broker does.
  const encoded = topics.map((t) => enc.encode(t));
  const handle = core.alloc(encoded.reduce((s, b) => s + b.length, 0));
  const base = core.ptr(handle);
  const ptrs = new Uint32Array(TOPICS);
  const lens = new Uint32Array(TOPICS);
  let at = base;
  const mem = core.bytes();
  encoded.forEach((b, i) => {
    mem.set(b, at);
    ptrs[i] = at;
    lens[i] = b.length;
    at += b.length;
  });

  // JS: heap measured around the build only (filters and topics exist before and after).
  await settleGc();
  const heapBefore = heapUsed();
  t0 = process.hrtime.bigint();
  const js = new JsTrie();
  for (let i = 0; i < filters.length; i++) js.subscribe(clientOf(i, n), filters[i]!, 1);
  const jsSubscribeNs = nsSince(t0) / filters.length;
  const jsHeapBytes = heapUsed() - heapBefore;

  let disagreements = 0;
  let matches = 0;
  for (let i = 0; i < 2000; i++) {
    const w = core.match(ptrs[i]!, lens[i]!, 0).count;
    matches += w;
    if (w !== js.match(topics[i]!).size) disagreements++;
  }

  // Warm both paths, then time them over the same lookup sequence.
  let sink = 0;
  for (let i = 0; i < 20_000; i++) {
    const k = i % TOPICS;
    sink += core.match(ptrs[k]!, lens[k]!, 0).count + js.match(topics[k]!).size;
  }
  t0 = process.hrtime.bigint();
  for (let i = 0; i < LOOKUPS; i++) {
    const k = i % TOPICS;
    sink += core.match(ptrs[k]!, lens[k]!, 0).count;
  }
  const wasmNsPerLookup = nsSince(t0) / LOOKUPS;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < LOOKUPS; i++) sink += js.match(topics[i % TOPICS]!).size;
  const jsNsPerLookup = nsSince(t0) / LOOKUPS;
  if (sink === -1) console.error('unreachable'); // keeps the loops observable
  core.unref(handle);
  return { filters: n, avgMatches: matches / 2000, wasmNsPerLookup, jsNsPerLookup, wasmSubscribeNs, jsSubscribeNs, wasmMemoryBytes, jsHeapBytes, disagreements };
}

export interface AllocRow {
  name: string;
  nsPerOp: number;
  gcEvents: number;
}

async function allocRows(): Promise<AllocRow[]> {
  const core = await loadNodeCore();
  const rows: AllocRow[] = [];
  const time = async (name: string, body: () => number): Promise<void> => {
    body(); // warm-up pass (also fills pools and slabs)
    await settleGc();
    const gc0 = gcEvents;
    const t0 = process.hrtime.bigint();
    const sink = body();
    const ns = nsSince(t0) / ALLOCS;
    await settleGc();
    rows.push({ name, nsPerOp: ns, gcEvents: gcEvents - gc0 });
    if (sink === -1) console.error('unreachable');
  };
  await time('arena alloc(64) + release, back to back', () => {
    let s = 0;
    for (let i = 0; i < ALLOCS; i++) {
      const h = core.alloc(64);
      s += core.unref(h);
    }
    return s;
  });
  await time('arena alloc(64) + release, 1,024 live (ring)', () => {
    const ring = new Uint32Array(1024);
    let s = 0;
    for (let i = 0; i < ALLOCS; i++) {
      const k = i & 1023;
      if (ring[k] !== 0) s += core.unref(ring[k]!);
      ring[k] = core.alloc(64);
    }
    for (const h of ring) if (h !== 0) core.unref(h);
    return s;
  });
  await time('Buffer.allocUnsafe(64), discarded at once', () => {
    let s = 0;
    for (let i = 0; i < ALLOCS; i++) s += Buffer.allocUnsafe(64).length;
    return s;
  });
  await time('Buffer.allocUnsafe(64), 1,024 live (ring)', () => {
    const ring: Buffer[] = new Array(1024);
    let s = 0;
    for (let i = 0; i < ALLOCS; i++) {
      const b = Buffer.allocUnsafe(64);
      ring[i & 1023] = b;
      s += b.length;
    }
    return s;
  });
  return rows;
}

const trie: TrieRow[] = [];
for (const n of SIZES) trie.push(await trieRow(n));
const alloc = await allocRows();
process.stdout.write(`${JSON.stringify({ quick, lookups: LOOKUPS, topics: TOPICS, allocs: ALLOCS, trie, alloc })}\n`);
process.exit(0);
