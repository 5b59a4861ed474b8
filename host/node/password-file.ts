import { pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/**
 * PBKDF2 rounds for new hashes. Every CONNECT with a password pays this once (on the libuv thread
 * pool, not the event loop): ~6 ms here at 10,000 rounds of HMAC-SHA512. Mosquitto writes 101, which
 * is cheap to brute-force; `arbormq passwd -I` chooses another count per entry.
 */
export const DEFAULT_ITERATIONS = 10_000;
const SALT_BYTES = 12;
const HASH_BYTES = 64;

/** A stored credential: Mosquitto 2's `$7$` format, PBKDF2-HMAC-SHA512. */
export interface PasswordHash {
  iterations: number;
  salt: Buffer;
  hash: Buffer;
}

/** A password file that cannot be used; the message names the file and line. */
export class PasswordFileError extends Error {}

/** A user name a password file can hold (the file is `name:hash` lines). */
export function checkUsername(username: string): string | null {
  if (username.length === 0) return 'the user name is empty';
  if (username.includes(':')) return 'a user name cannot contain ":"';
  if (/[\r\n]/.test(username)) return 'a user name cannot contain a line break';
  return null;
}

export async function hashPassword(password: Uint8Array, iterations = DEFAULT_ITERATIONS): Promise<PasswordHash> {
  const salt = randomBytes(SALT_BYTES);
  return { iterations, salt, hash: await pbkdf2Async(password, salt, iterations, HASH_BYTES, 'sha512') };
}

export const formatHash = (h: PasswordHash): string => `$7$${h.iterations}$${h.salt.toString('base64')}$${h.hash.toString('base64')}`;

/** Parses `$7$iterations$salt$hash`; null if it is not that format. */
export function parseHash(text: string): PasswordHash | null {
  const m = /^\$7\$(\d{1,9})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(text);
  if (!m) return null;
  const iterations = Number(m[1]);
  const hash = Buffer.from(m[3]!, 'base64');
  if (iterations < 1 || hash.length === 0) return null;
  return { iterations, salt: Buffer.from(m[2]!, 'base64'), hash };
}

/** A stand-in checked for unknown users, so a reply takes as long whether or not the user exists. */
const DECOY: PasswordHash = { iterations: DEFAULT_ITERATIONS, salt: randomBytes(SALT_BYTES), hash: randomBytes(HASH_BYTES) };

/**
 * The users of a password file, as `mosquitto_passwd` writes it (`user:$7$…`, so files can move
 * between Mosquitto and ArborMQ in both directions). Verification runs on the thread pool.
 */
export class PasswordFile {
  private constructor(readonly users: ReadonlyMap<string, PasswordHash>) {}

  static async load(path: string): Promise<PasswordFile> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new PasswordFileError(`cannot read password file ${path}: ${(error as Error).message}`);
    }
    return PasswordFile.parse(text, path);
  }

  static parse(text: string, source = 'password file'): PasswordFile {
    const users = new Map<string, PasswordHash>();
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim().length === 0 || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const where = `${source} line ${i + 1}`;
      if (colon <= 0) throw new PasswordFileError(`${where}: expected "user:hash"`);
      const hash = parseHash(line.slice(colon + 1).trim());
      if (!hash) {
        throw new PasswordFileError(`${where}: the hash is not in the $7$ (PBKDF2-SHA512) format; set the password again with \`arbormq passwd\``);
      }
      users.set(line.slice(0, colon), hash);
    });
    return new PasswordFile(users);
  }

  async verify(username: string, password: Uint8Array | undefined): Promise<boolean> {
    const stored = this.users.get(username);
    const entry = stored ?? DECOY;
    const derived = await pbkdf2Async(password ?? new Uint8Array(0), entry.salt, entry.iterations, entry.hash.length, 'sha512');
    return timingSafeEqual(derived, entry.hash) && stored !== undefined && password !== undefined;
  }
}

/**
 * Sets (hash) or removes (null) one user's line, keeping every other line as it was. The file is
 * replaced atomically and readable by its owner only. Returns false when removing a user that is not there.
 */
export async function updatePasswordFile(path: string, username: string, hash: PasswordHash | null, create: boolean): Promise<boolean> {
  let lines: string[] = [];
  let mode = 0o600;
  if (!create) {
    try {
      lines = (await readFile(path, 'utf8')).split(/\r?\n/);
      mode = (await stat(path)).mode & 0o777;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  if (lines.at(-1) === '') lines.pop();
  const index = lines.findIndex((l) => l.slice(0, l.indexOf(':')) === username && l.indexOf(':') > 0);
  if (hash === null) {
    if (index < 0) return false;
    lines.splice(index, 1);
  } else if (index >= 0) {
    lines[index] = `${username}:${formatHash(hash)}`;
  } else {
    lines.push(`${username}:${formatHash(hash)}`);
  }
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, lines.map((l) => `${l}\n`).join(''), { mode });
  await chmod(temporary, mode);
  await rename(temporary, path);
  return true;
}
