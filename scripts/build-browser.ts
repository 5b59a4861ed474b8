// `npm run build:browser`: bundles `arbormq/browser` with esbuild into dist/browser/ —
// arbormq.js (ES module), arbormq-worker.js (the SharedWorker, a classic script), arbor.wasm
// (copied from build/) — and fails if a Node built-in sneaks into either bundle or the
// bundle outgrows its size budget.
import { builtinModules } from 'node:module';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions, type Plugin } from 'esbuild';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT_DIR = join(ROOT, 'dist/browser');
export const WASM = join(ROOT, 'build/arbor.wasm');

/** What the browser downloads (wasm + the page bundle, gzip) may not exceed this. */
export const BUDGET_GZIP_BYTES = 100 * 1024;

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Fails the build on any import of a Node built-in, naming the importer. */
export const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (!NODE_BUILTINS.has(args.path) && !args.path.startsWith('node:')) return undefined;
      return { errors: [{ text: `Node built-in "${args.path}" imported by ${args.importer.replace(`${ROOT}/`, '')}: the browser bundle must not use Node modules` }] };
    });
  },
};

const common: BuildOptions = {
  bundle: true,
  platform: 'browser',
  target: ['es2022', 'chrome100', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'silent',
  plugins: [noNodeBuiltins],
  // Node's globals have no place in a browser bundle either.
  define: { 'process.env.NODE_ENV': '"production"' },
};

export const ENTRIES = {
  'arbormq.js': { entryPoints: [join(ROOT, 'host/browser/index.ts')], format: 'esm' },
  'arbormq-worker.js': { entryPoints: [join(ROOT, 'host/browser/worker.ts')], format: 'iife' },
} satisfies Record<string, BuildOptions>;

/** Builds both bundles; with `write: false` returns their text (the browser tests serve it from memory). */
export async function buildBrowser(options: { write: boolean; outDir?: string; minify?: boolean }): Promise<Map<string, Uint8Array>> {
  const outDir = options.outDir ?? OUT_DIR;
  const files = new Map<string, Uint8Array>();
  for (const [name, entry] of Object.entries(ENTRIES)) {
    const result = await build({ ...common, ...entry, minify: options.minify ?? true, outfile: join(outDir, name), write: options.write, metafile: true });
    for (const w of result.warnings) process.stderr.write(`build:browser: warning: ${w.text}\n`);
    for (const f of result.outputFiles ?? []) files.set(f.path.slice(outDir.length + 1), f.contents);
  }
  if (options.write) {
    await mkdir(outDir, { recursive: true });
    await copyFile(WASM, join(outDir, 'arbor.wasm'));
  }
  return files;
}

export interface BundleSize {
  file: string;
  raw: number;
  gzip: number;
}

export async function bundleSizes(outDir = OUT_DIR): Promise<BundleSize[]> {
  const sizes: BundleSize[] = [];
  for (const file of ['arbor.wasm', 'arbormq.js', 'arbormq-worker.js']) {
    const bytes = await readFile(join(outDir, file));
    sizes.push({ file, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
  }
  return sizes;
}

async function main(): Promise<void> {
  try {
    await readFile(WASM);
  } catch {
    throw new Error(`${WASM} is missing: run \`npm run build:wasm\` first`);
  }
  await buildBrowser({ write: true });
  const sizes = await bundleSizes();
  const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
  for (const s of sizes) process.stderr.write(`build:browser: dist/browser/${s.file} ${kb(s.raw)} (gzip ${kb(s.gzip)})\n`);
  const page = sizes.filter((s) => s.file !== 'arbormq-worker.js').reduce((n, s) => n + s.gzip, 0);
  if (page > BUDGET_GZIP_BYTES) throw new Error(`the browser bundle (arbor.wasm + arbormq.js) is ${kb(page)} gzip, over its budget of ${kb(BUDGET_GZIP_BYTES)}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`build:browser: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
