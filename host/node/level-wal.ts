import { open, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * LevelDB replays its write-ahead log (`NNNNNN.log` in the data directory) when it opens, and —
 * unless `paranoid_checks` is set, which classic-level does not expose — silently skips what fails
 * its checksums; a log cut short loses its tail without a word either. This file finds both before
 * LevelDB opens the database (so `strict` can refuse without anything having been changed):
 *
 * - it reads each log the way LevelDB's log::Reader does (db/log_reader.cc: 32 KiB blocks of
 *   records with a masked CRC-32C, FULL / FIRST / MIDDLE / LAST fragments) and lists every range
 *   LevelDB would drop, with LevelDB's own reason;
 * - it compares each log's size with the size LevelStore recorded when it last closed the database
 *   (SHUTDOWN_FILE), which tells a truncated log from one that simply ended.
 */

/** What LevelStore writes when it has closed the database: each log file and its size then. */
export const SHUTDOWN_FILE = 'ARBORMQ-SHUTDOWN';

const BLOCK_SIZE = 32 * 1024;
const HEADER_SIZE = 7;
const enum RecordType {
  Zero = 0,
  Full = 1,
  First = 2,
  Middle = 3,
  Last = 4,
}
/** The smallest LevelDB WriteBatch (sequence number and count); a shorter record is dropped. */
const MIN_BATCH = 12;

/** Bytes LevelDB would drop from one log when opening it, and why. */
export interface Dropped {
  file: string;
  /** Offset of the damaged block or record in the file. */
  offset: number;
  bytes: number;
  reason: string;
}

/** What is wrong with the write-ahead logs of a database, as found before opening it. */
export interface LogDamage {
  /** Ranges LevelDB skips as corrupt. */
  dropped: Dropped[];
  /** Logs shorter than when the database was last closed (or gone): their last changes are lost. */
  truncated: { file: string; bytes: number; sizeAtShutdown: number }[];
}

/** Every range LevelDB would drop or lose from the logs in `dir`, or null when there is none. */
export async function inspectWriteAheadLogs(dir: string): Promise<LogDamage | null> {
  const logs = await logFiles(dir);
  const dropped: Dropped[] = [];
  for (const file of logs) dropped.push(...scanLog(file, await readFile(join(dir, file))));
  const truncated: LogDamage['truncated'] = [];
  const shutdown = await readShutdownSizes(dir);
  for (const [file, sizeAtShutdown] of Object.entries(shutdown ?? {})) {
    const size = logs.includes(file) ? (await stat(join(dir, file))).size : 0;
    if (size < sizeAtShutdown) truncated.push({ file, bytes: sizeAtShutdown - size, sizeAtShutdown });
  }
  return dropped.length > 0 || truncated.length > 0 ? { dropped, truncated } : null;
}

/** One line for a log message or an error: what is lost, where, and why. */
export function describeDamage(damage: LogDamage): string {
  const parts = [
    ...damage.dropped.map((d) => `${d.file}: ${d.bytes} bytes at offset ${d.offset} (${d.reason})`),
    ...damage.truncated.map((t) =>
      t.bytes === t.sizeAtShutdown ? `${t.file}: missing (it held ${t.bytes} bytes at the last shutdown)` : `${t.file}: ${t.bytes} bytes shorter than at the last shutdown (${t.sizeAtShutdown})`,
    ),
  ];
  return parts.join('; ');
}

/** Records the size of each log once the database is closed, for the next start to compare. */
export async function recordShutdown(dir: string): Promise<void> {
  const sizes: Record<string, number> = {};
  for (const file of await logFiles(dir)) sizes[file] = (await stat(join(dir, file))).size;
  const path = join(dir, SHUTDOWN_FILE);
  await writeFile(path, JSON.stringify(sizes));
  const handle = await open(path, 'r');
  await handle.sync().finally(() => handle.close());
}

/**
 * Forgets the sizes recorded at shutdown, durably: once LevelDB has opened the database it replaces
 * those logs, and a stale record would report them as lost after a crash.
 */
export async function forgetShutdown(dir: string): Promise<void> {
  try {
    await unlink(join(dir, SHUTDOWN_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const handle = await open(dir, 'r');
  await handle.sync().finally(() => handle.close());
}

async function logFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => /^\d+\.log$/.test(name)).sort();
}

async function readShutdownSizes(dir: string): Promise<Record<string, number> | null> {
  let text: string;
  try {
    text = await readFile(join(dir, SHUTDOWN_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    return JSON.parse(text) as Record<string, number>;
  } catch {
    // Torn by a crash while it was written: it proves nothing either way.
    return null;
  }
}

/** The ranges of one log that LevelDB's reader reports as corrupt (db/log_reader.cc, db/db_impl.cc RecoverLogFile). */
export function scanLog(file: string, bytes: Uint8Array): Dropped[] {
  const dropped: Dropped[] = [];
  const report = (offset: number, length: number, reason: string): void => {
    if (length > 0) dropped.push({ file, offset, bytes: length, reason });
  };
  // The fragmented logical record being assembled: where it started and how long it is so far.
  let fragmentStart = -1;
  let fragmentLength = 0;
  const endFragment = (complete: boolean, at: number, length: number): void => {
    if (complete && length < MIN_BATCH) report(at, length, 'log record too small');
    fragmentStart = -1;
    fragmentLength = 0;
  };
  for (let block = 0; block < bytes.length; block += BLOCK_SIZE) {
    const end = Math.min(bytes.length, block + BLOCK_SIZE);
    const eof = end === bytes.length && end - block < BLOCK_SIZE;
    let at = block;
    while (end - at >= HEADER_SIZE) {
      const length = bytes[at + 4]! | (bytes[at + 5]! << 8);
      const type = bytes[at + 6]!;
      if (HEADER_SIZE + length > end - at) {
        // At the end of the file: a write cut short, not reported (nor is the fragment it ends).
        if (!eof) badRecord(at, end - at, 'bad record length');
        else if (fragmentStart >= 0) endFragment(false, fragmentStart, fragmentLength);
        at = end;
        break;
      }
      if (type === RecordType.Zero && length === 0) {
        // Preallocated space: the rest of the block is skipped without a report.
        badRecord(at, 0, '');
        at = end;
        break;
      }
      if (maskedCrc32c(bytes, at + 6, 1 + length) !== readUint32LE(bytes, at)) {
        badRecord(at, end - at, 'checksum mismatch');
        at = end;
        break;
      }
      const payload = at + HEADER_SIZE;
      switch (type) {
        case RecordType.Full:
          if (fragmentStart >= 0) report(fragmentStart, fragmentLength, 'partial record without end(1)');
          endFragment(true, at, length);
          break;
        case RecordType.First:
          if (fragmentStart >= 0) report(fragmentStart, fragmentLength, 'partial record without end(2)');
          fragmentStart = at;
          fragmentLength = length;
          break;
        case RecordType.Middle:
          if (fragmentStart < 0) report(payload, length, 'missing start of fragmented record(1)');
          else fragmentLength += length;
          break;
        case RecordType.Last:
          if (fragmentStart < 0) report(payload, length, 'missing start of fragmented record(2)');
          else endFragment(true, fragmentStart, fragmentLength + length);
          break;
        default:
          report(at, length + (fragmentStart >= 0 ? fragmentLength : 0), `unknown record type ${type}`);
          fragmentStart = -1;
          fragmentLength = 0;
      }
      at += HEADER_SIZE + length;
    }
    // Fewer than HEADER_SIZE bytes left in a block are its trailer (or, at the end, a header cut short).
  }
  return dropped;

  /** A damaged block: its rest is dropped, and a fragment in progress with it. */
  function badRecord(at: number, length: number, reason: string): void {
    report(at, length, reason);
    if (fragmentStart >= 0) report(fragmentStart, fragmentLength, 'error in middle of record');
    fragmentStart = -1;
    fragmentLength = 0;
  }
}

const readUint32LE = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

/**
 * CRC-32C (Castagnoli), reflected, eight tables: table k maps a byte to its CRC followed by k zero
 * bytes, so eight bytes are folded in per step (slicing-by-8) — 3.5 times the speed of a byte per
 * step on the benchmark machine, for every journal record and replica frame written and read.
 */
const CRC32C_TABLES = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const [first] = tables as [Uint32Array];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    first[n] = c >>> 0;
  }
  for (let k = 1; k < 8; k++) for (let n = 0; n < 256; n++) tables[k]![n] = (tables[k - 1]![n]! >>> 8) ^ first[tables[k - 1]![n]! & 0xff]!;
  return tables as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = CRC32C_TABLES;

/** The CRC-32C of `length` bytes of `b` from `start`, continuing `prior` (the CRC of the bytes before them). */
export function crc32c(b: Uint8Array, start: number, length: number, prior = 0): number {
  let crc = ~prior;
  let i = start;
  const end = start + length;
  for (const end8 = end - 7; i < end8; i += 8) {
    const low = crc ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
    crc = T7[low & 0xff]! ^ T6[(low >>> 8) & 0xff]! ^ T5[(low >>> 16) & 0xff]! ^ T4[low >>> 24]! ^ T3[b[i + 4]!]! ^ T2[b[i + 5]!]! ^ T1[b[i + 6]!]! ^ T0[b[i + 7]!]!;
  }
  for (; i < end; i++) crc = T0[(crc ^ b[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** LevelDB's stored form of a CRC-32C (util/crc32c.h Mask): rotated and offset, so a CRC of CRCs differs. */
function maskedCrc32c(b: Uint8Array, start: number, length: number): number {
  const crc = crc32c(b, start, length);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}
