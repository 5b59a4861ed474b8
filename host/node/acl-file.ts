import { readFile } from 'node:fs/promises';
import { Acl, type Access, type AclRule, type AclRules } from './acl.js';
import { isValidFilter } from './topic-filters.js';

const ACCESS = new Set<string>(['read', 'write', 'readwrite', 'deny']);

/** A line of an ACL file that cannot be used; the message names the file and line. */
export class AclFileError extends Error {}

/** Reads an ACL file in Mosquitto's syntax (see docs/CONFIGURATION.md). */
export async function loadAclFile(path: string): Promise<Acl> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new AclFileError(`cannot read ACL file ${path}: ${(error as Error).message}`);
  }
  return new Acl(parseAcl(text, path));
}

/**
 * Parses Mosquitto's ACL syntax: `#` comments, `topic [read|write|readwrite|deny] FILTER`,
 * `user NAME` (the `topic` lines after it are that user's), `pattern [ACCESS] FILTER` with `%c`
 * and `%u` as whole levels. Without an access word the rule is readwrite; the filter is the rest of
 * the line, so it may contain spaces.
 */
export function parseAcl(text: string, source = 'ACL'): AclRules {
  const rules: AclRules = { anonymous: [], users: new Map(), patterns: [] };
  let current = rules.anonymous;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const fail = (reason: string): never => {
      throw new AclFileError(`${source} line ${line}: ${reason}`);
    };
    const text = raw.replace(/^\s+/, '');
    if (text.length === 0 || text.startsWith('#')) return;
    const space = text.search(/\s/);
    const keyword = space < 0 ? text : text.slice(0, space);
    const rest = space < 0 ? '' : text.slice(space + 1).replace(/\s+$/, '');
    if (keyword === 'user') {
      if (rest.length === 0) fail('"user" needs a user name');
      current = rules.users.get(rest) ?? [];
      rules.users.set(rest, current);
      return;
    }
    if (keyword !== 'topic' && keyword !== 'pattern') fail(`unknown keyword ${JSON.stringify(keyword)} (expected topic, user or pattern)`);
    const words = rest.match(/^(\S+)\s+(.*)$/);
    let access: Access = 'readwrite';
    let filter = rest;
    if (words && ACCESS.has(words[1]!)) {
      access = words[1] as Access;
      filter = words[2]!;
    }
    if (filter.length === 0 || ACCESS.has(filter)) fail(`"${keyword}" needs a topic filter`);
    if (!isValidFilter(filter)) fail(`${JSON.stringify(filter)} is not a valid topic filter`);
    const rule: AclRule = { access, filter, line };
    if (keyword === 'topic') {
      if (/(^|\/)%[cu](\/|$)/.test(filter)) fail('%c and %u are substituted in "pattern" lines only');
      current.push(rule);
      return;
    }
    for (const level of filter.split('/')) {
      if (level !== '%c' && level !== '%u' && /%[cu]/.test(level)) fail(`%c and %u must be a whole topic level, not part of ${JSON.stringify(level)}`);
    }
    rules.patterns.push(rule);
  });
  return rules;
}
