// A real small filesystem for the tests of what happens when the disk is full (needs root).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let mountable: boolean | undefined;

/** Whether this process may mount a small tmpfs (root with CAP_SYS_ADMIN): tried once, for real. */
export function canMount(): boolean {
  if (mountable !== undefined) return mountable;
  mountable = false;
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), 'arbormq-mount-probe-'));
  try {
    mountable = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]).status === 0;
    if (mountable) spawnSync('umount', [probe]);
    return mountable;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

export const NO_MOUNT = 'needs permission to mount a small tmpfs (root with CAP_SYS_ADMIN)';

/** Runs `body` with a tmpfs of `size` (e.g. '4m') mounted at `parent`/mnt, unmounted afterwards. */
export async function withTmpfs<T>(parent: string, size: string, body: (mnt: string) => Promise<T>): Promise<T> {
  const mnt = join(parent, 'mnt');
  await mkdir(mnt);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]).status !== 0) throw new Error(`cannot mount a tmpfs at ${mnt}`);
  try {
    return await body(mnt);
  } finally {
    spawnSync('umount', ['-l', mnt]);
  }
}

/** Fills the filesystem holding `dir` to the last byte with a file `dir`/filler. */
export function fill(dir: string): void {
  spawnSync('sh', ['-c', `dd if=/dev/zero of=${join(dir, 'filler')} bs=64k 2>/dev/null; true`]);
}
