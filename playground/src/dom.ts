// A few lines of DOM building instead of a framework: elements with attributes, listeners and
// children; labelled form fields (every control has a label).

export type Child = Node | string | number | null | undefined | false;
type Listener<E extends Event = Event> = (event: E) => void;

export interface Attrs {
  class?: string;
  id?: string;
  /** Listeners, e.g. `on: { click: … }`. */
  on?: { [K in keyof HTMLElementEventMap]?: Listener<HTMLElementEventMap[K]> };
  /** Properties rather than attributes (value, checked, disabled …). */
  props?: Record<string, unknown>;
  [attribute: string]: string | number | boolean | null | undefined | Attrs['on'] | Attrs['props'];
}

/** An element: `attrs` become attributes (true = present, false / null / undefined = absent). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'on') {
      for (const [type, listener] of Object.entries(value as Record<string, Listener>)) el.addEventListener(type, listener);
    } else if (name === 'props') {
      Object.assign(el, value);
    } else if (value === true) {
      el.setAttribute(name, '');
    } else if (value !== false && value !== null && value !== undefined) {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces `el`'s children. */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

const drawn = new WeakMap<Element, string>();

/**
 * Replaces `el`'s children with `render()` when `data` differs from what it last showed: a view that
 * is redrawn on every update stays calm — selectable, its buttons clickable — while nothing changes.
 */
export function drawIfChanged(el: Element, data: unknown, render: () => Child | Child[]): void {
  const key = JSON.stringify(data);
  if (drawn.get(el) === key) return;
  drawn.set(el, key);
  fill(el, render());
}

let fieldIds = 0;

/**
 * A control under its label, tied by `for` / `id` rather than by nesting: a label that wraps a text
 * input or a select would fold the control's value into its accessible name ("Session Clean …").
 */
function labelled<C extends HTMLElement>(label: string, control: C): { field: HTMLDivElement; input: C } {
  control.id ||= `field-${++fieldIds}`;
  return { field: h('div', { class: 'field' }, h('label', { class: 'field-label', for: control.id }, label), control), input: control };
}

/** A labelled text-like input. */
export function inputField(label: string, attrs: Attrs & { value?: string; type?: string } = {}): { field: HTMLDivElement; input: HTMLInputElement } {
  const { value, ...rest } = attrs;
  return labelled(label, h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', ...rest, props: { value: value ?? '' } }));
}

export function textareaField(label: string, attrs: Attrs & { value?: string } = {}): { field: HTMLDivElement; input: HTMLTextAreaElement } {
  const { value, ...rest } = attrs;
  return labelled(label, h('textarea', { rows: 2, spellcheck: 'false', ...rest, props: { value: value ?? '' } }));
}

export function selectField<V extends string>(label: string, options: readonly (readonly [V, string])[], value: V, attrs: Attrs = {}): { field: HTMLDivElement; input: HTMLSelectElement } {
  const select = labelled(label, h('select', attrs, ...options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))));
  select.field.classList.add('field-select');
  return select;
}

/** A checkbox inside its label (a checkbox adds nothing to the label's name). */
export function checkField(label: string, checked = false, attrs: Attrs = {}): { field: HTMLLabelElement; input: HTMLInputElement } {
  const input = h('input', { type: 'checkbox', ...attrs, props: { checked } });
  return { field: h('label', { class: 'check' }, input, h('span', {}, label)), input };
}

/** `text` (a client ID, a topic) with line-break opportunities after its separators, so a long one wraps at a level rather than mid-word. */
export function breakable(text: string): Child[] {
  return text.split(/(?<=[/:\-])/).flatMap((part, i) => (i === 0 ? [part] : [h('wbr'), part]));
}

/** The QoS choices of every QoS select. */
export const QOS_OPTIONS = [
  ['0', '0 · at most once'],
  ['1', '1 · at least once'],
  ['2', '2 · exactly once'],
] as const;

/** A log's way in: entries beyond `limit` drop off its start. */
export interface FollowingLog {
  append(entry: HTMLElement): void;
}

/** How close to its end (px) a log counts as read to the end. */
const AT_END_PX = 24;

/**
 * A scrolling log that follows its newest entries while the reader leaves it at its end: entries
 * appended, and entries that grow after they were appended (an exchange gains its acknowledgements),
 * keep it pinned there. Once the reader scrolls up it stays where they put it, until they scroll
 * back down. Whether it is pinned is decided by the reader's scrolling, not by where the content has
 * got to, which growth moves without anyone scrolling.
 */
export function followingLog(log: HTMLElement, limit: number): FollowingLog {
  let pinned = true;
  log.addEventListener('scroll', () => (pinned = log.scrollHeight - log.scrollTop - log.clientHeight < AT_END_PX), { passive: true });
  new MutationObserver(() => {
    if (pinned) log.scrollTop = log.scrollHeight;
  }).observe(log, { childList: true, subtree: true, characterData: true });
  return {
    append(entry) {
      log.appendChild(entry);
      while (log.childElementCount > limit) log.firstElementChild!.remove();
    },
  };
}
