// Checks that host/core's layers only look down (docs/ARCHITECTURE.md): every import — type-only
// ones, re-exports and dynamic imports included — goes to the importing file's own layer or to a
// layer below it, never out of host/core, and the leaf files import nothing at all.
// `node --import tsx scripts/check-layers.ts` prints each violation and exits 1 if there is one.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** From the bottom up. A layer may use those of a lower rank; codec and wasm, both at the bottom, are independent. */
export const LAYERS = [
  { name: 'codec', dir: 'host/core/codec/', rank: 0 },
  { name: 'wasm', dir: 'host/core/wasm/', rank: 0 },
  { name: 'auth', dir: 'host/core/auth/', rank: 1 },
  { name: 'model', dir: 'host/core/model/', rank: 2 },
  { name: 'handlers', dir: 'host/core/handlers/', rank: 3 },
  { name: 'connection', dir: 'host/core/', rank: 4 },
] as const;

/** Files every layer may rely on: they import nothing. */
export const LEAVES = ['host/core/codec/constants.ts', 'host/core/wasm/abi.ts', 'host/core/model/outcomes.ts'];

export type Layer = (typeof LAYERS)[number];

/** The layer of a path relative to the repository root (the most specific directory wins), or null outside host/core. */
export function layerOf(path: string): Layer | null {
  let found: Layer | null = null;
  for (const layer of LAYERS) {
    if (path.startsWith(layer.dir) && (!found || layer.dir.length > found.dir.length)) found = layer;
  }
  return found;
}

/** Whether a file of layer `from` may import one of layer `to`. */
export function mayImport(from: Layer, to: Layer): boolean {
  return from.name === to.name || to.rank < from.rank;
}

/** Every module specifier `source` imports or re-exports, type-only and dynamic imports included. */
export function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The violations of one file (`path` relative to `root`) with the given imports. */
export function violations(path: string, imports: string[]): string[] {
  const from = layerOf(path);
  if (!from) return [];
  const out: string[] = [];
  if (LEAVES.includes(path) && imports.length > 0) out.push(`${path} is a leaf but imports ${imports.join(', ')}`);
  for (const specifier of imports) {
    if (!specifier.startsWith('.')) {
      out.push(`${path} (${from.name}) imports ${specifier}, from outside host/core`);
      continue;
    }
    const target = join(dirname(path), specifier).replace(/\.js$/, '.ts');
    const to = layerOf(target);
    if (!to) out.push(`${path} (${from.name}) imports ${target}, outside host/core`);
    else if (!mayImport(from, to)) out.push(`${path} (${from.name}) imports ${target} (${to.name}): a layer may only import its own or lower ones`);
  }
  return out;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Every violation in the host/core under `root`. */
export function checkLayers(root: string): string[] {
  return tsFiles(join(root, 'host/core')).flatMap((file) => violations(relative(root, file), importsOf(readFileSync(file, 'utf8'))));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const found = checkLayers(resolve(dirname(fileURLToPath(import.meta.url)), '..'));
  for (const v of found) console.error(v);
  if (found.length > 0) process.exit(1);
  console.log('host/core: every import looks down');
}
