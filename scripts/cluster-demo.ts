// `npm run cluster:demo`: etcd and three ArborMQ nodes on loopback, joined as one cluster.
// MQTT on 1883, 1884, 1885; /metrics, /health and /cluster on 9101, 9102, 9103; links on 7883-7885.
// State lives in a temp folder that is removed on Ctrl-C.
//
//   npm run cluster:demo -- --nodes 3 --base-port 1883 --etcd-port 2379
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const BIN = fileURLToPath(new URL('../bin/arbormq.js', import.meta.url));

const { values } = parseArgs({
  options: { nodes: { type: 'string', default: '3' }, 'base-port': { type: 'string', default: '1883' }, 'etcd-port': { type: 'string', default: '2379' } },
});
const count = Number(values.nodes);
const basePort = Number(values['base-port']);
const etcdPort = Number(values['etcd-port']);
// --base-port moves the HTTP and link ports along with the MQTT ones.
const httpPort = (i: number): number => basePort - 1883 + 9100 + i;
const linkPort = (i: number): number => basePort - 1883 + 7882 + i;

if (spawnSync('etcd', ['--version']).error) {
  console.error('cluster:demo needs etcd (Debian/Ubuntu: apt-get install etcd-server)');
  process.exit(1);
}

const dir = await mkdtemp(join(tmpdir(), 'arbormq-demo-'));
const children: ChildProcess[] = [];
const etcdUrl = `http://127.0.0.1:${etcdPort}`;
const peerUrl = `http://127.0.0.1:${etcdPort + 1}`;
const etcd = spawn(
  'etcd',
  ['--name', 'demo', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `demo=${peerUrl}`, '--log-level', 'error'],
  { stdio: ['ignore', 'ignore', openSync(join(dir, 'etcd.log'), 'w')] },
);
children.push(etcd);

const secretFile = join(dir, 'cluster.secret');
await writeFile(secretFile, `${crypto.randomUUID()}${crypto.randomUUID()}\n`, { mode: 0o600 });
for (let i = 1; i <= count; i++) {
  const config = join(dir, `n${i}.json`);
  await writeFile(
    config,
    JSON.stringify({
      listeners: [{ port: basePort + i - 1, host: '127.0.0.1' }],
      http: { port: httpPort(i), host: '127.0.0.1' },
      dataDir: join(dir, `n${i}`),
      logLevel: 'warn',
      cluster: { nodeId: `n${i}`, etcd: [etcdUrl], host: '127.0.0.1', port: linkPort(i), secretFile },
    }),
  );
  const node = spawn(process.execPath, [BIN, '-c', config], { stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(node);
}

const ready = async (): Promise<boolean> => {
  for (let i = 1; i <= count; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${httpPort(i)}/health`)).status !== 200) return false;
    } catch {
      return false;
    }
  }
  return true;
};
for (const deadline = Date.now() + 30_000; !(await ready()); ) {
  if (Date.now() > deadline) {
    console.error('the nodes did not become healthy within 30 s');
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}

console.log(`
ArborMQ cluster demo: ${count} nodes and etcd on loopback (state in ${dir})
  MQTT:    ${Array.from({ length: count }, (_, i) => `mqtt://127.0.0.1:${basePort + i}`).join('  ')}
  health:  ${Array.from({ length: count }, (_, i) => `http://127.0.0.1:${httpPort(i + 1)}/health`).join('  ')}
  status:  node bin/arbormq.js cluster status --cluster-etcd ${etcdUrl}
Try:  mosquitto_sub -p ${basePort + 1} -t 'demo/#' -v   and   mosquitto_pub -p ${basePort} -t demo/hello -m hi
Ctrl-C stops everything.
`);

const stop = async (): Promise<void> => {
  await Promise.all(
    children.reverse().map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }),
  );
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
