// Runs bench/core.ts in its own process with a timeout.

import { join } from 'node:path';
import type { AllocRow, TrieRow } from './core.js';
import { ROOT, spawnTs, stopChild } from './children.js';

export interface CoreOutcome {
  ok: boolean;
  error?: string;
  quick?: boolean;
  lookups?: number;
  topics?: number;
  allocs?: number;
  trie?: TrieRow[];
  alloc?: AllocRow[];
}

export async function runCore(quick: boolean): Promise<CoreOutcome> {
  const child = spawnTs(join(ROOT, 'bench/core.ts'), quick ? ['--quick'] : [], {
    stdio: ['ignore', 'pipe', 'pipe'],
    nodeFlags: ['--expose-gc', '--max-old-space-size=8192'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-3000)));
  const timeoutMs = quick ? 60_000 : 600_000;
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    child.once('exit', (c, s) => {
      clearTimeout(timer);
      resolve(c ?? s ?? 'unknown');
    });
  });
  await stopChild(child, 500);
  if (code === 'timeout') return { ok: false, error: `timed out after ${timeoutMs / 1000} s` };
  try {
    return { ok: true, ...(JSON.parse(out.trim().split('\n').pop()!) as Omit<CoreOutcome, 'ok'>) };
  } catch {
    return { ok: false, error: `exit ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}` };
  }
}
