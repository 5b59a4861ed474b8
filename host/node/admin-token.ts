import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from './config-error.js';

/** Shorter tokens are refused: the admin API can disconnect every client. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * The admin API's bearer token, read from a file (one line; surrounding whitespace is not part of
 * it) and read again on reload, so it can be rotated without a restart.
 */
export class AdminToken {
  private constructor(
    private readonly path: string,
    private digest: Buffer,
  ) {}

  static async load(path: string): Promise<AdminToken> {
    return new AdminToken(path, await readToken(path));
  }

  /** Reads the file again; the function it resolves with puts the new token in force. */
  async prepareReload(): Promise<() => void> {
    const digest = await readToken(this.path);
    return () => {
      this.digest = digest;
    };
  }

  /** Does an Authorization header carry the token? (Compared in constant time.) */
  accepts(authorization: string | undefined): boolean {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    return match !== null && timingSafeEqual(sha256(match[1]!), this.digest);
  }
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

async function readToken(path: string): Promise<Buffer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError('http.adminTokenFile', `cannot read ${path}: ${(error as Error).message}`);
  }
  const token = text.trim();
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new ConfigError('http.adminTokenFile', `${path} must hold one token of at least ${MIN_TOKEN_LENGTH} characters without spaces (e.g. openssl rand -hex 32 > ${path})`);
  }
  return sha256(token);
}
