// The access-control file of the `fan-out-acl` scenario: 1,000 rules in Mosquitto's syntax, so both
// ArborMQ and Mosquitto read it. Shaped like an operator's file: many users with their own subtrees,
// deny lines inside the subtree the load uses (so every delivery is really judged, not waved through
// by a lone `#`), and `pattern` lines, which give every client rules of its own.

import { writeFileSync } from 'node:fs';

export const ACL_RULES = 1000;
const PATTERNS = ['pattern readwrite clients/%c/#', 'pattern read users/%u/#', 'pattern write $SYS/broker/connection/%c/state'];
const USERS = 350;
const DENIES = 150;

/** The file's text: ACL_RULES `topic` / `pattern` lines (plus `user` lines and comments). */
export function benchAcl(): string {
  const lines = ['# anonymous clients (the load generator): the bench/ tree, but not its deny/ branch', 'topic readwrite bench/#'];
  for (let i = 0; i < DENIES; i++) lines.push(`topic deny bench/fanout/deny/${i}`);
  const reads = ACL_RULES - 1 - DENIES - 2 * USERS - PATTERNS.length;
  for (let i = 0; i < reads; i++) lines.push(`topic read public/${i}/#`);
  for (let i = 0; i < USERS; i++) lines.push(`user device-${i}`, `topic readwrite devices/${i}/#`, `topic read config/${i}`);
  lines.push(...PATTERNS);
  return `${lines.join('\n')}\n`;
}

export function writeBenchAcl(path: string): void {
  writeFileSync(path, benchAcl());
}
