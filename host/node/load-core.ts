// Node loader for the wasm core: locates build/arbor.wasm from the package root, compiles
// it once per process and instantiates a fresh Core per call.

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Core, type CoreOptions } from '../core/wasm/core.js';

let compiled: Promise<WebAssembly.Module> | undefined;

/**
 * Root of the arbormq package, found by walking up from this file: it runs from
 * host/node/*.ts (tsx) and from dist/host/node/*.js (tsc output), at different depths.
 */
export async function packageRoot(): Promise<string> {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; ) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'arbormq') return dir;
    } catch {
      // no (readable) package.json here: keep walking
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the arbormq package root above ${start}`);
    dir = parent;
  }
}

async function compile(): Promise<WebAssembly.Module> {
  const path = join(await packageRoot(), 'build', 'arbor.wasm');
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (err) {
    throw new Error(`ArborMQ core not found at ${path}: run \`npm run build:wasm\` first`, { cause: err });
  }
  return WebAssembly.compile(bytes);
}

/** A fresh core instance; the module is compiled once per process. */
export async function loadNodeCore(options?: CoreOptions): Promise<Core> {
  compiled ??= compile();
  let module: WebAssembly.Module;
  try {
    module = await compiled;
  } catch (err) {
    compiled = undefined; // let a later call succeed once the wasm has been built
    throw err;
  }
  return Core.load(module, options);
}
