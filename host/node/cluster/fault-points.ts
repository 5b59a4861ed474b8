import type { Store } from '../../core/model/store.js';

/**
 * Fault points that tests of crash recovery set through the environment (ARBORMQ_CLUSTER_FAULT, a
 * comma-separated list) to make a crash or a slow link happen at one exact step in a real process.
 * Unset in production, where each is a constant false / 0 checked off the hot path.
 */
export interface FaultPoints {
  /** SIGKILL this process once a forward it received is durable, before it confirms it. */
  crashBeforeForwardAck: boolean;
  /** SIGKILL this process right after it installed a session handed over to it, before that is durable. */
  crashAfterTakeIn: boolean;
  /** SIGKILL this process when a forward it must relay to the new owner of a session that moved away arrives, before it relays it. */
  crashBeforeRelay: boolean;
  /** Hold every reply to a takeover request this many ms (an old owner answering after the asking node gave up). */
  takeoverReplyDelayMs: number;
  /** Hold every route announcement this many ms before sending it (a slow link, for route changes only). */
  routeDelayMs: number;
  /** Handle each etcd keepalive answer this many ms after it came (a busy node: its proof of the lease lapses while etcd keeps the lease). */
  keepaliveLateMs: number;
  /** Hold settling a hand-over — the reply to the old owner, the home record — this many ms once the session is durable here. */
  settleDelayMs: number;
  /** Hold claiming this node's sessions again after a fresh lease this many ms (a node busy restoring a large store). */
  reclaimDelayMs: number;
  /** Hold each write of this node's store this many ms (a slow disk: what it forwards is durable elsewhere long before here). */
  commitDelayMs: number;
  /** Hold the commit that sends a buddy back from behind its sessions in full this many ms after its link is back. */
  catchUpDelayMs: number;
}

type Crash = 'crashBeforeForwardAck' | 'crashAfterTakeIn' | 'crashBeforeRelay';
type Delay = Exclude<keyof FaultPoints, Crash>;

const CRASHES = new Map<string, Crash>([
  ['crash-before-forward-ack', 'crashBeforeForwardAck'],
  ['crash-after-take-in', 'crashAfterTakeIn'],
  ['crash-before-relay', 'crashBeforeRelay'],
]);
const DELAYS = new Map<string, Delay>([
  ['takeover-reply-delay-ms', 'takeoverReplyDelayMs'],
  ['route-delay-ms', 'routeDelayMs'],
  ['keepalive-late-ms', 'keepaliveLateMs'],
  ['settle-delay-ms', 'settleDelayMs'],
  ['reclaim-delay-ms', 'reclaimDelayMs'],
  ['commit-delay-ms', 'commitDelayMs'],
  ['catch-up-delay-ms', 'catchUpDelayMs'],
]);

export function faultPoints(spec = process.env.ARBORMQ_CLUSTER_FAULT ?? ''): FaultPoints {
  const faults: FaultPoints = { crashBeforeForwardAck: false, crashAfterTakeIn: false, crashBeforeRelay: false, takeoverReplyDelayMs: 0, routeDelayMs: 0, keepaliveLateMs: 0, settleDelayMs: 0, reclaimDelayMs: 0, commitDelayMs: 0, catchUpDelayMs: 0 };
  for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value] = item.split('=') as [string, string | undefined];
    const crash = CRASHES.get(name);
    const delay = DELAYS.get(name);
    if (crash) faults[crash] = true;
    else if (delay && value !== undefined && Number(value) >= 0) faults[delay] = Number(value);
    else throw new Error(`unknown ARBORMQ_CLUSTER_FAULT ${JSON.stringify(item)}`);
  }
  return faults;
}

/** Makes each of `store`'s writes start `ms` later (the commit-delay fault point). */
export function slowWrites(store: Store, ms: number): void {
  const write = store.write.bind(store);
  store.write = (batch) => new Promise<void>((resolve) => setTimeout(resolve, ms)).then(() => write(batch));
}

/** Runs `fn` now, or `ms` later when a fault point holds that step back. */
export function heldBack(ms: number, fn: () => void): void {
  if (ms === 0) fn();
  else setTimeout(fn, ms).unref();
}
