import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { emptyBatch, MemoryStore, type Store, type StoredState } from '../../host/core/model/store.js';
import { JOURNAL_FILES, scanJournal } from '../../host/node/journal-files.js';
import { LevelStore, SCHEMA_VERSION, StoreOpenError } from '../../host/node/level-store.js';
import { storeSuite } from '../core/store-suite.js';
import { workload } from '../helpers/store-workload.js';
import { canMount, fill, NO_MOUNT, withTmpfs } from '../helpers/tmpfs.js';

storeSuite('LevelStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-level-'));
  return { make: () => new LevelStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('LevelStore opening', () => {
  it('refuses a database written by a newer schema version, saying which and what to do', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbormq-level-'));
    try {
      const db = new Level<string, string>(dir);
      await db.put('!meta!schema', String(SCHEMA_VERSION + 1));
      await db.close();
      await assert.rejects(new LevelStore(dir).open(), (e: unknown) => e instanceof StoreOpenError && new RegExp(`schema version ${SCHEMA_VERSION + 1}`).test(e.message) && /newer ArborMQ/.test(e.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a corrupt database with a message that says how to recover', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbormq-level-'));
    try {
      const store = new LevelStore(dir);
      await store.open();
      await store.close();
      // Destroy the manifest LevelDB needs to open the database.
      for (const name of await readdir(dir)) {
        if (name.startsWith('MANIFEST-') || name === 'CURRENT') await writeFile(join(dir, name), 'garbage\n');
      }
      await assert.rejects(new LevelStore(dir).open(), (e: unknown) => e instanceof StoreOpenError && /move the directory aside/.test(e.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a database another process holds open (the LevelDB lock)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbormq-level-'));
    const first = new LevelStore(dir);
    try {
      await first.open();
      await assert.rejects(new LevelStore(dir).open(), (e: unknown) => e instanceof StoreOpenError && /stop it first/.test(e.message));
    } finally {
      await first.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A loaded state as text that compares equal for equal content, whichever store it came from. */
async function contentOf(store: Store): Promise<string> {
  const state: StoredState = await store.load();
  return JSON.stringify(
    canonical({
      sessions: [...state.sessions].sort((a, b) => (a.clientId < b.clientId ? -1 : 1)),
      retained: [...state.retained].sort((a, b) => (a.topic < b.topic ? -1 : 1)),
      messages: [...state.messages].sort(([a], [b]) => (a < b ? -1 : 1)),
      deliveries: state.deliveries,
      incomingQos2: [...state.incomingQos2].map(([c, ids]) => [c, [...ids].sort()]).sort(([a], [b]) => (a! < b! ? -1 : 1)),
    }),
  );
}

/** Plain data with object keys in one order and byte arrays (Buffer or not) as number arrays. */
function canonical(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canonical(x)]));
  }
  return v;
}

/** How many journal records the database at `dir` holds (with no store open on it). */
/** Journal records not yet folded into keys: those of the journal files numbered above the last one folded. */
async function journalRecords(dir: string): Promise<number> {
  const db = new Level<string, string>(dir);
  const folded = Number((await db.get('!meta!journal-folded')) ?? 0);
  await db.close();
  let n = 0;
  for (const name of JOURNAL_FILES) n += scanJournal(await readFile(join(dir, name))).records.filter((r) => r.seq > folded).length;
  return n;
}

describe('LevelStore journal', () => {
  it('folds its journal into keys as it grows, and reads back what a MemoryStore fed the same batches holds', async () => {
    for (const seed of [1, 2, 3]) {
      const dir = await mkdtemp(join(tmpdir(), 'arbormq-level-'));
      try {
        const memory = new MemoryStore();
        let store = new LevelStore(dir, { foldBytes: 2048 });
        await store.open();
        await store.load();
        for (const [i, batch] of workload(seed, 600).entries()) {
          await store.write(batch);
          await memory.write(batch);
          if (i % 150 === 149) {
            // Reopened: what was folded and what was still only in the journal both come back.
            await store.close();
            store = new LevelStore(dir, { foldBytes: 2048 });
            await store.open();
            assert.equal(await contentOf(store), await contentOf(memory), `seed ${seed}, after batch ${i}`);
          }
        }
        assert.equal(await contentOf(store), await contentOf(memory), `seed ${seed}, at the end`);
        await store.close();
        assert.equal(await journalRecords(dir), 0, 'a clean close folds the whole journal');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });

  it('after a SIGKILL, opening replays the journal: every write that completed is there, as a consistent prefix of the batches', async () => {
    const writer = fileURLToPath(new URL('../helpers/level-store-writer.ts', import.meta.url));
    for (const [seed, killAfter] of [[11, 120], [12, 260]] as const) {
      const dir = await mkdtemp(join(tmpdir(), 'arbormq-level-'));
      try {
        const count = 400;
        const child = fork(writer, [dir, String(seed), String(count), '4096'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
        let acked = -1;
        await new Promise<void>((resolve, reject) => {
          child.on('message', (m: number | 'done') => {
            if (m === 'done') reject(new Error('the writer finished before it was killed'));
            else if ((acked = m) >= killAfter) {
              child.kill('SIGKILL');
              resolve();
            }
          });
          child.once('exit', (code, signal) => signal === null && reject(new Error(`the writer exited with ${code}`)));
        });
        await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
        const left = await journalRecords(dir);
        assert.ok(left > 0 && left < acked, `the journal was being folded while written (${left} records left after ${acked + 1} writes)`);

        const store = new LevelStore(dir);
        await store.open();
        const found = await contentOf(store);
        await store.close();
        assert.equal(await journalRecords(dir), 0, 'opening folds what the journal held');
        // The writes it reported, and perhaps a few more that completed before the kill landed.
        const memory = new MemoryStore();
        const batches = workload(seed, count);
        let match = -1;
        for (const [i, batch] of batches.entries()) {
          await memory.write(batch);
          if (i >= acked && (await contentOf(memory)) === found) {
            match = i;
            break;
          }
        }
        assert.ok(match >= acked, `the state after the kill is that after batch ${acked} or a later one`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });

  it('on a full disk a write fails and changes nothing; with room again it goes through, folding catches up, and the state is what a MemoryStore holds', { skip: canMount() ? false : NO_MOUNT }, async () => {
    const parent = await mkdtemp(join(tmpdir(), 'arbormq-level-'));
    try {
      await withTmpfs(parent, '2m', async (mnt) => {
        const dir = join(mnt, 'db');
        const memory = new MemoryStore();
        let store = new LevelStore(dir, { foldBytes: 2048 });
        await store.open();
        await store.load();
        let failures = 0;
        for (const [i, batch] of workload(21, 400).entries()) {
          if (i === 100 || i === 250) fill(mnt);
          for (;;) {
            try {
              await store.write(batch);
              break;
            } catch {
              // As the broker does: the same changes again, after a while — here once there is room.
              failures++;
              await rm(join(mnt, 'filler'), { force: true });
              await sleep(20);
            }
          }
          await memory.write(batch);
        }
        assert.ok(failures >= 2, `the full disk made writes fail (${failures})`);
        assert.equal(await contentOf(store), await contentOf(memory));
        await store.close();
        store = new LevelStore(dir);
        await store.open();
        assert.equal(await contentOf(store), await contentOf(memory), 'after a reopen');
        await store.close();
      });
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('keeps marks written with a group commit across reopens, and deletes them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbormq-level-'));
    const batch = (marks: [string, string | null][]): Parameters<Store['write']>[0] => ({ ...emptyBatch(), marks: new Map(marks) });
    try {
      let store = new LevelStore(dir);
      await store.open();
      await store.load();
      await store.write(batch([['cluster/forwarded/n1', 'a 7'], ['cluster/forwarded/n2', 'b 3']]));
      await store.write(batch([['cluster/forwarded/n1', 'a 9']]));
      await store.close();
      store = new LevelStore(dir);
      await store.open();
      assert.deepEqual([...(await store.load()).marks].sort(), [['cluster/forwarded/n1', 'a 9'], ['cluster/forwarded/n2', 'b 3']]);
      await store.write(batch([['cluster/forwarded/n2', null]]));
      await store.close();
      store = new LevelStore(dir);
      await store.open();
      assert.deepEqual([...(await store.load()).marks], [['cluster/forwarded/n1', 'a 9']]);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('marks an older database it opens with its own schema version, so an older ArborMQ will not miss the journal', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbormq-level-'));
    try {
      const db = new Level<string, string>(dir);
      await db.put('!meta!schema', '2');
      await db.close();
      const store = new LevelStore(dir);
      await store.open();
      await store.close();
      const reopened = new Level<string, string>(dir);
      assert.equal(await reopened.get('!meta!schema'), String(SCHEMA_VERSION));
      await reopened.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
