import { writeFile } from 'node:fs/promises';
import { formatHash, hashPassword } from '../../host/node/password-file.js';

/** Writes a password file in which every one of `users` has `password` (few hashing rounds: tests need no strength). */
export async function writePasswordFile(path: string, users: string[], password = 'pw'): Promise<void> {
  const secret = new TextEncoder().encode(password);
  const lines = await Promise.all(users.map(async (user) => `${user}:${formatHash(await hashPassword(secret, 5))}\n`));
  await writeFile(path, lines.join(''));
}
