// The wasm arena where every message lives once: its size tiers, the bytes in use, and a sample of
// live buffers with their reference counts and who holds them.
import type { ArenaSnapshot } from '../../host/browser/index.js';
import { h } from './dom.js';
import { formatBytes } from './format.js';

const TIER_LIMITS: Record<string, string> = { small: '≤ 1 KiB', medium: '≤ 64 KiB', large: '≤ 1 MiB', huge: '> 1 MiB' };

export function renderArena(arena: ArenaSnapshot): HTMLElement {
  return h(
    'div',
    { class: 'arena' },
    h(
      'p',
      { class: 'arena-summary' },
      h('strong', {}, formatBytes(arena.bytesInUse)),
      ' in use of ',
      formatBytes(arena.bytesReserved),
      ' reserved (cap ',
      formatBytes(arena.cap),
      ') · ',
      h('strong', {}, String(arena.liveHandles)),
      ` live buffer${arena.liveHandles === 1 ? '' : 's'}`,
      arena.errors > 0 && h('span', { class: 'reason-error' }, ` · ${arena.errors} invalid handle uses`),
    ),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'tiers' },
        h('caption', { class: 'sr-only' }, 'Arena size tiers'),
        h('thead', {}, h('tr', {}, ['Tier', 'Blocks in use', 'Free', 'Bytes in use', 'Reserved', 'Use'].map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          {},
          arena.tiers.map((t) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, `${t.name} `, h('small', {}, TIER_LIMITS[t.name] ?? '')),
              h('td', { class: 'num' }, String(t.inUse)),
              h('td', { class: 'num' }, String(t.free)),
              h('td', { class: 'num' }, formatBytes(t.bytesInUse)),
              h('td', { class: 'num' }, formatBytes(t.bytesReserved)),
              h('td', {}, h('meter', { min: 0, max: Math.max(1, t.bytesReserved), value: t.bytesInUse, 'aria-label': `${t.name} tier: bytes in use of reserved` })),
            ),
          ),
        ),
      ),
    ),
    h('h4', {}, 'Live buffers ', h('span', { class: 'hint' }, arena.handles.length < arena.liveHandles ? `(first ${arena.handles.length})` : '')),
    arena.handles.length > 0 && h('p', { class: 'hint' }, 'A message’s buffer stores 2 bytes of topic length, the topic and the payload: more than the payload size the topic tree shows.'),
    arena.handles.length === 0
      ? h('p', { class: 'empty' }, 'None: every message has been delivered and released.')
      : h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'handles' },
            h('caption', { class: 'sr-only' }, 'Live arena buffers'),
            h('thead', {}, h('tr', {}, ['Handle', 'Stored bytes', 'Refcount', 'Held by'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              arena.handles.map((b) => {
                const others = b.refcount - b.holders.length;
                const heldBy = [...b.holders, ...(others > 0 ? [`${others} write${others === 1 ? '' : 's'} or batch${others === 1 ? '' : 'es'} in progress`] : [])];
                return h(
                  'tr',
                  {},
                  h('td', {}, h('code', {}, `0x${b.handle.toString(16)}`)),
                  h('td', { class: 'num' }, formatBytes(b.bytes)),
                  h('td', { class: 'num' }, h('span', { class: 'refcount' }, String(b.refcount))),
                  h('td', {}, b.topic !== undefined && [h('code', {}, b.topic), ': '], heldBy.join(', ') || 'output batch'),
                );
              }),
            ),
          ),
        ),
  );
}
