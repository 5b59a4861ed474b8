// The package as users get it: `npm pack` of this checkout (its built dist/), installed into an
// empty folder from the tarball and the npm registry — then `npx arbormq` serves a client,
// `import { ArborServer } from 'arbormq'` runs and type-checks with the shipped declarations, and
// esbuild bundles `arbormq/browser` and `arbormq/browser/inline` for the browser.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { noNodeBuiltins, ROOT } from '../../scripts/build-browser.js';
import { collect, connectClient } from '../helpers/broker.js';
import { kill, startCli, type RunningCli } from '../helpers/cli.js';

const run = promisify(execFile);

/** Why the test cannot run here, or false: it installs the dependencies from the registry. */
const skipWithoutRegistry: string | false = spawnSync('npm', ['ping'], { timeout: 10_000 }).status === 0 ? false : 'the npm registry is unreachable (npm ping failed)';

describe('the npm package', { skip: skipWithoutRegistry }, () => {
  let dir: string;
  let app: string;
  let cli: RunningCli | undefined;

  before(async () => {
    for (const built of ['dist/host/node/index.js', 'dist/host/node/index.d.ts', 'dist/browser/arbormq.js', 'dist/dashboard/index.html', 'build/arbor.wasm']) {
      assert.ok(existsSync(join(ROOT, built)), `${built} is missing: run \`npm run build\` first`);
    }
    dir = await mkdtemp(join(tmpdir(), 'arbormq-package-'));
    app = join(dir, 'app');
    await mkdir(app);
    // Without scripts: `prepare` would rebuild dist/ under the other tests' feet.
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT });
    const [tarball] = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack made a tarball');
    // @types/node: a TypeScript user of a Node library brings it.
    await run('npm', ['install', '--no-audit', '--no-fund', join(dir, tarball), '@types/node@20'], { cwd: app, timeout: 60_000 });
  });
  after(async () => {
    await kill(cli);
    await rm(dir, { recursive: true, force: true });
  });

  it('npx arbormq starts a broker that serves a client, and stops on SIGTERM', async () => {
    cli = await startCli(['--port', '0', '--host', '127.0.0.1', '--memory'], { cwd: app, command: ['npx', '--no-install', 'arbormq'] });
    const url = `mqtt://127.0.0.1:${cli.ports.get('mqtt')}`;
    const client = await connectClient(url, { protocolVersion: 5 });
    await client.subscribeAsync('pkg/#', { qos: 1 });
    await client.publishAsync('pkg/hello', 'from the package', { qos: 1 });
    assert.equal((await collect(client, 1))[0]!.payload.toString(), 'from the package');
    await client.endAsync();
    // SIGTERM to the group, as Ctrl-C or systemd would: the broker shuts down cleanly (npx itself just dies of it).
    await cli.stop();
    assert.ok(cli.logs.some((l) => l.includes('"msg":"stopped"') && l.includes('"clean":true')), cli.logs.join('\n'));
  });

  it("import { ArborServer } from 'arbormq' runs, and type-checks with the package's declarations", async () => {
    await writeFile(
      join(app, 'server.mts'),
      `import { ArborServer, type ServerOptions } from 'arbormq';
import { createBroker, type BrowserBroker } from 'arbormq/browser';
import { createBroker as createInline } from 'arbormq/browser/inline';

const options: ServerOptions = { listeners: [{ port: 0, host: '127.0.0.1' }], memory: true };
const server: ArborServer = await ArborServer.start(options);
const port: number = server.port;
// @ts-expect-error: the declarations know listeners is a list
export const wrong: ServerOptions = { listeners: 'everywhere' };
export const browser: (o?: { store?: 'memory' }) => Promise<BrowserBroker> = createBroker;
export const inline: typeof createBroker = createInline;
await server.close();
console.log(JSON.stringify({ port }));
`,
    );
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', skipLibCheck: true, types: ['node'] }, files: ['server.mts'] }),
    );
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app });
    const { stdout } = await run(process.execPath, [join('out', 'server.mjs')], { cwd: app });
    assert.ok((JSON.parse(stdout) as { port: number }).port > 0, stdout);
  });

  it('esbuild bundles arbormq/browser and arbormq/browser/inline for the browser, without a Node built-in', async () => {
    await writeFile(join(app, 'page.js'), "import { createBroker } from 'arbormq/browser';\nimport { createBroker as inline } from 'arbormq/browser/inline';\nwindow.brokers = [createBroker, inline];\n");
    const result = await build({ entryPoints: [join(app, 'page.js')], absWorkingDir: app, bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent', plugins: [noNodeBuiltins] });
    assert.deepEqual(result.errors, []);
    const text = new TextDecoder().decode(result.outputFiles[0]!.contents);
    assert.match(text, /window\.brokers/);
    // The inline entry carries the core: the wasm magic number \0asm, base64-encoded in the bundle.
    assert.match(text, /AGFzbQ/);
  });
});
