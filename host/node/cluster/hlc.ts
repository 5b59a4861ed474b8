/**
 * A hybrid logical clock stamp: wall-clock milliseconds, a counter for events within one
 * millisecond (or while the wall clock lags a stamp seen from a peer), and the node id to break ties.
 * Every node orders two stamps the same way, so concurrent updates resolve the same everywhere.
 */
export interface Stamp {
  wall: number;
  logical: number;
  node: string;
}

/** The stamp of state whose origin is unknown (restored from the store): any real stamp wins over it. */
export const ZERO_STAMP: Stamp = { wall: 0, logical: 0, node: '' };

export function compareStamps(a: Stamp, b: Stamp): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

export class HybridClock {
  private wall = 0;
  private logical = 0;

  constructor(
    readonly node: string,
    private readonly clock: () => number = Date.now,
  ) {}

  /** A stamp later than every stamp this clock has made or observed. */
  now(): Stamp {
    const physical = this.clock();
    if (physical > this.wall) {
      this.wall = physical;
      this.logical = 0;
    } else {
      this.logical++;
    }
    return { wall: this.wall, logical: this.logical, node: this.node };
  }

  /** Takes a peer's stamp into account, so that what this node stamps next orders after it. */
  observe(stamp: Stamp): void {
    if (stamp.wall > this.wall || (stamp.wall === this.wall && stamp.logical > this.logical)) {
      this.wall = stamp.wall;
      this.logical = stamp.logical;
    }
  }
}
