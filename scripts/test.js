#!/usr/bin/env node
// Runs every test/**/*.test.ts with the built-in node:test runner (Node 20 has no --test glob).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return collect(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

// The longest files start first (two run at a time), so that none of them is left running alone at the end.
const LONGEST_FIRST = ['test/bench/', 'test/playground/', 'test/soak/', 'test/fuzz/', 'test/chaos/', 'test/node/cluster/'];
const rank = (f) => {
  const i = LONGEST_FIRST.findIndex((prefix) => f.startsWith(prefix));
  return i < 0 ? LONGEST_FIRST.length : i;
};
const filters = process.argv.slice(2);
const files = collect('test')
  .sort()
  .sort((a, b) => rank(a) - rank(b))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched', filters);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
