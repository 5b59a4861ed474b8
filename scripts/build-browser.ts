// `npm run build:browser`: bundles `arbormq/browser` with esbuild into dist/browser/ —
// arbormq.js (the ES module apps import; the broker itself is a chunk it loads only when the broker
// runs in the tab), arbormq-inline.js (the same with the wasm core inside, for bundlers),
// arbormq-worker.js (the SharedWorker, a classic script) and arbor.wasm (copied from build/) — and
// fails if a Node built-in sneaks into a bundle or a mode's download outgrows its budget.
import { builtinModules } from 'node:module';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT_DIR = join(ROOT, 'dist/browser');
export const WASM = join(ROOT, 'build/arbor.wasm');

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
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'silent',
  absWorkingDir: ROOT,
  entryNames: '[name]',
  plugins: [noNodeBuiltins],
  // The inline entry carries arbor.wasm as bytes.
  loader: { '.wasm': 'binary' },
  // Node's globals have no place in a browser bundle either.
  define: { 'process.env.NODE_ENV': '"production"' },
};

/** The ES module entries, built together so that they share chunks (the broker's among them). */
export const MODULE_ENTRIES = {
  arbormq: join(ROOT, 'host/browser/index.ts'),
  'arbormq-inline': join(ROOT, 'host/browser/inline.ts'),
};
/** The SharedWorker: one classic script (module SharedWorkers are not everywhere SharedWorker is). */
export const WORKER_ENTRY = { 'arbormq-worker': join(ROOT, 'host/browser/worker.ts') };

/** Chunks are named for what they hold, plus a content hash (arbormq-local-broker-XXXXXXXX.js). */
const CHUNK_NAMES = 'arbormq-[name]-[hash]';

export interface BrowserBuild {
  /** Output files by name (as in dist/browser/), source maps included; arbor.wasm is not among them. */
  files: Map<string, Uint8Array>;
  /** Which JavaScript files each module entry loads: `static` at once, `lazy` when the broker runs in the tab. */
  loads: Map<string, { static: string[]; lazy: string[] }>;
}

/** Builds the bundles; with `write: false` returns their bytes (the browser tests serve them from memory). */
export async function buildBrowser(options: { write: boolean; outDir?: string; minify?: boolean }): Promise<BrowserBuild> {
  const outDir = options.outDir ?? OUT_DIR;
  const minify = options.minify ?? true;
  // Chunk names carry content hashes: the chunks of an earlier build must not linger beside these.
  if (options.write) await rm(outDir, { recursive: true, force: true });
  const results = [
    // Each module entry on its own: what it needs at once is one file, not chunks shared with the other.
    ...Object.entries(MODULE_ENTRIES).map(([name, entry]) =>
      build({ ...common, minify, entryPoints: { [name]: entry }, format: 'esm', splitting: true, chunkNames: CHUNK_NAMES, outdir: outDir, write: options.write, metafile: true }),
    ),
    build({ ...common, minify, entryPoints: WORKER_ENTRY, format: 'iife', outdir: outDir, write: options.write, metafile: true }),
  ];
  const files = new Map<string, Uint8Array>();
  const outputs: Metafile['outputs'] = {};
  for (const result of await Promise.all(results)) {
    for (const w of result.warnings) process.stderr.write(`build:browser: warning: ${w.text}\n`);
    for (const f of result.outputFiles ?? []) files.set(relative(outDir, f.path), f.contents);
    Object.assign(outputs, result.metafile.outputs);
  }
  if (options.write) {
    await mkdir(outDir, { recursive: true });
    await copyFile(WASM, join(outDir, 'arbor.wasm'));
    for (const name of Object.keys(outputs)) files.set(relative(outDir, resolve(ROOT, name)), await readFile(resolve(ROOT, name)));
  }
  return { files, loads: moduleLoads(outputs, outDir) };
}

/** For each entry module: the chunks it imports (transitively), and those it imports only dynamically. */
function moduleLoads(metafileOutputs: Metafile['outputs'], outDir: string): BrowserBuild['loads'] {
  const name = (output: string): string => relative(outDir, resolve(ROOT, output));
  const outputs = new Map(Object.entries(metafileOutputs).map(([path, o]) => [name(path), o]));
  const closure = (start: string[], kinds: string[]): string[] => {
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const i of outputs.get(file)?.imports ?? []) if (!i.external && kinds.includes(i.kind)) visit(name(i.path));
    };
    start.forEach(visit);
    return [...seen];
  };
  const loads: BrowserBuild['loads'] = new Map();
  for (const entry of Object.keys(MODULE_ENTRIES)) {
    const file = `${entry}.js`;
    const eager = closure([file], ['import-statement']);
    const all = closure([file], ['import-statement', 'dynamic-import']);
    loads.set(file, { static: eager, lazy: all.filter((f) => !eager.includes(f)) });
  }
  return loads;
}

export interface FileSize {
  file: string;
  raw: number;
  gzip: number;
}

/** What one way of running the broker downloads (each file gzip -9 on its own, as a server sends it). */
export interface ModeDownload {
  mode: 'tab' | 'shared-worker' | 'inline';
  /** What the page itself fetches. */
  page: FileSize[];
  /** What the SharedWorker fetches: once per browser session, for every tab of the origin. */
  worker: FileSize[];
  /** gzip bytes of page + worker. */
  gzip: number;
  /** The build fails when `gzip` exceeds it. */
  budget: number;
}

/**
 * Budgets per mode (gzip). The SharedWorker page is the one most apps load on every page view:
 * only the client side and the port transport, the broker being in the worker.
 */
export const BUDGETS: Record<ModeDownload['mode'], { total: number; page?: number }> = {
  tab: { total: 100 * 1024 },
  'shared-worker': { total: 100 * 1024, page: 20 * 1024 },
  inline: { total: 100 * 1024 },
};

const sizeOf = (file: string, bytes: Uint8Array): FileSize => ({ file, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });

/** The download of each mode, from a build's files and arbor.wasm. */
export function modeDownloads(built: BrowserBuild, wasm: Uint8Array): ModeDownload[] {
  const size = (file: string): FileSize => sizeOf(file, built.files.get(file)!);
  const wasmSize = sizeOf('arbor.wasm', wasm);
  const loads = (entry: string, lazy: boolean): FileSize[] => {
    const l = built.loads.get(entry)!;
    return [...l.static, ...(lazy ? l.lazy : [])].map(size);
  };
  const mode = (m: ModeDownload['mode'], page: FileSize[], worker: FileSize[]): ModeDownload => ({
    mode: m,
    page,
    worker,
    gzip: [...page, ...worker].reduce((n, s) => n + s.gzip, 0),
    budget: BUDGETS[m].total,
  });
  return [
    mode('tab', [...loads('arbormq.js', true), wasmSize], []),
    mode('shared-worker', loads('arbormq.js', false), [size('arbormq-worker.js'), wasmSize]),
    mode('inline', loads('arbormq-inline.js', true), []),
  ];
}

/** Why a mode is over budget, or null. */
export function overBudget(d: ModeDownload): string | null {
  const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
  if (d.gzip > d.budget) return `${d.mode} mode downloads ${kb(d.gzip)} gzip, over its budget of ${kb(d.budget)}`;
  const pageBudget = BUDGETS[d.mode].page;
  const page = d.page.reduce((n, s) => n + s.gzip, 0);
  if (pageBudget !== undefined && page > pageBudget) return `the page of ${d.mode} mode downloads ${kb(page)} gzip, over its budget of ${kb(pageBudget)}`;
  return null;
}

async function main(): Promise<void> {
  let wasm: Uint8Array;
  try {
    wasm = await readFile(WASM);
  } catch {
    throw new Error(`${WASM} is missing: run \`npm run build:wasm\` first`);
  }
  const built = await buildBrowser({ write: true });
  const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
  const list = (sizes: FileSize[]): string => sizes.map((s) => `${s.file} ${kb(s.gzip)}`).join(' + ');
  const problems: string[] = [];
  for (const d of modeDownloads(built, wasm)) {
    const worker = d.worker.length > 0 ? `; its SharedWorker: ${list(d.worker)}` : '';
    process.stderr.write(`build:browser: ${d.mode} mode: ${kb(d.gzip)} gzip (budget ${kb(d.budget)}) — the page: ${list(d.page)}${worker}\n`);
    const problem = overBudget(d);
    if (problem) problems.push(problem);
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`build:browser: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
