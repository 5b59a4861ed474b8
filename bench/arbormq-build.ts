// Which build of ArborMQ a benchmark loads: the compiled dist/ when it is at least as new as every
// host/ source (realistic: what `npm start` runs), else the sources through tsx.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (name.endsWith('.ts')) newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

/** The module to import for ArborMQ's server in the checkout at `root`, and which build it is. */
export function pickBuild(root: string): { url: string; build: string } {
  const dist = join(root, 'dist/host/node/index.js');
  if (existsSync(dist) && statSync(dist).mtimeMs >= newestSource(join(root, 'host'))) {
    return { url: pathToFileURL(dist).href, build: 'dist (compiled)' };
  }
  const why = existsSync(dist) ? 'dist older than host/ sources' : 'no dist/';
  return { url: pathToFileURL(join(root, 'host/node/server.ts')).href, build: `sources via tsx (${why})` };
}
