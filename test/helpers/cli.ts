import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/arbormq.js', import.meta.url));

export interface RunningCli {
  child: ChildProcess;
  /** Port of each `listening` log line, by protocol (mqtt, mqtts, ws, wss, http). */
  ports: Map<string, number>;
  logs: string[];
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `arbormq` as a real process; resolves once it has logged `listening` for `expect` listeners
 * (default 1). The process is killed by stop(), or SIGKILLed by kill() if a test failed first.
 */
export async function startCli(args: string[], options: { env?: NodeJS.ProcessEnv; expect?: number; cwd?: string } = {}): Promise<RunningCli> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env }, cwd: options.cwd });
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
  return {
    child,
    ports,
    logs,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

/** Kills a CLI process left running by a failed test. */
export async function kill(cli: RunningCli | undefined): Promise<void> {
  if (!cli || cli.child.exitCode !== null || cli.child.signalCode !== null) return;
  const exited = once(cli.child, 'exit');
  cli.child.kill('SIGKILL');
  await exited;
}
