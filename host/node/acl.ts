import { covers, intersection, levels } from './topic-filters.js';

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
/** Distinct subjects (and distinct rule sets) remembered; beyond it the cache starts over (bounded memory). */
const CACHE_LIMIT = 10_000;
/** Topics whose verdict one rule set remembers; beyond it that cache starts over. */
const VERDICT_LIMIT = 4096;
const READ = 1;
const WRITE = 2;
const DENIED = -1;

/**
 * Decisions from an ACL file, with Mosquitto's semantics where the broker can follow them:
 * only what is listed is allowed; `deny` lines win over any grant; `pattern` lines apply to every
 * client in addition to its user's lines; a rule reaches topics starting with `$` only if its own
 * first level names them (`#` does not cover `$aws/x`; `$aws/#` does) [MQTT-4.7.2-1].
 *
 * - Reads are decided per message, as Mosquitto does: every delivery is checked against the
 *   reader's rules (RuleSet.canRead). A subscription is refused only when no topic it could match
 *   is readable (Mosquitto grants even those): `#` is granted beside `topic deny test/nosubscribe`,
 *   `test/nosubscribe` itself is refused.
 * - `$share/{group}/` is stripped first: the share prefix grants nothing by itself.
 * - A `%c` / `%u` value that contains `/`, `+` or `#` (or is empty) would change a pattern's level
 *   structure, so such a pattern does not apply to that client (CVE-2017-7650 in Mosquitto).
 * - Where Mosquitto lets a user's grant win before it looks at the patterns, a deny anywhere wins here.
 */
export class Acl {
  private readonly bySubject = new Map<string, RuleSet>();
  /** Rule sets by their rules: subjects with the same effective rules share one. */
  private readonly byRules = new Map<string, RuleSet>();

  constructor(readonly rules: AclRules) {}

  canPublish(subject: Subject, topic: string): boolean {
    return this.ruleSet(subject).canWrite(topic);
  }

  /** `filter` as the client sent it, `$share/{group}/` included. */
  canSubscribe(subject: Subject, filter: string): boolean {
    return this.ruleSet(subject).canSubscribe(unshared(filter));
  }

  canRead(subject: Subject, topic: string): boolean {
    return this.ruleSet(subject).canRead(topic);
  }

  /** The subject's rules: the same object for every subject whose rules are the same. */
  ruleSet(subject: Subject): RuleSet {
    const key = `${subject.username === undefined ? '\u0001' : `u${subject.username}`}\u0000${subject.clientId}`;
    let set = this.bySubject.get(key);
    if (set) return set;
    const own = subject.username === undefined ? this.rules.anonymous : (this.rules.users.get(subject.username) ?? []);
    const effective: [Access, string][] = own.map((r) => [r.access, r.filter]);
    for (const pattern of this.rules.patterns) {
      const filter = substitute(pattern.filter, subject);
      if (filter !== null) effective.push([pattern.access, filter]);
    }
    const rulesKey = effective.map(([access, filter]) => `${access} ${filter}`).join('\u0000');
    set = this.byRules.get(rulesKey);
    if (!set) {
      if (this.byRules.size >= CACHE_LIMIT) this.byRules.clear();
      set = new RuleSet(effective);
      this.byRules.set(rulesKey, set);
    }
    if (this.bySubject.size >= CACHE_LIMIT) this.bySubject.clear();
    this.bySubject.set(key, set);
    return set;
  }
}

/**
 * The rules that apply to some subjects, compiled, with the verdicts already reached per topic.
 * Rules are indexed by their first level, so a topic is compared only with the rules that can match it.
 */
export class RuleSet {
  private readonly all: Compiled[];
  private readonly byFirstLevel = new Map<string, Compiled[]>();
  /** Rules whose first level is `+` or `#`. */
  private readonly wildcardFirst: Compiled[] = [];
  /** topic → READ | WRITE (0: neither) */
  private readonly verdicts = new Map<string, number>();

  constructor(rules: [Access, string][]) {
    this.all = rules.map(([access, filter]) => compile(access, filter));
    for (const rule of this.all) {
      const first = rule.levels[0]!;
      if (first === '+' || first === '#') this.wildcardFirst.push(rule);
      else (this.byFirstLevel.get(first) ?? this.byFirstLevel.set(first, []).get(first)!).push(rule);
    }
  }

  /** May a message on `topic` be delivered to these subjects? (Bound: usable as the broker's read check.) */
  readonly canRead = (topic: string): boolean => (this.verdict(topic) & READ) !== 0;

  canWrite(topic: string): boolean {
    return (this.verdict(topic) & WRITE) !== 0;
  }

  /** Is some topic the filter (without `$share/`) can match readable? */
  canSubscribe(filter: string): boolean {
    const filterLevels = levels(filter);
    for (const rule of this.all) {
      if (!rule.read) continue;
      const common = intersection(rule.levels, filterLevels);
      if (common !== null && !this.all.some((d) => d.deny && covers(d.levels, common))) return true;
    }
    return false;
  }

  private verdict(topic: string): number {
    let verdict = this.verdicts.get(topic);
    if (verdict !== undefined) return verdict;
    const topicLevels = levels(topic);
    const wild = grants(this.wildcardFirst, topicLevels);
    const named = wild === DENIED ? DENIED : grants(this.byFirstLevel.get(topicLevels[0]!), topicLevels);
    verdict = named === DENIED ? 0 : wild | named;
    if (this.verdicts.size >= VERDICT_LIMIT) this.verdicts.clear();
    this.verdicts.set(topic, verdict);
    return verdict;
  }
}

/** READ | WRITE as the rules covering the topic grant them, or DENIED when a deny rule covers it. */
function grants(rules: Compiled[] | undefined, topicLevels: string[]): number {
  let granted = 0;
  if (rules === undefined) return granted;
  for (const rule of rules) {
    if (!covers(rule.levels, topicLevels)) continue;
    if (rule.deny) return DENIED;
    if (rule.read) granted |= READ;
    if (rule.write) granted |= WRITE;
  }
  return granted;
}

/** The filter without a `$share/{group}/` prefix. */
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
