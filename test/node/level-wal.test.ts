import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Level } from 'level';
import type { Logger } from '../../host/core/model/options.js';
import { crc32c, inspectWriteAheadLogs, scanLog } from '../../host/node/level-wal.js';
import { collect, connectClient, startBroker } from '../helpers/broker.js';
import { BIN } from '../helpers/cli.js';

interface Warning {
  msg: string;
  fields: Record<string, unknown>;
}

/** A data directory as a broker leaves it after a clean stop: 200 retained messages and 50 queued for an offline session. */
async function writeState(dir: string): Promise<void> {
  const b = await startBroker({ dataDir: dir });
  const away = await connectClient(b.url, { clientId: 'away', clean: false });
  await away.subscribeAsync('queued/#', { qos: 1 });
  await away.endAsync();
  const pub = await b.client();
  for (let i = 0; i < 200; i++) await pub.publishAsync(`retained/${i}`, 'r'.repeat(400), { qos: 1, retain: true });
  for (let i = 0; i < 50; i++) await pub.publishAsync(`queued/${i}`, 'q'.repeat(400), { qos: 1 });
  await b.close();
}

async function walOf(dir: string): Promise<string> {
  const logs = (await readdir(dir)).filter((f) => /^\d+\.log$/.test(f));
  assert.equal(logs.length, 1, `write-ahead logs: ${logs.join(', ')}`);
  return join(dir, logs[0]!);
}

/** Inverts `count` bytes of a file from `at`. */
async function flip(path: string, at: number, count: number): Promise<void> {
  const bytes = await readFile(path);
  for (let i = at; i < at + count; i++) bytes[i]! ^= 0xff;
  await writeFile(path, bytes);
}

/** Bytes LevelDB's own LOG (of the last open) says it dropped. */
async function droppedPerLevelDb(dir: string): Promise<number> {
  const log = await readFile(join(dir, 'LOG'), 'utf8');
  return [...log.matchAll(/dropping (\d+) bytes/g)].reduce((n, m) => n + Number(m[1]), 0);
}

/** Starts a broker on `dir`, returning the store warnings it logged, its retained messages' topics and how many it has queued. */
async function restart(dir: string): Promise<{ warnings: Warning[]; retained: number; queued: number; topics: string[] }> {
  const warnings: Warning[] = [];
  const logger: Logger = (level, msg, fields) => {
    if (level === 'warn') warnings.push({ msg, fields: fields ?? {} });
  };
  const b = await startBroker({ dataDir: dir, logger });
  const retained = b.server.broker.retained.count;
  const queued = b.server.broker.sessions.get('away')?.queue.length ?? 0;
  const topics = [...b.server.broker.retained.all()].map((m) => m.topic()).sort((a, b) => Number(a.split('/')[1]) - Number(b.split('/')[1]));
  await b.close();
  return { warnings, retained, queued, topics };
}

describe('crc32c', () => {
  it("gives RFC 3720's CRC-32C check values (B.4) and iSCSI's 123456789 one, at any offset and split", () => {
    const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
    const vectors: [Uint8Array, number][] = [
      [new Uint8Array(32), 0x8a9136aa],
      [new Uint8Array(32).fill(0xff), 0x62a8ab43],
      [ascending, 0x46dd794e],
      [ascending.slice().reverse(), 0x113fdb5c],
      [new TextEncoder().encode('123456789'), 0xe3069283],
    ];
    for (const [bytes, expected] of vectors) {
      for (let offset = 0; offset < 9; offset++) {
        const shifted = new Uint8Array(offset + bytes.length + 3);
        shifted.set(bytes, offset);
        assert.equal(crc32c(shifted, offset, bytes.length), expected);
        for (let split = 0; split <= bytes.length; split++) {
          assert.equal(crc32c(shifted, offset + split, bytes.length - split, crc32c(shifted, offset, split)), expected);
        }
      }
    }
  });
});

describe('damage in LevelDB write-ahead log is reported', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-wal-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('WAL corruption attack: 16 flipped bytes in the write-ahead log are reported at start-up — file, offset, bytes and reason, as much as LevelDB drops', async () => {
    const data = join(dir, 'flipped');
    await writeState(data);
    const wal = await walOf(data);
    const size = (await stat(wal)).size;
    assert.ok(size > 3 * 32 * 1024, `a log of ${size} bytes spans several blocks`);
    await flip(wal, Math.floor(size / 2), 16);
    const { warnings } = await restart(data);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    const [warning] = warnings;
    assert.match(warning!.msg, /may have lost changes: its write-ahead log is damaged/);
    assert.match(String(warning!.fields.lost), /^\d+\.log: \d+ bytes at offset \d+ \((checksum mismatch|bad record length)/);
    const dropped = warning!.fields.droppedBytes as number;
    assert.ok(dropped > 0);
    assert.equal(dropped, await droppedPerLevelDb(data), 'the warning reports what LevelDB dropped');
    // Reported once: the next start finds a sound log.
    assert.deepEqual((await restart(data)).warnings, []);
  });

  it('WAL truncation attack: a write-ahead log cut short after a clean stop is reported with the bytes missing, though LevelDB says nothing', async () => {
    const data = join(dir, 'truncated');
    await writeState(data);
    const wal = await walOf(data);
    const size = (await stat(wal)).size;
    await truncate(wal, Math.floor(size / 2));
    const { warnings, retained, queued, topics } = await restart(data);
    assert.equal(await droppedPerLevelDb(data), 0, 'LevelDB takes a cut-short log for a crash and is silent');
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]!.fields.truncatedBytes, size - Math.floor(size / 2));
    assert.match(String(warnings[0]!.fields.lost), new RegExp(`\\d+\\.log: ${size - Math.floor(size / 2)} bytes shorter than at the last shutdown \\(${size}\\)`));
    // What LevelDB lost, the journal files give back as far as they still hold it: a prefix of what was written.
    assert.deepEqual(topics.slice(0, retained), Array.from({ length: retained }, (_, i) => `retained/${i}`), 'the retained messages kept are the first ones');
    assert.ok(queued === 0 || retained === 200, `messages queued after the last retained one only if every retained one is there (${retained}, ${queued})`);
  });

  it('says nothing about a sound database, after a clean stop or a crash', async () => {
    const data = join(dir, 'sound');
    await writeState(data);
    assert.equal(await inspectWriteAheadLogs(data), null);
    const { warnings, retained, queued } = await restart(data);
    assert.deepEqual(warnings, []);
    assert.equal(retained, 200);
    assert.equal(queued, 50);
    // No shutdown record (a crash): nothing to compare the log with, and nothing is claimed.
    const db = new Level<string, string>(join(dir, 'crashed'));
    await db.put('k', 'v', { sync: true } as never);
    await db.close();
    assert.equal(await inspectWriteAheadLogs(join(dir, 'crashed')), null);
  });

  it('counts the bytes LevelDB drops for random damage, whatever the damage', async () => {
    const data = join(dir, 'random');
    await writeState(data);
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 12; round++) {
      const copy = join(dir, `random-${round}`);
      await cp(data, copy, { recursive: true });
      const wal = await walOf(copy);
      const bytes = await readFile(wal);
      const flips = 1 + random(4);
      for (let f = 0; f < flips; f++) bytes[random(bytes.length)]! ^= 1 << random(8);
      await writeFile(wal, bytes);
      const ours = scanLog('x.log', bytes).reduce((n, d) => n + d.bytes, 0);
      const db = new Level(copy);
      await db.open();
      await db.close();
      assert.equal(ours, await droppedPerLevelDb(copy), `round ${round}`);
    }
  });
});

describe('arbormq --strict', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-strict-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [BIN, '-p', '0', '--host', '127.0.0.1', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });

  it('refuses to start on a damaged write-ahead log with a message saying what and what to do, and changes nothing', async () => {
    const data = join(dir, 'data');
    await writeState(data);
    const wal = await walOf(data);
    await flip(wal, Math.floor((await stat(wal)).size / 2), 16);
    const before = await readFile(wal);
    for (const [args, env] of [
      [['--strict', '--data-dir', data], {}],
      [['--data-dir', data], { ARBORMQ_STRICT: 'true' }],
    ] as const) {
      const r = run([...args], env);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /could not start/);
      assert.match(r.stderr, /write-ahead log of the database at .* is damaged: \d+\.log: \d+ bytes at offset \d+ \((checksum mismatch|bad record length)\)/);
      assert.match(r.stderr, /nothing was changed/);
      assert.deepEqual(await readFile(wal), before, 'the log is as it was');
    }
    // Without strict the same database starts, reporting the loss.
    const warnings: Warning[] = [];
    const b = await startBroker({ dataDir: data, logger: (level, msg, fields) => level === 'warn' && warnings.push({ msg, fields: fields ?? {} }) });
    await b.close();
    assert.equal(warnings.length, 1);
  });

  it('refuses a write-ahead log cut short after a clean stop too', async () => {
    const data = join(dir, 'cut');
    await writeState(data);
    const wal = await walOf(data);
    await truncate(wal, 1000);
    const r = run(['--strict', '--data-dir', data]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /\d+\.log: \d+ bytes shorter than at the last shutdown/);
  });

  it('starts with --strict on a sound database, and its clients find their state', async () => {
    const data = join(dir, 'sound');
    await writeState(data);
    const b = await startBroker({ dataDir: data, strict: true });
    const back = await connectClient(b.url, { clientId: 'away', clean: false });
    assert.equal((await collect(back, 50)).length, 50);
    await back.endAsync();
    await b.close();
  });
});
