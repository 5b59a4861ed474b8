/** How many failed authentications an address may have, and over what time. */
export interface AuthFailurePolicy {
  /** Failures within the window after which the address is refused; 0 turns the limit off. */
  maxFailures: number;
  windowMs: number;
}

/** An authentication admitted for checking; settle it exactly once (later calls are ignored). */
export interface Attempt {
  /** The check is over: `failed` counts it against its address. */
  settle(failed: boolean): void;
}

/** Addresses tracked at most; past it, addresses whose failures have aged out are forgotten first. */
const TRACKED_LIMIT = 100_000;

interface AddressState {
  /** Timestamps of the latest failures, oldest first, at most maxFailures of them. */
  times: number[];
  /** Attempts admitted and not yet settled: each may still become a failure. */
  inFlight: number;
  /** Attempts waiting for one in flight to settle, in arrival order. */
  waiting: ((attempt: Attempt | null) => void)[];
}

const UNTRACKED: Attempt = { settle: () => undefined };

/**
 * Failed authentications per client address (IP, without the port): once an address has
 * `maxFailures` failures within `windowMs`, its CONNECTs are refused at once — without checking a
 * password — until the oldest of those failures is `windowMs` old. Refused attempts do not count as
 * failures, so a client that stops guessing gets back in one window after its last failure.
 *
 * Attempts still being checked count too: an address never has more checks running than failures it
 * has left, so guesses sent in parallel get no more checks than guesses sent one after another. An
 * attempt beyond that waits for a running one to settle — then it is checked (the other succeeded)
 * or refused (the failures are used up) — so clients behind one NAT that log in at once correctly
 * are delayed by a check, not refused.
 */
export class AuthFailures {
  private readonly addresses = new Map<string, AddressState>();
  /** Authentications refused because of the limit, since start. */
  refused = 0;
  /** Failed authentications recorded, since start. */
  failures = 0;

  constructor(
    private readonly policy: AuthFailurePolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** No failure, attempt or wait is held for `address`: an attempt from it would be admitted and leave nothing behind. */
  isClear(address: string): boolean {
    return this.policy.maxFailures <= 0 || !this.addresses.has(address);
  }

  /**
   * An authentication from `address` wants to be checked: an Attempt now, or a promise of one when
   * it has to wait for checks in flight; null = refused, the address is over the limit.
   */
  admit(address: string): Attempt | null | Promise<Attempt | null> {
    if (this.policy.maxFailures <= 0) return UNTRACKED;
    let state = this.addresses.get(address);
    if (!state) {
      if (this.addresses.size >= TRACKED_LIMIT) this.forgetExpired();
      state = { times: [], inFlight: 0, waiting: [] };
      this.addresses.set(address, state);
    }
    const left = this.policy.maxFailures - this.recentFailures(state);
    if (left <= 0) {
      this.refused++;
      return null;
    }
    if (state.inFlight < left && state.waiting.length === 0) return this.start(address, state);
    return new Promise((resolve) => state.waiting.push(resolve));
  }

  private start(address: string, state: AddressState): Attempt {
    state.inFlight++;
    let settled = false;
    return {
      settle: (failed) => {
        if (settled) return;
        settled = true;
        state.inFlight--;
        if (failed) {
          this.failures++;
          state.times.push(this.now());
          if (state.times.length > this.policy.maxFailures) state.times.shift();
        }
        this.wake(address, state);
      },
    };
  }

  /** Lets waiting attempts go as far as the failures left allow, or refuses them all once none are left. */
  private wake(address: string, state: AddressState): void {
    const left = this.policy.maxFailures - this.recentFailures(state);
    while (state.waiting.length > 0 && (left <= 0 || state.inFlight < left)) {
      const resolve = state.waiting.shift()!;
      if (left <= 0) {
        this.refused++;
        resolve(null);
      } else {
        resolve(this.start(address, state));
      }
    }
    if (state.times.length === 0 && state.inFlight === 0 && state.waiting.length === 0) this.addresses.delete(address);
  }

  private recentFailures(state: AddressState): number {
    const cutoff = this.now() - this.policy.windowMs;
    const times = state.times;
    let n = times.length;
    while (n > 0 && times[times.length - n]! <= cutoff) n--;
    return n;
  }

  private forgetExpired(): void {
    const busy = (state: AddressState): boolean => state.inFlight > 0 || state.waiting.length > 0;
    for (const [address, state] of this.addresses) {
      if (!busy(state) && this.recentFailures(state) === 0) this.addresses.delete(address);
    }
    // Still full: an address flood. Forget the oldest idle entries (insertion order) rather than grow.
    for (const [address, state] of this.addresses) {
      if (this.addresses.size < TRACKED_LIMIT) break;
      if (!busy(state)) this.addresses.delete(address);
    }
  }
}
