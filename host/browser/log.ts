import type { Logger, LogLevel } from '../core/model/options.js';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Broker logs at `level` and above on the console (default 'warn'); in a worker they show in its devtools. */
export function consoleLogger(level: LogLevel = 'warn'): Logger {
  const min = RANK[level];
  return (lvl, message, fields) => {
    if (RANK[lvl] < min) return;
    const write = lvl === 'error' ? console.error : lvl === 'warn' ? console.warn : lvl === 'info' ? console.info : console.debug;
    if (fields) write(message, fields);
    else write(message);
  };
}
