import { spawnSync } from 'node:child_process';

/** The mosquitto binary (PATH, else Debian's /usr/sbin), or null when not installed. */
export function mosquittoPath(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v mosquitto || { test -x /usr/sbin/mosquitto && echo /usr/sbin/mosquitto; }'], { encoding: 'utf8' });
  const path = r.stdout.trim().split('\n')[0];
  return path ? path : null;
}
