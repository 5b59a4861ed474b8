// A real Mosquitto broker for a test: its own temp directory and config, a free loopback port,
// started and stopped by PID. Tests that need it skip visibly where it is not installed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { until } from './wait.js';
import { freePort } from './server.js';

/** Why Mosquitto tests skip, or false when the `mosquitto` binary is there. */
export const skipWithoutMosquitto: string | false =
  spawnSync('sh', ['-c', 'command -v mosquitto || test -x /usr/sbin/mosquitto']).status === 0 ? false : 'mosquitto is not installed (apt-get install mosquitto)';

const BINARY = spawnSync('sh', ['-c', 'command -v mosquitto']).stdout?.toString().trim() || '/usr/sbin/mosquitto';

export interface Mosquitto {
  port: number;
  url: string;
  /** Its directory: config, persistence file, log. */
  dir: string;
  /** Everything it logged. */
  log(): string;
  /** Sends `signal` (default SIGTERM: Mosquitto saves its persistence file) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (after stop()). */
  restart(): Promise<void>;
  /** Stops it if running and removes its directory. */
  remove(): Promise<void>;
}

/**
 * Starts Mosquitto on 127.0.0.1 with anonymous access and persistence in its temp directory;
 * `config` adds lines to its config file.
 */
export async function startMosquitto(config: string[] = []): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-mosquitto-'));
  const port = await freePort();
  await writeFile(
    join(dir, 'mosquitto.conf'),
    // `user`: started as root, Mosquitto would become "mosquitto", who cannot write the temp directory.
    [`listener ${port} 127.0.0.1`, `user ${userInfo().username}`, 'allow_anonymous true', 'persistence true', `persistence_location ${dir}/`, 'log_dest stderr', 'log_type all', ...config, ''].join('\n'),
  );
  let child: ChildProcess | null = null;
  let output = '';
  const start = async (): Promise<void> => {
    const c = spawn(BINARY, ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = once(c, 'exit').then(() => {
      throw new Error(`mosquitto exited at start: ${output}`);
    });
    exited.catch(() => undefined);
    // Ready once it accepts a TCP connection.
    await until(() => Promise.race([accepts(port), exited]), `mosquitto to listen on ${port}`, 10_000).catch((error: Error) => {
      throw new Error(`${error.message}: ${output}`);
    });
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill(signal);
    await exited;
  };
  await start();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    log: () => output,
    stop,
    restart: start,
    async remove() {
      await stop('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
