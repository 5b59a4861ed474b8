// Filters and topics for the core micro-benchmarks: an IoT-like hierarchy
// org/building/floor/device/metric, filters mostly exact with some `+` and `#`.

import { rng } from './stats.js';

const ORGS = 200;
const BUILDINGS = 50;
const FLOORS = 20;
const DEVICES = 500;
const METRICS = ['temp', 'hum', 'co2', 'pm25', 'lux', 'noise', 'power', 'volt', 'amp', 'state', 'rssi', 'battery', 'door', 'motion', 'water', 'smoke', 'pressure', 'flow', 'speed', 'status'];

// Per level: 'v' a value, '+' or '#'.
const TEMPLATES: [string, number][] = [
  ['vvvvv', 55], ['vvvv', 3], ['vvvv+', 5], ['vvv+v', 5], ['vv+vv', 5], ['v+vvv', 5],
  ['vvvv#', 6], ['vvv#', 5], ['vv#', 4], ['v+v#', 3], ['vv+v#', 2], ['+vvvv', 1], ['v#', 0.2],
];
const WEIGHT = TEMPLATES.reduce((n, [, w]) => n + w, 0);

function values(random: () => number): string[] {
  const pick = (n: number): number => Math.floor(random() * n);
  return [`o${pick(ORGS)}`, `b${pick(BUILDINGS)}`, `f${pick(FLOORS)}`, `d${pick(DEVICES)}`, METRICS[pick(METRICS.length)]!];
}

function filterFrom(random: () => number): string {
  let x = random() * WEIGHT;
  let template = TEMPLATES[0]![0];
  for (const [t, w] of TEMPLATES) {
    if ((x -= w) < 0) {
      template = t;
      break;
    }
  }
  const v = values(random);
  return [...template].map((c, i) => (c === 'v' ? v[i] : c)).join('/');
}

/** `n` distinct filters, deterministic for a seed. */
export function coreFilters(n: number, seed = 7): string[] {
  const random = rng(seed);
  const set = new Set<string>();
  for (let i = 0; set.size < n && i < n * 20; i++) set.add(filterFrom(random));
  return [...set];
}

/** `n` topics: half made from random filters (so they match something), half uniformly random. */
export function coreTopics(n: number, filters: string[], seed = 9): string[] {
  const random = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = values(random);
    if (i % 2 === 0) {
      const f = filters[Math.floor(random() * filters.length)]!.split('/');
      const levels: string[] = [];
      for (let k = 0; k < f.length; k++) {
        if (f[k] === '#') {
          // `#` stands for zero or more levels: pick some
          const extra = Math.floor(random() * (6 - k));
          for (let e = 0; e < extra && k + e < 5; e++) levels.push(v[k + e]!);
          break;
        }
        levels.push(f[k] === '+' ? v[k]! : f[k]!);
      }
      out.push(levels.length > 0 ? levels.join('/') : v.join('/'));
    } else {
      out.push(v.join('/'));
    }
  }
  return out;
}
