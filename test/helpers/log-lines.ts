import type { Logger, LogLevel } from '../../host/core/model/options.js';

/** One line a broker logged. */
export interface Line {
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown> | undefined;
}

/** A logger that keeps every line it is given. */
export function recorder(): { lines: Line[]; logger: Logger } {
  const lines: Line[] = [];
  return { lines, logger: (level, msg, fields) => lines.push({ level, msg, fields }) };
}

/** How many events the lines with `msg` stand for: one each, or their `repeated` count. */
export const eventsIn = (lines: Line[], msg: string): number =>
  lines.filter((l) => l.msg === msg).reduce((n, l) => n + ((l.fields?.repeated as number | undefined) ?? 1), 0);
