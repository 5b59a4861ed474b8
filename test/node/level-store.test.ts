import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Level } from 'level';
import { LevelStore, SCHEMA_VERSION, StoreOpenError } from '../../host/node/level-store.js';
import { storeSuite } from '../core/store-suite.js';

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
