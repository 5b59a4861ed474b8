import { parseArgs } from 'node:util';
import { jsonLogger } from './log.js';
import { ArborServer } from './server.js';

const USAGE = `Usage: arbormq [options]

An MQTT 3.1, 3.1.1 and 5.0 broker with a WebAssembly core.

Options:
  -p, --port <port>   TCP port to listen on (default 1883)
      --host <addr>   address to bind (default 0.0.0.0)
  -v, --verbose       log every connection event (debug level)
  -h, --help          show this help
`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
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
  const port = values.port === undefined ? 1883 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`arbormq: --port must be an integer from 0 to 65535, got ${JSON.stringify(values.port)}\n`);
    return 2;
  }
  const logger = jsonLogger(values.verbose ? 'debug' : 'info');
  let server: ArborServer;
  try {
    server = await ArborServer.start({ listeners: [{ port, host: values.host }], logger });
  } catch (error) {
    logger('error', 'could not start', { error: (error as Error).message });
    return 1;
  }
  for (const a of server.addresses()) logger('info', 'listening', { protocol: 'mqtt', address: a.address, port: a.port });
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger('info', 'shutting down', { signal });
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  logger('info', 'stopped');
  return 0;
}
