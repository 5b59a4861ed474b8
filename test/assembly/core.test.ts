import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { loadNodeCore, packageRoot } from '../../host/node/load-core.js';
import { Core, CoreMemoryError } from '../../host/core/wasm/core.js';

const te = new TextEncoder();

test('every loadNodeCore call gives an independent instance', async () => {
  const a = await loadNodeCore();
  const b = await loadNodeCore();
  assert.notEqual(a.memory, b.memory);
  const h = a.alloc(100);
  a.subscribe(1, te.encode('x'), 0, 0, 0);
  assert.equal(a.arenaStats().liveHandles, 1);
  assert.equal(b.arenaStats().liveHandles, 0);
  assert.equal(b.subscriptionCount(), 0);
  a.unref(h);
});

test('Core.load accepts wasm bytes and a compiled WebAssembly.Module', async () => {
  const bytes = await readFile(`${await packageRoot()}/build/arbor.wasm`);
  const fromBytes = await Core.load(new Uint8Array(bytes));
  const fromModule = await Core.load(await WebAssembly.compile(new Uint8Array(bytes)));
  for (const core of [fromBytes, fromModule]) {
    core.subscribe(7, te.encode('a/+'), 1, 0, 0);
    assert.equal(core.matchBytes(te.encode('a/b'), 0).client(0), 7);
  }
});

test('load options set the arena cap and the memory limit', async () => {
  const core = await loadNodeCore({ arenaCapBytes: 1024 * 1024, memoryLimitBytes: 128 * 1024 * 1024 });
  assert.equal(core.arenaStats().cap, 1024 * 1024);
  assert.equal(core.memoryLimit(), 128 * 1024 * 1024);
  assert.equal(core.alloc(2 * 1024 * 1024), 0, 'over the cap');
  assert.equal((await loadNodeCore()).arenaStats().cap, 256 * 1024 * 1024, 'default cap is 256 MiB');
});

test('bytes() is re-derived after memory grows and views of wasm memory are used in place', async () => {
  const core = await loadNodeCore();
  const before = core.bytes();
  const big: number[] = [];
  while (before.length !== 0) big.push(core.alloc(8 * 1024 * 1024));
  assert.equal(core.bytes().length, core.memory.buffer.byteLength);
  // a filter that already lives in wasm memory is read where it is
  const f = te.encode('in/place');
  const h = core.alloc(f.length);
  core.view(h).set(f);
  assert.equal(core.subscribe(3, core.view(h), 0, 0, 0), true);
  assert.equal(core.matchBytes(te.encode('in/place'), 0).count, 1);
  for (const x of [...big, h]) core.unref(x);
});

test('out-of-memory surfaces as CoreMemoryError from retained and match calls, never as a trap', async () => {
  const core = await loadNodeCore({ memoryLimitBytes: 24 * 1024 * 1024, arenaCapBytes: 2 ** 40 });
  const blocks: number[] = [];
  for (let h = core.alloc(256 * 1024); h !== 0; h = core.alloc(256 * 1024)) blocks.push(h);
  const long = 'y'.repeat(60000);
  let err: unknown;
  try {
    for (let i = 0; i < 1000; i++) core.retainSet(te.encode(`${i}/${long}`), i + 1);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof CoreMemoryError, `got ${String(err)}`);
  for (const h of blocks) core.unref(h);
  core.arenaTrim();
  assert.equal(core.retainSet(te.encode('ok'), 5), 0);
  assert.deepEqual(core.retainMatch(te.encode('ok')), [5]);
});
