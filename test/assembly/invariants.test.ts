import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../../host/node/load-core.js';
import { Core } from '../../host/core/wasm/core.js';

const te = new TextEncoder();

async function load(file: string): Promise<Core> {
  return Core.load(new Uint8Array(await readFile(join(await packageRoot(), 'build', file))));
}

/** A released small block, written to through the stale pointer its owner kept. */
function writeAfterRelease(core: Core): void {
  const kept = core.alloc(40);
  const freed = core.alloc(40);
  const stale = core.ptr(freed);
  core.unref(freed);
  new DataView(core.memory.buffer).setUint32(stale, 0xdeadbee0, true);
  core.unref(kept);
}

describe('invariant checks of the debug build (build/arbor.debug.wasm)', () => {
  it('hold through arena, trie and retained-index work of every kind, checked after each step', async () => {
    const core = await load('arbor.debug.wasm');
    const handles: number[] = [];
    // Sizes across every tier, released out of order so slabs fill, empty and get cached.
    for (let i = 0; i < 600; i++) {
      handles.push(core.alloc(i % 100 === 99 ? 1_100_000 : [10, 40, 700, 5000, 70_000][i % 5]! + i));
      if (i % 3 === 2) core.unref(handles.splice((i * 7) % handles.length, 1)[0]!);
      if (i % 50 === 0) core.checkInvariants();
    }
    for (let client = 1; client <= 40; client++) {
      core.subscribe(client, te.encode(`s/${client % 7}/+`), client % 3, client, 0);
      core.subscribe(client, te.encode('s/#'), 1, 0, (client % 4) + 1);
      core.subscribe(client, te.encode('s/#'), 2, 0, (client % 4) + 1);
      core.checkInvariants();
    }
    assert.ok(core.match(core.place(te.encode('s/3/x')), 5, 0).count > 0);
    for (let client = 1; client <= 40; client += 2) {
      core.unsubscribe(client, te.encode('s/#'), (client % 4) + 1);
      core.unsubscribe(client, te.encode(`s/${client % 7}/+`), 0);
      core.checkInvariants();
    }
    for (const h of handles.slice(0, 50)) core.retainSet(te.encode(`r/${h}`), h);
    for (const h of handles.slice(0, 25)) core.retainDelete(te.encode(`r/${h}`));
    core.checkInvariants();
    for (const h of handles) core.unref(h);
    core.arenaTrim();
    core.checkInvariants();
    assert.equal(core.arenaStats().liveHandles, 0);
  });

  it('catch a write into a released block (its size class free list leaves the slab)', async () => {
    const core = await load('arbor.debug.wasm');
    writeAfterRelease(core);
    assert.throws(() => core.checkInvariants(), /a free list leaves its slab/);
  });

  it('are compiled out of the release build: the same damage goes unnoticed there', async () => {
    const core = await load('arbor.wasm');
    writeAfterRelease(core);
    assert.doesNotThrow(() => core.checkInvariants());
  });
});
