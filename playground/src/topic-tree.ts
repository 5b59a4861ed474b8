// The live topic tree: every level of every subscription filter and retained topic, with who
// subscribed where (shared groups named) and the retained message held at each topic.
import type { BrokerSnapshot, RetainedSnapshot } from '../../host/browser/index.js';
import { h } from './dom.js';
import { formatBytes } from './format.js';

export interface TreeNode {
  level: string;
  children: Map<string, TreeNode>;
  subscribers: { clientId: string; qos: number; group?: string }[];
  retained?: RetainedSnapshot;
}

const node = (level: string): TreeNode => ({ level, children: new Map(), subscribers: [] });

/** Builds the tree of levels from the snapshot's subscriptions and retained topics. */
export function buildTopicTree(snapshot: BrokerSnapshot): TreeNode {
  const root = node('');
  const at = (path: string): TreeNode => {
    let current = root;
    for (const level of path.split('/')) {
      let next = current.children.get(level);
      if (!next) current.children.set(level, (next = node(level)));
      current = next;
    }
    return current;
  };
  for (const session of snapshot.sessions) {
    for (const s of session.subscriptions) {
      at(s.topicFilter).subscribers.push({ clientId: session.clientId, qos: s.qos, ...(s.group === undefined ? {} : { group: s.group }) });
    }
  }
  for (const r of snapshot.retained) at(r.topic).retained = r;
  return root;
}

export function renderTopicTree(root: TreeNode): HTMLElement {
  if (root.children.size === 0) return h('p', { class: 'empty' }, 'No subscriptions or retained messages yet.');
  return list(root);
}

function list(parent: TreeNode): HTMLElement {
  const children = [...parent.children.values()].sort((a, b) => order(a.level) - order(b.level) || (a.level < b.level ? -1 : a.level > b.level ? 1 : 0));
  return h(
    'ul',
    { class: 'tree' },
    children.map((child) =>
      h(
        'li',
        {},
        h(
          'div',
          { class: 'tree-node' },
          h('code', { class: `level${child.level === '+' || child.level === '#' ? ' wildcard' : ''}` }, child.level === '' ? '(empty)' : child.level),
          child.subscribers.map((s) => h('span', { class: 'chip chip-sub', title: 'subscriber, granted QoS' }, s.group ? `$share/${s.group} · ${s.clientId}` : s.clientId, h('small', {}, ` q${s.qos}`))),
          child.retained &&
            h(
              'span',
              { class: 'chip chip-retained', title: `retained message: a payload of ${formatBytes(child.retained.bytes)}; its arena buffer has ${child.retained.refcount} reference(s)` },
              'retained: ',
              h('q', {}, child.retained.preview),
              h('small', {}, ` ${formatBytes(child.retained.bytes)} payload · rc ${child.retained.refcount}`),
            ),
        ),
        child.children.size > 0 && list(child),
      ),
    ),
  );
}

/** `+` and `#` after the named levels of the same parent. */
function order(level: string): number {
  return level === '#' ? 2 : level === '+' ? 1 : 0;
}
