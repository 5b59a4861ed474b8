import { parseArgs } from 'node:util';
import { checkUsername, DEFAULT_ITERATIONS, hashPassword, updatePasswordFile } from './password-file.js';

export const PASSWD_USAGE = `Usage: arbormq passwd [-c] [-I iterations] FILE USER
       arbormq passwd -D FILE USER

Sets USER's password in the password file FILE (created if missing), as mosquitto_passwd does;
the file works with both brokers. The password is prompted for twice on a terminal, or read
from the first line of standard input otherwise:

  printf '%s\\n' "$PASSWORD" | arbormq passwd /etc/arbormq/passwd alice

Options:
  -c                  create FILE anew, dropping every user already in it
  -D                  delete USER from FILE
  -I <iterations>     PBKDF2-SHA512 rounds for this password (default ${DEFAULT_ITERATIONS})
  -h, --help          show this help

Send the broker SIGHUP to make it read the file again.
`;

/** Standard streams, so tests can drive the command without a terminal. */
export interface PasswdIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** `arbormq passwd`: returns the exit code (0 done, 1 failed, 2 bad usage). */
export async function passwd(argv: string[], io: PasswdIo = process): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        create: { type: 'boolean', short: 'c' },
        delete: { type: 'boolean', short: 'D' },
        iterations: { type: 'string', short: 'I' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    io.stderr.write(`arbormq passwd: ${(error as Error).message}\n\n${PASSWD_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(PASSWD_USAGE);
    return 0;
  }
  if (positionals.length !== 2) {
    io.stderr.write(`arbormq passwd: expected FILE and USER\n\n${PASSWD_USAGE}`);
    return 2;
  }
  const [file, username] = positionals as [string, string];
  const invalid = checkUsername(username);
  if (invalid) {
    io.stderr.write(`arbormq passwd: ${invalid}\n`);
    return 2;
  }
  if (values.delete && values.create) {
    io.stderr.write('arbormq passwd: -c and -D cannot be combined\n');
    return 2;
  }
  let iterations = DEFAULT_ITERATIONS;
  if (values.iterations !== undefined) {
    iterations = Number(values.iterations);
    if (!/^\d+$/.test(values.iterations) || iterations < 1 || iterations > 100_000_000) {
      io.stderr.write(`arbormq passwd: -I must be an integer from 1 to 100000000, got ${JSON.stringify(values.iterations)}\n`);
      return 2;
    }
  }
  try {
    if (values.delete) {
      if (!(await updatePasswordFile(file, username, null, false))) {
        io.stderr.write(`arbormq passwd: user ${JSON.stringify(username)} is not in ${file}\n`);
        return 1;
      }
      return 0;
    }
    const password = await readPassword(io);
    if (password === null) return 1;
    await updatePasswordFile(file, username, await hashPassword(new TextEncoder().encode(password), iterations), values.create === true);
    return 0;
  } catch (error) {
    io.stderr.write(`arbormq passwd: ${(error as Error).message}\n`);
    return 1;
  }
}

/** The new password: typed twice without echo on a terminal, else the first line of stdin. Null after a message on failure. */
async function readPassword(io: PasswdIo): Promise<string | null> {
  let password: string;
  if (io.stdin.isTTY) {
    password = await promptHidden(io, 'Password: ');
    const again = await promptHidden(io, 'Reenter password: ');
    if (password !== again) {
      io.stderr.write('arbormq passwd: the passwords do not match\n');
      return null;
    }
  } else {
    let text = '';
    for await (const chunk of io.stdin) text += chunk.toString();
    password = text.split(/\r?\n/)[0] ?? '';
  }
  if (password.length === 0) {
    io.stderr.write('arbormq passwd: the password is empty\n');
    return null;
  }
  return password;
}

/** Reads one line from a terminal in raw mode, echoing nothing. */
function promptHidden(io: PasswdIo, prompt: string): Promise<string> {
  const stdin = io.stdin;
  io.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let line = '';
    stdin.setRawMode(true);
    stdin.resume();
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(line);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new Error('interrupted'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      io.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}
