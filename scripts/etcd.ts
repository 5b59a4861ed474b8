// A throw-away single-member etcd on free loopback ports, for the cluster tests and benchmarks.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why etcd cannot run here, or undefined when it is installed (CI installs Debian's etcd-server). */
export const etcdMissing: string | undefined =
  spawnSync('etcd', ['--version']).error === undefined ? undefined : 'etcd is not installed (apt-get install etcd-server)';

export interface LocalEtcd {
  /** Client URL, http://127.0.0.1:<port>. */
  url: string;
  /** Stops the process (SIGTERM) and keeps its data. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  restart(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

/** Every etcd started here and still running: killed if this process exits without stopping it (a crash). */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`);
    return res.ok && ((await res.json()) as { health: string }).health === 'true';
  } catch {
    return false;
  }
}

/** A single-member etcd with its data in a temp folder, stopped by PID. */
export async function startEtcd(): Promise<LocalEtcd> {
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | null = null;
  const logs: string[] = [];
  const start = async (): Promise<void> => {
    const started = spawn(
      'etcd',
      [
        '--name', 'local',
        '--data-dir', join(dir, 'data'),
        '--listen-client-urls', url,
        '--advertise-client-urls', url,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `local=${peer}`,
        '--log-level', 'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = started;
    running.add(started);
    started.once('exit', () => running.delete(started));
    started.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    for (const deadline = performance.now() + 15_000; !(await healthy(url)); await new Promise((r) => setTimeout(r, 50))) {
      if (started.exitCode !== null || started.signalCode !== null) throw new Error(`etcd exited: ${logs.join('')}`);
      if (performance.now() > deadline) throw new Error(`etcd did not answer /health within 15 s: ${logs.join('')}`);
    }
  };
  const stop = async (): Promise<void> => {
    const stopping = child;
    child = null;
    if (!stopping || stopping.exitCode !== null || stopping.signalCode !== null) return;
    const exited = once(stopping, 'exit');
    stopping.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url,
    stop,
    restart: start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
