// The wildcard-routing data set: 30,000 topics, 10,000 distinct filters with + and # spread over
// 100 connections, and the reference answer (which connection must receive which topic).

import { rng, shuffle } from '../stats.js';

export interface WildcardData {
  topics: string[];
  /** filters[c] are connection c's filters. */
  filters: string[][];
  /** match[c * topics.length + t] = 1 when any filter of connection c matches topic t. */
  match: Uint8Array;
  /** Connections that must receive each topic (one copy per client, however many of its filters match). */
  matchCount: Uint32Array;
}

const REGIONS = 10;
const SITES = 20;
const DEVICES = 10;
const METRICS = 14;

/** w/rR/sS/dD/mM (28,000) and w/rR/sS/dD (2,000), so `#` also meets its parent level. */
export function wildcardTopics(): string[] {
  const topics: string[] = [];
  for (let r = 0; r < REGIONS; r++) {
    for (let s = 0; s < SITES; s++) {
      for (let d = 0; d < DEVICES; d++) {
        topics.push(`w/r${r}/s${s}/d${d}`);
        for (let m = 0; m < METRICS; m++) topics.push(`w/r${r}/s${s}/d${d}/m${m}`);
      }
    }
  }
  return topics;
}

// Per level: 'v' a value, '+' or '#'. Weights favour narrow filters, as real deployments do;
// the wide ones exist in few distinct forms anyway (there are only 10 `w/rR/#`).
const TEMPLATES: [string, number][] = [
  ['vvvvv', 40], ['vvvv', 6], ['vvvv+', 10], ['vv+vv', 8], ['v+vvv', 8], ['vvv+v', 8],
  ['vvvv#', 6], ['vvv#', 3], ['vv+v+', 2], ['v+v+v', 2], ['+vvvv', 3], ['vv+v#', 2], ['v+vv#', 1], ['vv#', 0.2],
];

function randomFilter(random: () => number): string {
  let x = random() * TEMPLATES.reduce((n, [, w]) => n + w, 0);
  let template = TEMPLATES[0]![0];
  for (const [t, w] of TEMPLATES) {
    if ((x -= w) < 0) {
      template = t;
      break;
    }
  }
  const values = ['w', `r${Math.floor(random() * REGIONS)}`, `s${Math.floor(random() * SITES)}`, `d${Math.floor(random() * DEVICES)}`, `m${Math.floor(random() * METRICS)}`];
  return [...template].map((c, i) => (c === 'v' ? values[i] : c)).join('/');
}

interface TopicNode {
  children: Map<string, TopicNode>;
  topic: number;
}

function topicTree(topics: string[]): TopicNode {
  const root: TopicNode = { children: new Map(), topic: -1 };
  topics.forEach((topic, index) => {
    let node = root;
    for (const level of topic.split('/')) {
      let next = node.children.get(level);
      if (!next) {
        next = { children: new Map(), topic: -1 };
        node.children.set(level, next);
      }
      node = next;
    }
    node.topic = index;
  });
  return root;
}

function everyTopicUnder(node: TopicNode, out: (t: number) => void): void {
  if (node.topic >= 0) out(node.topic);
  for (const child of node.children.values()) everyTopicUnder(child, out);
}

/** Reference matcher: walks the tree of known topics along the filter (no '$' topics exist here). */
export function topicsMatching(root: TopicNode, filter: string, out: (t: number) => void): void {
  const levels = filter.split('/');
  const walk = (node: TopicNode, i: number): void => {
    if (i === levels.length) {
      if (node.topic >= 0) out(node.topic);
      return;
    }
    const level = levels[i]!;
    if (level === '#') everyTopicUnder(node, out);
    else if (level === '+') for (const child of node.children.values()) walk(child, i + 1);
    else {
      const child = node.children.get(level);
      if (child) walk(child, i + 1);
    }
  };
  walk(root, 0);
}

export function wildcardData(connections = 100, filterCount = 10_000, seed = 3): WildcardData {
  const random = rng(seed);
  const topics = wildcardTopics();
  const distinct = new Set<string>();
  for (let i = 0; distinct.size < filterCount && i < filterCount * 100; i++) distinct.add(randomFilter(random));
  const all = shuffle([...distinct], random);
  const per = Math.ceil(all.length / connections);
  const filters = Array.from({ length: connections }, (_, c) => all.slice(c * per, (c + 1) * per));
  const root = topicTree(topics);
  const T = topics.length;
  const match = new Uint8Array(connections * T);
  filters.forEach((list, c) => {
    for (const f of list) topicsMatching(root, f, (t) => (match[c * T + t] = 1));
  });
  const matchCount = new Uint32Array(T);
  for (let c = 0; c < connections; c++) for (let t = 0; t < T; t++) matchCount[t] += match[c * T + t]!;
  return { topics, filters, match, matchCount };
}

export { topicTree };
