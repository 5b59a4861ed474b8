import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/arbormq.js', import.meta.url));

export interface RunningCli {
  child: ChildProcess;
  /** Signals go to the child's whole process group (a wrapper like npx, and the broker under it). */
  group: boolean;
  /** Port of each `listening` log line, by protocol (mqtt, mqtts, ws, wss, http). */
  ports: Map<string, number>;
  logs: string[];
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `arbormq` as a real process; resolves once it has logged `listening` for `expect` listeners
 * (default 1). The process is killed by stop(), or SIGKILLed by kill() if a test failed first.
 * `command` runs it another way than this checkout's bin/arbormq.js, e.g. ['npx', 'arbormq']: then
 * it runs in a process group of its own, which stop() and kill() signal as a terminal or systemd
 * would (npx does not pass signals on to the command it runs).
 */
export async function startCli(args: string[], options: { env?: NodeJS.ProcessEnv; expect?: number; cwd?: string; command?: string[] } = {}): Promise<RunningCli> {
  const [file, ...before] = options.command ?? [process.execPath, BIN];
  const group = options.command !== undefined;
  const child = spawn(file!, [...before, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env }, cwd: options.cwd, detached: group });
  const logs: string[] = [];
  const ports = new Map<string, number>();
  const expect = options.expect ?? 1;
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stderr!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        let entry: { msg?: string; port?: number; protocol?: string };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          continue;
        }
        if (entry.msg === 'listening') {
          ports.set(entry.protocol!, entry.port!);
          if (ports.size === expect) resolve();
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`arbormq exited with ${code}: ${logs.join('\n')}`)));
  });
  const cli: RunningCli = {
    child,
    group,
    ports,
    logs,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      // 'close': every process holding the child's output (a group's broker too) has gone.
      const closed = once(child, 'close');
      signalCli(cli, signal);
      const [code] = (await closed) as [number | null];
      return code;
    },
  };
  return cli;
}

function signalCli(cli: RunningCli, signal: NodeJS.Signals): void {
  if (cli.group) process.kill(-cli.child.pid!, signal);
  else cli.child.kill(signal);
}

/** Kills a CLI process (or process group) left running by a failed test. */
export async function kill(cli: RunningCli | undefined): Promise<void> {
  if (!cli || cli.child.exitCode !== null || cli.child.signalCode !== null) {
    // The wrapper may be gone while the broker in its group runs on.
    if (cli?.group) {
      try {
        process.kill(-cli.child.pid!, 'SIGKILL');
      } catch {
        // the group is gone too
      }
    }
    return;
  }
  const closed = once(cli.child, 'close');
  signalCli(cli, 'SIGKILL');
  await closed;
}
