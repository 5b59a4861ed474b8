// Every process the harness starts is registered here and killed by pid when the harness
// exits, whether it finished, failed or was interrupted.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));

const live = new Set<ChildProcess>();
/** Extra pids to kill at exit (Mosquitto, started by its runner). */
const extraPids = new Set<number>();

function killAll(): void {
  for (const c of live) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  for (const pid of extraPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

export function trackPid(pid: number): void {
  extraPids.add(pid);
}

export function untrackPid(pid: number): void {
  extraPids.delete(pid);
}

/**
 * Starts a TypeScript entry point under Node + tsx, with the open-files limit raised to the hard
 * limit first (the 10,000-connection scenario needs it), or to ARBORMQ_BENCH_NOFILE where the
 * environment has it and the user may raise the hard limit (root: bench/idle.ts's 100,000
 * connections). `exec` keeps the pid: it is Node's.
 */
export function spawnTs(entry: string, args: string[], options: SpawnOptions & { nodeFlags?: string[] } = {}): ChildProcess {
  const { nodeFlags = [], ...rest } = options;
  const child = spawn(
    '/bin/sh',
    ['-c', '{ [ -n "$ARBORMQ_BENCH_NOFILE" ] && ulimit -n "$ARBORMQ_BENCH_NOFILE"; } 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', process.execPath, '--import', 'tsx', ...nodeFlags, entry, ...args],
    { cwd: ROOT, ...rest },
  );
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
