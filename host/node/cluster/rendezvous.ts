/**
 * Rendezvous (highest random weight) hashing: the node whose hash with the key is highest. Every
 * node computes the same pick from the same member list; a member joining or leaving moves only
 * the keys it wins or held, and keys spread evenly over the members.
 */
export function rendezvousPick(key: string, nodes: readonly string[]): string | null {
  let best: string | null = null;
  let bestScore = -1;
  for (const node of nodes) {
    const score = mix(fnv1a(key, fnv1a(node, 0x811c9dc5)));
    if (score > bestScore || (score === bestScore && best !== null && node < best)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

function fnv1a(s: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Separates the node's part from the key's: ("a","bc") and ("ab","c") hash apart.
  return Math.imul(h ^ 0xff, 0x01000193);
}

/** A finalizer (murmur3's): FNV's low bits alone spread poorly. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
