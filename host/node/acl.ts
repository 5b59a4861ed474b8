import { covers, levels, overlaps } from './topic-filters.js';

export type Access = 'read' | 'write' | 'readwrite' | 'deny';

/** One `topic` or `pattern` line of an ACL file. */
export interface AclRule {
  access: Access;
  /** The topic filter as written (a pattern still holds `%c` / `%u`). */
  filter: string;
  /** 1-based line in the file, for messages. */
  line: number;
}

/** An ACL file's rules, grouped as Mosquitto applies them. */
export interface AclRules {
  /** `topic` lines before any `user` line: for clients without a user name. */
  anonymous: AclRule[];
  /** `topic` lines after `user NAME`, by name. */
  users: Map<string, AclRule[]>;
  /** `pattern` lines: for every client, `%c` → client identifier and `%u` → user name. */
  patterns: AclRule[];
}

/** A rule ready to be checked: its filter split into levels. */
interface Compiled {
  levels: string[];
  read: boolean;
  write: boolean;
  deny: boolean;
}

/** Whom a decision is about: the user name authentication established (undefined = anonymous) and the client identifier. */
export interface Subject {
  username: string | undefined;
  clientId: string;
}

const SHARE_PREFIX = '$share/';
/** Distinct subjects whose compiled rules are kept; beyond it the cache starts over (bounded memory). */
const CACHE_LIMIT = 10_000;

/**
 * Decisions from an ACL file, with Mosquitto's semantics where the broker can follow them:
 * only what is listed is allowed; `deny` lines win over any grant; `pattern` lines apply to every
 * client in addition to its user's lines. Where ArborMQ is stricter:
 *
 * - A subscription is allowed only if every topic its filter can match is readable: some single
 *   read rule covers the whole filter (`a/#` covers `a/+/b`, `#` is refused to a reader of `a/#`),
 *   and no deny rule overlaps it. The broker does not re-check each delivery, so a filter that could
 *   reach a denied topic is refused whole rather than filtered message by message.
 * - `$share/{group}/` is stripped first: the share prefix grants nothing by itself.
 * - A `%c` / `%u` value that contains `/`, `+` or `#` (or is empty) would change a pattern's level
 *   structure, so such a pattern does not apply to that client (CVE-2017-7650 in Mosquitto).
 */
export class Acl {
  private readonly cache = new Map<string, Compiled[]>();

  constructor(readonly rules: AclRules) {}

  canPublish(subject: Subject, topic: string): boolean {
    const topicLevels = levels(topic);
    let granted = false;
    for (const rule of this.rulesFor(subject)) {
      if (!covers(rule.levels, topicLevels)) continue;
      if (rule.deny) return false;
      if (rule.write) granted = true;
    }
    return granted;
  }

  /** `filter` as the client sent it, `$share/{group}/` included. */
  canSubscribe(subject: Subject, filter: string): boolean {
    const filterLevels = levels(unshared(filter));
    let granted = false;
    for (const rule of this.rulesFor(subject)) {
      if (rule.deny) {
        if (overlaps(rule.levels, filterLevels)) return false;
      } else if (rule.read && !granted) {
        granted = covers(rule.levels, filterLevels);
      }
    }
    return granted;
  }

  private rulesFor(subject: Subject): Compiled[] {
    const key = `${subject.username === undefined ? '\u0001' : `u${subject.username}`}\u0000${subject.clientId}`;
    let compiled = this.cache.get(key);
    if (compiled) return compiled;
    const own = subject.username === undefined ? this.rules.anonymous : (this.rules.users.get(subject.username) ?? []);
    compiled = own.map((r) => compile(r.access, r.filter));
    for (const pattern of this.rules.patterns) {
      const filter = substitute(pattern.filter, subject);
      if (filter !== null) compiled.push(compile(pattern.access, filter));
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, compiled);
    return compiled;
  }
}

/** The topic filter without a `$share/{group}/` prefix. */
export function unshared(filter: string): string {
  if (!filter.startsWith(SHARE_PREFIX)) return filter;
  const slash = filter.indexOf('/', SHARE_PREFIX.length);
  return slash < 0 ? filter : filter.slice(slash + 1);
}

function compile(access: Access, filter: string): Compiled {
  return {
    levels: levels(filter),
    read: access === 'read' || access === 'readwrite',
    write: access === 'write' || access === 'readwrite',
    deny: access === 'deny',
  };
}

const UNSAFE_IN_LEVEL = /[/+#]/;

/** The pattern with `%c` and `%u` levels replaced, or null when it cannot apply to this subject. */
function substitute(pattern: string, subject: Subject): string | null {
  const parts = levels(pattern);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part !== '%c' && part !== '%u') continue;
    const value = part === '%c' ? subject.clientId : subject.username;
    if (value === undefined || value.length === 0 || UNSAFE_IN_LEVEL.test(value)) return null;
    parts[i] = value;
  }
  return parts.join('/');
}
