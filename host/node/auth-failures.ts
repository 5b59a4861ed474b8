/** How many failed authentications an address may have, and over what time. */
export interface AuthFailurePolicy {
  /** Failures within the window after which the address is refused; 0 turns the limit off. */
  maxFailures: number;
  windowMs: number;
}

/** Addresses tracked at most; past it, addresses whose failures have aged out are forgotten first. */
const TRACKED_LIMIT = 100_000;

/**
 * Failed authentications per client address (IP, without the port): once an address has
 * `maxFailures` failures within `windowMs`, its CONNECTs are refused at once — without checking a
 * password — until the oldest of those failures is `windowMs` old. Refused attempts do not count as
 * failures, so a client that stops guessing gets back in one window after its last failure.
 */
export class AuthFailures {
  /** Timestamps of the latest failures per address, oldest first, at most maxFailures of them. */
  private readonly recent = new Map<string, number[]>();
  /** Authentications refused because of the limit, since start. */
  refused = 0;
  /** Failed authentications recorded, since start. */
  failures = 0;

  constructor(
    private readonly policy: AuthFailurePolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** Is `address` over the limit now? */
  blocked(address: string): boolean {
    if (this.policy.maxFailures <= 0) return false;
    const times = this.recent.get(address);
    if (!times || times.length < this.policy.maxFailures) return false;
    if (this.now() - times[0]! >= this.policy.windowMs) return false;
    this.refused++;
    return true;
  }

  record(address: string): void {
    this.failures++;
    if (this.policy.maxFailures <= 0) return;
    let times = this.recent.get(address);
    if (!times) {
      if (this.recent.size >= TRACKED_LIMIT) this.forgetExpired();
      times = [];
      this.recent.set(address, times);
    }
    times.push(this.now());
    if (times.length > this.policy.maxFailures) times.shift();
  }

  private forgetExpired(): void {
    const cutoff = this.now() - this.policy.windowMs;
    for (const [address, times] of this.recent) {
      if (times.at(-1)! < cutoff) this.recent.delete(address);
    }
    // Still full: an address flood. Forget the oldest entries (insertion order) rather than grow.
    for (const address of this.recent.keys()) {
      if (this.recent.size < TRACKED_LIMIT) break;
      this.recent.delete(address);
    }
  }
}
