import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StoredDelivery, StoredSession } from '../../../host/core/model/store.js';
import { emptyChanges, encodeChanges, type ReplicaChanges } from '../../../host/node/cluster/replica-codec.js';
import { FileReplicaLog } from '../../../host/node/cluster/replica-log.js';
import { OwnerReplica } from '../../../host/node/cluster/replica-store.js';

const session = (clientId: string): StoredSession => ({ clientId, version: 5, expiryInterval: 300, disconnectedAt: 0, subscriptions: [], will: null });

/** A frame that sets deliveries `seqs` of `clientId` (with inline bodies of `bodyBytes`), and first its session when `withSession`. */
function frame(clientId: string, seqs: number[], bodyBytes = 64, withSession = false): { changes: ReplicaChanges; bytes: Buffer } {
  const changes = emptyChanges(seqs[0] ?? 0);
  if (withSession) changes.sessions.set(clientId, session(clientId));
  for (const seq of seqs) {
    const d: StoredDelivery = { clientId, seq, messageId: `m${seq}`, qos: 1, retain: false, subscriptionIds: null, packetId: seq, released: false };
    d.message = { topic: `t/${seq}`, payload: new Uint8Array(bodyBytes).fill(seq & 0xff), qos: 1, retain: false, forward: null, expiresAt: 0 };
    changes.deliveries.push(d);
  }
  return { changes, bytes: encodeChanges(changes) };
}

/** A frame that removes deliveries `seqs` of `clientId` (acknowledged by its subscriber). */
function gone(clientId: string, seqs: number[]): { changes: ReplicaChanges; bytes: Buffer } {
  const changes = emptyChanges(0);
  for (const seq of seqs) changes.deliveries.push({ clientId, seq, gone: true });
  return { changes, bytes: encodeChanges(changes) };
}

/** The log in `file` opened and read, as a process starting would: ready for appends after what it holds. */
async function opened(file: string): Promise<FileReplicaLog> {
  const log = new FileReplicaLog(file, true);
  await log.read();
  return log;
}

/** What a process opening the log in `file` would read from it, as text; closed again. */
async function readBack(file: string): Promise<string[]> {
  const log = new FileReplicaLog(file, true);
  const records = (await log.read()).map(String);
  await log.close();
  return records;
}

describe('replica log (a buddy\'s copy of one owner\'s sessions on disk)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-replica-log-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads back the records appended before, in order, after the process reopens it', async () => {
    const file = join(dir, 'order.log');
    const log = new FileReplicaLog(file, true);
    assert.deepEqual(await log.read(), []);
    const records = Array.from({ length: 5 }, (_, i) => Buffer.from(`record ${i}`));
    // Appended without waiting: the ones that come while a write runs go in the next one, in order.
    await Promise.all(records.map((r) => log.append(r)));
    await log.close();
    assert.deepEqual(await readBack(file), records.map(String));
  });

  it('a record cut short by a crash ends the log: the whole ones before it are read, and the next append goes right after them', async () => {
    const file = join(dir, 'torn.log');
    const log = await opened(file);
    await log.append(Buffer.from('kept 1'));
    await log.append(Buffer.from('kept 2'));
    await log.append(Buffer.from('being written when the process died'));
    await log.close();
    await truncate(file, (await stat(file)).size - 5);
    assert.deepEqual(await readBack(file), ['kept 1', 'kept 2']);
    const again = await opened(file);
    await again.append(Buffer.from('after the restart'));
    await again.close();
    assert.deepEqual(await readBack(file), ['kept 1', 'kept 2', 'after the restart']);
  });

  it('a damaged record (its checksum does not match) ends the log there', async () => {
    const file = join(dir, 'damaged.log');
    const log = await opened(file);
    await log.append(Buffer.from('good'));
    await log.append(Buffer.from('damaged'));
    await log.append(Buffer.from('after the damage'));
    await log.close();
    const bytes = await readFile(file);
    // The second record's bytes start after the first record (8-byte header + 4) and its own header.
    bytes[8 + 4 + 8] ^= 0xff;
    await writeFile(file, bytes);
    assert.deepEqual(await readBack(file), ['good']);
  });

  it('replace() leaves one record, the snapshot built after the writes before it; a snapshot left half-written by a crash is ignored', async () => {
    const file = join(dir, 'replace.log');
    const log = await opened(file);
    const appended = [log.append(Buffer.from('a')), log.append(Buffer.from('b'))];
    let builtAfter = -1;
    const replaced = log.replace(() => {
      builtAfter = log.bytes;
      return Buffer.from('snapshot of a and b');
    });
    const later = log.append(Buffer.from('c'));
    await Promise.all([...appended, replaced, later]);
    assert.equal(builtAfter, 2 * (8 + 1), 'the snapshot is built once the appends before it are written');
    await log.close();
    await appendFile(`${file}.new`, 'a snapshot that was being written');
    assert.deepEqual(await readBack(file), ['snapshot of a and b', 'c']);
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('replace.log')), ['replace.log']);
  });

  it('an owner replica restarted from its log has its sessions as they were, across a compaction into a snapshot', async () => {
    const file = join(dir, 'owner.log');
    const replica = new OwnerReplica('n1', new FileReplicaLog(file, false));
    await replica.ready;
    const first = frame('s1', [1], 64, true);
    await replica.apply(first.changes, first.bytes);
    // 8 KiB bodies, each acknowledged by the next frame: past the 4 MiB after which the log is compacted.
    let appended = 0;
    for (let seq = 2; seq < 700; seq++) {
      for (const f of [frame('s1', [seq], 8192), gone('s1', [seq - 1])]) {
        await replica.apply(f.changes, f.bytes);
        appended += f.bytes.length;
      }
    }
    const other = frame('s2', [1, 2, 3], 64, true);
    await replica.apply(other.changes, other.bytes);
    await replica.ready;
    await replica.close();
    const { size } = await stat(file);
    assert.ok(appended > 4 * 1024 * 1024 && size < appended / 2, `compacted: ${size} bytes left of ${appended} appended`);
    const again = new OwnerReplica('n1', new FileReplicaLog(file, false));
    await again.ready;
    assert.deepEqual(again.clientIds().sort(), ['s1', 's2']);
    assert.deepEqual(again.take('s1')!.deliveries.map((d) => d.seq), [699]);
    assert.deepEqual(again.take('s2')!.deliveries.map((d) => [d.seq, d.message!.topic]), [
      [1, 't/1'],
      [2, 't/2'],
      [3, 't/3'],
    ]);
    await again.ready;
    await again.close();
    // Taken: gone from the log too.
    const third = new OwnerReplica('n1', new FileReplicaLog(file, false));
    await third.ready;
    assert.equal(third.size, 0);
    await third.close();
  });
});
