// `npm run build:dashboard`: bundles the dashboard page (dashboard/, with the playground's inspector
// views) with esbuild into dist/dashboard/ — index.html, dashboard.js, the playground's styles.css
// and dashboard.css — which the Node server serves at /dashboard/ when the admin API is on.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { noNodeBuiltins, ROOT } from './build-browser.js';

export const DASHBOARD_SOURCE = join(ROOT, 'dashboard');
export const DASHBOARD_OUT = join(ROOT, 'dist/dashboard');

/** The dashboard's files by name; with `write`, also written to `outDir` (replacing what was there). */
export async function buildDashboard(options: { write: boolean; outDir?: string }): Promise<Map<string, Uint8Array>> {
  const outDir = options.outDir ?? DASHBOARD_OUT;
  const result = await build({
    entryPoints: { dashboard: join(DASHBOARD_SOURCE, 'src/main.ts') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome100', 'firefox110', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    outdir: outDir,
    write: false,
    logLevel: 'silent',
    plugins: [noNodeBuiltins],
  });
  const files = new Map<string, Uint8Array>();
  for (const f of result.outputFiles) files.set(f.path.slice(f.path.lastIndexOf('/') + 1), f.contents);
  files.set('index.html', await readFile(join(DASHBOARD_SOURCE, 'index.html')));
  files.set('dashboard.css', await readFile(join(DASHBOARD_SOURCE, 'dashboard.css')));
  files.set('styles.css', await readFile(join(ROOT, 'playground/styles.css')));
  if (options.write) {
    await rm(outDir, { recursive: true, force: true });
    await mkdir(outDir, { recursive: true });
    for (const [name, bytes] of files) await writeFile(join(outDir, name), bytes);
  }
  return files;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildDashboard({ write: true }).then(
    (files) => process.stderr.write(`build:dashboard: ${[...files.keys()].join(', ')} in ${DASHBOARD_OUT}\n`),
    (error: unknown) => {
      process.stderr.write(`build:dashboard: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
