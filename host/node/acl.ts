import type { ReadCheck } from '../core/model/options.js';
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

/** A rule ready to be checked: its filter (a pattern's with `%c` / `%u` levels) split into levels. */
interface Compiled {
  levels: string[];
  /** READ | WRITE, or DENIED for a deny rule. */
  grants: number;
}

/** Whom a decision is about: the user name authentication established (undefined = anonymous) and the client identifier. */
export interface Subject {
  username: string | undefined;
  clientId: string;
}

/** A pattern whose template matches a topic, and the client id / user name a subject needs for it to apply. */
interface PatternHit {
  grants: number;
  clientId: string | null;
  username: string | null;
}

/** What a rule set decides about one topic: its own rules' grants, and the patterns that may change them. */
interface TopicVerdict {
  grants: number;
  hits: PatternHit[] | null;
  /** The read answer for every subject of the rule set, or undefined when a pattern makes it depend on the subject. */
  readers: boolean | undefined;
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
 *   reader's rules (readCheck). A subscription is refused only when no topic it could match is
 *   readable (Mosquitto grants even those): `#` is granted beside `topic deny test/nosubscribe`,
 *   `test/nosubscribe` itself is refused.
 * - `$share/{group}/` is stripped first: the share prefix grants nothing by itself.
 * - A `%c` / `%u` value that contains `/`, `+` or `#` (or is empty) would change a pattern's level
 *   structure, so such a pattern does not apply to that client (CVE-2017-7650 in Mosquitto).
 * - Where Mosquitto lets a user's grant win before it looks at the patterns, a deny anywhere wins here.
 */
export class Acl {
  private readonly patterns: Compiled[];
  /** Rule sets by user name ('' key prefix: anonymous), and by their rules: users with the same lines share one. */
  private readonly byUser = new Map<string, RuleSet>();
  private readonly byRules = new Map<string, RuleSet>();
  private readonly checks = new Map<string, ReadCheck>();

  constructor(readonly rules: AclRules) {
    this.patterns = rules.patterns.map((r) => compile(r.access, r.filter));
  }

  canPublish(subject: Subject, topic: string): boolean {
    return (this.ruleSet(subject.username).verdict(topic, subject) & WRITE) !== 0;
  }

  canRead(subject: Subject, topic: string): boolean {
    return (this.ruleSet(subject.username).verdict(topic, subject) & READ) !== 0;
  }

  /** `filter` as the client sent it, `$share/{group}/` included. */
  canSubscribe(subject: Subject, filter: string): boolean {
    const substituted: Compiled[] = [];
    for (const pattern of this.rules.patterns) {
      const filter = substitute(pattern.filter, subject);
      if (filter !== null) substituted.push(compile(pattern.access, filter));
    }
    return this.ruleSet(subject.username).canSubscribe(levels(unshared(filter)), substituted);
  }

  /**
   * The subject's read check, for the broker to ask about every delivery: its `shared` half is the
   * rule set's (one answer per topic for every subject of the set, so the broker asks it once per
   * message for a run of such subscribers); only for topics a `pattern` template matches is the
   * answer the subject's own.
   */
  readCheck(subject: Subject): ReadCheck {
    const key = subjectKey(subject);
    let check = this.checks.get(key);
    if (!check) {
      const set = this.ruleSet(subject.username);
      check = { shared: set.readers, own: (topic) => (set.verdict(topic, subject) & READ) !== 0 };
      if (this.checks.size >= CACHE_LIMIT) this.checks.clear();
      this.checks.set(key, check);
    }
    return check;
  }

  /** The rules of a user name's own lines (plus the patterns): one object for every user with the same lines. */
  ruleSet(username: string | undefined): RuleSet {
    const key = username === undefined ? '' : `u${username}`;
    let set = this.byUser.get(key);
    if (set) return set;
    const own = username === undefined ? this.rules.anonymous : (this.rules.users.get(username) ?? []);
    const rulesKey = own.map((r) => `${r.access} ${r.filter}`).join('\u0000');
    set = this.byRules.get(rulesKey);
    if (!set) {
      set = new RuleSet(own.map((r) => compile(r.access, r.filter)), this.patterns);
      if (this.byRules.size >= CACHE_LIMIT) this.byRules.clear();
      this.byRules.set(rulesKey, set);
    }
    if (this.byUser.size >= CACHE_LIMIT) this.byUser.clear();
    this.byUser.set(key, set);
    return set;
  }
}

const subjectKey = (subject: Subject): string => `${subject.username === undefined ? '\u0001' : `u${subject.username}`}\u0000${subject.clientId}`;

/**
 * A user's own rules, compiled and indexed by first level (a topic is compared only with the rules
 * that can match it), with the patterns' templates, and the verdicts already reached per topic.
 */
export class RuleSet {
  private readonly byFirstLevel = new Map<string, Compiled[]>();
  /** Own rules whose first level is `+` or `#`. */
  private readonly wildcardFirst: Compiled[] = [];
  private readonly verdicts = new Map<string, TopicVerdict>();

  constructor(
    private readonly own: Compiled[],
    private readonly patterns: Compiled[],
  ) {
    for (const rule of own) {
      const first = rule.levels[0]!;
      if (first === '+' || first === '#') this.wildcardFirst.push(rule);
      else (this.byFirstLevel.get(first) ?? this.byFirstLevel.set(first, []).get(first)!).push(rule);
    }
  }

  /** Whether every subject of this rule set may read the topic; undefined when patterns make it depend on the subject. */
  readonly readers = (topic: string): boolean | undefined => this.topicVerdict(topic).readers;

  /** READ | WRITE the subject has on the topic (0 when denied). */
  verdict(topic: string, subject: Subject): number {
    const { grants, hits } = this.topicVerdict(topic);
    if (grants === DENIED) return 0;
    if (hits === null) return grants;
    let total = grants;
    for (const hit of hits) {
      if ((hit.clientId !== null && hit.clientId !== subject.clientId) || (hit.username !== null && hit.username !== subject.username)) continue;
      if (hit.grants === DENIED) return 0;
      total |= hit.grants;
    }
    return total;
  }

  /** Is some topic the filter (without `$share/`) can match readable, with these substituted patterns? */
  canSubscribe(filterLevels: string[], patterns: Compiled[]): boolean {
    const rules = [...this.own, ...patterns];
    return rules.some((rule) => {
      if (rule.grants === DENIED || !(rule.grants & READ)) return false;
      const common = intersection(rule.levels, filterLevels);
      return common !== null && !rules.some((d) => d.grants === DENIED && covers(d.levels, common));
    });
  }

  private topicVerdict(topic: string): TopicVerdict {
    let verdict = this.verdicts.get(topic);
    if (verdict !== undefined) return verdict;
    const topicLevels = levels(topic);
    const wild = grantsOf(this.wildcardFirst, topicLevels);
    const named = wild === DENIED ? DENIED : grantsOf(this.byFirstLevel.get(topicLevels[0]!), topicLevels);
    let hits: PatternHit[] | null = null;
    if (named !== DENIED) {
      for (const pattern of this.patterns) {
        const hit = capture(pattern, topicLevels);
        if (hit) (hits ??= []).push(hit);
      }
    }
    const own = named === DENIED ? DENIED : wild | named;
    verdict = { grants: own, hits, readers: readersOf(own, hits) };
    if (this.verdicts.size >= VERDICT_LIMIT) this.verdicts.clear();
    this.verdicts.set(topic, verdict);
    return verdict;
  }
}

/** The read answer shared by every subject: patterns matter only if one may deny, or grant what the own rules do not. */
function readersOf(own: number, hits: PatternHit[] | null): boolean | undefined {
  if (own === DENIED) return false;
  const reads = (own & READ) !== 0;
  if (hits === null) return reads;
  return reads && hits.every((hit) => hit.grants !== DENIED) ? true : undefined;
}

/** READ | WRITE as the rules covering the topic grant them, or DENIED when a deny rule covers it. */
function grantsOf(rules: Compiled[] | undefined, topicLevels: string[]): number {
  let granted = 0;
  if (rules === undefined) return granted;
  for (const rule of rules) {
    if (!covers(rule.levels, topicLevels)) continue;
    if (rule.grants === DENIED) return DENIED;
    granted |= rule.grants;
  }
  return granted;
}

/**
 * Does a pattern's template match the topic, and for which client id / user name? `%c` and `%u`
 * stand for one level each (the same value wherever they repeat); the value a client has must equal
 * it — an empty level matches nobody, as substitution never makes one.
 */
function capture(pattern: Compiled, topicLevels: string[]): PatternHit | null {
  let clientId: string | null = null;
  let username: string | null = null;
  const t = pattern.levels;
  for (let i = 0; ; i++) {
    if (i === t.length) return i === topicLevels.length ? { grants: pattern.grants, clientId, username } : null;
    const level = t[i]!;
    if (level === '#') {
      // "a/#" also matches "a"; a first-level # leaves $ topics alone [MQTT-4.7.2-1].
      return i === 0 && topicLevels[0]!.startsWith('$') ? null : { grants: pattern.grants, clientId, username };
    }
    if (i === topicLevels.length) return null;
    const value = topicLevels[i]!;
    if (level === '+') {
      if (i === 0 && value.startsWith('$')) return null;
    } else if (level === '%c' || level === '%u') {
      if (value.length === 0) return null;
      const known: string | null = level === '%c' ? clientId : username;
      if (known !== null && known !== value) return null;
      if (level === '%c') clientId = value;
      else username = value;
    } else if (level !== value) {
      return null;
    }
  }
}

/** The filter without a `$share/{group}/` prefix. */
export function unshared(filter: string): string {
  if (!filter.startsWith(SHARE_PREFIX)) return filter;
  const slash = filter.indexOf('/', SHARE_PREFIX.length);
  return slash < 0 ? filter : filter.slice(slash + 1);
}

function compile(access: Access, filter: string): Compiled {
  const grants = access === 'deny' ? DENIED : (access === 'write' ? 0 : READ) | (access === 'read' ? 0 : WRITE);
  return { levels: levels(filter), grants };
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
