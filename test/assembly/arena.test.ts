import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNodeCore } from '../../host/node/load-core.js';
import { ArenaError, type ArenaStats, type Core } from '../../host/core/wasm/core.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SMALL = 0;
const MEDIUM = 1;
const LARGE = 2;
const HUGE = 3;

/** Fresh core per test, checked to hold nothing at the end of the test. */
async function withCore(fn: (core: Core) => void | Promise<void>, options?: Parameters<typeof loadNodeCore>[0]) {
  const core = await loadNodeCore(options);
  const start = core.arenaStats();
  await fn(core);
  const end = core.arenaStats();
  assert.equal(end.liveHandles, start.liveHandles, 'live handles back to start');
  assert.equal(end.bytesInUse, start.bytesInUse, 'bytes in use back to start');
  for (let t = 0; t < 4; t++) assert.equal(end.tiers[t].inUse, start.tiers[t].inUse, `tier ${t} blocks in use back to start`);
  core.arenaTrim();
  assert.equal(core.arenaStats().bytesReserved, start.bytesReserved, 'reserved back to start after trim');
}

function fill(view: Uint8Array, seed: number) {
  for (let i = 0; i < view.length; i++) view[i] = (i * 31 + seed) & 0xff;
}

function check(view: Uint8Array, seed: number) {
  for (let i = 0; i < view.length; i++) if (view[i] !== ((i * 31 + seed) & 0xff)) return false;
  return true;
}

function tierCounts(s: ArenaStats) {
  return s.tiers.map((t) => [t.hits, t.misses]);
}

test('heap growth is guarded: the TLSF mirror passed its start-up self-check', async () => {
  const core = await loadNodeCore();
  assert.equal(core.heapGuarded(), true);
  assert.equal(core.memoryLimit(), 65535 * 65536);
});

test('blocks of every tier round-trip their bytes and land in the right tier', () =>
  withCore((core) => {
    const sizes = [0, 1, 31, 32, 33, 100, 1 * KiB, 1 * KiB + 1, 4000, 64 * KiB, 64 * KiB + 1, 300 * KiB, 1 * MiB, 1 * MiB + 1, 3 * MiB + 5];
    const tierOf = (n: number) => (n <= KiB ? SMALL : n <= 64 * KiB ? MEDIUM : n <= MiB ? LARGE : HUGE);
    const handles = sizes.map((n, i) => {
      const before = core.arenaStats().tiers[tierOf(n)].inUse;
      const h = core.alloc(n);
      assert.notEqual(h, 0, `alloc(${n})`);
      assert.equal(core.length(h), n);
      assert.equal(core.refcount(h), 1);
      assert.equal(core.ptr(h) % 16, 0, 'blocks are 16-byte aligned');
      assert.equal(core.arenaStats().tiers[tierOf(n)].inUse, before + 1, `alloc(${n}) counted in tier ${tierOf(n)}`);
      fill(core.view(h), i);
      return h;
    });
    // all blocks written before any is read back: no overlap between blocks
    handles.forEach((h, i) => assert.ok(check(core.view(h), i), `bytes of alloc(${sizes[i]}) intact`));
    const s = core.arenaStats();
    assert.equal(s.liveHandles, sizes.length);
    assert.equal(s.bytesInUse, sizes.reduce((a, b) => a + b, 0));
    assert.equal(s.tiers[HUGE].bytesInUse, 1 * MiB + 1 + 3 * MiB + 5);
    for (const h of handles) assert.equal(core.unref(h), 0);
  }));

test('refcount starts at 1, retain adds, release subtracts and frees at 0', () =>
  withCore((core) => {
    const h = core.alloc(200);
    assert.equal(core.refcount(h), 1);
    assert.equal(core.ref(h), 2);
    assert.equal(core.ref(h), 3);
    assert.equal(core.refcount(h), 3);
    assert.equal(core.unref(h), 2);
    assert.equal(core.unref(h), 1);
    assert.equal(core.arenaStats().liveHandles, 1);
    assert.equal(core.unref(h), 0);
    assert.equal(core.arenaStats().liveHandles, 0);
    assert.throws(() => core.refcount(h), ArenaError);
  }));

test('double release, stale and invalid handles throw ArenaError and are counted as errors', () =>
  withCore((core) => {
    const h = core.alloc(64);
    assert.equal(core.unref(h), 0);
    const errors0 = core.arenaStats().errors;
    assert.throws(() => core.unref(h), (e: unknown) => e instanceof ArenaError && e.handle === h);
    assert.throws(() => core.ref(h), ArenaError);
    assert.throws(() => core.ptr(h), ArenaError);
    assert.throws(() => core.length(h), ArenaError);
    assert.throws(() => core.view(h), ArenaError);
    for (const bad of [0, 0xffffffff, 0x3fffff, 12345, 0x80000001]) assert.throws(() => core.refcount(bad), ArenaError);
    assert.equal(core.arenaStats().errors, errors0 + 10);

    // reuse the released slot: the old handle (older generation) stays dead
    const others: number[] = [];
    let again = 0;
    for (let i = 0; i < 5000 && !again; i++) {
      const x = core.alloc(64);
      if ((x & 0x3fffff) === (h & 0x3fffff)) again = x;
      else others.push(x);
    }
    assert.notEqual(again, 0, 'slot was reused');
    assert.notEqual(again, h, 'with a new generation');
    assert.throws(() => core.unref(h), ArenaError);
    assert.equal(core.refcount(again), 1, 'the stale release did not touch the new block');
    core.unref(again);
    for (const x of others) core.unref(x);
  }));

test('cap reached: alloc returns 0 without trapping, and works again after releases', () =>
  withCore(
    (core) => {
      const held: number[] = [];
      for (;;) {
        const h = core.alloc(1000); // 1 KiB class: 64 per 64 KiB slab
        if (h === 0) break;
        held.push(h);
        assert.ok(held.length <= 256, 'cap enforced');
      }
      assert.equal(held.length, 256);
      assert.equal(core.arenaStats().bytesReserved, 256 * KiB);
      assert.equal(core.alloc(2 * MiB), 0, 'huge alloc refused over cap');
      assert.equal(core.alloc(2000), 0, 'other bins refused too (new slab needed)');
      core.unref(held.pop()!);
      const h = core.alloc(1000);
      assert.notEqual(h, 0);
      held.push(h);
      // freeing a whole slab lets another bin take its place
      for (let i = 0; i < 64; i++) core.unref(held.pop()!);
      const other = core.alloc(100);
      assert.notEqual(other, 0, 'cached empty slab was trimmed to make room');
      held.push(other);
      core.setArenaCap(256 * MiB);
      assert.equal(core.arenaStats().cap, 256 * MiB);
      for (const x of held) core.unref(x);
    },
    { arenaCapBytes: 256 * KiB },
  ));

test('memory limit reached: huge allocs fail softly instead of trapping, then succeed after releases', () =>
  withCore(
    (core) => {
      core.setArenaCap(4 * 1024 * MiB);
      const held: number[] = [];
      for (let i = 0; i < 100; i++) {
        const h = core.alloc(8 * MiB);
        if (h === 0) break;
        held.push(h);
      }
      assert.ok(held.length >= 2 && held.length < 100, `stopped at ${held.length}`);
      assert.ok(core.memory.buffer.byteLength <= 64 * MiB, `memory ${core.memory.buffer.byteLength} within the limit`);
      assert.equal(core.alloc(900 * MiB), 0);
      assert.equal(core.alloc(0xffffffff), 0, 'beyond the largest heap block');
      core.unref(held.pop()!);
      const h = core.alloc(8 * MiB);
      assert.notEqual(h, 0);
      held.push(h);
      for (const x of held) core.unref(x);
    },
    { memoryLimitBytes: 64 * MiB },
  ));

test('random allocations under a tight memory limit fail softly and never trap', () =>
  withCore(
    (core) => {
      core.setArenaCap(2 ** 40);
      let seed = 7;
      const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
      const live: number[] = [];
      let refused = 0;
      for (let i = 0; i < 4000; i++) {
        if (live.length && rnd() < 0.4) {
          const j = Math.floor(rnd() * live.length);
          core.unref(live[j]);
          live[j] = live[live.length - 1];
          live.pop();
        } else {
          const x = rnd();
          const n = x < 0.6 ? Math.floor(rnd() * 2048) : x < 0.9 ? Math.floor(rnd() * 300 * KiB) : Math.floor(rnd() * 12 * MiB);
          const h = core.alloc(n); // a trap would throw WebAssembly.RuntimeError here
          if (h === 0) refused++;
          else live.push(h);
        }
      }
      assert.ok(refused > 0, 'the limit was reached');
      assert.ok(core.memory.buffer.byteLength <= 48 * MiB, `memory ${core.memory.buffer.byteLength} within the limit`);
      for (const h of live) core.unref(h);
      core.arenaTrim();
      const h = core.alloc(8 * MiB);
      assert.notEqual(h, 0, 'freed memory is usable again');
      core.unref(h);
    },
    { memoryLimitBytes: 48 * MiB },
  ));

test('pool hits and misses are counted per tier', () =>
  withCore((core) => {
    const a = core.alloc(100); // first small block: new slab
    const b = core.alloc(100); // same slab
    const c = core.alloc(5000); // medium: new slab
    const d = core.alloc(200 * KiB); // large: new slab
    const e = core.alloc(2 * MiB); // huge: always direct
    assert.deepEqual(tierCounts(core.arenaStats()), [[1, 1], [0, 1], [0, 1], [0, 1]]);
    for (const h of [a, b, c, d, e]) core.unref(h);
    const f = core.alloc(120); // same 128 B class, cached empty slab
    const g = core.alloc(2 * MiB);
    assert.deepEqual(tierCounts(core.arenaStats()), [[2, 1], [0, 1], [0, 1], [0, 2]]);
    const s = core.arenaStats();
    assert.equal(s.tiers[SMALL].free, 64 * KiB / 128 - 1);
    assert.equal(s.tiers[SMALL].bytesInUse, 120);
    assert.equal(s.tiers[HUGE].free, 0);
    core.unref(f);
    core.unref(g);
  }));

test('a slab that becomes empty is returned to the heap unless it is the cached one', () =>
  withCore((core) => {
    const handles: number[] = [];
    for (let i = 0; i < 64 * 3; i++) handles.push(core.alloc(1000)); // exactly three slabs
    let s = core.arenaStats().tiers[SMALL];
    assert.equal(s.bytesReserved, 3 * 64 * KiB);
    assert.equal(s.free, 0);
    for (const h of handles) core.unref(h);
    s = core.arenaStats().tiers[SMALL];
    assert.equal(s.bytesReserved, 64 * KiB, 'one empty slab kept');
    assert.equal(s.free, 64);
    // alloc/release across the slab boundary does not thrash
    for (let i = 0; i < 10; i++) core.unref(core.alloc(1000));
    assert.deepEqual(tierCounts(core.arenaStats())[SMALL], [189 + 10, 3]);
    assert.equal(core.arenaTrim(), 64 * KiB);
    assert.equal(core.arenaStats().tiers[SMALL].bytesReserved, 0);
    assert.equal(core.arenaStats().tiers[SMALL].free, 0);
    // huge blocks go straight back
    const big = core.alloc(5 * MiB);
    assert.equal(core.arenaStats().tiers[HUGE].bytesReserved, 5 * MiB);
    core.unref(big);
    assert.equal(core.arenaStats().tiers[HUGE].bytesReserved, 0);
  }));

test('liveHandles enumerates exactly the live handles', () =>
  withCore((core) => {
    const hs = [10, 20, 3000, 2 * MiB, 40].map((n) => core.alloc(n));
    core.ref(hs[2]);
    core.unref(hs[1]);
    core.unref(hs[3]);
    assert.deepEqual(core.liveHandles().sort(), [hs[0], hs[2], hs[4]].sort());
    assert.deepEqual(core.liveHandles().map((h) => core.refcount(h)).sort(), [1, 1, 2]);
    core.unref(hs[0]);
    core.unref(hs[2]);
    core.unref(hs[2]);
    core.unref(hs[4]);
    assert.deepEqual(core.liveHandles(), []);
  }));

test('memory growth keeps block contents; views are re-derived', () =>
  withCore((core) => {
    const h = core.alloc(777);
    fill(core.view(h), 9);
    const old = core.view(h);
    const before = core.memory.buffer.byteLength;
    const big: number[] = [];
    while (core.memory.buffer.byteLength === before) big.push(core.alloc(4 * MiB));
    assert.ok(big.every((x) => x !== 0), 'growth allocations succeeded');
    assert.equal(old.byteLength, 0, 'old view detached by memory.grow');
    assert.ok(check(core.view(h), 9), 'contents intact in the new view');
    assert.equal(core.bytes().buffer, core.memory.buffer);
    for (const x of big) core.unref(x);
    core.unref(h);
  }));

test('many small blocks: churn keeps stats consistent', () =>
  withCore((core) => {
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
    const live: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 20000; i++) {
      if (live.length && rnd() < 0.45) {
        const j = Math.floor(rnd() * live.length);
        bytes -= core.length(live[j]);
        core.unref(live[j]);
        live[j] = live[live.length - 1];
        live.pop();
      } else {
        const n = Math.floor(rnd() * rnd() * 200000);
        const h = core.alloc(n);
        assert.notEqual(h, 0);
        core.view(h).fill(h & 0xff);
        bytes += n;
        live.push(h);
      }
    }
    const s = core.arenaStats();
    assert.equal(s.liveHandles, live.length);
    assert.equal(s.bytesInUse, bytes);
    assert.ok(
      live.every((h) => {
        const v = core.view(h);
        return v.length === 0 || (v[0] === (h & 0xff) && v[v.length - 1] === (h & 0xff));
      }),
      'every live block kept its fill byte',
    );
    for (const h of live) core.unref(h);
  }));
