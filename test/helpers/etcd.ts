import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './server.js';
import { until } from './wait.js';

/** Why cluster tests skip here, or undefined when etcd is installed (CI installs Debian's etcd-server). */
export const etcdMissing: string | undefined =
  spawnSync('etcd', ['--version']).error === undefined ? undefined : 'etcd is not installed (apt-get install etcd-server)';

export interface TestEtcd {
  /** Client URL, http://127.0.0.1:<port>. */
  url: string;
  /** Stops the process (SIGTERM) and keeps its data. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  restart(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

/** A single-member etcd on free loopback ports with its data in a temp folder, stopped by PID. */
export async function startEtcd(): Promise<TestEtcd> {
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | null = null;
  const logs: string[] = [];
  const start = async (): Promise<void> => {
    child = spawn(
      'etcd',
      [
        '--name', 'test',
        '--data-dir', join(dir, 'data'),
        '--listen-client-urls', url,
        '--advertise-client-urls', url,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `test=${peer}`,
        '--log-level', 'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    const exited = once(child, 'exit');
    const healthy = until(
      async () => {
        try {
          const res = await fetch(`${url}/health`);
          return res.ok && ((await res.json()) as { health: string }).health === 'true';
        } catch {
          return false;
        }
      },
      'etcd to answer /health',
      15_000,
    );
    const first = await Promise.race([healthy.then(() => 'up' as const), exited.then(() => 'exited' as const)]);
    if (first === 'exited') throw new Error(`etcd exited: ${logs.join('')}`);
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGTERM');
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
