import { parseArgs } from 'node:util';
import type { Logger } from '../core/model/options.js';
import { loadConfig, type CommandLineSettings } from './config.js';
import { ConfigError } from './config-error.js';
import { LevelStore } from './level-store.js';
import { jsonLogger } from './log.js';
import { passwd } from './passwd-command.js';
import { ArborServer, packageVersion } from './server.js';

const USAGE = `Usage: arbormq [options]
       arbormq passwd [-c | -D] FILE USER      manage a password file (arbormq passwd --help)
       arbormq repair --data-dir <dir>         LevelDB's repair of a damaged data directory (broker stopped)
       arbormq cluster status [options]        the cluster's members, their links and route counts

An MQTT 3.1, 3.1.1 and 5.0 broker with a WebAssembly core.

Options:
  -c, --config <file>    JSON configuration file (see docs/CONFIGURATION.md)
  -p, --port <port>      port of the MQTT (TCP) listener (default 1883)
      --ws-port <port>   port of an MQTT-over-WebSocket listener on /mqtt, e.g. for browsers (default: none)
      --host <addr>      address to bind listeners that do not set their own (default 0.0.0.0)
      --data-dir <dir>   keep sessions, queues and retained messages here (default ./data)
      --memory           keep state in memory only (lost on exit), even if a data directory is set
      --durability <d>   sync (default: fsync every group commit) or os (see docs/PERSISTENCE.md)
      --strict           do not start if the database's write-ahead log is damaged (default: start,
                         and log what LevelDB skips)
      --node-id <id>     join a cluster as this node (see docs/CLUSTERING.md), with:
      --cluster-etcd <url[,url]>
                         the etcd the nodes agree through
      --cluster-port <port>
                         port of the node-to-node link listener (default 7883)
      --cluster-advertise <url>
                         link URL the other nodes dial (default ws://<address>:<port>)
      --cluster-secret-file <file>
                         the shared secret the links prove (it is never sent)
  -v, --verbose          log every connection event (debug level)
  -V, --version          print the version
  -h, --help             show this help

Every setting can also come from an ARBORMQ_* environment variable (ARBORMQ_PORT,
ARBORMQ_MAX_CONNECTIONS, ...). Command-line options win over the environment, which wins over
the config file. An invalid setting stops start-up with exit code 2.

Signals: SIGTERM / SIGINT shut down gracefully (a second one exits at once); SIGHUP reloads the
password and ACL files, the TLS certificates and keys, and the admin token file.
`;

/** Runs the command line; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'passwd') return passwd(argv.slice(1));
  if (argv[0] === 'repair') return repair(argv.slice(1));
  if (argv[0] === 'cluster') return (await import('./cluster/status-command.js')).clusterCommand(argv.slice(1));
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        'ws-port': { type: 'string' },
        host: { type: 'string' },
        'data-dir': { type: 'string' },
        memory: { type: 'boolean' },
        durability: { type: 'string' },
        strict: { type: 'boolean' },
        'node-id': { type: 'string' },
        'cluster-etcd': { type: 'string' },
        'cluster-port': { type: 'string' },
        'cluster-advertise': { type: 'string' },
        'cluster-secret-file': { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
        version: { type: 'boolean', short: 'V' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`arbormq: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`arbormq ${await packageVersion()}\n`);
    return 0;
  }
  const settings: CommandLineSettings = {
    config: values.config,
    port: values.port,
    wsPort: values['ws-port'],
    host: values.host,
    dataDir: values['data-dir'],
    memory: values.memory,
    durability: values.durability,
    strict: values.strict,
    verbose: values.verbose,
    cluster: {
      nodeId: values['node-id'],
      etcd: values['cluster-etcd'],
      port: values['cluster-port'],
      advertise: values['cluster-advertise'],
      secretFile: values['cluster-secret-file'],
    },
  };
  let config;
  try {
    config = await loadConfig(settings);
  } catch (error) {
    return startupFailed(error);
  }
  const logger = jsonLogger(config.logLevel);
  let server: ArborServer;
  try {
    server = await ArborServer.start({ ...config.server, logger });
  } catch (error) {
    if (error instanceof ConfigError) return startupFailed(error);
    logger('error', 'could not start', { error: (error as Error).message });
    return 1;
  }
  for (const { protocol, address } of server.endpoints()) logger('info', 'listening', { protocol, address: address.address, port: address.port });
  const http = server.httpAddress();
  if (http) {
    const paths = config.server.http?.adminTokenFile === undefined ? ['/metrics', '/health'] : ['/metrics', '/health', '/api/v1/', '/dashboard'];
    logger('info', 'listening', { protocol: 'http', address: http.address, port: http.port, paths });
  }
  return serveUntilSignal(server, logger);
}

/** `arbormq repair --data-dir DIR`: what to run when start-up reports a corrupt database. */
async function repair(argv: string[]): Promise<number> {
  let dir: string | undefined;
  try {
    dir = parseArgs({ args: argv, options: { 'data-dir': { type: 'string' } }, strict: true }).values['data-dir'];
  } catch (error) {
    process.stderr.write(`arbormq repair: ${(error as Error).message}\n`);
    return 2;
  }
  if (dir === undefined) {
    process.stderr.write('arbormq repair: --data-dir <dir> is required\n');
    return 2;
  }
  try {
    await LevelStore.repair(dir);
  } catch (error) {
    process.stderr.write(`arbormq repair: ${(error as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`repaired ${dir}; LevelDB's log of what it recovered is ${dir}/LOG\n`);
  return 0;
}

function startupFailed(error: unknown): number {
  if (error instanceof ConfigError) {
    process.stderr.write(`arbormq: invalid configuration: ${error.message}\n`);
    return 2;
  }
  throw error;
}

/** Runs until SIGTERM / SIGINT, then shuts down; SIGHUP reloads the files (ArborServer.reload). */
async function serveUntilSignal(server: ArborServer, logger: Logger): Promise<number> {
  const reload = (): void => {
    server.reload().then(
      (reloaded) => logger('info', 'reloaded', { reloaded }),
      (error: Error) => logger('error', 'reload failed; the previous settings stay in force', { error: error.message }),
    );
  };
  process.on('SIGHUP', reload);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.off('SIGHUP', reload);
  logger('info', 'shutting down', { signal });
  const again = (second: string): void => {
    logger('warn', 'second signal: exiting without finishing shutdown', { signal: second });
    process.exit(1);
  };
  process.once('SIGINT', again);
  process.once('SIGTERM', again);
  const { clean } = await server.close();
  logger(clean ? 'info' : 'warn', 'stopped', { clean });
  return clean ? 0 : 1;
}
