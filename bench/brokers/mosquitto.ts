// Starts Mosquitto on a free loopback port and stays as its watchdog: the orchestrator measures
// the mosquitto pid reported here, and mosquitto is killed when this runner's stdin closes.
// ARBORMQ_BENCH_ACL_FILE (the fan-out-acl scenario) becomes its acl_file.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mosquittoPath } from './mosquitto-path.js';
import { serve } from './probe.js';

/** Raised to match the ArborMQ runner's limits (see ARBORMQ_OPTIONS). */
const MOSQUITTO_CONF = [
  'allow_anonymous true',
  'max_queued_messages 100000',
  'max_inflight_messages 100',
  'set_tcp_nodelay true',
  'persistence false',
  'log_dest stderr',
  'log_type error',
  'log_type warning',
  'connection_messages false',
];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const bin = mosquittoPath();
if (!bin) {
  process.stderr.write('mosquitto: not installed\n');
  process.exit(3);
}
const version = /mosquitto version (\S+)/.exec(spawnSync(bin, ['-h'], { encoding: 'utf8' }).stdout)?.[1] ?? 'unknown';
const dir = mkdtempSync(join(tmpdir(), 'arbormq-bench-mosquitto-'));
let child: ChildProcess | null = null;
let stderr = '';
const aclFile = process.env.ARBORMQ_BENCH_ACL_FILE || undefined;
const config = [...MOSQUITTO_CONF, ...(aclFile ? [`acl_file ${aclFile}`] : [])];

// Another process may take the port between freePort() and mosquitto's bind: try a few ports.
for (let attempt = 0; attempt < 5 && child === null; attempt++) {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, ...config, ''].join('\n'));
  const c = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  c.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let up = false;
  for (let i = 0; i < 50 && c.exitCode === null && !up; i++) {
    await new Promise((r) => setTimeout(r, 50));
    up = await accepts(port);
  }
  if (up) {
    child = c;
    c.once('exit', (code, signal) => {
      process.stderr.write(`mosquitto exited (${code ?? signal}): ${stderr}\n`);
      process.exit(1);
    });
    serve(
      { port, pid: c.pid!, info: { version, config } },
      () => ({}),
      () => {
        c.removeAllListeners('exit');
        c.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      },
      false,
    );
  } else {
    c.kill('SIGKILL');
  }
}
if (child === null) {
  rmSync(dir, { recursive: true, force: true });
  process.stderr.write(`mosquitto did not start: ${stderr}\n`);
  process.exit(1);
}
